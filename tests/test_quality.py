"""GB 3838-2002 classes as a user reads them: edge values, samples, exceedances, and CNEMC's own classes."""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twin.analysis import quality
from twin.analysis.quality import QualityError, classify_samples, classify_values, exceedance_multiple, label, limit
from twin.errors import TwinError
from twin.ops.parameters import CNEMC_HEADERS

ROOT = Path(__file__).resolve().parent.parent
CNEMC_SAMPLE = ROOT / "data" / "cnemc" / "cnemc_sample_20260709_20260711.csv"

# The design table (shared/DESIGN.md, "Analyses"), typed again here so that the CSV is checked against it.
DESIGN = {
    ("DO", "river"): [7.5, 6, 5, 3, 2],
    ("CODMn", "river"): [2, 4, 6, 10, 15],
    ("COD", "river"): [15, 15, 20, 30, 40],
    ("BOD5", "river"): [3, 3, 4, 6, 10],
    ("NH3-N", "river"): [0.15, 0.5, 1.0, 1.5, 2.0],
    ("TP", "river"): [0.02, 0.1, 0.2, 0.3, 0.4],
    ("TP", "lake"): [0.01, 0.025, 0.05, 0.1, 0.2],
    ("TN", "lake"): [0.2, 0.5, 1.0, 1.5, 2.0],
    ("As", "river"): [0.05, 0.05, 0.05, 0.1, 0.1],
    ("Cd", "river"): [0.001, 0.005, 0.005, 0.005, 0.01],
    ("Pb", "river"): [0.01, 0.01, 0.05, 0.05, 0.1],
    ("Cr6", "river"): [0.01, 0.05, 0.05, 0.05, 0.1],
    ("Hg", "river"): [0.00005, 0.00005, 0.0001, 0.001, 0.001],
    ("petroleum", "river"): [0.05, 0.05, 0.05, 0.5, 1.0],
}
UPPER_BOUND = [p for p in quality.parameters() if p not in ("pH", "DO")]


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("parameter", "water_body"), list(DESIGN))
def test_limits_are_the_design_table(parameter, water_body):
    assert [limit(parameter, k, water_body) for k in range(1, 6)] == DESIGN[parameter, water_body]


def test_table_names_its_source_and_holds_every_parameter_once_per_water_body():
    text = (ROOT / "twin" / "data" / "gb3838_2002.csv").read_text(encoding="utf-8")
    assert text.startswith("# Source: GB 3838-2002") and "Table 1" in text.splitlines()[0]
    assert quality.parameters() == (
        "pH",
        "DO",
        "CODMn",
        "COD",
        "BOD5",
        "NH3-N",
        "TP",
        "TN",
        "As",
        "Cd",
        "Pb",
        "Cr6",
        "Hg",
        "petroleum",
    )
    t = quality.table()
    assert list(t.columns) == ["parameter", "water_body", "bound", "I", "II", "III", "IV", "V"]
    assert not t.duplicated(["parameter", "water_body", "bound"]).any()


def test_limits_that_do_not_exist_are_refused_with_the_reason():
    assert limit("TP", 3, "reservoir") == limit("TP", 3, "lake") == 0.05
    with pytest.raises(QualityError, match="TN has no limit for a river; .* lake, reservoir"):
        limit("TN", 3)
    with pytest.raises(QualityError, match="pH has a range, not one limit: 6 to 9"):
        limit("pH", 1)
    with pytest.raises(QualityError, match="class 6: expected a whole number 1-5"):
        limit("TP", 6)


