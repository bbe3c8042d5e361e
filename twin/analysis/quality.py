"""Surface-water quality class after GB 3838-2002: per reading, per parameter and per sample.

The limits are data, not code: ``twin/data/gb3838_2002.csv`` holds Table 1 of the
standard for the parameters the twin measures. A reading's class is the best class
whose limit it meets; a sample's class is the worst of its parameters' classes, and
the parameters at that class are the *deciding* ones. Classes are numbers:

====== =====================================================================
class  meaning
====== =====================================================================
1..5   classes I to V
6      劣V, worse than class V (also any pH outside 6-9)
0      not classified: the value is NaN or absent, or the parameter has no
       limit for the water body (TN in a river). :data:`UNCLASSIFIED`.
====== =====================================================================

(0 was chosen over the -1 of the national real-time publication so that the
class of a sample is the plain maximum over its parameters and ``klass > 0``
reads "classified".)

Rules
-----
* Upper bounds are "≤": a value exactly on the class II limit is class II. DO is
  a lower bound, "≥": 7.5 mg/L is class I, 7.49 is class II. pH must lie in
  [6, 9] for every class; outside it the reading is class 6 (劣V), inside it
  class 1.
* Rivers and lakes/reservoirs differ in TP, and TN has limits for lakes and
  reservoirs only: in a river TN is not classified (class 0) and does not count
  towards the sample's class. ``water_body`` is ``"river"``, ``"lake"`` or
  ``"reservoir"`` (the same limits as a lake), for all readings or per reading.
  A station where a river enters a lake (入湖口) is a river station.
* Exceedance multiple (超标倍数) against the station's target class:
  ``value / limit - 1`` where the parameter's class is worse than the target,
  NaN elsewhere. As in the national evaluation method (环办〔2011〕22号,
  地表水环境质量评价办法（试行）), it is not computed for pH and DO: the
  formula has no meaning for a range or a lower bound, so those parameters have
  no multiple column; a DO or pH worse than the target still makes the sample
  ``exceeds``.
* Values are compared as given: float32 readings against float32 limits (so a
  float32 0.1 is on the 0.1 limit, not above it), everything else as float64.
  Round to the reporting precision first if the source has not.

The table against the standard
------------------------------
The CSV was written from the design table and checked, value by value, against
Table 1 of GB 3838-2002 as the author knows it; every limit agrees. What the
standard says beyond the CSV:

* DO class I is "saturation 90 % (or 7.5 mg/L)"; only the 7.5 mg/L form is
  used, since saturation needs temperature and pressure.
* Water temperature has no class limits (only a cap on man-made change: weekly
  mean rise ≤ 1 °C, fall ≤ 2 °C), and is not classified.
* Table 1 has items the CSV leaves out because the twin does not measure
  them: Cu, Zn, fluoride, Se, cyanide, volatile phenol, anionic surfactants,
  sulfide and faecal coliforms. Zn *is* a parameter of :mod:`twin.ops.parameters`
  (limits 0.05, 1.0, 1.0, 2.0, 2.0 mg/L in the standard) but is not in the
  design table, so Zn readings stay unclassified until it is added there.
* Practice differs from the bare table. The national evaluation method (2011),
  as the author understands it, leaves TN (with faecal coliforms and water
  temperature) out of the class even for lakes, reporting it on its own, and
  ranks the main pollutants by class, then by multiple. Here the default follows
  the standard (TN counts for lakes, ``deciding`` lists every parameter at the
  worst class in table order); pass ``parameters=`` to :func:`classify_samples`
  to choose the evaluated set, e.g. :data:`AUTOMATIC_STATION_PARAMETERS`, the
  GB 3838 parameters the national automatic stations classify on (pH, DO,
  CODMn, NH3-N, TP). On the CNEMC sample in ``data/cnemc/`` (river stations
  only, so TN never counts) both reproduce the official class of all 162 rows;
  the sample has no lake station, so the TN-for-lakes difference is untested
  against official classes (see ``tests/test_quality.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import cast

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.ops.parameters import PARAMETERS as KNOWN_PARAMETERS

UNCLASSIFIED = 0
WORSE_THAN_V = 6  # 劣V
LABELS: tuple[str, ...] = ("", "I", "II", "III", "IV", "V", "劣V")
WATER_BODIES: tuple[str, ...] = ("river", "lake", "reservoir")
AUTOMATIC_STATION_PARAMETERS: tuple[str, ...] = ("pH", "DO", "CODMn", "NH3-N", "TP")
SOURCE = "GB 3838-2002, Table 1"

_KIND = {"river": 0, "lake": 1, "reservoir": 1}  # row of a rule's limit arrays
_TABLE_FILE = "gb3838_2002.csv"


class QualityError(TwinError, ValueError):
    """An unknown parameter, water body or class, or a table that cannot be classified with."""


@dataclass(frozen=True)
class _Rule:
    """Limits of one parameter: rows river (0) and lake (1), columns classes I-V; NaN = no bound."""

    lower: np.ndarray  # (2, 5) float64, value must be >= limit
    upper: np.ndarray  # (2, 5) float64, value must be <= limit
    applies: tuple[bool, bool]  # has limits for river, for lake
    same: bool  # rivers and lakes share the limits


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------
@cache
def _rules() -> dict[str, _Rule]:
    text = resources.files("twin").joinpath("data", _TABLE_FILE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    lower: dict[str, np.ndarray] = {}
    upper: dict[str, np.ndarray] = {}
    for n, row in enumerate(rows, start=2):
        where = f"{_TABLE_FILE} row {n}"
        p, wb, bound = row["parameter"], row["water_body"], row["bound"]
        if p not in KNOWN_PARAMETERS:
            raise QualityError(f"{where}: unknown parameter {p!r}; known: {sorted(KNOWN_PARAMETERS)}")
        if wb not in ("all", "river", "lake") or bound not in ("min", "max"):
            raise QualityError(f"{where}: water_body {wb!r} / bound {bound!r}; allowed all|river|lake and min|max")
        values = np.array([float(row[c]) for c in ("I", "II", "III", "IV", "V")])
        step = np.diff(values) if bound == "max" else -np.diff(values)
        if (step < 0).any():
            raise QualityError(f"{where}: {p} limits {values.tolist()} are not ordered from class I to V")
        target = (upper if bound == "max" else lower).setdefault(p, np.full((2, 5), np.nan))
        for kind in (0, 1) if wb == "all" else (_KIND[wb],):
            target[kind] = values
    rules = {}
    for p in dict.fromkeys([*lower, *upper]):  # table order
        lo = lower.get(p, np.full((2, 5), np.nan))
        hi = upper.get(p, np.full((2, 5), np.nan))
        lo.flags.writeable = hi.flags.writeable = False
        applies = tuple(bool(np.isfinite(lo[k]).any() or np.isfinite(hi[k]).any()) for k in (0, 1))
        same = np.array_equal(lo[0], lo[1], equal_nan=True) and np.array_equal(hi[0], hi[1], equal_nan=True)
        rules[p] = _Rule(lo, hi, applies, same)  # type: ignore[arg-type]
    return rules


def parameters() -> tuple[str, ...]:
    """Ids of the parameters GB 3838-2002 classifies here, in the order of the table.

    Examples
    --------
    >>> parameters()[:4]
    ('pH', 'DO', 'CODMn', 'COD')
    """
    return tuple(_rules())


def table() -> pd.DataFrame:
    """The limits as a table: one row per parameter, water body and bound, columns ``I`` .. ``V``.

    A fresh copy each call; the source is ``twin/data/gb3838_2002.csv``.
    """
    text = resources.files("twin").joinpath("data", _TABLE_FILE).read_text(encoding="utf-8")
    return pd.read_csv(io.StringIO(text), comment="#")


def _rule(parameter: str) -> _Rule:
    rule = _rules().get(parameter)
    if rule is None:
        raise QualityError(
            f"parameter {parameter!r} has no GB 3838-2002 limits here; classified parameters: {', '.join(_rules())}"
        )
    return rule


def _check_class(klass: object, allowed: range = range(1, 6)) -> int:
    if isinstance(klass, bool) or not isinstance(klass, int | np.integer) or int(klass) not in allowed:
        raise QualityError(f"class {klass!r}: expected a whole number {allowed.start}-{allowed.stop - 1}")
    return int(klass)


def limit(parameter: str, klass: int, water_body: str = "river") -> float:
    """The limit a value must meet to be in class ``klass`` (1-5).

    An upper bound ("≤") for every parameter but DO, whose limit is a lower
    bound ("≥").

    Raises
    ------
    QualityError
        Unknown parameter, water body or class; pH (a range, 6 to 9 in every
        class); TN in a river (the standard limits it in lakes and reservoirs only).

    Examples
    --------
    >>> limit("TP", 2), limit("TP", 2, "lake"), limit("DO", 1)
    (0.1, 0.025, 7.5)
    """
    rule = _rule(parameter)
    k = _kind(water_body)
    c = _check_class(klass) - 1
    lo, hi = rule.lower[k, c], rule.upper[k, c]
    if np.isfinite(lo) and np.isfinite(hi):
        raise QualityError(f"{parameter} has a range, not one limit: {lo:g} to {hi:g} in class {LABELS[c + 1]}")
    if not rule.applies[k]:
        allowed = [wb for wb in WATER_BODIES if rule.applies[_KIND[wb]]]
        raise QualityError(
            f"{parameter} has no limit for a {water_body}; GB 3838-2002 limits it for: {', '.join(allowed)}"
        )
    return float(lo if np.isfinite(lo) else hi)


def label(klass: int | np.ndarray) -> str | np.ndarray:
    """Roman-numeral label of a class: 1..5 → "I".."V", 6 → "劣V", 0 (not classified) → "".

    An array gives an array of labels (object dtype).

    Examples
    --------
    >>> label(3), label(6), label(0)
    ('III', '劣V', '')
    >>> label(np.array([1, 6])).tolist()
    ['I', '劣V']
    """
    if np.ndim(klass) == 0:
        return LABELS[_check_class(klass.item() if isinstance(klass, np.generic) else klass, range(0, 7))]
    arr = np.asarray(klass)
    if arr.dtype.kind not in "iu" or arr.size and (arr.min() < 0 or arr.max() > 6):
        raise QualityError(f"classes must be whole numbers 0-6; got dtype {arr.dtype} with values outside")
    return np.array(LABELS, dtype=object)[arr]


# ---------------------------------------------------------------------------
# kernels on arrays
# ---------------------------------------------------------------------------
def _kind(water_body: str) -> int:
    if not isinstance(water_body, str) or water_body not in _KIND:
        raise QualityError(f"unknown water body {water_body!r}; allowed: {', '.join(WATER_BODIES)}")
    return _KIND[water_body]


def _kinds(water_body: str | np.ndarray | pd.Series | Sequence[str], shape: tuple[int, ...]) -> int | np.ndarray:
    """0 (river) / 1 (lake) for all values, or an int8 array of them, one per value.

    String comparisons cost more than the classification itself; a pandas
    Categorical (or categorical Series) is mapped through its few categories instead.
    """
    if isinstance(water_body, str):
        return _kind(water_body)
    if isinstance(getattr(water_body, "dtype", None), pd.CategoricalDtype):
        cat = cast(pd.Categorical, water_body.array if isinstance(water_body, pd.Series) else water_body)
        if cat.shape != shape:
            raise QualityError(f"water_body has shape {cat.shape}; expected one string or one per value {shape}")
        if (cat.codes < 0).any():
            raise QualityError(f"water_body is missing for some values; allowed: {', '.join(WATER_BODIES)}")
        lut = np.array([_kind(c) for c in cat.categories], dtype=np.int8)
        return lut[cat.codes] if lut.size else np.zeros(shape, dtype=np.int8)
    wb = np.asarray(water_body)
    if wb.shape != shape:
        raise QualityError(f"water_body has shape {wb.shape}; expected one string or one per value {shape}")
    lake = wb == "lake"
    known = lake | (wb == "river")
    if not known.all():
        reservoir = wb == "reservoir"
        lake |= reservoir
        known |= reservoir
        if not known.all():
            raise QualityError(f"unknown water body {wb[~known][0]!r}; allowed: {', '.join(WATER_BODIES)}")
    return lake.view(np.int8)


def _as_values(values: object, what: str = "values") -> np.ndarray:
    """Readings as a float array; float32 stays float32 so that a float32 reading on a limit equals it."""
    try:
        if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
            if values.dtype in (np.float64, np.float32):
                return np.asarray(values)
            # nullable dtypes: pd.NA -> NaN, Float32 stays float32
            wide = np.float32 if getattr(values.dtype, "numpy_dtype", None) == np.float32 else np.float64
            return values.to_numpy(dtype=wide, na_value=np.nan)
        arr = np.asarray(values)
        return arr if arr.dtype in (np.float64, np.float32) else arr.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise QualityError(f"{what} has non-numeric values ({e}); convert it with pandas.to_numeric first") from e


def _runs(limits: np.ndarray) -> list[tuple[float, int]]:
    """Distinct finite limits with how many classes share each (COD: 15 for I and II)."""
    vals, counts = np.unique(limits[np.isfinite(limits)], return_counts=True)
    return [(float(v), int(c)) for v, c in zip(vals, counts)]  # python floats: compared in the values' dtype


def _count(v: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """1 + the number of classes whose bounds ``v`` breaks; 0 where ``v`` is NaN.

    Bounds widen from class I to V, so a value that breaks class k's bound breaks
    every better class's too and the count is its class. One comparison pass per
    distinct limit: about 1 ns per value each.
    """
    out = np.ones(v.shape, dtype=np.int8)
    hit = np.empty(v.shape, dtype=bool)
    hit8 = hit.view(np.int8)
    for compare, limits in ((np.greater, upper), (np.less, lower)):
        for lim, times in _runs(limits):
            compare(v, lim, out=hit)
            if times > 1:
                np.multiply(hit8, times, out=hit8)
                np.add(out, hit8, out=out)
            else:
                np.add(out, hit, out=out)
    np.isnan(v, out=hit)
    np.copyto(out, UNCLASSIFIED, where=hit)
    return out


def _classify(rule: _Rule, v: np.ndarray, kinds: int | np.ndarray) -> np.ndarray:
    if isinstance(kinds, int):
        if not rule.applies[kinds]:
            return np.zeros(v.shape, dtype=np.int8)
        return _count(v, rule.lower[kinds], rule.upper[kinds])
    if rule.same:
        return _count(v, rule.lower[0], rule.upper[0])
    per_kind = [
        _count(v, rule.lower[k], rule.upper[k]) if rule.applies[k] else np.zeros(v.shape, dtype=np.int8) for k in (0, 1)
    ]
    return np.where(kinds.astype(bool), per_kind[1], per_kind[0])


def classify_values(
    parameter: str, values: np.ndarray | Sequence[float], water_body: str | np.ndarray = "river"
) -> np.ndarray:
    """GB 3838-2002 class of each value of one parameter.

    Parameters
    ----------
    parameter:
        A canonical id of :mod:`twin.ops.parameters` that the table holds (see :func:`parameters`).
    values:
        Readings in the parameter's canonical unit (mg/L; pH dimensionless). NaN = not measured.
    water_body:
        ``"river"``, ``"lake"`` or ``"reservoir"`` for every value, or an array of them, one per value.

    Returns
    -------
    numpy.ndarray
        int8 of the shape of ``values``: 1-5 = I-V, 6 = 劣V, 0 = not classified.

    Raises
    ------
    QualityError
        Unknown parameter or water body; the message lists what is allowed.

    Examples
    --------
    >>> classify_values("TP", [0.02, 0.05, 0.41, np.nan]).tolist()
    [1, 2, 6, 0]
    >>> classify_values("TP", [0.05, 0.05], np.array(["river", "lake"])).tolist()
    [2, 3]
    >>> classify_values("DO", [7.5, 7.49, 1.9]).tolist()
    [1, 2, 6]
    """
    rule = _rule(parameter)
    v = _as_values(values)
    return _classify(rule, v, _kinds(water_body, v.shape))


def _targets(target_class: int | np.ndarray | pd.Series | Sequence[int], shape: tuple[int, ...]) -> int | np.ndarray:
    if np.ndim(target_class) == 0:
        return _check_class(target_class.item() if isinstance(target_class, np.generic) else target_class)
    t = np.asarray(target_class)
    if t.shape != shape:
        raise QualityError(f"target_class has shape {t.shape}; expected one class or one per value {shape}")
    if t.dtype.kind == "f":
        if not (np.isfinite(t) & (t == np.round(t))).all():
            raise QualityError("target_class must be whole numbers 1-5 (GB 3838 classes I-V); got NaN or fractions")
        t = t.astype(np.int64)
    if t.dtype.kind not in "iu" or t.size and (t.min() < 1 or t.max() > 5):
        raise QualityError("target_class must be whole numbers 1-5 (GB 3838 classes I-V)")
    return t.astype(np.int8)


def exceedance_multiple(
    parameter: str,
    values: np.ndarray | Sequence[float],
    target_class: int | np.ndarray = 3,
    water_body: str | np.ndarray = "river",
) -> np.ndarray:
    """Exceedance multiple (超标倍数) ``value / limit - 1`` against the target class's limit.

    NaN where the value's class is not worse than the target (or is not
    classified). pH and DO have no multiple (all NaN): see the module notes.

    Examples
    --------
    >>> exceedance_multiple("NH3-N", [1.0, 1.5, 3.0]).tolist()  # class III limit 1.0
    [nan, 0.5, 2.0]
    """
    rule = _rule(parameter)
    v = _as_values(values)
    kinds = _kinds(water_body, v.shape)
    return _multiple(rule, v, _classify(rule, v, kinds), kinds, _targets(target_class, v.shape))


def _multiple(
    rule: _Rule, v: np.ndarray, classes: np.ndarray, kinds: int | np.ndarray, target: int | np.ndarray
) -> np.ndarray:
    lim = rule.upper[kinds, np.asarray(target) - 1]  # NaN for DO, pH (two bounds) and TN in rivers
    if np.isfinite(rule.lower).any():
        lim = np.full(v.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = v.astype(np.float64) / lim - 1.0
    # where the class says "worse than the target", so float noise on a limit never shows a multiple
    return np.where(classes > target, m, np.nan)


# ---------------------------------------------------------------------------
# tables of samples
# ---------------------------------------------------------------------------
def _aligned(x: object, df: pd.DataFrame) -> object:
    return x.reindex(df.index) if isinstance(x, pd.Series) else x


def _column(df: pd.DataFrame, p: str) -> np.ndarray:
    if p not in df.columns:
        return np.full(len(df), np.nan)
    return _as_values(df[p], f"column {p!r}")


def _deciding(classes: np.ndarray, worst: np.ndarray, params: Sequence[str]) -> np.ndarray:
    """Comma-joined ids of the parameters at the worst class, per sample ("" if not classified)."""
    mask = np.zeros(worst.shape, dtype=np.int64)
    for j in range(len(params)):
        mask |= (classes[j] == worst).astype(np.int64) << j
    mask[worst == UNCLASSIFIED] = 0
    present = np.flatnonzero(np.bincount(mask, minlength=1))
    names = np.empty(present.max() + 1 if present.size else 1, dtype=object)
    for m in present:
        names[m] = ",".join(p for j, p in enumerate(params) if m >> j & 1)
    return names[mask]


def classify_samples(
    df: pd.DataFrame,
    water_body: str | np.ndarray | pd.Series = "river",
    target_class: int | np.ndarray | pd.Series = 3,
    *,
    parameters: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Class of every sample of a wide table, its deciding parameters and exceedances.

    Parameters
    ----------
    df:
        One row per sample, one column per parameter, named by the canonical ids
        of :mod:`twin.ops.parameters` in their canonical units. Other columns are ignored.
    water_body:
        ``"river"``, ``"lake"`` or ``"reservoir"`` for every sample, or one per
        sample (an array, or a Series aligned on ``df``'s index).
    target_class:
        The station's target class, 1-5 (default III), for every sample or one per sample.
    parameters:
        The parameters that set the class. Default: every parameter of the table
        that ``df`` has a column for. A listed parameter without a column is not
        classified. :data:`AUTOMATIC_STATION_PARAMETERS` gives the national
        automatic stations' rule.

    Returns
    -------
    pandas.DataFrame
        On ``df``'s index, columns:

        * ``<id>_class`` (int8) per parameter: 1-6, 0 = not classified;
        * ``class`` (int8): the worst of them, 0 if none is classified;
        * ``deciding`` (str): the parameters at that class, comma-joined in
          table order (``"NH3-N,TP"``), "" if not classified;
        * ``exceeds`` (bool): ``class`` worse than the target class;
        * ``<id>_multiple`` (float64) per upper-bound parameter (all but pH and
          DO): ``value / limit - 1`` against the target class's limit where the
          parameter's class is worse than the target, else NaN.

    Raises
    ------
    QualityError
        Unknown parameter, water body or target class; non-numeric values.

    Examples
    --------
    >>> df = pd.DataFrame({"DO": [7.5, 4.0], "NH3-N": [0.15, 1.2], "TP": [0.05, 0.3], "site": ["a", "b"]})
    >>> out = classify_samples(df)
    >>> out[["class", "deciding", "exceeds"]].to_dict("list")
    {'class': [2, 4], 'deciding': ['TP', 'DO,NH3-N,TP'], 'exceeds': [False, True]}
    >>> out["TP_multiple"].round(3).tolist()  # 0.3 / 0.2 - 1 against class III
    [nan, 0.5]
    """
    if parameters is None:
        params = [p for p in _rules() if p in df.columns]
    else:
        params = list(dict.fromkeys(parameters))
        for p in params:
            _rule(p)
    n = len(df)
    kinds = _kinds(_aligned(water_body, df), (n,))  # type: ignore[arg-type]
    target = _targets(_aligned(target_class, df), (n,))  # type: ignore[arg-type]
    classes = np.zeros((len(params), n), dtype=np.int8)
    values = []
    for j, p in enumerate(params):
        v = _column(df, p)
        values.append(v)
        classes[j] = _classify(_rules()[p], v, kinds)
    worst = classes.max(axis=0) if params else np.zeros(n, dtype=np.int8)
    out: dict[str, object] = {f"{p}_class": classes[j] for j, p in enumerate(params)}
    out["class"] = worst
    out["deciding"] = _deciding(classes, worst, params)
    out["exceeds"] = worst > target
    for j, p in enumerate(params):
        rule = _rules()[p]
        if not np.isfinite(rule.lower).any():
            out[f"{p}_multiple"] = _multiple(rule, values[j], classes[j], kinds, target)
    return pd.DataFrame(out, index=df.index)


