"""The water-quality parameters the twin knows: one vocabulary for every ingest format.

Each parameter has a canonical id (used in the store, in xarray variables and in
the GB 3838 table), an English long name, a Chinese name, and the canonical unit
values are stored in. Ingest formats map their own names onto these ids
(:data:`CNEMC_HEADERS` for the national automatic-station CSV); units are
converted with :func:`convert`, and a unit that cannot be converted is refused,
never guessed. :func:`physical_limits` gives the range of values a reading of each
parameter can physically take (``twin/data/physical_limits.csv``, each bound with
its source).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Parameter:
    id: str
    long_name: str
    name_zh: str
    unit: str


PARAMETERS: dict[str, Parameter] = {
    p.id: p
    for p in [
        Parameter("water_temperature", "water temperature", "水温", "°C"),
        Parameter("pH", "pH", "pH", "1"),
        Parameter("DO", "dissolved oxygen", "溶解氧", "mg/L"),
        Parameter("conductivity", "electrical conductivity", "电导率", "µS/cm"),
        Parameter("turbidity", "turbidity", "浊度", "NTU"),
        Parameter("CODMn", "permanganate index", "高锰酸盐指数", "mg/L"),
        Parameter("COD", "chemical oxygen demand", "化学需氧量", "mg/L"),
        Parameter("BOD5", "five-day biochemical oxygen demand", "五日生化需氧量", "mg/L"),
        Parameter("NH3-N", "ammonia nitrogen", "氨氮", "mg/L"),
        Parameter("TP", "total phosphorus", "总磷", "mg/L"),
        Parameter("TN", "total nitrogen", "总氮", "mg/L"),
        Parameter("chlorophyll_a", "chlorophyll a", "叶绿素a", "mg/L"),
        Parameter("algae_density", "algal density", "藻密度", "cells/L"),
        Parameter("As", "arsenic", "砷", "mg/L"),
        Parameter("Cd", "cadmium", "镉", "mg/L"),
        Parameter("Pb", "lead", "铅", "mg/L"),
        Parameter("Cr6", "hexavalent chromium", "六价铬", "mg/L"),
        Parameter("Hg", "mercury", "汞", "mg/L"),
        Parameter("Zn", "zinc", "锌", "mg/L"),
        Parameter("petroleum", "petroleum", "石油类", "mg/L"),
    ]
}

# Column headers of the national automatic-station CSV (see shared/data/cnemc-sample).
CNEMC_HEADERS: dict[str, str] = {
    "水温(℃)": "water_temperature",
    "pH(无量纲)": "pH",
    "溶解氧(mg/L)": "DO",
    "电导率(μS/cm)": "conductivity",
    "浊度(NTU)": "turbidity",
    "高锰酸盐指数(mg/L)": "CODMn",
    "氨氮(mg/L)": "NH3-N",
    "总磷(mg/L)": "TP",
    "总氮(mg/L)": "TN",
    "叶绿素α(mg/L)": "chlorophyll_a",
    "藻密度(cells/L)": "algae_density",
}

# Unit spellings accepted, each mapped to (canonical unit, factor to multiply by).
_UNITS: dict[str, tuple[str, float]] = {
    "mg/l": ("mg/L", 1.0),
    "mg/L": ("mg/L", 1.0),
    "µg/l": ("mg/L", 1e-3),
    "µg/L": ("mg/L", 1e-3),
    "μg/L": ("mg/L", 1e-3),  # Greek mu, as Chinese sources write it
    "μg/l": ("mg/L", 1e-3),
    "ug/L": ("mg/L", 1e-3),
    "ug/l": ("mg/L", 1e-3),
    "°C": ("°C", 1.0),
    "℃": ("°C", 1.0),
    "degC": ("°C", 1.0),
    "C": ("°C", 1.0),
    "NTU": ("NTU", 1.0),
    "µS/cm": ("µS/cm", 1.0),
    "μS/cm": ("µS/cm", 1.0),
    "uS/cm": ("µS/cm", 1.0),
    "mS/cm": ("µS/cm", 1000.0),
    "mS/m": ("µS/cm", 10.0),
    "1": ("1", 1.0),
    "": ("1", 1.0),
    "pH": ("1", 1.0),
    "无量纲": ("1", 1.0),
    "cells/L": ("cells/L", 1.0),
    "cells/l": ("cells/L", 1.0),
}


def convert(parameter: str, values: np.ndarray | float, unit: str) -> np.ndarray:
    """Values of a parameter converted from ``unit`` to its canonical unit.

    Raises
    ------
    ValueError
        The parameter is unknown, or the unit cannot be converted to the parameter's unit;
        the message names both.
    """
    p = PARAMETERS.get(parameter)
    if p is None:
        raise ValueError(f"unknown parameter {parameter!r}; known: {sorted(PARAMETERS)}")
    target = _UNITS.get(unit.strip())
    if target is None or target[0] != p.unit:
        raise ValueError(f"cannot convert {parameter} from unit {unit!r} to {p.unit}")
    return np.asarray(values, dtype="float64") * target[1]


LIMITS_FILE = "physical_limits.csv"


@cache
def _limits() -> pd.DataFrame:
    text = resources.files("twin").joinpath("data", LIMITS_FILE).read_text(encoding="utf-8")
    table = pd.read_csv(io.StringIO(text), comment="#", dtype={"parameter": str, "unit": str, "source": str})
    table = table.set_index("parameter")
    missing = sorted(set(PARAMETERS) - set(table.index))
    unknown = sorted(set(table.index) - set(PARAMETERS))
    if missing or unknown:
        raise ValueError(f"{LIMITS_FILE}: parameters missing {missing}, unknown {unknown}")
    for p, row in table.iterrows():
        if row["unit"] != PARAMETERS[str(p)].unit or not float(row["min"]) < float(row["max"]):
            raise ValueError(f"{LIMITS_FILE}: {p} needs its canonical unit {PARAMETERS[str(p)].unit!r} and min < max")
    table["below_detection"] = table["below_detection"].map({"yes": True, "no": False}).astype(bool)
    return table.astype({"min": "float64", "max": "float64"})


def physical_limits() -> pd.DataFrame:
    """The physical limits table: index ``parameter``; ``unit``, ``min``, ``max``, ``below_detection``, ``source``.

    A fresh copy each call. ``below_detection`` says whether a below-detection
    notation (``<0.01``, ``0.01L``, ``ND``) means anything for the parameter.

    Examples
    --------
    >>> physical_limits().loc["pH", ["min", "max"]].tolist()
    [0.0, 14.0]
    """
    return _limits().copy()
