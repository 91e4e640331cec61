"""benchmarks/bench_learned_variance.py's verdicts: each learned row less fixed beta_t per training
length, paired by replicate with Holm over the table; their family-wise false rate when nothing
differs (A/A, through the bench's own `table`), and a real difference found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ddpm_lab.tools import simulate

from benchmarks import bench_learned_variance as B

SIMS = 1000


def records(rng: np.random.Generator, reps: int = 5, shift: dict | None = None, rho: float = 0.6) -> list[dict]:
    """Runs of every row at every length of B.STEPS: a shared per-replicate effect (correlation rho
    between rows, as replicate-matched runs have) plus the row's own noise, plus shift[(row, steps)]."""
    shift, out = shift or {}, []
    for steps in B.STEPS:
        shared = rng.standard_normal(reps)
        for key, name in B.ROWS.items():
            own = rng.standard_normal(reps)
            for r in range(reps):
                gap = (
                    0.004
                    + 0.001 * (np.sqrt(rho) * shared[r] + np.sqrt(1 - rho) * own[r])
                    + shift.get((key, steps), 0.0)
                )
                out.append({"variant": name, "replicate": r, "steps": steps, "bound_gap": gap, "train_seconds": 1.0})
    return out


@pytest.mark.stage  # a thousand simulated tables: seconds, so not in the fast default tier
def test_aa_no_learned_row_differs_in_at_most_5_percent_of_tables():
    """Both learned rows equal in distribution to fixed beta_t at every length (2 x 3 paired tests,
    Holm): the share of tables with any 'differs' stays within 5% (one-sided binomial limit at 1%)."""
    rng = np.random.default_rng(0)
    k = 0
    with simulate.frozen_heap():  # statsmodels' Holm collects garbage on every call
        for _ in range(SIMS):
            k += any(r["differs"] for r in B.table(records(rng)))
    print(f"A/A, 2 learned rows x {len(B.STEPS)} lengths, 5 replicates, Holm 5%: {k}/{SIMS} false tables")
    assert stats.binomtest(k, SIMS, 0.05, alternative="greater").pvalue >= 0.01


def test_a_better_learned_row_is_found_at_its_length_only():
    rng = np.random.default_rng(1)
    rows = B.table(records(rng, shift={("preconditioned", 6000): -0.003}))
    assert len(rows) == 2 * len(B.STEPS)
    hit = next(r for r in rows if r["steps"] == 6000 and r["row"] == B.PRECONDITIONED)
    assert hit["differs"] and hit["interval"][1] < 0 and hit["n"] == 5
    assert hit["diff"] == pytest.approx(-0.003, abs=0.0015)
    assert not any(r["differs"] for r in rows if r is not hit)
