"""The feature collections of the twin, as GeoJSON (CRS84) ready to page through.

=================  ====================================================  ==============  ==========
collection         one feature per                                        id              time
=================  ====================================================  ==============  ==========
``reaches``        reach of the river network (line)                      reach_id        —
``sections``       cross-boundary section (point)                         section_id      —
``jurisdictions``  administrative unit at every level (polygon)           level-code      —
``stations``       monitoring station (point, snapped to its river)       station id      —
``sites``          site of any kind: stations, intakes, mines... (point)  site id         —
``incidents``      incident in the operations store                       incident id     observed
``warnings``       warning episode decided from the readings (station)    see below       start–end
=================  ====================================================  ==============  ==========

A warning's id is ``<station>.<parameter>.<start as YYYYMMDDTHHMMZ>``; its
episode is decided by the default warning policy over every reading in the
store (:func:`twin.analysis.history.watch`), escalated by the network, and kept up to
date as readings arrive (:func:`episodes`).

The model's collections are built once per twin; incidents and warnings once
per state of the store (:meth:`web.state.TwinState.fingerprint`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin_web.encoding import clean, dumps
from twin_web.params import Interval
from twin_web.state import TwinState

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
DECIMALS = 7  # about 1 cm


@dataclass(frozen=True)
class FeatureTable:
    """Features of one collection in their order, with what filtering needs.

    ``texts`` holds each feature as JSON text (so a page is a join, not a
    re-encoding); ``start``/``end`` are each feature's time (an instant has
    start == end; an open end is NaT), None for a collection without time.
    """

    texts: list[str]
    ids: list[str]
    index: dict[str, int]
    tree: shapely.STRtree
    bounds: tuple[float, float, float, float] | None
    start: pd.DatetimeIndex | None = None
    end: pd.DatetimeIndex | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, box: shapely.Geometry | None, when: Interval | None) -> np.ndarray:
        """Positions of the features in ``box`` (CRS84) and time ``when``, in collection order."""
        keep = np.ones(len(self.texts), dtype=bool)
        if box is not None:
            hit = np.zeros(len(self.texts), dtype=bool)
            hit[self.tree.query(box, predicate="intersects")] = True
            keep &= hit
        if when is not None and self.start is not None and self.end is not None:
            start = self.start
            end = self.end
            if when.end is not None:
                keep &= np.asarray(start <= when.end)
            if when.start is not None:
                keep &= np.asarray(end.isna() | (end >= when.start))
        return np.flatnonzero(keep)

    def temporal_extent(self, chosen: np.ndarray | None = None) -> list[str | None] | None:
        """[first start, last end] of the features at positions ``chosen`` (all: None); None without any."""
        if self.start is None or self.end is None:
            return None
        start, end = (self.start, self.end) if chosen is None else (self.start[chosen], self.end[chosen])
        if not len(start):
            return None
        last = None if end.isna().any() else end.max().isoformat()
        return [start.min().isoformat(), last]

    def spatial_extent(self, chosen: np.ndarray | None = None) -> tuple[float, float, float, float] | None:
        """The bounds (CRS84) of the features at positions ``chosen`` (all: None); None without any."""
        if chosen is None:
            return self.bounds
        if not len(chosen):
            return None
        b = shapely.total_bounds(self.tree.geometries.take(chosen))
        return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def table(
    gdf: gpd.GeoDataFrame,
    ids: list[str] | pd.Series,
    start: Any = None,
    end: Any = None,
) -> FeatureTable:
    """A :class:`FeatureTable` of a GeoDataFrame (any CRS; NaN properties become null)."""
    g = gdf.to_crs("OGC:CRS84") if gdf.crs is not None and len(gdf) else gdf
    geoms = shapely.transform(np.asarray(g.geometry.values, dtype=object), lambda c: np.round(c, DECIMALS))
    props = pd.DataFrame(g.drop(columns=g.geometry.name)).to_dict("records")
    ids = [str(i) for i in ids]
    texts = [
        dumps({"type": "Feature", "id": fid, "geometry": shapely.geometry.mapping(geom), "properties": clean(p)})
        for fid, geom, p in zip(ids, geoms, props)
    ]
    bounds = None
    if len(geoms):
        b = shapely.total_bounds(geoms)
        bounds = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
    t0 = pd.DatetimeIndex(pd.to_datetime(start, utc=True)) if start is not None else None
    t1 = pd.DatetimeIndex(pd.to_datetime(end, utc=True)) if end is not None else None
    return FeatureTable(texts, ids, {f: k for k, f in enumerate(ids)}, shapely.STRtree(geoms), bounds, t0, t1)


# -- the collections -----------------------------------------------------------------------------


def _reaches(state: TwinState) -> FeatureTable:
    r = state.basin.network.reaches.reset_index(drop=True)
    return table(r, r["reach_id"])


def _sections(state: TwinState) -> FeatureTable:
    s = state.basin.jurisdictions.sections
    return table(s, s["section_id"])


def _jurisdictions(state: TwinState) -> FeatureTable:
    u = state.basin.jurisdictions.units
    return table(u, u["level"].astype(str) + "-" + u["code"].astype(str))


def _sites(state: TwinState, kind: str | None = None) -> FeatureTable:
    s = state.basin.sites
    if kind is not None:
        s = s[s["kind"] == kind]
    return table(s.reset_index(drop=True), s["id"])


def _incidents(state: TwinState) -> FeatureTable:

    inc = state.basin.incidents.list()
    if inc.empty:
        return table(gpd.GeoDataFrame(geometry=[], crs=state.basin.crs), [], start=[], end=[])
    return table(inc, inc["id"], start=inc["observed"], end=inc["observed"])


def episodes(state: TwinState) -> pd.DataFrame:
    """Warning episodes over every reading in the store now (no response plans).

    Those of :func:`twin.analysis.response.watch`, kept for the life of the twin: a request
    after a commit reads what it stored and evaluates again only the series it touched,
    not every reading of the store.
    """
    from twin.analysis.response import watch

    return state.memo("warnings:watch", state.manifest_hash, lambda: watch(state.basin.model, state.store)).episodes()


def _warnings(state: TwinState) -> FeatureTable:
    from twin.analysis.history import episode_features

    ep = episodes(state)
    if ep.empty:
        return table(gpd.GeoDataFrame(geometry=[], crs=state.basin.crs), [], start=[], end=[])
    gdf = episode_features(ep, state.basin.sites)
    return table(gdf.drop(columns="id"), gdf["id"], start=ep["start"], end=ep["end"])


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    build: Callable[[TwinState], FeatureTable]
    dynamic: bool = False  # from the operations store
    time: str | None = None  # what a feature's time is


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "reaches",
            "River reaches",
            "Stream segments between confluences (NHDPlus-like table: next_down, length, slope, "
            "upstream area, Strahler order, mean annual discharge, Jobson velocity, units crossed)",
            _reaches,
        ),
        Collection(
            "sections",
            "Cross-boundary sections",
            "Where a river leaves one administrative unit and enters another, at every level",
            _sections,
        ),
        Collection(
            "jurisdictions",
            "Jurisdictions",
            "Administrative units at every level, with code, name, level and parent code; id is level-code",
            _jurisdictions,
        ),
        Collection(
            "stations",
            "Monitoring stations",
            "Water-quality stations snapped to their river, with water body and target class",
            lambda state: _sites(state, "station"),
        ),
        Collection(
            "sites",
            "Sites",
            "Every fixed site: stations, drinking-water intakes, outfalls, mines..., snapped to their river",
            _sites,
        ),
        Collection(
            "incidents",
            "Incidents",
            "Spills, illegal discharges, sand mining, waste dumping and fish kills recorded on the twin",
            _incidents,
            dynamic=True,
            time="observed",
        ),
        Collection(
            "warnings",
            "Warnings",
            "Four-level warning episodes (blue, yellow, orange, red) decided from the readings by the "
            "default policy; id is station.parameter.start",
            _warnings,
            dynamic=True,
            time="start/end",
        ),
    )
}


def features(state: TwinState, collection: Collection) -> FeatureTable:
    """The collection's features, built once per twin (or per store state for a dynamic one)."""
    key: Any = state.manifest_hash
    if collection.dynamic:
        key = (key, state.fingerprint())
    return state.memo(f"collection:{collection.id}", key, lambda: collection.build(state))


def scope_keys(state: TwinState, collection: Collection) -> list[Any]:
    """What the scope rule (:class:`twin.access.Scope`) needs of each feature of a scoped collection, in order.

    A warning: its station id; an incident: ``(units, case id)``, its units as ``{level: [codes]}``.
    Which of them a user may see is the rule's answer, never decided here.
    """
    import json

    tab = features(state, collection)

    def compute() -> list[Any]:
        props = [json.loads(text)["properties"] for text in tab.texts]
        if collection.id == "warnings":
            return [p.get("station") for p in props]
        return [(p.get("jurisdictions"), p.get("case_id")) for p in props]

    key: Any = (state.manifest_hash, state.fingerprint() if collection.dynamic else None)
    return state.memo(f"scope-keys:{collection.id}", key, compute)