# ---------------------------------------------------------------------------
# one parameter
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameter", "value", "water_body", "expected"),
    [
        # exactly on a limit is the better class; just above is the next one
        ("TP", 0.02, "river", 1),
        ("TP", 0.021, "river", 2),
        ("TP", 0.1, "river", 2),
        ("TP", 0.101, "river", 3),
        ("TP", 0.4, "river", 5),
        ("TP", 0.401, "river", 6),
        # TP 0.05 is class II in a river but class III in a lake or reservoir
        ("TP", 0.05, "river", 2),
        ("TP", 0.05, "lake", 3),
        ("TP", 0.05, "reservoir", 3),
        ("TP", 0.01, "lake", 1),
        ("TP", 0.025, "lake", 2),
        ("TP", 0.2, "lake", 5),
        ("TP", 0.21, "lake", 6),
        # DO is a lower bound: on the limit is the better class
        ("DO", 7.5, "river", 1),
        ("DO", 7.49, "river", 2),
        ("DO", 6.0, "river", 2),
        ("DO", 5.99, "river", 3),
        ("DO", 2.0, "river", 5),
        ("DO", 1.99, "river", 6),
        # pH 6-9 in every class, outside it 劣V
        ("pH", 9.0, "river", 1),
        ("pH", 9.01, "river", 6),
        ("pH", 6.0, "river", 1),
        ("pH", 5.99, "river", 6),
        ("pH", 7.0, "lake", 1),
        # classes I and II share a limit: on it is I, above it is III
        ("COD", 15, "river", 1),
        ("COD", 15.1, "river", 3),
        ("Hg", 0.00005, "river", 1),
        ("Hg", 0.00006, "river", 3),
        ("Cd", 0.005, "river", 2),
        ("Cd", 0.0051, "river", 5),
        ("NH3-N", 0.15, "river", 1),
        ("NH3-N", 0.16, "river", 2),
        ("NH3-N", 2.0, "river", 5),
        ("NH3-N", 2.01, "river", 6),
        # TN: lakes only; in a river it is not classified (0)
        ("TN", 1.0, "lake", 3),
        ("TN", 1.01, "lake", 4),
        ("TN", 5.0, "river", 0),
    ],
)
def test_class_of_edge_values(parameter, value, water_body, expected):
    got = classify_values(parameter, np.array([value]), water_body)
    assert got.dtype == np.int8
    assert got.tolist() == [expected]


def test_nan_is_not_classified_and_lists_and_ints_are_accepted():
    assert classify_values("NH3-N", [np.nan, 1, 3]).tolist() == [0, 3, 6]
    assert classify_values("pH", [float("nan")]).tolist() == [0]
    assert classify_values("DO", np.array([8, 4])).tolist() == [1, 4]


def test_float32_readings_on_a_limit_stay_in_the_better_class():
    # float32(0.1) is 0.10000000149 as a float64: compared in float64 it would be class III
    assert classify_values("TP", np.array([0.1, 0.2], dtype=np.float32)).tolist() == [2, 3]
    # the same through pandas' nullable dtypes, whose missing values are not classified
    assert classify_values("TP", pd.Series([0.1, None], dtype="Float32")).tolist() == [2, 0]
    df = pd.DataFrame({"TP": pd.array([0.1, None], dtype="Float32"), "DO": pd.array([5, None], dtype="Int64")})
    assert classify_samples(df)[["DO_class", "TP_class"]].to_numpy().tolist() == [[3, 2], [0, 0]]


def test_water_body_per_value_as_strings_or_categorical():
    tp = np.array([0.05, 0.05, 0.05])
    bodies = np.array(["river", "lake", "reservoir"])
    assert classify_values("TP", tp, bodies).tolist() == [2, 3, 3]
    assert classify_values("TP", tp, pd.Categorical(bodies)).tolist() == [2, 3, 3]
    assert classify_values("TN", np.array([0.4, 0.4]), np.array(["river", "lake"])).tolist() == [0, 2]
    assert classify_values("TP", np.array([[0.05], [0.05]]), np.array([["river"], ["lake"]])).tolist() == [[2], [3]]


def test_exceedance_multiple_of_single_values():
    # NH3-N against class III (1.0 mg/L): 1.5 is 0.5 times over, 3.0 twice over; 1.0 is on the limit
    got = exceedance_multiple("NH3-N", [1.0, 1.5, 3.0, np.nan])
    assert np.isnan(got[[0, 3]]).all() and got[1:3].tolist() == pytest.approx([0.5, 2.0])
    # TP 0.3 in a lake against class II (0.025): 0.3 / 0.025 - 1 = 11
    assert exceedance_multiple("TP", [0.3], target_class=2, water_body="lake").tolist() == pytest.approx([11.0])
    # DO has no multiple in the national evaluation method, even far below the target
    assert np.isnan(exceedance_multiple("DO", [1.0])).all()


