"""Where in t a variant moves the Eq. 12 model's exact bound gap, over replicates.

The exact gap of a trained model to the oracle is sum_t w_t e_t (w_t the Eq. 12 weights, e_t =
E||eps_theta(x_t, t) - eps*(x_t, t)||^2 over the exact q(x_t), written per t by the train_eq12
stage). Split at switch points t0 (the hybrid diagnostic's, sampler_tradeoff.hybrid_t0), each
range of t holds a part of that gap (ddpm_lab.gmm.hybrid.gap_shares). For every variant and range:
the mean part over the replicates with its Student-t interval and, against the baseline, the
paired difference (ddpm_lab.tools.verdicts.difference) with its raw interval, its p-value and
Holm's verdict over every (variant, range) test of the table at family-wise level alpha, as
`ddpm-lab compare` decides its metrics. tests/unit/test_where_in_t.py measures the family-wise
error rate when nothing differs.

`read_runs` reads each run's per-t table at its rev through dvc.api (the runs of a replicates file
saved by `ddpm-lab compare --save`; their outputs must be in the DVC cache or a remote).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from ddpm_lab.gmm.hybrid import gap_shares
from ddpm_lab.tools.compare import Variant, mean_ci
from ddpm_lab.tools.verdicts import ALPHA, LEVEL, difference, holm

EPS_ERROR = "metrics/details/eps_error_eq12.csv"  # the train_eq12 stage's per-t exact excess errors
COLUMNS = ["variant", "t_from", "t_to", "n", "mean", "half", "share", "diff", "low", "high", "p", "p_holm", "differs"]


def range_gaps(eps_error: pd.DataFrame, t0s) -> dict[tuple[int, int], float]:
    """{(t_from, t_to): the part of sum_t w_t e_t over that range} for one model."""
    return {(int(r.t_from), int(r.t_to)): float(r.gap) for r in gap_shares(eps_error, t0s).itertuples()}


def table(gaps: dict[str, dict], level: float = LEVEL, alpha: float = ALPHA) -> pd.DataFrame:
    """gaps: {variant name: {replicate: range_gaps(...)}}, the baseline first. One row per variant
    and range (COLUMNS): mean part (nats) +- half-width, mean share of the variant's gap, and for
    each other variant the paired difference from the baseline [low, high], p and Holm's verdict
    over the whole table's tests."""
    names = list(gaps)
    if not names:
        return pd.DataFrame(columns=COLUMNS)
    ranges = list(next(iter(gaps[names[0]].values())))
    rows, tests = [], []
    for name in names:
        per_rep = gaps[name]
        totals = {r: sum(g.values()) for r, g in per_rep.items()}
        for rng in ranges:
            values = {r: g[rng] for r, g in per_rep.items()}
            m, half = mean_ci(list(values.values()), level)
            share = float(np.mean([values[r] / totals[r] for r in values])) if values else np.nan
            row = dict(zip(COLUMNS, [name, rng[0], rng[1], len(values), m, half, share] + [None] * 5 + [False]))
            if name != names[0]:
                base = {r: g[rng] for r, g in gaps[names[0]].items()}
                test = difference(values, base, level)
                if test is not None:
                    row.update(diff=test.diff, low=test.interval[0], high=test.interval[1], p=test.p)
                    tests.append(len(rows))
            rows.append(row)
    reject, adjusted = holm([rows[i]["p"] for i in tests], alpha)
    for i, rej, p_adj in zip(tests, reject, adjusted):
        rows[i].update(p_holm=float(p_adj), differs=bool(rej))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_runs(variants: list[Variant], t0s, repo: str | None = None) -> dict[str, dict]:
    """{variant name: {replicate: range_gaps}} for the runs of `variants` (ddpm_lab.tools.runs.group
    of a saved replicates file or of `dvc exp show`), each run's per-t table read at its rev from
    the DVC repository `repo` (default: the working directory's)."""
    import dvc.api

    return {
        v.name: {
            r.replicate: range_gaps(pd.read_csv(io.StringIO(dvc.api.read(EPS_ERROR, repo=repo, rev=r.rev))), t0s)
            for r in v.runs
        }
        for v in variants
    }
