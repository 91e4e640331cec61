"""Where in t the sampled distribution is lost: the hybrid-oracle diagnostic.

Algorithm 2 (Ho et al. 2020) is run with an eps-predictor stitched from two: the exact eps* of the
mixture (the oracle) and the trained Eq. 12 model, switching at a timestep t0.

- "model at t <= t0" (MODEL_LOW): the model for t <= t0, the oracle above. At t0 = 0 it is the
  oracle throughout, at t0 = T the model throughout; as t0 grows, the model takes over the last
  (least noisy) steps first.
- "model at t > t0" (MODEL_HIGH): the model for t > t0, the oracle at and below. At t0 = T it is the
  oracle throughout, at t0 = 0 the model throughout; as t0 falls, the model takes over the first
  (noisiest) steps first.

Every hybrid draws from the same seeds (replicate folded in, as in stage sample), and its pooled
draws are judged as compare_dist judges samples (ddpm_lab.gmm.metrics.compare_samples), against
one floor. Where a curve leaves the floor's band locates the timesteps whose model error costs the
sampled distribution, to be read beside the per-t excess error e_t of eps_error_by_t.png. In 1-D
each hybrid's output distribution is also propagated exactly (ddpm_lab.gmm.propagate: columns
exact_*), so where in t the distribution is lost is read without sampling noise too.
No file I/O here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ddpm_lab.core.diffusion import EpsModel, GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, eps_caller, sample_seeds
from ddpm_lab.gmm import propagate
from ddpm_lab.gmm.names import EQ12, HYBRIDS, MODEL_HIGH, MODEL_LOW
from ddpm_lab.gmm.names import HYBRID_LABELS as LABELS
from ddpm_lab.runtime.params import DataError
from ddpm_lab.runtime.stats import band

if TYPE_CHECKING:
    from ddpm_lab.gmm.mixture import GaussianMixture

__all__ = [
    "HYBRIDS",
    "LABELS",
    "MODEL_HIGH",
    "MODEL_LOW",
    "HybridEps",
    "gap_shares",
    "hybrid",
    "hybrid_table",
    "exact_columns",
    "switch_points",
]


class HybridEps:
    """eps(x_t, t) from `low` for t <= t0 and from `high` for t > t0: an EpsModel, with the
    `sampling_eps(ts)` of the sampler's fixed-t batches (each part's own fast path when it has one)."""

    def __init__(self, low: EpsModel, high: EpsModel, t0: int):
        self.low, self.high, self.t0 = low, high, int(t0)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        below = (t <= self.t0).view(-1, *([1] * (x_t.dim() - 1)))
        return torch.where(below, self.low(x_t, t), self.high(x_t, t))

    def sampling_eps(self, ts):
        """Each part's sampling.eps_caller over its own timesteps, built at the first call (the batch
        size is known then)."""
        ts = np.asarray(ts)
        parts = {}

        def eps(x: torch.Tensor, t: int) -> torch.Tensor:
            if not parts:
                parts["low"] = eps_caller(self.low, ts[ts <= self.t0], x.shape[0])
                parts["high"] = eps_caller(self.high, ts[ts > self.t0], x.shape[0])
            return parts["low" if t <= self.t0 else "high"](x, t)

        return eps


def gap_shares(eps_error: pd.DataFrame, t0s) -> pd.DataFrame:
    """Each range of t between consecutive switch points, (t0_i, t0_i+1], with its mean w_t, mean
    e_t and share of the exact bound gap sum_t w_t e_t; eps_error: a training stage's per-t table
    (artifacts.EPS_ERROR_COLUMNS). The ranges always run from 0 to the table's last t, T: switch
    points that stop short of T get a last range up to T, and those beyond T are dropped, so the
    parts always add up to the whole gap (shares summing to 1)."""
    gap = eps_error["weight_eq12"] * eps_error["eps_error"]
    T = int(eps_error["t"].max())
    edges = [0, *sorted({int(t) for t in t0s if 0 < int(t) < T}), T]
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        part = (eps_error["t"] > lo) & (eps_error["t"] <= hi)
        rows.append(
            {
                "t_from": lo + 1,
                "t_to": hi,
                "mean_w": float(eps_error["weight_eq12"][part].mean()),
                "mean_e": float(eps_error["eps_error"][part].mean()),
                "gap": float(gap[part].sum()),
                "share": float(gap[part].sum() / gap.sum()),
            }
        )
    return pd.DataFrame(rows)


def hybrid(model: EpsModel, oracle: EpsModel, kind: str, t0: int) -> HybridEps:
    """The hybrid `kind` (MODEL_LOW or MODEL_HIGH) switching at t0."""
    if kind == MODEL_LOW:
        return HybridEps(model, oracle, t0)
    if kind == MODEL_HIGH:
        return HybridEps(oracle, model, t0)
    raise ValueError(f"unknown hybrid {kind!r}: expected one of {', '.join(HYBRIDS)}")


def exact_columns(diffusion: GaussianDiffusion, eps_model: EpsModel, mixture: GaussianMixture, reference: dict) -> dict:
    """Algorithm 2's output with eps_model propagated exactly (ddpm_lab.gmm.propagate, 1-D): KL(q || p)
    in nats, W1 and KS as ratios to the medians of reference's floors, the mode error, each with its
    grid error (columns exact_<stat> and exact_<stat>_err)."""
    docs, _ = propagate.measures(diffusion, eps_model, SamplerConfig(), mixture)
    o = docs["output"]
    medians = {k: band(np.asarray(reference["floors"][k], dtype=np.float64))["median"] for k in ("w1", "ks")}
    return {
        "exact_kl": o["kl"],
        "exact_kl_err": o["kl_err"],
        **{
            col: o[stat] / medians[stat] if col.endswith("ratio") else o[f"{stat}_err"] / medians[stat]
            for stat in ("w1", "ks")
            for col in (f"exact_{stat}_ratio", f"exact_{stat}_ratio_err")
        },
        "exact_mode_err": o["mode_err"],
        "exact_mode_err_err": o["mode_err_err"],
    }


def switch_points(t0s, T: int) -> list[int]:
    """The t0 values at diffusion.T = T: each min(t0, T), duplicates dropped, ascending."""
    return sorted({min(int(t), T) for t in t0s})


def hybrid_table(
    diffusion: GaussianDiffusion,
    model: EpsModel,
    oracle: EpsModel,
    mixture: GaussianMixture,
    t0s,
    seeds,
    n: int,
    reference: dict,
    replicate: int,
) -> pd.DataFrame:
    """One row per hybrid and t0 of switch_points(t0s, T): Algorithm 2 over all T steps from each
    of seeds (n draws each, pooled), judged against `reference` (metrics.exact_reference of the
    pooled size) as the sampler trade-off judges them (ddpm_lab.gmm.metrics.table_row). Column `model_steps`:
    how many of the T steps the model takes."""
    from ddpm_lab.gmm.metrics import compare_samples, table_row

    T = diffusion.T
    rows = []
    for kind in HYBRIDS:
        for t0 in switch_points(t0s, T):
            x0s, _ = sample_seeds(
                diffusion,
                hybrid(model, oracle, kind, t0),
                (n, mixture.dim),
                seeds,
                replicate,
                sampler=SamplerConfig(),
                desc=f"hybrid {kind} t0={t0}",
            )
            if not np.all(np.isfinite(x0s)):
                raise DataError(
                    f"hybrid {LABELS[kind]} at t0 = {t0} drew non-finite values: expected finite draws "
                    f"(a diverged model? rerun train_{EQ12})"
                )
            r = table_row(kind, "ddpm", T, *compare_samples(x0s, mixture, **reference))
            del r["nfe_per_draw"]
            r = {"hybrid": r.pop("model"), "t0": t0, "model_steps": t0 if kind == MODEL_LOW else T - t0, **r}
            if mixture.dim == 1:
                r.update(exact_columns(diffusion, hybrid(model, oracle, kind, t0), mixture, reference))
            rows.append(r)
            print(
                f"hybrid_oracle: {LABELS[kind]}, t0 = {t0}: W1 x{r['w1_ratio']:.2f}, KS x{r['ks_ratio']:.2f} "
                f"(floor p95 x{r['w1_p95']:.2f}, x{r['ks_p95']:.2f}), mode error {r['mode_err']:.4f} "
                f"(p95 {r['mode_p95']:.4f})"
            )
    return pd.DataFrame(rows)
