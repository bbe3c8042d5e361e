"""Four-level water-quality warnings (blue < yellow < orange < red) evaluated over history.

The rules are data: a YAML *policy* in the spirit of Delft-FEWS thresholds, over the
classes and limits of GB 3838-2002 (:mod:`twin.analysis.quality`). The default policy,
``twin/data/warning_policy.yml``, is **ours, not a national rule**: no standard or
authority sets its levels, multiples, counts or windows. Load another with
:func:`load_policy`.

A policy holds, for each level, rules; a rule holds at a reading when every
condition it names holds there for ``persistence`` consecutive readings of that
station's parameter:

=====================  ==========================================================
``worse_than_target``  the reading's class is worse than the station's target class
``class_at_least``     the class is at least this (5 = V, 6 = 劣V; pH outside 6-9 is 6)
``multiple_at_least``  exceedance multiple ``value / limit(target) - 1`` at least this;
                       pH and DO have none, as in :mod:`twin.analysis.quality`
``rise_per_hour``      rise since the previous reading, per hour, as a fraction of the
                       target class's limit. DO is a lower bound: for DO a *fall*
                       is a rise. pH has no single limit and never rises.
``escalate_from``      (alone) the reading's own rules put it at least at this level
                       (an escalated level does not feed itself, so it can be
                       lowered by hysteresis like any other) and the station's
                       downstream path reaches what ``escalation.targets`` names (a
                       drinking-water intake, a jurisdiction boundary) within
                       ``escalation.window_hours``
=====================  ==========================================================

Parameters GB 3838-2002 does not classify (turbidity, conductivity) can be warned on
when the policy gives them a ``limits`` entry, in the parameter's canonical unit: that
limit stands in for the target class's limit in ``multiple_at_least`` and
``rise_per_hour``, and a value above it counts as ``worse_than_target``; they have no
class, so a rule with ``class_at_least`` never holds for them.

Each (station, parameter) series then runs a small state machine, reading by reading:

* the level rises at once to the highest level whose rule holds;
* it is lowered only after ``hysteresis_readings`` consecutive readings below it, to the
  highest level those readings reached (hysteresis); at 0 the episode ends, "cleared";
* a gap of more than ``expiry_hours`` without a usable reading ends the episode at the
  last reading + ``expiry_hours``, "expired"; so does the end of the evaluated period.

Only *usable* readings count, in the one sense that classification and tracing share
(:func:`twin.ops.flags.usable`): a reading its source flagged as faulty, in maintenance,
in calibration... is never warned on. A policy's ``ignore_flags`` may name further
flags to leave out (none in the default policy).

This module does no database or network access: readings, stations and the
downstream travel times come in as tables (or a callable), episodes go out as a table.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.analysis import quality
from twin.errors import TwinError
from twin.ops.flags import usable
from twin.ops.parameters import PARAMETERS

LEVELS: tuple[str, ...] = ("blue", "yellow", "orange", "red")
"""Level names; a level's number is its position + 1 (blue 1 .. red 4), 0 is no warning."""
LEVEL_NAMES: tuple[str, ...] = ("", *LEVELS)
DEFAULT_POLICY = "warning_policy.yml"
EPISODE_COLUMNS = [
    "station",
    "parameter",
    "level",
    "level_name",
    "start",
    "end",
    "end_reason",
    "peak_value",
    "peak_multiple",
    "rule",
    "trigger",
    "escalation",
    "changes",
]

LevelName = Literal["blue", "yellow", "orange", "red"]
# an escalation callable: (station, time) -> hours to the first intake / jurisdiction boundary downstream
Escalation = Callable[[str, pd.Timestamp], Mapping[str, float | None]]


class PolicyError(TwinError, ValueError):
    """A warning policy that cannot be used: unknown key or level, bad value, duplicate rule id."""


class AlertInputError(TwinError, ValueError):
    """Readings, stations or escalation input that warnings cannot be evaluated on."""