def test_labels():
    assert [label(k) for k in range(7)] == ["", "I", "II", "III", "IV", "V", "劣V"]
    assert label(np.int8(6)) == "劣V"
    assert label(np.array([[1, 0], [5, 6]], dtype=np.int8)).tolist() == [["I", ""], ["V", "劣V"]]
    with pytest.raises(QualityError, match="0-6"):
        label(7)
    with pytest.raises(QualityError, match="0-6"):
        label(np.array([-1]))


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda: classify_values("Zn", [0.1]), ["'Zn'", "pH, DO, CODMn", "petroleum"]),
        (lambda: classify_values("TP", [0.1], "sea"), ["'sea'", "river, lake, reservoir"]),
        (lambda: classify_values("TP", [0.1, 0.2], np.array(["river", "pond"])), ["'pond'", "river, lake, reservoir"]),
        (lambda: classify_values("TP", [0.1, 0.2], np.array(["river"])), ["shape (1,)", "(2,)"]),
        (lambda: limit("total phosphorus", 3), ["'total phosphorus'", "TP"]),
        (lambda: classify_samples(pd.DataFrame({"TP": [0.1]}), target_class=0), ["class 0", "1-5"]),
        (lambda: classify_samples(pd.DataFrame({"TP": [0.1]}), target_class=[np.nan]), ["1-5", "NaN"]),
        (
            lambda: classify_samples(pd.DataFrame({"TP": [0.1]}), parameters=["TP", "chlorophyll_a"]),
            ["'chlorophyll_a'"],
        ),
        (lambda: classify_samples(pd.DataFrame({"TP": ["high"]})), ["'TP'", "non-numeric", "to_numeric"]),
    ],
)
def test_bad_input_is_a_value_error_naming_what_is_allowed(call, fragments):
    with pytest.raises(QualityError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, TwinError)
    for fragment in fragments:
        assert fragment in str(info.value)


# ---------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------
def test_sample_class_deciding_parameters_and_multiples_by_hand():
    df = pd.DataFrame(
        {
            "station": ["a", "b", "c", "d", "e"],
            "pH": [7.0, 7.0, 9.5, 7.0, np.nan],
            "DO": [6.5, 8.0, 8.0, 2.5, np.nan],
            "NH3-N": [1.2, 0.1, 0.1, 0.1, np.nan],
            "TP": [0.25, 0.15, 0.05, 0.05, np.nan],
            "turbidity": [30.0, 5.0, 5.0, 5.0, 5.0],
        },
        index=[10, 11, 12, 13, 14],
    )
    out = classify_samples(df)  # rivers, target class III
    assert out.index.tolist() == [10, 11, 12, 13, 14]
    # a: DO 6.5 II, NH3-N 1.2 IV, TP 0.25 IV -> IV set by NH3-N and TP together
    # b: DO I, NH3-N I, TP 0.15 III -> III by TP; c: pH 9.5 -> 劣V by pH; d: DO 2.5 -> V by DO; e: nothing measured
    assert out["class"].tolist() == [4, 3, 6, 5, 0]
    assert out["deciding"].tolist() == ["NH3-N,TP", "TP", "pH", "DO", ""]
    assert out["exceeds"].tolist() == [True, False, True, True, False]
    assert out[["pH_class", "DO_class", "NH3-N_class", "TP_class"]].loc[10].tolist() == [1, 2, 4, 4]
    # multiples against class III: NH3-N 1.2 / 1.0 - 1 = 0.2, TP 0.25 / 0.2 - 1 = 0.25; none where within III
    assert out.loc[10, "NH3-N_multiple"] == pytest.approx(0.2)
    assert out.loc[10, "TP_multiple"] == pytest.approx(0.25)
    assert out.loc[[11, 12, 13, 14], ["NH3-N_multiple", "TP_multiple"]].isna().all().all()
    # pH and DO carry no multiple (see the module notes); turbidity is not a GB 3838 parameter
    assert "DO_multiple" not in out and "pH_multiple" not in out and "turbidity_class" not in out
    assert out["class"].dtype == np.int8 and out["exceeds"].dtype == bool


def test_total_nitrogen_counts_for_lakes_only():
    df = pd.DataFrame({"DO": [7.8, 7.8], "TP": [0.02, 0.02], "TN": [1.8, 1.8]})
    out = classify_samples(df, water_body=np.array(["river", "lake"]))
    # river: TN ignored, TP 0.02 is I; lake: TP 0.02 is II, TN 1.8 is V
    assert out["TN_class"].tolist() == [0, 5]
    assert out["class"].tolist() == [1, 5]
    assert out["deciding"].tolist() == ["DO,TP", "TN"]
    # TN 1.8 in a lake against III (1.0): 0.8 times over; no multiple in a river
    assert np.isnan(out["TN_multiple"].iloc[0]) and out["TN_multiple"].iloc[1] == pytest.approx(0.8)


def test_target_class_and_water_body_per_sample_follow_the_index():
    df = pd.DataFrame({"TP": [0.05, 0.05, 0.05]}, index=["x", "y", "z"])
    bodies = pd.Series(["lake", "river", "river"], index=["z", "x", "y"])  # other order: aligned on the index
    targets = pd.Series([3, 1, 2], index=["x", "y", "z"])
    out = classify_samples(df, water_body=bodies, target_class=targets)
    assert out["TP_class"].tolist() == [2, 2, 3]
    assert out["exceeds"].tolist() == [False, True, True]
    # y: 0.05 / 0.02 - 1 = 1.5 (river, class I); z: 0.05 / 0.025 - 1 = 1.0 (lake, class II)
    assert out["TP_multiple"].tolist()[1:] == pytest.approx([1.5, 1.0])


