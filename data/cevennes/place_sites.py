"""How the demo's station and intake coordinates were chosen (run once; kept for provenance).

For each village, take the river cells of the derived network inside the village's
commune (IGN boundary) whose upstream area is at least 80 % of the largest there
(the main river, not a tributary), and keep the one nearest the commune's
representative point. Coordinates are printed as lon/lat (WGS 84), rounded to
5 decimals, to paste into ``stations.csv``.

Usage: python data/cevennes/place_sites.py TWIN_DIR
"""

from __future__ import annotations

import sys

import numpy as np
from pyproj import Transformer

import twin

VILLAGES = ["Collet-de-Dèze", "Sainte-Cécile-d'Andorge", "Grand-Combe", "Alès", "Saint-Étienne-Vallée-Française",
            "Saint-Jean-du-Gard", "Mialet", "Anduze"]


def main(path: str) -> None:
    basin = twin.open(path)
    g = basin.terrain.grid
    units = basin.jurisdictions.units
    communes = units[units["level"] == "commune"].set_index("name")
    rows, cols = np.nonzero(basin.drainage.reach > 0)
    xs, ys = g.xy(rows, cols)
    area = basin.drainage.upstream_cells[rows, cols] * g.cell_area / 1e6
    to_ll = Transformer.from_crs(g.crs, "EPSG:4326", always_xy=True)
    import shapely

    pts = shapely.points(xs, ys)
    for name in VILLAGES:
        poly = communes.loc[name, "geometry"]
        inside = shapely.contains(poly, pts)
        main = inside & (area >= 0.8 * area[inside].max())
        ref = poly.representative_point()
        k = np.flatnonzero(main)[np.argmin(np.hypot(xs[main] - ref.x, ys[main] - ref.y))]
        lon, lat = to_ll.transform(xs[k], ys[k])
        print(f"{name}: {lon:.5f},{lat:.5f} ({area[k]:.1f} km2)")


if __name__ == "__main__":
    main(sys.argv[1])
