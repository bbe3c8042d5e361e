"""Simulated readings for the demo: a plausible year at every station, labelled as simulated.

The demo basin has no real sensors, so its readings are simulated (and flagged
``S``). Values follow what clean Cévennes rivers look like (GB 3838 class I–II):
water temperature with a seasonal and a daily cycle, dissolved oxygen following
saturation (colder water holds more), pH around 7.8, low nutrients with more
after autumn storms, conductivity and turbidity rising with flow events.
These are our assumptions for a training basin, not measurements.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIMULATED_FLAG = "S"


def simulate_year(station_ids: list[str], year: int = 2025, seed: int = 0, freq: str = "4h") -> pd.DataFrame:
    """Tidy readings (station, time, parameter, value, unit, flag) for every station over a year."""
    rng = np.random.default_rng(seed)
    times = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:59", freq=freq, tz="UTC")
    day = times.day_of_year.to_numpy() / 365.25
    hour = times.hour.to_numpy() / 24.0
    frames = []
    for k, sid in enumerate(station_ids):
        warm = 2.0 * k / max(1, len(station_ids) - 1)  # downstream stations a little warmer
        temp = 12 + warm + 8 * np.sin(2 * np.pi * (day - 0.3)) + 1.5 * np.sin(2 * np.pi * (hour - 0.4))
        temp = temp + rng.normal(0, 0.3, len(times))
        storms = np.convolve(rng.random(len(times)) < 0.004, np.exp(-np.arange(60) / 12), mode="full")[: len(times)]
        storms = storms * (1 + 2 * ((day > 0.7) & (day < 0.9)))  # autumn (cévenol) episodes
        do_sat = 14.6 - 0.39 * temp + 0.007 * temp**2
        values = {
            "water_temperature": (temp, "°C"),
            "DO": (do_sat * (0.95 + rng.normal(0, 0.02, len(times))), "mg/L"),
            "pH": (7.8 + 0.15 * np.sin(2 * np.pi * (hour - 0.4)) + rng.normal(0, 0.05, len(times)), "1"),
            "NH3-N": (np.abs(0.05 + 0.1 * storms + rng.normal(0, 0.01, len(times))), "mg/L"),
            "TP": (np.abs(0.02 + 0.05 * storms + rng.normal(0, 0.004, len(times))), "mg/L"),
            "CODMn": (np.abs(1.5 + 1.5 * storms + rng.normal(0, 0.2, len(times))), "mg/L"),
            "conductivity": (
                np.abs(180 + 40 * warm - 60 * np.minimum(storms, 1) + rng.normal(0, 5, len(times))),
                "µS/cm",
            ),
            "turbidity": (np.abs(2 + 60 * storms + rng.normal(0, 0.5, len(times))), "NTU"),
        }
        for param, (v, unit) in values.items():
            frames.append(
                pd.DataFrame(
                    {
                        "station": sid,
                        "time": times,
                        "parameter": param,
                        "value": np.round(v, 4),
                        "unit": unit,
                        "flag": SIMULATED_FLAG,
                    }
                )
            )
    df = pd.concat(frames, ignore_index=True)
    df["time"] = df["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return df
