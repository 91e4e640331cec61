"""Deciding whether a variant differs from its baseline, at a stated family-wise error rate.

A *test* compares one metric of one variant with the baseline over their replicates:

- **paired** where both have replicate r for at least two r: replicate r folds the same seed
  into every variant (`ddpm_lab/runtime/seeds.py`), so replicate-matched runs share their training and
  sampling randomness; the differences d_r = variant_r - baseline_r get a one-sample t test and
  interval (`scipy.stats.ttest_1samp`), and replicates without a partner are left out;
- **Welch** otherwise: the unpaired two-sample t test with unequal variances
  (`scipy.stats.ttest_ind(equal_var=False)`) over all replicates of each.

A *family* is every test of one compare call (metrics x variants), or, with a declared primary
metric, that metric's tests alone. Holm's step-down procedure (Holm 1979, through statsmodels'
`multipletests`) adjusts the family's p-values so that the chance of calling *any* difference
real when none is stays at most alpha, whatever the dependence between the tests.

That holds when the number of replicates was fixed before looking. Replicates added one at a
time until a verdict appears need a *sequential* plan: the maximum number of pairs N is declared
first, and the p-value at every look is a group-sequential p-value with a Pocock-type boundary
(Pocock 1977; Jennison & Turnbull 2000, ch. 2): p_seq = P_0(min_{k=2..N} p_k <= min_{k<=n} p_k),
the null chance that the smallest paired-t p-value over all N planned looks is at most the
smallest one seen in the first n. Under Gaussian differences of mean 0 the paired t statistics
of the looks are pivotal (their law does not depend on the variance), so that distribution is
computed once by simulation (`SEQ_SIMS` draws, fixed seed). p_seq never grows as pairs are
added, and P_0(p_seq <= a at any look up to N) = P_0(min over all N looks <= its a-quantile) = a;
Holm over these p-values keeps the family-wise rate under any stopping rule within N.

`rows` makes every test of a compare call (the variants of `ddpm_lab/tools/runs.py`) and gives
each its verdict; `ddpm_lab/tools/render.py` prints them with the guarantee and its conditions.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from ddpm_lab.runtime.params import DataError
from ddpm_lab.tools.runs import metric_names

ALPHA = 0.05  # family-wise error rate of the verdicts
LEVEL = 0.95  # the raw intervals printed beside them, for reading
POWER = 0.8  # the prospective replicate count: this chance of detecting the observed difference
SEQ_MAX = (3, 30)  # the declared maximum of a sequential plan: at least 3 pairs, at most 30
SEQ_SIMS = 200_000  # null draws of a plan's looks (the p-value's Monte-Carlo error: about 2% at 0.007)
SEQ_SEED = 20_240_601  # fixed: the same verdict for the same runs, on every machine


@dataclass(frozen=True)
class Test:
    """One metric of one variant against the baseline.

    method: "paired" or "welch"; n: pairs (paired) or the smaller group's size (welch); diff:
    mean difference (variant - baseline); interval: its raw `LEVEL` t interval (None when no test
    is possible); p: the raw two-sided p-value, or the sequential one under a sequential plan
    (None: no test); sd: the standard deviation of the differences (paired) or the pooled one
    (welch), for the prospective replicate count."""

    method: str
    n: int
    diff: float
    interval: tuple[float, float] | None
    p: float | None
    sd: float | None


def _t_test(diff: float, se: float, df: float, level: float) -> tuple[tuple[float, float], float]:
    """The two-sided t test of a mean difference `diff` with standard error `se`: (interval, p).
    With no spread (se = 0), the interval is the point and p is 1 at 0, else 0."""
    if se == 0:
        return (diff, diff), (1.0 if diff == 0 else 0.0)
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    return (diff - half, diff + half), float(2 * stats.t.sf(abs(diff) / se, df))


def paired_test(d, level: float = LEVEL) -> Test:
    """The one-sample t test of replicate-matched differences d (n >= 2): ttest_1samp(d, 0)."""
    d = np.asarray(d, dtype=float)
    sd = float(d.std(ddof=1))
    diff = float(d.mean())
    interval, p = _t_test(diff, sd / math.sqrt(d.size), d.size - 1, level)
    return Test("paired", int(d.size), diff, interval, p, sd)


def welch_test(a, b, level: float = LEVEL) -> Test:
    """Welch's unequal-variance t test of mean(a) - mean(b), each of size >= 2."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = float(a.mean() - b.mean())
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else a.size + b.size - 2
    interval, p = _t_test(diff, se, df, level)
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return Test("welch", int(min(a.size, b.size)), diff, interval, p, pooled)


