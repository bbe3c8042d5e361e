"""A skipped test is a failure unless it is marked as expected, with its reason (a pytest plugin; conftest.py loads it).

On a machine set up by ``make test`` every test runs: a test that skips because a tool
or a service is missing hides a check, so it fails the run. The few that may skip say
so, and why::

    @pytest.mark.expected_skip(reason="the HJ 212 serial bridge exists on Windows only")

* A skip (``pytest.skip``, ``skipif``, ``importorskip``) of a test without that marker
  (with a non-empty reason) is reported as a failure, its skip reason in the message,
  and listed at the end.
* A module skipped whole at collection (``pytest.skip(allow_module_level=True)``)
  cannot carry the marker: it makes the run fail, listed at the end.
* An expected failure is allowed as ``@pytest.mark.xfail(reason=...)`` only (a known
  fault, said where it is): ``xfail_strict`` in pyproject makes one that passes a
  failure, so a fixed fault does not stay hidden. An ``xfail`` without a reason, or
  ``pytest.xfail()`` called in a test, is a failure like an unmarked skip.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

RULE = "a skip is a failure unless the test is marked @pytest.mark.expected_skip(reason=...)"


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _has_reason(item: pytest.Item, name: str) -> bool:
    marker = item.get_closest_marker(name)
    return marker is not None and bool(str(marker.kwargs.get("reason") or "").strip())


def _problem(item: pytest.Item, report: pytest.TestReport) -> str | None:
    """Why this skipped (or xfailed) report fails the run, or None when it was marked as expected."""
    if hasattr(report, "wasxfail"):
        if _has_reason(item, "xfail") and not report.wasxfail.startswith("reason: "):
            return None
        return (
            f"expected to fail without a reason ({report.wasxfail or 'none given'}): an xfail needs "
            "@pytest.mark.xfail(reason=...) naming the known fault; better, fix it"
        )
    if _has_reason(item, "expected_skip"):
        return None
    return f"skipped ({_reason(report)}); {RULE}; install or start what it needs (make test does)"


class SkipPolicy:
    """The hooks, with what they found; registered once per run by :func:`pytest_configure`."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.unexpected: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if report.skipped:
            problem = _problem(item, report)
            if problem is not None:
                report.outcome = "failed"
                report.longrepr = problem
                self.unexpected.append(f"{item.nodeid}: {problem}")
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.unexpected.append(
                f"{report.nodeid}: skipped whole at collection ({_reason(report)}); skip its tests, marked, instead"
            )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.unexpected and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a module skipped at collection

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.unexpected:
            return
        terminalreporter.section("skipped without being expected", sep="=", red=True, bold=True)
        for line in self.unexpected:
            terminalreporter.line(line)
        terminalreporter.line(f"{len(self.unexpected)} unexpected skip(s) counted as failures: {RULE}", red=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipPolicy(config), "twin-skip-policy")
