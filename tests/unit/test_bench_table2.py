"""benchmarks/bench_table2.py's verdicts: the compare tool's tests over the table's rows and columns,
their family-wise false rate when no row differs (A/A, through the bench's own `verdicts`), and the
table the docs render from its results."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ddpm_lab.tools import simulate

from benchmarks import bench_table2 as B
from benchmarks import table2_runs as R

SIMS = 1000


def records(rng: np.random.Generator, reps: int = 5, shift: dict | None = None, rho: float = 0.6) -> list[dict]:
    """Runs of every row of R.VARIANTS: each metric a shared per-replicate effect (correlation rho
    between rows, as replicate-matched runs have) plus the row's own noise, plus shift[(row, metric)]."""
    shift = shift or {}
    shared = rng.standard_normal((reps, len(R.METRICS)))
    out = []
    for name in R.VARIANTS:
        own = rng.standard_normal((reps, len(R.METRICS)))
        for r in range(reps):
            values = np.sqrt(rho) * shared[r] + np.sqrt(1 - rho) * own[r]
            rec = {"variant": name, "replicate": r}
            rec |= {m: float(v) + shift.get((name, m), 0.0) for m, v in zip(R.METRICS, values)}
            out.append(rec)
    return out


@pytest.mark.stage  # hundreds of simulated tables: seconds, so not in the fast default tier
def test_aa_no_row_differs_in_at_most_5_percent_of_tables():
    """Every row equal in distribution to the first, 5 replicates, 5 columns (25 tests, Holm): the
    share of tables with any 'differs' stays within 5% (one-sided binomial limit at 1%)."""
    rng = np.random.default_rng(0)
    k = 0
    with simulate.frozen_heap():  # statsmodels' Holm collects garbage on every call: cheap on a frozen heap
        for _ in range(SIMS):
            table, _ = B.verdicts(records(rng), R.VARIANTS, R.METRICS, "bound_gap", echo=False)
            k += any(r["differs"] for r in table)
    print(f"A/A, {len(R.VARIANTS)} rows x {len(R.METRICS)} columns, 5 replicates, Holm 5%: {k}/{SIMS} false tables")
    assert stats.binomtest(k, SIMS, 0.05, alternative="greater").pvalue >= 0.01


def test_a_shifted_row_is_found_and_a_missing_column_is_left_out():
    rng = np.random.default_rng(1)
    recs = records(rng, shift={(R.LEARNED, "bound_gap"): 5.0})
    for r in recs:  # the learned row's nfe missing in two runs (not inside the band at any S)
        if r["variant"] == R.LEARNED and r["replicate"] < 2:
            del r["nfe"]
    table, targets = B.verdicts(recs, R.VARIANTS, R.METRICS, "bound_gap", echo=False)
    assert set(targets) == {R.LEARNED, R.PRECONDITIONED}  # each learned row against fixed beta_t
    target = targets[R.LEARNED]
    hit = next(r for r in table if r["variant"] == R.LEARNED and r["metric"] == "bound_gap")
    assert hit["differs"] and hit["diff"] > 3
    nfe = next(r for r in table if r["variant"] == R.LEARNED and r["metric"] == "nfe")
    assert nfe["n"] == 3
    assert target.diff > 3 and target.method == "paired"