# ---------------------------------------------------------------------------
# the policy
# ---------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """One rule of a level: every condition given must hold, for ``persistence`` readings."""

    id: str = Field(min_length=1)
    description: str | None = None
    worse_than_target: bool = False
    class_at_least: int | None = Field(None, ge=1, le=6)
    multiple_at_least: float | None = Field(None, ge=0)
    rise_per_hour: float | None = Field(None, gt=0)
    escalate_from: LevelName | None = None
    persistence: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _conditions(self) -> Rule:
        others = (
            self.worse_than_target
            or self.class_at_least is not None
            or self.multiple_at_least is not None
            or self.rise_per_hour is not None
        )
        if self.escalate_from is not None and (others or self.persistence != 1):
            raise ValueError(f"rule {self.id!r}: escalate_from stands alone (no other condition, no persistence)")
        if self.escalate_from is None and not others:
            raise ValueError(
                f"rule {self.id!r} has no condition; give one or more of worse_than_target, "
                "class_at_least, multiple_at_least, rise_per_hour, or escalate_from alone"
            )
        return self


class Levels(_Strict):
    blue: list[Rule] = []
    yellow: list[Rule] = []
    orange: list[Rule] = []
    red: list[Rule] = []


class EscalationPolicy(_Strict):
    window_hours: float = Field(gt=0)
    targets: list[Literal["intake", "jurisdiction"]] = ["intake", "jurisdiction"]


