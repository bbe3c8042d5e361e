"""Throughput of the GB 3838-2002 classification (``twin.analysis.quality``).

Prints one JSON line per case on stdout, then a summary line:

* ``classify_values``: one parameter (TP, river limits) over ``--values`` float64
  readings, classified ``--chunk`` at a time (1 % NaN);
* ``classify_values`` with a per-value water body (TP, half rivers, half lakes), given as
  a numpy string array and as a pandas Categorical;
* ``classify_values`` for DO (a lower bound) and pH (a range);
* ``classify_samples``: a wide table with one column per parameter of the table,
  ``--chunk`` values per table (rows = chunk / parameters), the whole output
  (per-parameter classes, class, deciding, exceeds, multiples) built each time; once
  with one water body and target class for all rows, once with both per row.

Each chunk of readings is generated once, before the clock starts, and classified
repeatedly until ``--values`` values have been classified. ``values_per_s`` is
values over wall seconds for the classification alone. The goal of the issue is
at least 20 million values per second on one core.

Command line::

    python benchmarks/quality.py [--values 100000000] [--chunk 10000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from twin.analysis import quality

GOAL_VALUES_PER_S = 20e6


def readings(parameter: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` float64 readings spread over every class of ``parameter``, 1 % NaN."""
    if parameter == "pH":
        v = rng.uniform(5.5, 9.5, n)
    else:
        rule = quality.table()
        top = float(rule.loc[rule.parameter == parameter, ["I", "II", "III", "IV", "V"]].to_numpy().max())
        v = rng.uniform(0.0, 1.3 * top, n)
    v[rng.random(n) < 0.01] = np.nan
    return v


def run(case: str, total: int, chunk: int, work: Callable[[], object], extra: dict) -> dict:
    work()  # warm: first-call costs (table load, page faults) are not throughput
    rounds = math.ceil(total / chunk)
    t0 = time.perf_counter()
    for _ in range(rounds):
        work()
    wall = time.perf_counter() - t0
    values = rounds * chunk
    rec = {"case": case, **extra, "values": values, "chunk": chunk, "wall_s": round(wall, 3)}
    rec["values_per_s"] = round(values / wall)
    print(json.dumps(rec, ensure_ascii=False), flush=True)
    return rec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=100_000_000, help="values classified per case")
    ap.add_argument("--chunk", type=int, default=10_000_000, help="values per call (memory stays ~20 bytes x chunk)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n = args.chunk
    recs = []

    tp = readings("TP", n, rng)
    recs.append(
        run("classify_values", args.values, n, lambda tp=tp: quality.classify_values("TP", tp), {"parameter": "TP"})
    )
    wb = np.where(rng.random(n) < 0.5, "river", "lake")
    for kind, bodies in (("numpy str", wb), ("pandas Categorical", pd.Categorical(wb))):
        recs.append(
            run(
                "classify_values",
                args.values,
                n,
                lambda tp=tp, bodies=bodies: quality.classify_values("TP", tp, bodies),
                {"parameter": "TP", "water_body": f"per value, {kind}"},
            )
        )
    del wb, tp, bodies
    for p in ("DO", "pH"):
        v = readings(p, n, rng)
        recs.append(
            run("classify_values", args.values, n, lambda v=v, p=p: quality.classify_values(p, v), {"parameter": p})
        )
        del v

    params = quality.parameters()
    rows = max(1, n // len(params))
    df = pd.DataFrame({p: readings(p, rows, rng) for p in params})
    recs.append(
        run(
            "classify_samples",
            args.values,
            rows * len(params),
            lambda: quality.classify_samples(df, target_class=3),
            {"parameters": len(params), "rows_per_chunk": rows},
        )
    )
    bodies = pd.Categorical(np.where(rng.random(rows) < 0.5, "river", "lake"))
    targets = rng.integers(1, 6, rows)
    recs.append(
        run(
            "classify_samples",
            args.values,
            rows * len(params),
            lambda: quality.classify_samples(df, water_body=bodies, target_class=targets),
            {"parameters": len(params), "rows_per_chunk": rows, "water_body": "per row", "target_class": "per row"},
        )
    )
    slowest = min(r["values_per_s"] for r in recs)
    print(
        json.dumps(
            {
                "summary": True,
                "goal_values_per_s": GOAL_VALUES_PER_S,
                "slowest_values_per_s": slowest,
                "goal_met": slowest >= GOAL_VALUES_PER_S,
            }
        )
    )


if __name__ == "__main__":
    main()