def _prefix_p(d: np.ndarray) -> np.ndarray:
    """The two-sided paired-t p-values of the first k = 2..n columns of d (..., n): (..., n - 1).
    A prefix without spread gets p = 1 if its mean is 0, else 0 (as `paired_test`)."""
    k = np.arange(2, d.shape[-1] + 1)
    s1 = np.cumsum(d, -1)[..., 1:]
    mean = s1 / k
    dev = np.cumsum(d * d, -1)[..., 1:] - s1 * mean  # sum of squared deviations of each prefix
    se = np.sqrt(np.clip(dev, 0.0, None) / (k - 1) / k)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(mean) / se, k - 1)
    return np.where(se > 0, p, np.where(mean == 0, 1.0, 0.0))


@functools.lru_cache(maxsize=8)
def _min_p_null(n_max: int) -> np.ndarray:
    """The sorted null draws of min_{k=2..n_max} p_k, p_k the paired-t p-value of the first k of
    n_max standard normal differences (`SEQ_SIMS` draws from a fixed seed)."""
    rng = np.random.default_rng(SEQ_SEED)
    chunk = 20_000
    draws = [_prefix_p(rng.standard_normal((chunk, n_max))).min(-1) for _ in range(SEQ_SIMS // chunk)]
    return np.sort(np.concatenate(draws))


def sequential_p(d, n_max: int) -> float:
    """The group-sequential p-value of the paired differences d (in the order the replicates
    were added, 2 <= len(d) <= n_max) under a plan of at most n_max pairs (module docstring).
    Conservative by one draw: (#{null min <= observed} + 1) / (SEQ_SIMS + 1)."""
    d = np.asarray(d, dtype=float)
    if not 2 <= d.size <= n_max:
        raise ValueError(f"{d.size} pairs: expected 2 to {n_max} under a plan of at most {n_max}")
    null = _min_p_null(n_max)
    return float((np.searchsorted(null, _prefix_p(d).min(), side="right") + 1) / (null.size + 1))


def difference(variant: dict, baseline: dict, level: float = LEVEL, sequential: int | None = None) -> Test | None:
    """The test of variant against baseline, each {replicate: value}: paired over the replicates
    both have when there are at least 2 such pairs, else Welch over all (None if either side has
    fewer than 2). With `sequential` = N (a declared maximum of pairs), only the paired test is
    made, its p-value the group-sequential one, over the matched replicates in id order, which must
    be 0..n-1 (a gap is a ValueError: an id filled in later would reorder the looks and could raise
    p_seq); more than N pairs is a ValueError."""
    both = sorted(set(variant) & set(baseline))
    if sequential is not None:  # the looks are prefixes of the ids' order: a gap would let a later id reorder them
        missing = sorted(set(range(max(both, default=-1) + 1)) - set(both))
        if missing:
            raise ValueError(
                f"matched replicates {both}: the sequential plan looks at replicate ids 0..n-1 in order, "
                f"and {', '.join(map(str, missing))} {'is' if len(missing) == 1 else 'are'} missing: "
                f"expected contiguous ids from 0 (run the missing ones first)"
            )
    if len(both) >= 2:
        d = [variant[r] - baseline[r] for r in both]
        test = paired_test(d, level)
        if sequential is not None:
            if len(d) > sequential:
                raise ValueError(
                    f"{len(d)} matched replicates: expected at most {sequential}, the declared maximum "
                    f"of the sequential plan (a larger one must be declared before adding replicates)"
                )
            test = Test(test.method, test.n, test.diff, test.interval, sequential_p(d, sequential), test.sd)
        return test
    if sequential is not None or len(variant) < 2 or len(baseline) < 2:
        return None
    return welch_test(list(variant.values()), list(baseline.values()), level)


def holm(p_values, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment of a family's p-values: (reject (m,) bool, adjusted p (m,))."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return np.zeros(0, dtype=bool), np.zeros(0)
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return reject, adjusted


def replicates_for_power(test: Test, alpha: float, power: float = POWER) -> int | None:
    """Prospective: about how many replicates per side (pairs, for a paired test) a fixed-n test
    at level alpha needs to detect a true difference equal to the observed one with `power`,
    taking the observed standard deviation as the truth. None when undefined (no spread, no
    difference) or beyond 10,000. An estimate for planning the next run, not a verdict."""
    if test.sd is None or not test.sd > 0 or test.diff == 0:
        return None
    effect = abs(test.diff) / test.sd
    solver = TTestPower() if test.method == "paired" else TTestIndPower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            n = float(
                np.ravel(solver.solve_power(effect_size=effect, alpha=alpha, power=power, alternative="two-sided"))[0]
            )
        except (ValueError, RuntimeError, FloatingPointError):
            return None
    if not math.isfinite(n) or n > 10_000:
        return None
    return max(2, math.ceil(n))


def mean_ci(values, level: float = LEVEL) -> tuple[float, float | None]:
    """The mean and the half-width of its Student-t interval (None for n < 2)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), None
    return float(x.mean()), float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def _vs_baseline(metric: str, i: int, v, base, level: float, sequential: int | None) -> Test | None:
    try:
        return difference(v.by_replicate(metric), base.by_replicate(metric), level, sequential)
    except ValueError as e:
        raise DataError(f"--sequential {sequential}: {metric} of v{i} ({v.name}): {e}") from None


def rows(
    variants: list,
    level: float = LEVEL,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
    prospective: bool = True,
    metrics: list[str] | None = None,
) -> list[dict]:
    """One row per (metric, variant): n, mean and its CI half-width; for a variant, its difference
    from the baseline (variants[0]; paired or Welch: `difference`) with the raw interval and
    p-value, the Holm-adjusted p-value over the family, and the verdict.

    The family is every test made (all headline metrics x variants), or the tests of `primary`
    alone; `differs` is True where Holm rejects at family-wise level alpha. With `sequential` = N
    the p-values are group-sequential under a declared maximum of N pairs (only paired tests).
    `prospective`: also estimate, for each difference not shown, the replicates that would show
    it (`n_for_power`; no part of the verdicts, and the slow part of this function). metrics: the
    metrics to test (default: the headline metrics the runs have, runs.metric_names)."""
    out = []
    for metric in metrics if metrics is not None else metric_names(variants):
        for i, v in enumerate(variants):
            x = v.values(metric)
            if x.size == 0:
                continue
            m, half = mean_ci(x, level)
            row = {"metric": metric, "id": f"v{i}", "variant": v.name, "n": int(x.size), "mean": m, "half": half}
            row |= dict.fromkeys(("diff", "interval", "method", "pairs", "sd", "p", "p_adj"))
            row |= {"tested": False, "differs": False, "verdict": "", "n_for_power": None}
            test = _vs_baseline(metric, i, v, variants[0], level, sequential) if i else None
            if test is not None:
                row.update({k: getattr(test, k) for k in ("diff", "interval", "method", "sd", "p")})
                row["pairs"] = test.n if test.method == "paired" else None
            out.append(row)
    family = [r for r in out if r["p"] is not None and (primary is None or r["metric"] == primary)]
    reject, adjusted = holm([r["p"] for r in family], alpha)
    for r, rej, adj in zip(family, reject, adjusted):
        r.update(tested=True, differs=bool(rej), p_adj=float(adj))
    proc = f"Holm {100 * alpha:g}%" if len(family) > 1 else f"{100 * alpha:g}%"
    for r in (r for r in out if r["id"] != "v0"):
        method = {"paired": "paired", "welch": "Welch", None: ""}[r["method"]]
        if r["tested"]:
            r["verdict"] = f"{'differs' if r['differs'] else 'not shown'} ({proc}, {method})"
            if prospective and not r["differs"] and not sequential:
                test = Test(r["method"], 0, r["diff"], r["interval"], r["p"], r["sd"])
                r["n_for_power"] = replicates_for_power(test, alpha / len(family))
        elif r["p"] is not None:
            r["verdict"] = f"not tested (secondary; {method})"
        else:
            r["verdict"] = "no pairs: not tested" if sequential and r["n"] >= 2 else "n<2: not tested"
    return out
