"""The downstream impact of a release: who is reached, when, and how badly.

For a release (place, time, mass, substance) the report lists, along the path
downstream, every jurisdiction unit entered (top ``levels`` levels), every
cross-boundary section, and every station and intake, with:

* ``earliest`` — the peak at Jobson's most probable maximum velocity (the
  earliest arrival to plan for);
* ``likely`` — the peak at Jobson's peak velocity (the most likely arrival);
* ``passed`` — when the plume has passed (its trailing edge, see :mod:`twin.analysis.plume`);
* ``peak_mg_l`` and ``class`` — the expected peak concentration there and its
  GB 3838-2002 class for the substance's parameter (river rules; the station's
  own water body where it has one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.analysis import plume, quality

if TYPE_CHECKING:
    from twin.model.model import Model


def downstream_report(
    model: Model,
    x: float,
    y: float,
    at: Any,
    mass_kg: float,
    parameter: str = "NH3-N",
    *,
    crs: str = "EPSG:4326",
    duration_s: float = 0.0,
    decay_per_hour: float = 0.0,
    flow_ratio: float = 1.0,
    levels: int = 2,
) -> dict[str, Any]:
    """The downstream report of a release; see the module docstring.

    Returns a dict: ``release`` (what was assumed), ``entries`` (a list of rows:
    kind ``jurisdiction``/``section``/``station``/``intake``, id, name, level,
    distance_km, earliest, likely, passed, peak_mg_l, class, label), and
    ``plume`` (the :func:`twin.analysis.plume.simulate` Dataset).
    """
    t0 = pd.Timestamp(at)
    if t0.tzinfo is None:
        raise plume.PlumeError(f"release time {at!r} has no zone; give it with an offset or Z")
    t0 = t0.tz_convert("UTC")
    loc = model.locate(x, y, crs)
    path, sections, sites = model.downstream(x, y, crs, flow_ratio=flow_ratio)
    top = model.jurisdictions.levels[:levels]
    sections = sections[sections["level"].isin(top)]
    points = pd.concat(
        [
            pd.DataFrame(
                {
                    "id": "section-" + sections["section_id"].astype(str),
                    "reach_id": sections["reach_id"],
                    "measure_m": sections["measure_m"],
                }
            ),
            pd.DataFrame({"id": sites["id"], "reach_id": sites["reach_id"], "measure_m": sites["measure_m"]}),
        ],
        ignore_index=True,
    )
    ds = plume.simulate(
        model.network.reaches,
        loc.reach_id,
        loc.measure_m,
        t0,
        mass_kg=mass_kg,
        duration_s=duration_s,
        decay_per_hour=decay_per_hour,
        substance=parameter,
        flow_ratio=flow_ratio,
        sites=points,
    )
    at_site = {str(s): k for k, s in enumerate(ds["site"].to_numpy())}

    def plume_at(pid: str) -> dict[str, Any]:
        k = at_site.get(pid)
        if k is None:
            return {"likely": None, "passed": None, "peak_mg_l": None}
        return {
            "likely": pd.Timestamp(ds["site_peak_time"].values[k], tz="UTC"),
            "passed": pd.Timestamp(ds["site_trailing_time"].values[k], tz="UTC"),
            "peak_mg_l": float(ds["site_peak_concentration"].values[k]),
        }

    def klass(value: float | None, water_body: str = "river") -> tuple[int | None, str]:
        if value is None or parameter not in quality.parameters():
            return None, ""
        c = int(quality.classify_values(parameter, np.array([value]), water_body)[0])
        return c, str(quality.label(c))

    entries: list[dict[str, Any]] = []
    start_units = model.jurisdictions.at(loc.x, loc.y)
    for lv in top:
        unit = start_units.get(lv)
        if unit:
            entries.append(
                {
                    "kind": "jurisdiction",
                    "id": unit["code"],
                    "name": unit["name"],
                    "level": lv,
                    "distance_km": 0.0,
                    "earliest": t0,
                    "likely": t0,
                    "passed": None,
                    "peak_mg_l": None,
                    "class": None,
                    "label": "",
                    "note": "the release is here",
                }
            )
    for s in sections.to_dict("records"):
        pid = f"section-{s['section_id']}"
        p = plume_at(pid)
        c, lab = klass(p["peak_mg_l"])
        earliest = t0 + pd.Timedelta(hours=float(s["earliest_h"]))
        common = {
            "level": s["level"],
            "distance_km": round(float(s["distance_km"]), 3),
            "earliest": earliest,
            **p,
            "class": c,
            "label": lab,
        }
        entries.append({"kind": "section", "id": pid, "name": f"{s['from_name']} → {s['to_name']}", **common})
        entries.append(
            {
                "kind": "jurisdiction",
                "id": s["to_code"],
                "name": s["to_name"],
                **common,
                "note": f"entered at section {s['section_id']}",
            }
        )
    for s in sites.to_dict("records"):
        # a site at the release point sees the release itself, not a plume: no concentration estimate
        p = plume_at(str(s["id"])) if float(s["distance_km"]) > 0 else plume_at("")
        c, lab = klass(p["peak_mg_l"], str(s.get("water_body") or "river"))
        entries.append(
            {
                "kind": str(s["kind"]),
                "id": s["id"],
                "name": s["name"],
                "level": None,
                "distance_km": round(float(s["distance_km"]), 3),
                "earliest": t0 + pd.Timedelta(hours=float(s["earliest_h"])),
                **p,
                "class": c,
                "label": lab,
            }
        )
    entries.sort(key=lambda e: (e["distance_km"], e["kind"] != "section"))
    release = {
        "lon_or_x": x,
        "lat_or_y": y,
        "crs": crs,
        "reach_id": loc.reach_id,
        "at": t0.isoformat(),
        "mass_kg": mass_kg,
        "parameter": parameter,
        "duration_s": duration_s,
        "decay_per_hour": decay_per_hour,
        "flow_ratio": flow_ratio,
    }
    return {"release": release, "entries": entries, "plume": ds}
