"""ddpm_lab.tools.where_in_t: the exact bound gap split into ranges of t, per variant over
replicates, and Holm's verdicts on the paired differences: the parts sum to the gap, a shift in one
range is found in that range alone, and when nothing differs the table is wrong (any "differs") in
at most its stated 5% of A/A simulations. Reading real runs through dvc.api:
tests/slow/test_sweep_local.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddpm_lab.tools.simulate import frozen_heap
from ddpm_lab.tools.where_in_t import COLUMNS, range_gaps, table

T = 100
T0S = [0, 10, 30, 60, 100]
RANGES = [(1, 10), (11, 30), (31, 60), (61, 100)]


def eps_error(e: np.ndarray) -> pd.DataFrame:
    t = np.arange(1, T + 1)
    return pd.DataFrame(
        {
            "t": t,
            "alpha_bar": np.exp(-0.05 * t),
            "weight_eq12": 1.0 / t,
            "mmse": 1.0,
            "mmse_err": 0.0,
            "eps_error": e,
            "eps_error_err": 0.0,
        }
    )


def replicate_tables(rng, n_variants: int, n_reps: int = 5, shift: dict | None = None) -> dict:
    """{variant: {replicate: range_gaps}}: e_t = a smooth profile x a shared replicate effect x
    independent noise per run and t; shift {(variant index, range): factor} scales e_t there."""
    base = 0.01 * np.exp(-np.arange(1, T + 1) / 40)
    effect = rng.lognormal(0, 0.3, size=n_reps)
    out = {}
    for v in range(n_variants):
        runs = {}
        for r in range(n_reps):
            e = base * effect[r] * rng.lognormal(0, 0.2, size=T)
            for (sv, (lo, hi)), factor in (shift or {}).items():
                if sv == v:
                    e[lo - 1 : hi] *= factor
            gap = e / np.arange(1, T + 1)  # w_t e_t with w_t = 1 / t, as eps_error() writes it
            runs[r] = {(lo, hi): float(gap[lo - 1 : hi].sum()) for lo, hi in RANGES}  # = range_gaps, faster
        out["baseline" if v == 0 else f"v{v}"] = runs
    return out


def test_range_gaps_split_the_gap_into_the_switch_point_ranges():
    e = np.linspace(0.001, 0.002, T)
    gaps = range_gaps(eps_error(e), T0S)
    assert list(gaps) == RANGES
    assert sum(gaps.values()) == pytest.approx(float(np.sum(e / np.arange(1, T + 1))), rel=1e-12)
    assert gaps[(11, 30)] == pytest.approx(float(np.sum(e[10:30] / np.arange(11, 31))), rel=1e-12)


def test_a_shift_in_one_range_differs_there_alone():
    gaps = replicate_tables(np.random.default_rng(1), 2, shift={(1, (11, 30)): 3.0})
    e = np.full(T, 0.001)
    assert replicate_tables(np.random.default_rng(2), 1)["baseline"][0].keys() == range_gaps(eps_error(e), T0S).keys()
    rows = table(gaps)
    assert list(rows.columns) == COLUMNS and len(rows) == 2 * len(RANGES)
    tested = rows[rows["variant"] == "v1"].set_index("t_from")
    assert tested["differs"].tolist() == [False, True, False, False], tested
    assert tested.loc[11, "low"] > 0 and tested.loc[11, "p_holm"] <= 0.05
    base = rows[rows["variant"] == "baseline"]
    assert base["diff"].isna().all() and not base["differs"].any()
    assert base["share"].sum() == pytest.approx(1.0)


def test_family_wise_error_rate_when_nothing_differs():
    """A/A: 3 variants drawn as the baseline is (the same replicate effects, fresh noise), 12
    paired tests a table; the table's family-wise error rate must stay at most 5% (plus 3
    Monte Carlo standard errors of 400 tables)."""
    rng = np.random.default_rng(0)
    n_sim = 400
    with frozen_heap():  # statsmodels' Holm calls gc.collect() (ddpm_lab/tools/simulate.py)
        wrong = sum(bool(table(replicate_tables(rng, 4))["differs"].any()) for _ in range(n_sim))
    rate = wrong / n_sim
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_sim), f"family-wise error {rate:.3f} over {n_sim} A/A tables"