def test_chosen_parameters_set_the_class_and_absent_ones_are_not_classified():
    df = pd.DataFrame({"DO": [7.8], "COD": [35.0], "TP": [0.05]})
    assert classify_samples(df)["class"].tolist() == [5]  # COD 35 is V
    auto = classify_samples(df, parameters=quality.AUTOMATIC_STATION_PARAMETERS)
    assert auto["class"].tolist() == [2] and auto["deciding"].tolist() == ["TP"]
    assert auto[["pH_class", "CODMn_class", "NH3-N_class"]].iloc[0].tolist() == [0, 0, 0]
    assert "COD_class" not in auto


def test_empty_table():
    out = classify_samples(pd.DataFrame({"TP": pd.Series([], dtype=float)}))
    assert len(out) == 0 and {"TP_class", "class", "deciding", "exceeds", "TP_multiple"} <= set(out)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------
def reference_class(parameter: str, value: float, water_body: str) -> int:
    """One value by the words of the standard: the best class whose limit it meets."""
    if math.isnan(value):
        return 0
    if parameter == "pH":
        return 1 if 6 <= value <= 9 else 6
    if parameter == "TN" and water_body == "river":
        return 0
    for k in range(1, 6):
        lim = limit(parameter, k, water_body)
        if (value >= lim) if parameter == "DO" else (value <= lim):
            return k
    return 6


limits_st = st.sampled_from(sorted({float(v) for vs in DESIGN.values() for v in vs} | {6.0, 9.0}))
# values anywhere, exactly on a limit, or missing
values_st = hnp.arrays(
    np.float64, st.integers(0, 40), elements=st.one_of(st.floats(-1, 50), limits_st, st.just(math.nan))
)


@settings(deadline=None)  # no wall-clock limit per example
@given(st.sampled_from(quality.parameters()), values_st, st.sampled_from(quality.WATER_BODIES))
def test_class_is_the_best_class_whose_limit_the_value_meets(parameter, values, water_body):
    got = classify_values(parameter, values, water_body)
    assert got.tolist() == [reference_class(parameter, float(v), water_body) for v in values]


@settings(deadline=None)  # no wall-clock limit per example
@given(
    st.sampled_from(UPPER_BOUND), st.sampled_from(["river", "lake"]), limits_st, st.floats(-1, 50), st.floats(-1, 50)
)
def test_class_is_monotone_and_within_one_to_six(parameter, water_body, on_limit, a, b):
    if parameter == "TN" and water_body == "river":
        water_body = "lake"
    x = np.sort(np.array([a, b, on_limit, np.nextafter(on_limit, np.inf)]))
    got = classify_values(parameter, x, water_body)
    assert ((got >= 1) & (got <= 6)).all()
    assert (np.diff(got) >= 0).all()  # higher concentration, never a better class
    do = classify_values("DO", x)
    assert (np.diff(do) <= 0).all()  # more oxygen, never a worse class


@settings(deadline=None)  # no wall-clock limit per example
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 20), st.just(5)),
        elements=st.one_of(st.floats(0, 12), limits_st, st.just(math.nan)),
    )
)
def test_sample_class_is_the_worst_parameter_and_the_deciding_ones_hold_it(values):
    params = ["pH", "DO", "CODMn", "NH3-N", "TP"]
    df = pd.DataFrame(values, columns=params)
    out = classify_samples(df)
    per = out[[f"{p}_class" for p in params]].to_numpy()
    assert (out["class"].to_numpy() == per.max(axis=1)).all()
    for i, names in enumerate(out["deciding"]):
        if out["class"].iloc[i] == 0:
            assert names == ""
        else:
            assert names.split(",") == [p for j, p in enumerate(params) if per[i, j] == out["class"].iloc[i]]


# ---------------------------------------------------------------------------
# the official classes of the CNEMC sample
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnemc() -> pd.DataFrame:
    df = pd.read_csv(CNEMC_SAMPLE, encoding="utf-8-sig").rename(columns=CNEMC_HEADERS)
    # the official class: 1-6, -1 where nothing was measured (our 0)
    df["official"] = df["水质类别"].replace(-1, quality.UNCLASSIFIED)
    return df