# ---------------------------------------------------------------------------
# classes as value ranges
# ---------------------------------------------------------------------------
def class_ranges(parameter: str, water_body: str = "river") -> list[tuple[int, float, float]]:
    """The classes of a parameter as value ranges: ``(class, lower, upper)``, ``-inf``/``inf`` where unbounded.

    An upper limit ("≤", most parameters) holds ``lower < v <= upper``; DO's lower
    limit holds ``lower <= v < upper``; pH is class I in 6-9 and 劣V on either side.
    Classes that share a limit share a range, named by the best of them (As: ≤ 0.05
    is class I, as :func:`classify_values` says). Sorted by class, then lower bound.

    Parameters
    ----------
    parameter:
        A parameter of :func:`parameters`.
    water_body:
        ``"river"``, ``"lake"`` or ``"reservoir"``.

    Raises
    ------
    QualityError
        An unknown parameter or water body, or a parameter without limits for that
        water body (TN in a river).

    Examples
    --------
    >>> class_ranges("As")
    [(1, -inf, 0.05), (4, 0.05, 0.1), (6, 0.1, inf)]
    >>> class_ranges("pH")
    [(1, 6.0, 9.0), (6, -inf, 6.0), (6, 9.0, inf)]
    """
    rule = _rule(parameter)
    k = _kind(water_body)
    if not rule.applies[k]:
        raise QualityError(
            f"{parameter!r} has no GB 3838-2002 limits for a {water_body}; classified: {', '.join(parameters())}"
        )
    lower, upper = rule.lower[k], rule.upper[k]
    inf = float("inf")
    out: list[tuple[int, float, float]] = []
    if np.isfinite(lower).any() and np.isfinite(upper).any():  # a range (pH)
        lo, hi = float(lower[0]), float(upper[0])
        out = [(1, lo, hi), (WORSE_THAN_V, -inf, lo), (WORSE_THAN_V, hi, inf)]
    elif np.isfinite(upper).any():
        edge = -inf
        for klass, lim in enumerate(upper.tolist(), start=1):
            if lim > edge:
                out.append((klass, edge, float(lim)))
                edge = lim
        out.append((WORSE_THAN_V, edge, inf))
    else:
        edge = inf
        for klass, lim in enumerate(lower.tolist(), start=1):
            if lim < edge:
                out.append((klass, float(lim), edge))
                edge = lim
        out.append((WORSE_THAN_V, -inf, edge))
    return sorted(out, key=lambda r: (r[0], r[1]))


