"""Quality flags of readings: one vocabulary for the store, and which readings are usable.

Every reading is stored with a flag of the twin's own vocabulary (:data:`FLAGS`).
Each ingest format maps its source's flags onto it when it parses, so a letter
means one thing in the store whatever the source said:

====  =================================================================  ======
flag  meaning                                                            usable
====  =================================================================  ======
""    no flag given (tidy files, CNEMC rows without a status)            yes
N     normal (HJ 212-2017 ``N``)                                         yes
S     simulated by the twin (the demo and the training scenarios)        yes
F     analyser stopped (HJ 212 ``F``)                                    no
M     maintenance (HJ 212 ``M``)                                         no
H     value entered by hand, a set value (HJ 212 ``S``)                  no
D     analyser fault (HJ 212 ``D``)                                      no
C     calibration (HJ 212 ``C``)                                         no
T     above the analyser's measuring range (HJ 212 ``T``)                no
B     analyser-to-logger communication failure (HJ 212 ``B``)            no
====  =================================================================  ======

Why: HJ 212-2017 (table 8, 数据标记) lists N (仪器仪表工作正常), F (停运), M (维护期间产生的
数据), S (手工输入的设定值), D (故障), C (校准状态), T (采样数值超过测量上限) and B (与数采仪通讯
异常). The demo already used ``S`` for *simulated* readings, in the store and in the
scenarios; rather than rename the demo's flag, HJ 212's ``S`` is stored as ``H`` (set by
hand). Tidy files carry this vocabulary directly; CNEMC rows may carry a status word
(:data:`CNEMC_STATUS`).

*Usable* (:data:`USABLE_FLAGS`, :func:`usable`) is the one notion that
classification, warnings and tracing share: only normal (or unflagged) readings and
the twin's own simulated ones count. Every other reading is stored with its flag and
kept, but never classified, warned on or traced. ``T`` is among the unusable ones
because the value sent is the analyser's range limit, not a measurement; that the
true value is higher is worth a look, but it is not a reading to classify.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLAGS: dict[str, str] = {
    "": "no flag given",
    "N": "normal",
    "S": "simulated by the twin",
    "F": "analyser stopped",
    "M": "maintenance",
    "H": "value entered by hand (a set value)",
    "D": "analyser fault",
    "C": "calibration",
    "T": "above the measuring range",
    "B": "communication failure between analyser and data logger",
}

USABLE_FLAGS: frozenset[str] = frozenset({"", "N", "S"})
"""Flags of readings that classification, warnings and tracing use."""

HJ212_FLAGS: dict[str, str] = {"N": "N", "F": "F", "M": "M", "S": "H", "D": "D", "C": "C", "T": "T", "B": "B"}
"""HJ 212-2017 data flag -> the twin's flag (``S``, a set value typed by hand, becomes ``H``)."""

# Status words of Chinese monitoring exports (a 状态 or 站点情况 column), mapped to the state they name. The
# CNEMC files we have carry no such column; the words are those of HJ 212-2017's table 8 (正常 for N).
CNEMC_STATUS: dict[str, str] = {
    "": "",
    "正常": "N",
    "停运": "F",
    "维护": "M",
    "手工输入": "H",
    "故障": "D",
    "校准": "C",
    "超测量上限": "T",
    "通讯异常": "B",
}


def usable(flags: pd.Series | np.ndarray | list[str]) -> np.ndarray:
    """Which readings are usable, from their flags (missing counts as no flag given).

    Examples
    --------
    >>> usable(["N", "", "S", "D", "H", None]).tolist()
    [True, True, True, False, False, True]
    """
    series = pd.Series(flags, dtype=object)
    return series.fillna("").isin(USABLE_FLAGS).to_numpy()
