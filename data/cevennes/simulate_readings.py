"""Write a simulated year of 4-hourly readings for the demo's stations (tidy CSV, flag S).

Usage: python data/cevennes/simulate_readings.py TWIN_DIR OUT.csv [YEAR]
"""

from __future__ import annotations

import sys

import twin
from twin.analysis.simulate import simulate_year


def main(path: str, out: str, year: int = 2025) -> None:
    basin = twin.open(path)
    ids = basin.sites.loc[basin.sites["kind"] == "station", "id"].tolist()
    simulate_year(ids, year).to_csv(out, index=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