def class_bands(parameter: str, water_body: str = "river") -> list[dict[str, object]]:
    """The class of a value by range, ready for a chart or a JSON answer; empty for an unclassified parameter.

    Each band: ``class``, ``label``, ``lower`` and ``upper`` (None: unbounded) and
    ``inclusive``, the end that belongs to the band: ``"upper"`` for an upper limit
    (``lower < v <= upper``), ``"lower"`` for DO's lower limit (``lower <= v < upper``);
    pH's class I holds both ends of 6–9 (``"both"``) and its 劣V bands neither.

    Parameters
    ----------
    parameter:
        A parameter id of :mod:`twin.ops.parameters`; one GB 3838-2002 does not
        classify (water temperature) gives ``[]``.
    water_body:
        ``"river"``, ``"lake"`` or ``"reservoir"``.

    Raises
    ------
    QualityError
        As :func:`class_ranges`, for a classified parameter.

    Examples
    --------
    >>> [(b["class"], b["lower"], b["upper"], b["inclusive"]) for b in class_bands("As")]
    [(1, None, 0.05, 'upper'), (4, 0.05, 0.1, 'upper'), (6, 0.1, None, 'upper')]
    >>> class_bands("water_temperature")
    []
    """
    rule = _rules().get(parameter)
    if rule is None:
        return []
    has_lower, has_upper = bool(np.isfinite(rule.lower).any()), bool(np.isfinite(rule.upper).any())
    is_range = has_lower and has_upper
    inclusive = "upper" if has_upper else "lower"

    def bound(v: float) -> float | None:
        return None if np.isinf(v) else float(v)

    return [
        {
            "class": klass,
            "label": LABELS[klass],
            "lower": bound(lo),
            "upper": bound(hi),
            "inclusive": ("both" if klass == 1 else "neither") if is_range else inclusive,
        }
        for klass, lo, hi in class_ranges(parameter, water_body)
    ]