class Policy(_Strict):
    """A warning policy; see the module notes and ``twin/data/warning_policy.yml``."""

    name: str
    description: str | None = None
    parameters: list[str] | None = None
    limits: dict[str, float] = {}
    ignore_flags: list[str] = []
    hysteresis_readings: int = Field(ge=1)
    expiry_hours: float = Field(gt=0)
    escalation: EscalationPolicy | None = None
    levels: Levels
    actions: dict[LevelName, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        known = quality.parameters()
        for p, lim in self.limits.items():
            if p in known:
                raise ValueError(
                    f"limits: {p!r} has GB 3838-2002 classes; give limits only for unclassified parameters"
                )
            if p not in PARAMETERS:
                raise ValueError(f"limits: unknown parameter {p!r}; known: {', '.join(PARAMETERS)}")
            if not (lim > 0 and np.isfinite(lim)):
                raise ValueError(f"limits: {p} must be a positive number in {PARAMETERS[p].unit}, got {lim}")
        for p in self.parameters or []:
            if p not in known and p not in self.limits:
                raise ValueError(
                    f"parameter {p!r} has no GB 3838-2002 class and no entry in 'limits'; "
                    f"classified: {', '.join(known)}"
                )
        seen: set[str] = set()
        for n, name in enumerate(LEVELS, start=1):
            for rule in getattr(self.levels, name):
                if rule.id in seen:
                    raise ValueError(f"rule id {rule.id!r} is used twice; rule ids must be unique")
                seen.add(rule.id)
                if rule.escalate_from is not None:
                    if LEVELS.index(rule.escalate_from) + 1 >= n:
                        raise ValueError(
                            f"rule {rule.id!r} of level {name} escalates from {rule.escalate_from}; "
                            "it must escalate from a lower level"
                        )
                    if self.escalation is None:
                        raise ValueError(f"rule {rule.id!r} escalates but the policy has no 'escalation' section")
        return self

    def watched(self) -> set[str]:
        """The parameters this policy warns on."""
        return set(self.parameters or quality.parameters()) | (set(self.limits) if self.parameters is None else set())

    def rules(self) -> list[tuple[int, Rule]]:
        """(level number, rule) for every rule, lowest level first, in file order."""
        return [(n, r) for n, name in enumerate(LEVELS, start=1) for r in getattr(self.levels, name)]


def _model_at(parts: list[str]) -> type[BaseModel] | None:
    """The pydantic model at a location of the policy, to list its allowed keys."""
    model: Any = Policy
    for part in parts:
        if isinstance(part, int) or str(part).isdigit():
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        model = fields[part].annotation
        while typing.get_args(model) and not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = next((a for a in typing.get_args(model) if a is not type(None)), None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _describe(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    parts = [p for p in first["loc"] if not str(p).startswith(("function-after", "tagged-union"))]
    loc = ".".join(str(p) for p in parts)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        key, parent = str(parts[-1]), [str(p) for p in parts[:-1]]
        loc = ".".join(parent)
        if parent == ["levels"]:
            msg = f"unknown level '{key}'; levels are {', '.join(LEVELS)}"
        else:
            model = _model_at(parent)
            allowed = f"; allowed: {', '.join(model.model_fields)}" if model else ""
            msg = f"unknown key '{key}'{allowed}"
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    at = f" at '{loc}'" if loc else ""
    return f"warning policy '{where}'{at}: {msg}{more}"


def parse_policy(data: Mapping[str, Any], where: str = "<dict>") -> Policy:
    """Validate a policy given as a mapping (what ``yaml.safe_load`` returns).

    Raises
    ------
    PolicyError
        Unknown key or level, missing or bad value; the message names the key.
    """
    if not isinstance(data, Mapping):
        raise PolicyError(f"warning policy '{where}' must be a mapping of keys, got {type(data).__name__}")
    try:
        return Policy.model_validate(dict(data))
    except ValidationError as err:
        raise PolicyError(_describe(err, where)) from None


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a warning policy; ``None`` is the default policy (ours, not a national rule).

    Examples
    --------
    >>> policy = load_policy()
    >>> policy.hysteresis_readings, [r.id for r in policy.levels.red]
    (3, ['red-multiple-3', 'red-escalation'])
    """
    if path is None:
        where = f"twin/data/{DEFAULT_POLICY}"
        text = resources.files("twin").joinpath("data", DEFAULT_POLICY).read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise PolicyError(f"warning policy '{where}' cannot be read: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"warning policy '{where}' is not valid YAML: {err}") from None
    return parse_policy(data, where)


# ---------------------------------------------------------------------------
# kernels on one series
# ---------------------------------------------------------------------------
def _run_lengths(c: np.ndarray) -> np.ndarray:
    """Number of consecutive True values ending at each position (0 where False)."""
    idx = np.arange(len(c))
    last_false = np.maximum.accumulate(np.where(~c, idx, -1)) if len(c) else idx
    return idx - last_false


def _rise(parameter: str, t_ns: np.ndarray, v: np.ndarray, target: int, water_body: str) -> np.ndarray:
    """Rise per hour since the previous reading as a fraction of the target limit (NaN where undefined)."""
    out = np.full(len(v), np.nan)
    try:
        lim = quality.limit(parameter, target, water_body)
    except quality.QualityError:  # pH (a range), TN in a river
        return out
    sign = -1.0 if parameter == "DO" else 1.0  # DO is a lower bound: falling is worsening
    if len(v) > 1 and lim > 0:
        hours = np.diff(t_ns) / 3.6e12
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = sign * np.diff(v) / hours / lim
    return out


@dataclass
class _Episode:
    station: str
    parameter: str
    start: pd.Timestamp
    level: int = 0
    rule: str = ""
    trigger: list[tuple[pd.Timestamp, float]] = field(default_factory=list)
    escalation: str | None = None
    changes: list[tuple[pd.Timestamp, int, str]] = field(default_factory=list)
    first: int = 0  # index of the first reading
    end: pd.Timestamp | None = None
    end_reason: str | None = None
    last: int = 0  # index of the last reading in the episode
    peak_value: float = np.nan
    peak_multiple: float = np.nan
    after_expiry: bool = False  # opened by the reading whose gap expired the episode before


def _series(
    station: str,
    parameter: str,
    t: pd.DatetimeIndex,
    v: np.ndarray,
    target: int,
    water_body: str,
    policy: Policy,
    escalate: Callable[[str, pd.Timestamp], str | None],
    until: pd.Timestamp,
    start: int = 0,
    start_on_expiry: bool = False,
) -> tuple[list[_Episode], int, bool]:
    """The episodes of one series; the index where its last open episode began (``len(v)`` if none is open);
    and whether that reading itself expired the episode before it (so the machine's quiet before
    it holds only as long as no reading comes between it and the previous one).

    With ``start``, the state machine begins at that reading with no warning open; the
    readings before it only feed the rules' persistence and rise. If the machine is
    quiet before reading ``start`` of the whole series, and ``start`` leaves at least
    :func:`lookback` readings before it, this gives the episodes of the whole series
    from ``start`` on: what :class:`twin.analysis.watch.Watch` relies on to resume a series
    (``start_on_expiry`` says that reading ``start`` expired a warning, as the run that
    found the quiet point said).
    """
    n = len(v)
    t_ns = t.as_unit("ns").asi8
    klass, valid, worse, multiple = _measures(parameter, v, target, water_body, policy)
    own_limit = policy.limits.get(parameter)
    if own_limit is not None:  # no GB 3838 class: the policy's limit stands in for the target's
        rise = np.full(n, np.nan)
        if n > 1:
            rise[1:] = np.diff(v) / (np.diff(t_ns) / 3.6e12) / own_limit
    else:
        rise = _rise(parameter, t_ns, v, target, water_body)

    raw = np.zeros(n, dtype=np.int64)
    raw_rule = np.full(n, "", dtype=object)
    first = np.arange(n)  # first reading of what triggered the raw level
    escalations: list[tuple[int, Rule]] = []
    multiple_or_none = np.nan_to_num(multiple, nan=-np.inf)
    rise_or_none = np.nan_to_num(rise, nan=-np.inf)
    for level, rule in policy.rules():
        if rule.escalate_from is not None:
            escalations.append((level, rule))
            continue
        cond = _conditions(rule, valid, worse, klass, multiple_or_none, rise_or_none)
        if not cond.any():
            continue
        fires = _run_lengths(cond) >= rule.persistence if rule.persistence > 1 else cond
        better = fires & (level > raw)
        raw[better] = level
        raw_rule[better] = rule.id
        first[better] = np.flatnonzero(better) - rule.persistence + 1 - (rule.rise_per_hour is not None)
    escalations.sort(key=lambda lr: -lr[0])

    expiry = pd.Timedelta(hours=policy.expiry_hours)
    expiry_ns = int(expiry.value)
    m = policy.hysteresis_readings
    effective = raw.copy()
    episodes: list[_Episode] = []
    ep: _Episode | None = None
    level = below = 0
    expired_at = start if start_on_expiry else -1  # the gap before ``start`` expired a warning
    times = t_ns.tolist()  # plain ints: boxing a Timestamp per reading cost a second a year of 500 stations
    for i in range(start, n):
        if ep is None and raw[i] == 0:
            continue  # quiet: no warning open and no rule fires (escalation needs a level first)
        if ep is not None and times[i] - times[i - 1] > expiry_ns:
            _close(ep, t[i - 1] + expiry, "expired")
            ep, level, below, expired_at = None, 0, 0, i
        r, rule_id, frm, reason = int(raw[i]), str(raw_rule[i]), int(first[i]), None
        for esc_level, esc_rule in escalations:
            from_level = LEVELS.index(str(esc_rule.escalate_from)) + 1
            if esc_level > r >= from_level:  # the reading itself at that level: escalation never feeds itself
                reason = escalate(station, t[i])
                if reason is not None:
                    r, rule_id, frm = esc_level, esc_rule.id, i
                    break
        effective[i] = r
        if ep is None and r == 0:
            continue
        if r > level:
            if ep is None:
                ep = _Episode(station, parameter, t[i], first=i, after_expiry=expired_at == i)
                episodes.append(ep)
            level, below = r, 0
            ep.changes.append((t[i], level, rule_id))
            if level > ep.level:
                ep.level, ep.rule, ep.escalation = level, rule_id, reason
                ep.trigger = [(t[j], float(v[j])) for j in range(max(frm, 0), i + 1)]
        elif r == level:
            below = 0
        else:
            below += 1
            if below >= m:
                level, below = int(effective[i - m + 1 : i + 1].max()), 0
                assert ep is not None
                ep.changes.append((t[i], level, "hysteresis"))
                if level == 0:
                    ep.last = i
                    _close(ep, t[i], "cleared")
                    ep = None
                    continue
        assert ep is not None
        ep.last = i
    # the machine is quiet before the first reading of the episode still open (an expiry at the end of
    # the period is not final: a later reading of this series may come before it); else after the last
    quiet, on_expiry = (n, False) if ep is None else (ep.first, ep.after_expiry)
    if ep is not None:
        if until - t[n - 1] > expiry:
            _close(ep, t[n - 1] + expiry, "expired")
        else:
            ep.last = n - 1
    for e in episodes:
        e_v = v[e.first : e.last + 1]
        e_m = multiple[e.first : e.last + 1]
        e.peak_value = _worst(parameter, e_v)
        e.peak_multiple = float(np.nanmax(e_m)) if np.isfinite(e_m).any() else np.nan
    return episodes, quiet, on_expiry


def lookback(policy: Policy) -> int:
    """How many readings before a quiet point decide the rules at and after it (persistence, and rise's previous)."""
    return max((r.persistence for _, r in policy.rules()), default=1) + 1


def _measures(
    parameter: str, v: np.ndarray, target: int | np.ndarray, water_body: str | np.ndarray, policy: Policy
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class, classified, worse than the target, exceedance multiple of each value (target, water body: one or each)."""
    own_limit = policy.limits.get(parameter)
    if own_limit is not None:  # no GB 3838 class: the policy's limit stands in for the target's
        return np.zeros(len(v), dtype=np.int64), np.isfinite(v), v > own_limit, v / own_limit - 1.0
    klass = quality.classify_values(parameter, v, water_body)
    if parameter in ("DO", "pH"):
        multiple = np.full(len(v), np.nan)
    else:
        multiple = quality.exceedance_multiple(parameter, v, target, water_body)
    return klass, klass > 0, klass > target, multiple


def may_warn(
    parameter: str, values: np.ndarray, target: int | np.ndarray, water_body: str | np.ndarray, policy: Policy
) -> np.ndarray:
    """Where a rule of ``policy`` may hold: each value meets every condition of some rule but its rise.

    A rule holds at a reading only if its conditions hold there, so where this is False
    no warning starts. A rule with a rise and nothing else makes it True everywhere.
    One call for the values of many series (``target`` and ``water_body`` per value)
    is what lets :class:`twin.analysis.watch.Watch` skip the series whose new readings are clean.
    """
    v = np.asarray(values, dtype=np.float64)
    klass, valid, worse, multiple = _measures(parameter, v, target, water_body, policy)
    multiple_or_none = np.nan_to_num(multiple, nan=-np.inf)
    out = np.zeros(len(v), dtype=bool)
    for _, rule in policy.rules():
        if rule.escalate_from is not None:
            continue  # needs a level of the reading's own first
        if not (rule.worse_than_target or rule.class_at_least is not None or rule.multiple_at_least is not None):
            return np.ones(len(v), dtype=bool)
        out |= _conditions(rule, valid, worse, klass, multiple_or_none, None)
    return out


def _conditions(
    rule: Rule,
    valid: np.ndarray,
    worse: np.ndarray,
    klass: np.ndarray,
    multiple: np.ndarray,
    rise: np.ndarray | None,
) -> np.ndarray:
    """Where every condition of ``rule`` holds (its rise too, unless ``rise`` is None); -inf for an unknown measure."""
    cond = valid.copy()
    if rule.worse_than_target:
        cond &= worse
    if rule.class_at_least is not None:
        cond &= klass >= rule.class_at_least
    if rule.multiple_at_least is not None:
        cond &= multiple >= rule.multiple_at_least
    if rise is not None and rule.rise_per_hour is not None:
        cond &= rise >= rule.rise_per_hour
    return cond


def _close(ep: _Episode, at: pd.Timestamp, reason: str) -> None:
    ep.end, ep.end_reason = at, reason
    if reason == "expired":
        ep.changes.append((at, 0, "expiry"))


def _worst(parameter: str, v: np.ndarray) -> float:
    if parameter == "DO":
        return float(np.min(v))
    if parameter == "pH":
        return float(v[np.argmax(np.abs(v - 7.5))])
    return float(np.max(v))


# ---------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------
def _escalation_test(
    escalation: pd.DataFrame | Escalation | None, policy: Policy
) -> Callable[[str, pd.Timestamp], str | None]:
    """(station, time) -> why the warning escalates ("intake in 3.5 h"), or None."""
    if escalation is None or policy.escalation is None:
        return lambda station, time: None
    window, targets = policy.escalation.window_hours, policy.escalation.targets
    table: dict[str, Mapping[str, float | None]] = {}
    if isinstance(escalation, pd.DataFrame):
        missing = {"station"} - set(escalation.columns)
        cols = [f"{k}_hours" for k in ("intake", "jurisdiction") if f"{k}_hours" in escalation.columns]
        if missing or not cols:
            raise AlertInputError(
                f"escalation table has columns {list(escalation.columns)}; expected 'station' and one or both "
                "of 'intake_hours', 'jurisdiction_hours' (travel hours downstream, NaN if none)"
            )
        for row in escalation.to_dict("records"):
            table[str(row["station"])] = {c.removesuffix("_hours"): row[c] for c in cols}
        lookup: Escalation = lambda station, time: table.get(station, {})  # noqa: E731
    elif callable(escalation):
        lookup = escalation
    else:
        raise AlertInputError(
            f"escalation must be a DataFrame or a callable (station, time) -> mapping, got {type(escalation).__name__}"
        )

    def test(station: str, time: pd.Timestamp) -> str | None:
        hours = lookup(station, time) or {}
        for kind in targets:
            h = hours.get(kind)
            if h is not None and np.isfinite(h) and h <= window:
                return f"{kind} in {float(h):g} h"
        return None

    return test


def _check_inputs(readings: pd.DataFrame, stations: pd.DataFrame) -> None:
    need = {"station", "parameter", "time", "value"}
    if missing := need - set(readings.columns):
        raise AlertInputError(
            f"readings lack columns {sorted(missing)}; expected station, parameter, time, value[, flag]"
        )
    if missing := {"id", "water_body", "target_class"} - set(stations.columns):
        raise AlertInputError(f"stations lack columns {sorted(missing)}; expected id, water_body, target_class")
    if len(readings) and not isinstance(readings["time"].dtype, pd.DatetimeTZDtype):
        raise AlertInputError(f"readings' time must be tz-aware datetimes; got dtype {readings['time'].dtype}")
    unknown = set(map(str, readings["station"].unique())) - set(stations["id"].astype(str))
    if unknown:
        raise AlertInputError(f"readings of stations not in the stations table: {', '.join(sorted(unknown)[:5])}")


# ---------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------
def evaluate(
    readings: pd.DataFrame,
    stations: pd.DataFrame,
    policy: Policy | None = None,
    escalation: pd.DataFrame | Escalation | None = None,
    until: Any = None,
) -> pd.DataFrame:
    """Warning episodes over a history of readings.

    Parameters
    ----------
    readings:
        Long table as :func:`twin.ops.readings.query` returns it: ``station``, ``parameter``,
        ``time`` (tz-aware), ``value`` in the canonical unit, optional ``flag``. Parameters
        GB 3838-2002 does not classify are ignored unless the policy gives them a limit, as are NaN values, readings
        that are not usable (:func:`twin.ops.flags.usable`) and readings whose flag the policy ignores. A repeated (station, parameter, time) keeps the last row.
    stations:
        ``id``, ``water_body`` (river, lake, reservoir) and ``target_class`` (1-5).
    policy:
        Default: :func:`load_policy` ``()``, our default policy.
    escalation:
        Optional. Travel hours from a station to the first drinking-water intake and to
        the first jurisdiction boundary downstream: a table ``station``, ``intake_hours``,
        ``jurisdiction_hours`` (NaN if none), or a callable ``(station, time) ->
        {"intake": hours, "jurisdiction": hours}`` for travel times that change with
        discharge. Without it no rule with ``escalate_from`` ever holds.
    until:
        End of the evaluated period, for expiry (default: the last reading of all).
        An episode whose series has no reading for more than ``expiry_hours`` before it
        is ended as expired; one still fed is active (``end`` NaT).

    Returns
    -------
    pandas.DataFrame
        One row per episode (:data:`EPISODE_COLUMNS`), sorted by start, station, parameter:
        ``level`` (1-4, the highest reached) and ``level_name``; ``start``; ``end`` (NaT
        while active) and ``end_reason`` ("cleared", "expired" or None); ``peak_value``
        (the worst value: lowest DO, pH farthest from neutral, else highest);
        ``peak_multiple`` (highest exceedance multiple, NaN for DO and pH); ``rule``,
        the id of the rule that raised the episode to its level, with ``trigger``, the
        readings that made it hold as ``(time, value)`` pairs, and ``escalation`` (why, for
        an escalation rule, else None); ``changes``, every level change as
        ``(time, level, rule)``, the rule being "hysteresis" for a lowering and "expiry"
        for an expiry.

    Raises
    ------
    AlertInputError
        Missing columns, naive times, readings of stations not in ``stations``.
    """
    policy = load_policy() if policy is None else policy
    _check_inputs(readings, stations)
    escalate = _escalation_test(escalation, policy)
    df = readings[evaluated(readings, policy)]
    if df.empty:
        return pd.DataFrame(columns=EPISODE_COLUMNS)
    end_of_period = pd.Timestamp(until) if until is not None else readings["time"].max()
    if end_of_period.tzinfo is None:
        raise AlertInputError(f"until {until!r} has no time zone; give one, e.g. '2026-07-10T08:00Z'")
    # one stable sort on integer codes (sorting and grouping the string columns themselves took
    # seconds for a year of 500 stations); a repeated (station, parameter, time) keeps its last row
    st_codes, st_names = pd.factorize(df["station"].astype(str), sort=True)
    pa_codes, pa_names = pd.factorize(df["parameter"].astype(str), sort=True)
    t_ns = pd.DatetimeIndex(df["time"]).tz_convert("UTC").as_unit("ns").asi8
    series = st_codes.astype(np.int64) * max(len(pa_names), 1) + pa_codes
    order = np.lexsort((t_ns, series))
    st_codes, pa_codes, t_ns, series = st_codes[order], pa_codes[order], t_ns[order], series[order]
    values_all = pd.to_numeric(df["value"]).to_numpy(dtype=np.float64)[order]
    last = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        last[:-1] = (series[1:] != series[:-1]) | (t_ns[1:] != t_ns[:-1])
    st_codes, pa_codes, t_ns, values_all, series = (
        st_codes[last],
        pa_codes[last],
        t_ns[last],
        values_all[last],
        series[last],
    )
    info: dict[str, tuple[str, int]] = {
        str(i): (str(wb), int(tc))
        for i, wb, tc in zip(stations["id"], stations["water_body"], stations["target_class"])
    }
    episodes: list[_Episode] = []
    series_starts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
    for a, b in zip(series_starts, np.r_[series_starts[1:], len(st_codes)]):
        station, parameter = str(st_names[st_codes[a]]), str(pa_names[pa_codes[a]])
        wb, target = info[station]
        times = pd.DatetimeIndex(t_ns[a:b], tz="UTC")
        found, *_ = _series(station, parameter, times, values_all[a:b], target, wb, policy, escalate, end_of_period)
        episodes += found
    return _frame(_rows(episodes))


def evaluated(readings: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Which readings a policy evaluates: of a parameter it watches, with a value, usable
    (:func:`twin.ops.flags.usable`) and not flagged to be ignored by the policy."""
    keep = readings["parameter"].isin(policy.watched()) & readings["value"].notna()
    if "flag" in readings.columns:
        flag = readings["flag"].fillna("").astype(str)
        keep &= usable(flag) & ~flag.isin(policy.ignore_flags)
    return keep.to_numpy(dtype=bool)


def _rows(episodes: list[_Episode]) -> list[dict[str, Any]]:
    return [
        {
            "station": e.station,
            "parameter": e.parameter,
            "level": e.level,
            "level_name": LEVEL_NAMES[e.level],
            "start": e.start,
            "end": e.end if e.end is not None else pd.NaT,
            "end_reason": e.end_reason,
            "peak_value": e.peak_value,
            "peak_multiple": e.peak_multiple,
            "rule": e.rule,
            "trigger": e.trigger,
            "escalation": e.escalation,
            "changes": e.changes,
        }
        for e in episodes
    ]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The episodes table of :func:`evaluate` from its rows, in its order (start, station, parameter: unique)."""
    out = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    out["end"] = pd.to_datetime(out["end"], utc=True)
    for col in ("end_reason", "escalation"):  # None, not NaN, where there is none
        out[col] = pd.Series([r[col] for r in rows], index=out.index, dtype=object)
    return out.sort_values(["start", "station", "parameter"], kind="stable").reset_index(drop=True)


def levels_at(episodes: pd.DataFrame, at: Any) -> pd.DataFrame:
    """The warning level of each station at a time, from :func:`evaluate`'s episodes.

    A station's level is the highest over its parameters' episodes active at ``at``
    (``start <= at < end``), each at its level after the last change at or before ``at``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``station``, columns ``level`` (1-4), ``level_name``, ``parameter`` and
        ``rule`` (of the change that set the level), highest level first. Stations without
        a warning at ``at`` are absent.
    """
    when = pd.Timestamp(at)
    if when.tzinfo is None:
        raise AlertInputError(f"time {at!r} has no time zone; give one, e.g. '2026-07-10T08:00Z'")
    best: dict[str, tuple[int, str, str]] = {}
    for station, parameter, start, end, changes in zip(
        episodes["station"], episodes["parameter"], episodes["start"], episodes["end"], episodes["changes"]
    ):
        if start > when or (not pd.isna(end) and when >= end):
            continue
        now: list[tuple[int, str]] = [(lvl, rule) for time, lvl, rule in changes if time <= when]
        if not now or now[-1][0] == 0:
            continue
        lvl, rule = now[-1]
        if lvl > best.get(station, (0, "", ""))[0]:
            best[station] = (lvl, parameter, rule)
    out = pd.DataFrame(
        [(s, lvl, LEVEL_NAMES[lvl], p, r) for s, (lvl, p, r) in best.items()],
        columns=["station", "level", "level_name", "parameter", "rule"],
    )
    return out.sort_values(["level", "station"], ascending=[False, True]).set_index("station")
