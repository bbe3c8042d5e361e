"""The skip policy (tests/skips.py): a skip fails the run unless the test is marked as expected, with its reason.

Each test runs a small suite of its own (pytester) with this project's pytest settings.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]


@pytest.fixture
def suite(pytester: pytest.Pytester):
    """Run ``source`` as a test module under the project's markers, xfail policy and skip policy."""
    markers = "\n".join(f"    {m!r}," for m in OPTIONS["markers"])
    pytester.makepyprojecttoml(
        f'[tool.pytest.ini_options]\naddopts = "-ra --strict-markers -p tests.skips"\n'
        f"xfail_strict = {str(OPTIONS['xfail_strict']).lower()}\nmarkers = [\n{markers}\n]\n"
    )

    def run(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_it=source)
        return pytester.runpytest()

    return run


def test_an_unmarked_skip_fails_the_run_with_its_reason(suite):
    result = suite(
        """
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="TWIN_TEST_POSTGRES_URL not set")
def test_needs_a_server():
    pass

def test_needs_a_tool():
    pytest.skip("no chromium")
"""
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1, errors=1)  # skipif acts in set-up: an error there
    out = result.stdout.str()
    assert "skipped (TWIN_TEST_POSTGRES_URL not set)" in out and "skipped (no chromium)" in out
    assert "2 unexpected skip(s) counted as failures" in out
    assert "@pytest.mark.expected_skip(reason=...)" in out


def test_a_skip_marked_expected_with_its_reason_passes(suite):
    result = suite(
        """
import pytest

@pytest.mark.expected_skip(reason="the serial bridge exists on Windows only")
def test_serial_bridge():
    pytest.skip("not Windows")
"""
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(skipped=1)
    assert "unexpected skip" not in result.stdout.str()


def test_expected_skip_without_a_reason_does_not_count(suite):
    result = suite(
        """
import pytest

@pytest.mark.expected_skip(reason="")
def test_it():
    pytest.skip("why not")
"""
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1)


def test_a_module_skipped_at_collection_fails_the_run(suite):
    result = suite('import pytest\npytest.skip("no GDAL", allow_module_level=True)\n\ndef test_it():\n    pass\n')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "skipped whole at collection (no GDAL)" in result.stdout.str()


def test_xfail_needs_a_reason_and_is_strict(suite):
    result = suite(
        """
import pytest

@pytest.mark.xfail(reason="issue 12: the plume overshoots at confluences")
def test_known_fault():
    assert False

@pytest.mark.xfail(reason="issue 13: fixed since")
def test_fixed_fault():
    pass

@pytest.mark.xfail
def test_no_reason():
    assert False

def test_imperative():
    pytest.xfail("flaky")
"""
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(xfailed=1, failed=3)  # the xpass (strict), the xfail without reason, pytest.xfail()
    assert "[XPASS(strict)] issue 13" in result.stdout.str()


def test_no_test_at_all_is_a_failure(suite):
    result = suite("")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # pytest exits 5; make test stops there
