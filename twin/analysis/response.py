"""Warnings on a twin: escalation from the river network, and a response plan per jurisdiction downstream.

:mod:`twin.analysis.alerts` decides levels from readings alone; this module adds what the
network knows:

* **escalation input**: for every station, the earliest travel time (Jobson's
  most probable maximum velocity, at mean annual flow) to the first
  drinking-water intake and to the first cross-boundary section of the top
  jurisdiction level downstream (crossing a commune line is not escalation);
* **response plans**: for a station at a level, every unit of the plan levels
  (by default the top two, e.g. département and arrondissement) that the river
  runs through downstream, with the earliest and most likely arrival of a
  release at the station, the cross-boundary sections and stations/intakes to
  watch in it, and the policy's action text for the level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from twin.analysis import alerts
from twin.analysis.history import stations_table
from twin.analysis.source import readings_frame
from twin.errors import SnapError

if TYPE_CHECKING:
    from twin.analysis.watch import StoreWatch
    from twin.model.model import Model


class _Row:
    """A table row with attribute access, its values untyped (pandas' own rows are too strictly typed)."""

    def __init__(self, values: dict[Any, Any]):
        self.__dict__.update({str(k): v for k, v in values.items()})

    def _asdict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __getattr__(self, name: str) -> Any:  # absent optional columns read as None
        return None


def _records(df: pd.DataFrame) -> list[Any]:
    return [_Row(r) for r in df.to_dict("records")]


def _path_of(model: Model, station: pd.Series, flow_ratio: float = 1.0):
    return model.downstream(float(station["lon"]), float(station["lat"]), flow_ratio=flow_ratio)


def escalation_table(model: Model, flow_ratio: float = 1.0) -> pd.DataFrame:
    """Earliest hours from each station to the first intake and first top-level boundary downstream."""
    top = model.jurisdictions.levels[0] if model.jurisdictions.levels else None
    rows = []
    for st in _records(model.sites):
        if st.kind != "station":
            continue
        try:
            _, sections, sites = _path_of(model, pd.Series(st._asdict()), flow_ratio)
        except SnapError:
            continue
        intakes = sites[(sites["kind"] == "intake") & (sites["id"] != st.id)]
        crossings = sections[(sections["level"] == top) & (sections["distance_km"] > 0)] if top else sections.iloc[0:0]
        rows.append(
            {
                "station": st.id,
                "intake_hours": float(intakes["earliest_h"].min()) if len(intakes) else np.nan,
                "jurisdiction_hours": float(crossings["earliest_h"].min()) if len(crossings) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=["station", "intake_hours", "jurisdiction_hours"])


def response_plan(
    model: Model,
    station_id: str,
    level: int,
    policy: alerts.Policy | None = None,
    plan_levels: int = 2,
    flow_ratio: float = 1.0,
    since: Any = None,
) -> list[dict]:
    """What each jurisdiction downstream of a station must do at a warning level, and when.

    Returns one dict per unit: level name of the unit, code, name, ``earliest_h`` and
    ``likely_h`` (hours after ``since`` — the warning's start — when the plume may
    first and will most likely enter it; 0 for the station's own unit), the
    corresponding times when ``since`` is given, the sections and sites to watch,
    and the action text of the warning level.
    """
    policy = policy or alerts.load_policy()
    sites = model.sites.set_index("id")
    if station_id not in sites.index:
        raise alerts.AlertInputError(f"station {station_id!r} is not a site of this twin")
    path, sections, on_path = _path_of(model, sites.loc[station_id].rename(station_id), flow_ratio)
    name = alerts.LEVEL_NAMES[level] if 1 <= level <= 4 else "none"
    actions: dict[Any, str] = dict(policy.actions)
    action = actions.get(name, "") if level >= 1 else ""
    start = pd.Timestamp(since) if since is not None else None
    plans = []
    for lv in model.jurisdictions.levels[:plan_levels]:
        own = sites.loc[station_id].get(lv)
        entered = sections[(sections["level"] == lv)]
        units: list[tuple[str | None, float, float]] = [(own, 0.0, 0.0)]
        for s in _records(entered):
            units.append((s.to_code, float(s.earliest_h), float(s.peak_h)))
        seen = set()
        for code, early, likely in units:
            if code is None or (isinstance(code, float) and np.isnan(code)) or code in seen:
                continue
            seen.add(code)
            watch = entered[(entered["to_code"] == code) | (entered["from_code"] == code)]
            here = on_path[on_path.get(lv) == code] if lv in on_path else on_path.iloc[0:0]
            plan = {
                "level": lv,
                "code": code,
                "name": model.jurisdictions.name_of(code),
                "warning_level": name,
                "earliest_h": round(early, 2),
                "likely_h": round(likely, 2),
                "sections": [
                    {
                        "section_id": int(w.section_id),
                        "from": w.from_name,
                        "to": w.to_name,
                        "distance_km": round(float(w.distance_km), 2),
                        "earliest_h": round(float(w.earliest_h), 2),
                    }
                    for w in _records(watch)
                ],
                "sites": [
                    {
                        "id": x.id,
                        "kind": x.kind,
                        "name": x.name,
                        "earliest_h": round(float(x.earliest_h), 2),
                        "likely_h": round(float(x.peak_h), 2),
                    }
                    for x in _records(here)
                    if x.id != station_id
                ],
                "action": action,
            }
            if start is not None:
                plan["earliest"] = (start + pd.Timedelta(hours=early)).isoformat()
                plan["likely"] = (start + pd.Timedelta(hours=likely)).isoformat()
            plans.append(plan)
    return plans


def warnings(
    model: Model,
    readings: sa.Engine | pd.DataFrame,
    at: Any = None,
    start: Any = None,
    end: Any = None,
    policy: alerts.Policy | None = None,
    plans: bool = True,
) -> pd.DataFrame:
    """Warning episodes over the twin's readings, escalated by the network, with response plans.

    With ``at``: the episodes active at that time (readings up to it). With
    ``start``/``end``: every episode in that window; from a store, the window is screened in
    the database first (:func:`twin.analysis.screening.warnings_over`: the same episodes,
    reading only the stretches of series where a rule may hold).
    """
    policy = policy or alerts.load_policy()
    if at is not None:
        end = at
    stations = stations_table(model.sites)
    if isinstance(readings, sa.Engine) and start is not None and end is not None:
        # a window of a store: screened in the database, the same episodes (twin.analysis.screening)
        from twin.analysis import screening

        episodes, _ = screening.warnings_over(readings, stations, start, end, policy, escalation_table(model))
    else:
        readings = readings_frame(readings, start=start, end=end)
        readings = readings[readings["station"].isin(set(stations["id"]))]
        episodes = alerts.evaluate(readings, stations, policy, escalation_table(model), until=end)
    if at is not None and len(episodes):
        t = pd.Timestamp(at)
        episodes = episodes[(episodes["start"] <= t) & (episodes["end"].isna() | (episodes["end"] > t))]
    if plans and len(episodes):
        plan_list: list[Any] = [
            response_plan(model, r.station, int(r.level), policy, since=r.start) for r in _records(episodes)
        ]
        episodes = episodes.assign(plan=pd.Series(plan_list, index=episodes.index, dtype=object))
    return episodes.reset_index(drop=True)


def watch(model: Model, store: sa.Engine, policy: alerts.Policy | None = None) -> StoreWatch:
    """The warning episodes of :func:`warnings` (``plans=False``, the whole store), kept up to date.

    :func:`twin.analysis.history.watch` with the model's sites and escalation table: each call
    of the result's ``episodes()`` reads only the readings stored since the last and evaluates
    again only what they change (:mod:`twin.analysis.watch`), for a server that shows warnings
    while stations post readings.
    """
    from twin.analysis import history

    return history.watch(store, model.sites, escalation_table(model), policy)


def _epoch(t: Any) -> int | None:
    if t is None or pd.isna(t):
        return None
    return int(pd.Timestamp(t).tz_convert("UTC").timestamp())


def record(store: sa.Engine, episodes: pd.DataFrame) -> list[int]:
    """Store warning episodes as issued (one row per station, parameter and start; a later
    evaluation updates the level, end and detail of an episode already issued). Returns their ids."""
    import json
    import time

    import sqlalchemy as sa

    from twin.ops.store import warnings_issued as table

    ids = []
    now = int(time.time())
    with store.begin() as conn:
        for ep in _records(episodes):
            detail = json.dumps(
                {
                    "trigger": [(pd.Timestamp(t).isoformat(), float(v)) for t, v in ep.trigger],
                    "changes": [(pd.Timestamp(t).isoformat(), int(lv), r) for t, lv, r in ep.changes],
                    "escalation": ep.escalation,
                    "end_reason": ep.end_reason,
                    "peak_value": float(ep.peak_value),
                    "plan": getattr(ep, "plan", None),
                },
                ensure_ascii=False,
                default=str,
            )
            key = (
                (table.c.station_id == ep.station)
                & (table.c.parameter == ep.parameter)
                & (table.c.start == _epoch(ep.start))
            )
            have = conn.execute(sa.select(table.c.id).where(key)).scalar()
            values = {"level": int(ep.level), "end": _epoch(ep.end), "rule": ep.rule, "detail": detail}
            if have is None:
                res = conn.execute(
                    table.insert().values(
                        station_id=ep.station, parameter=ep.parameter, start=_epoch(ep.start), issued=now, **values
                    )
                )
                assert res.inserted_primary_key is not None
                ids.append(int(res.inserted_primary_key[0]))
            else:
                conn.execute(table.update().where(table.c.id == have).values(**values))
                ids.append(int(have))
    return ids


def acknowledge(store: sa.Engine, warning_id: int, by: str) -> dict:
    """Mark an issued warning as acknowledged by someone (the first acknowledgement is kept)."""
    import time

    import sqlalchemy as sa

    from twin.ops.store import warnings_issued as table

    with store.begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == warning_id)).mappings().first()
        if row is None:
            raise alerts.AlertInputError(f"no warning {warning_id}; list them with `twin alerts DIR --issued`")
        if row["acknowledged"] is None:
            conn.execute(
                table.update().where(table.c.id == warning_id).values(acknowledged_by=by, acknowledged=int(time.time()))
            )
        row = conn.execute(sa.select(table).where(table.c.id == warning_id)).mappings().first()
    assert row is not None  # it was there a moment ago, in this transaction
    return issued_row(dict(row))


def issued_row(row: dict) -> dict:
    import json

    out = {k: row[k] for k in ("id", "station_id", "parameter", "level", "rule", "acknowledged_by")}
    out["level_name"] = alerts.LEVEL_NAMES[int(row["level"])]
    for k in ("start", "end", "issued", "acknowledged"):
        out[k] = pd.Timestamp(row[k], unit="s", tz="UTC").isoformat() if row[k] is not None else None
    out["detail"] = json.loads(row["detail"])
    return out


def issued(store: sa.Engine) -> list[dict]:
    """Every warning issued so far, newest first."""
    import sqlalchemy as sa

    from twin.ops.store import warnings_issued as table

    with store.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.start.desc())).mappings().all()
    return [issued_row(dict(r)) for r in rows]
