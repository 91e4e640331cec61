"""Every sampler of the GMM study judged against the exact mixture, every number with its error
(stage compare_dist). For each eps-predictor (the trained models and the oracle eps*):

- the exact expected Eq. 5 bound and its gap to the oracle's, sum_t w_t e_t, from the per-t
  excess errors e_t that the training stages measured on the saved models (quadrature in 1-D,
  Monte Carlo with its standard error for D > 1: ddpm_lab.gmm.exact.expected_bounds), beside the
  held-out paired Monte-Carlo estimate of the same gap, which must agree with it within its
  standard error;
- W1 and KS against the exact CDF (D > 1: per coordinate, plus sliced W1 over random directions) of
  the sampling seeds pooled, each as a ratio to the median of the same statistic on exact samples
  of the same n, beside that floor's 5-95% band; recovered mode weights against what the
  assignment rule gives exact samples, beside the multinomial floor of that error
  (ddpm_lab.gmm.metrics.compare_samples).
No file I/O here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.gmm.exact import expected_bounds, heldout_gap
from ddpm_lab.gmm.metrics import compare_samples, exact_reference
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.names import ORACLE

if TYPE_CHECKING:
    from ddpm_lab.gmm.params import CompareConfig

QUADRATURE = "Gauss-Kronrod quadrature over the exact q(x_t), panels per component (error: sum |K - G| + allowances)"


def judge_samplers(
    models: dict,
    samples: dict[str, np.ndarray],
    mixture: GaussianMixture,
    diffusion: GaussianDiffusion,
    tables: dict,
    heldout: np.ndarray,
    entropy: float,
    cfg: CompareConfig,
) -> dict[str, tuple[dict, dict]]:
    """{name: (headline, details)} for each eps-predictor of models ({name: eps_model}, the oracle
    among them as names.ORACLE), JSON-serialisable: samples {name: x0 (S, n, D)}, one S and n for
    all; tables {name: the eps_error table of each trained model}; heldout (N, D) held-out draws
    (the first cfg.nll_n of them, all if 0), scored on the same (x_t, eps) draws for every model
    (seed cfg.seed); the floors drawn for the pooled size S * n (numpy generator cfg.seed)."""
    if cfg.nll_n:
        heldout = heldout[: cfg.nll_n]
    n_seeds, n = next(iter(samples.values())).shape[:2]
    # The exact expected bound (Eq. 5) of each saved model: the oracle's plus sum_t w_t e_t.
    oracle_bound, oracle_bound_err, gaps = expected_bounds(diffusion, mixture, tables)
    gaps[ORACLE] = (0.0, 0.0)

    # The same gap estimated on held-out data, paired (same x_t and eps draws for every model).
    x0 = torch.as_tensor(heldout, dtype=torch.float32)
    nll = {name: diffusion.nll_bound_rows(m, x0, cfg.nll_batch, cfg.seed) for name, m in models.items()}

    # Floors of the sampled statistics: exact samples of the pooled size S * n.
    reference = exact_reference(mixture, n_seeds * n, cfg.floor_draws, cfg.directions, np.random.default_rng(cfg.seed))

    judged = {}
    for name in models:
        headline, details = compare_samples(samples[name], mixture, **reference)
        gap, gap_err = gaps[name]
        held = {"n": int(x0.shape[0]), **heldout_gap(nll[name], nll[ORACLE], gap, gap_err)}  # oracle: 0, z None
        judged[name] = (
            {"bound_gap": gap, "gap_err": gap_err, **headline},
            {
                "model": name,
                "n_per_seed": int(n),
                "n_seeds": int(n_seeds),
                "entropy": entropy,
                "expected_bound": {
                    "model": oracle_bound + gap,
                    "oracle": oracle_bound,
                    "gap_to_oracle": gap,
                    "gap_err": gap_err,
                    "oracle_err": oracle_bound_err,
                    "method": "Monte Carlo (standard errors)" if mixture.dim > 1 else QUADRATURE,
                },
                "heldout_paired_estimate": held,
                **details,
            },
        )
        print(
            f"compare_dist: {name}: bound gap {gap:.5f} +- {gap_err:.1g} nats (held-out {held['gap_to_oracle']:.5f}"
            f" +- {held['gap_to_oracle_se']:.5f}); W1 x{headline['w1_ratio']:.2f} (floor p95 x{headline['w1_p95']:.2f}),"
            f" KS x{headline['ks_ratio']:.2f} (p95 x{headline['ks_p95']:.2f}), mode error {headline['mode_err']:.4f}"
            f" (p95 {headline['mode_p95']:.4f})"
        )
    return judged
