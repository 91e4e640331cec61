"""Simulated comparisons for calibrating the verdicts of `ddpm_lab.tools.compare` (A/A and power).

A simulated study has a baseline and one variant, each run for replicates 0..n-1, with every
headline metric of `runs.HEADLINE` (ddpm_lab/tools/runs.py). As in the real pipeline, replicate r of both shares its
seeds (`ddpm_lab/runtime/seeds.py`), modelled as a shared per-replicate effect: metric j of replicate r
is u_rj + e_rj (+ effect_j for the variant), u ~ N(0, rho), e ~ N(0, 1 - rho) independent, so
that the correlation of replicate-matched runs is rho. The runs go through the real code path:
`runs.group` then `verdicts.rows`, the functions the command line uses.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np

from ddpm_lab.tools.compare import Run, group, headline_names, rows


def study(
    rng: np.random.Generator,
    n: int,
    rho: float,
    effect: dict | None = None,
    sd: dict | None = None,
    base_map=None,
    variant_map=None,
) -> list:
    """The runs (Run objects) of one simulated study: n replicates of baseline and variant.
    effect / sd: {metric: value} for the variant's mean shift and a metric's scale (default 0 / 1).
    base_map / variant_map: elementwise functions applied to each side's Gaussian values last (for
    example np.exp: log-normal metrics), to model skewed metrics; None leaves them Gaussian."""
    names = headline_names()
    u = rng.standard_normal((n, len(names))) * np.sqrt(rho)
    base = u + rng.standard_normal(u.shape) * np.sqrt(1 - rho)
    var = u + rng.standard_normal(u.shape) * np.sqrt(1 - rho)
    scale = np.array([(sd or {}).get(m, 1.0) for m in names])
    shift = np.array([(effect or {}).get(m, 0.0) for m in names])
    base, var = base * scale, var * scale + shift
    if base_map is not None:
        base = base_map(base)
    if variant_map is not None:
        var = variant_map(var)
    runs = [
        Run(f"b{r}", f"b{r}", {"replicate": r, "variant": "a"}, dict(zip(names, base[r].tolist())), committed=r == 0)
        for r in range(n)
    ]
    runs += [
        Run(f"v{r}", f"v{r}", {"replicate": r, "variant": "b"}, dict(zip(names, var[r].tolist()))) for r in range(n)
    ]
    return runs


def verdicts(runs: list, **how) -> dict:
    """{metric: differs} of the variant, through `verdicts.rows` (prospective counts skipped)."""
    return {r["metric"]: r["differs"] for r in rows(group(runs), prospective=False, **how) if r["id"] == "v1"}


def stops_at(runs: list, start: int = 2, **how) -> tuple[int, dict] | None:
    """Optional stopping: look at the first k replicates of each, k = start, start + 1, ...,
    and stop at the first look where any metric differs: (k, verdicts) then, None if never."""
    n = 1 + max(r.replicate for r in runs)
    for k in range(start, n + 1):
        v = verdicts([r for r in runs if r.replicate < k], **how)
        if any(v.values()):
            return k, v
    return None


@contextmanager
def frozen_heap():
    """statsmodels' multipletests calls gc.collect(), which walks the whole heap (about 0.2 s
    with torch loaded); frozen objects are skipped, so thousands of calls stay cheap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
