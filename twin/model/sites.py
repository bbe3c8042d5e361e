"""Sites: monitoring stations, drinking-water intakes, outfalls... snapped to reaches.

Each site keeps the coordinates it was declared with (``lon``/``lat`` in WGS 84)
and gains its place on the network: the river cell it snaps to, the reach,
the measure along the reach (m from the reach's upstream end), the upstream
area there, and the unit holding it at every jurisdiction level.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from twin.errors import OutsideBasinError
from twin.model.drainage import Drainage
from twin.model.network import Network

SITE_COLUMNS = [
    "id",
    "name",
    "kind",
    "water_body",
    "target_class",
    "lon",
    "lat",
    "reach_id",
    "measure_m",
    "snap_distance_m",
    "snap_method",
    "upstream_area_km2",
]


def place_sites(
    sites: gpd.GeoDataFrame,
    drainage: Drainage,
    network: Network,
    unit_rasters: dict[str, np.ndarray],
    unit_codes: dict[str, np.ndarray],
    snap_max_m: float,
) -> gpd.GeoDataFrame:
    """Snap sites (WGS 84 points) to the network.

    Raises
    ------
    OutsideBasinError
        A site lies outside the grid or on nodata (the message names the site).
    SnapError
        A site is farther than ``snap_max_m`` from every river.
    """
    grid = drainage.grid
    if sites.empty:
        return gpd.GeoDataFrame({c: [] for c in SITE_COLUMNS}, geometry=[], crs=grid.crs)
    to_twin = Transformer.from_crs(sites.crs, grid.crs, always_xy=True)
    lon = sites.geometry.x.to_numpy()
    lat = sites.geometry.y.to_numpy()
    x, y = to_twin.transform(lon, lat)
    rows = []
    geoms = []
    ncol = grid.shape[1]
    area = drainage.upstream_cells.ravel()
    reach = drainage.reach.ravel()
    for k, site in enumerate(sites.itertuples(index=False)):
        what = f"site '{site.id}' ({site.name}) at lon {lon[k]:.5f}, lat {lat[k]:.5f}"
        try:
            s = drainage.snap(float(x[k]), float(y[k]), snap_max_m, what=what)
        except OutsideBasinError as err:
            raise OutsideBasinError(f"{err}; remove the site or fix its coordinates") from None
        loc = network.locate_cell(s.x, s.y, int(reach[s.cell]), s.distance_m)
        row = {c: getattr(site, c) for c in sites.columns if c != "geometry"}
        row.update(
            lon=lon[k],
            lat=lat[k],
            reach_id=loc.reach_id,
            measure_m=loc.measure_m,
            snap_distance_m=s.distance_m,
            snap_method=s.method,
            upstream_area_km2=float(area[s.cell]) * grid.cell_area / 1e6,
        )
        r, c = divmod(s.cell, ncol)
        for level, ras in unit_rasters.items():
            u = int(ras[r, c])
            row[level] = unit_codes[level][u] if u >= 0 else None
        rows.append(row)
        geoms.append(shapely.Point(s.x, s.y))
    df = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=grid.crs)
    return df