def test_cnemc_sample_every_official_class_is_reproduced(cnemc):
    """Agreement: 162 of 162 rows (156 classified, 6 with no data at all).

    Every station is a river section. The two 入湖口 stations (东大河滇池入湖口,
    大渔乡土罗村入湖口) in the 滇池 basin are rivers where they enter Lake Dian,
    and their official classes say so: river TP limits, TN not counted (see the
    next test). The official class is computed from the parameters that were
    published for that row (中越桥 at 14:00 on 11 July is class I from pH and DO
    alone); the plain standard on the published columns gives the same as the
    automatic stations' subset (pH, DO, CODMn, NH3-N, TP), because TN does not
    count in rivers and nothing else is published. There is nothing to explain:
    no row disagrees. Caveats: no pH in the file is outside 6-9 (highest 8.62),
    so the pH rule is not tested by it; the three readings exactly on a limit
    (醒觉溪 DO 7.5; 大渔乡土罗村入湖口 TP 0.1, twice) are outranked by another
    parameter in their rows, so the file does not decide the "on the limit is
    the better class" rule either.
    """
    standard = classify_samples(cnemc, water_body="river")
    auto = classify_samples(cnemc, water_body="river", parameters=quality.AUTOMATIC_STATION_PARAMETERS)
    agree = standard["class"] == cnemc["official"]
    assert (len(cnemc), int(agree.sum())) == (162, 162)
    assert standard["class"].equals(auto["class"])
    assert (standard["class"] == 0).sum() == (cnemc["水质类别"] == -1).sum() == 6
    assert standard["class"].value_counts().sort_index().to_dict() == {0: 6, 1: 1, 2: 103, 3: 19, 4: 31, 5: 2}
    row = (cnemc["断面名称"] == "中越桥") & (cnemc["监测时间"] == "2026-07-11 14:00")
    assert cnemc.loc[row, ["CODMn", "NH3-N", "TP"]].isna().all(axis=None)
    assert standard.loc[row, ["class", "deciding"]].values.tolist() == [[1, "pH,DO"]]


def test_cnemc_sample_every_published_parameter_matters_but_tn(cnemc):
    """Leaving out DO, TP, NH3-N or CODMn breaks rows; TN and pH change nothing here."""
    rule = quality.AUTOMATIC_STATION_PARAMETERS
    wrong = {}
    for p in [*rule, "TN"]:
        chosen = [q for q in rule if q != p] if p in rule else [*rule, "TN"]
        got = classify_samples(cnemc, water_body="river", parameters=chosen)["class"]
        wrong[p] = int((got != cnemc["official"]).sum())
    assert wrong == {"pH": 0, "DO": 24, "CODMn": 1, "NH3-N": 2, "TP": 85, "TN": 0}  # TN: rivers ignore it


def test_cnemc_inflow_stations_are_classified_as_rivers_not_lakes(cnemc):
    """Read as lake stations, the two 入湖口 stations would disagree in 38 of their 40 rows.

    Lake rules would set TN (5-9 mg/L here, 劣V) and the stricter lake TP limits;
    the official classes are II-V and match the river rules row for row.
    """
    inflow = cnemc["断面名称"].str.endswith("入湖口")
    assert sorted(cnemc.loc[inflow, "断面名称"].unique()) == ["东大河滇池入湖口", "大渔乡土罗村入湖口"]
    assert (cnemc.loc[inflow, "流域"] == "滇池流域").all()
    as_lake = classify_samples(cnemc, water_body=np.where(inflow, "lake", "river"))
    wrong = as_lake["class"] != cnemc["official"]
    assert int(wrong.sum()) == 38 and not (wrong & ~inflow).any()
    assert (as_lake.loc[wrong, "class"] > cnemc.loc[wrong, "official"]).all()  # always worse than official
    # even without TN, the lake TP limits alone break 30 rows
    lake_tp = classify_samples(
        cnemc, water_body=np.where(inflow, "lake", "river"), parameters=quality.AUTOMATIC_STATION_PARAMETERS
    )
    assert int((lake_tp["class"] != cnemc["official"]).sum()) == 30


# ---------------------------------------------------------------------------
# docs and benchmark do not rot
# ---------------------------------------------------------------------------
def test_docstring_examples_run():
    result = doctest.testmod(quality)
    assert result.attempted > 5 and result.failed == 0


def test_benchmark_prints_one_json_line_per_case():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--values", "20000", "--chunk", "10000"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    cases = [r for r in lines if "case" in r]
    assert [r["case"] for r in cases] == ["classify_values"] * 5 + ["classify_samples"] * 2
    assert all(r["values"] >= 20000 and r["values_per_s"] > 0 for r in cases)
    assert lines[-1]["summary"] is True and lines[-1]["slowest_values_per_s"] == min(r["values_per_s"] for r in cases)
