"""Every sampler of the GMM study judged against the exact mixture, every number with its error
(stage compare_dist). For each eps-predictor (the trained models and the oracle eps*):

- the exact expected Eq. 5 bound and its gap to the oracle's, sum_t w_t e_t, from the per-t
  excess errors e_t that the training stages measured on the saved models (quadrature in 1-D,
  Monte Carlo with its standard error for D > 1: ddpm_lab.gmm.exact.expected_bounds; a model with
  a learned variance: its own bound, ddpm_lab.gmm.variance.model_bound, less the oracle's), beside the
  held-out paired Monte-Carlo estimate of the same gap, which must agree with it within its
  standard error;
- W1 and KS against the exact CDF (D > 1: per coordinate, plus sliced W1 over random directions) of
  the sampling seeds pooled, each as a ratio to the median of the same statistic on exact samples
  of the same n, beside that floor's 5-95% band; recovered mode weights against what the
  assignment rule gives exact samples, beside the multinomial floor of that error
  (ddpm_lab.gmm.metrics.compare_samples);
- in 1-D, the same distances of the sampler's output distribution itself, free of sampling noise:
  the chain propagated on a grid (ddpm_lab.gmm.propagate) gives the exact KL(q || p_theta), W1,
  KS (also as ratios to the same floors' medians) and mode weights, each with its grid error, and
  the Monte-Carlo draws are tested against it (KS test). For Algorithm 2 the bound's p_theta(x_0)
  (with the decoder's sigma_1) is propagated too, and its KL(q || p_theta) is checked against the
  chain rule of the bound: KL <= E_q[L] - H(q) = the oracle's variational gap + the model's gap.
No file I/O here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import stats

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.gmm import propagate
from ddpm_lab.gmm.exact import expected_bounds, heldout_gap
from ddpm_lab.gmm.metrics import compare_samples, exact_reference
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.names import ORACLE
from ddpm_lab.gmm.variance import model_bound

if TYPE_CHECKING:
    from ddpm_lab.gmm.params import CompareConfig

QUADRATURE = "Gauss-Kronrod quadrature over the exact q(x_t), panels per component (error: sum |K - G| + allowances)"


OUTPUT = "the sampler's output (Algorithm 2 returns x_0 = mu_theta(x_1, 1), without noise at the last step)"
DECODER = "the bound's p_theta(x_0): Algorithm 2 with the decoder N(x_0; mu_theta(x_1, 1), sigma_1^2) of L_0 (Eq. 5)"


def exact_sampled(
    diffusion: GaussianDiffusion,
    eps_model,
    sampler: SamplerConfig,
    mixture: GaussianMixture,
    pooled: np.ndarray,
    medians: dict[str, float],
    kl_upper: tuple[float, float] | None,
) -> tuple[dict, dict, propagate.Propagated]:
    """The exact distances of the sampler's output from a 1-D mixture (ddpm_lab.gmm.propagate):
    (headline, details, the output's Propagated). medians: the floor medians of w1 and ks at the
    pooled n (the ratios' denominators); pooled (N,): the Monte-Carlo draws of the same sampler,
    KS-tested against the propagated CDF; kl_upper (value, err): E_q[L] - H(q), the bound the
    decoder's KL must respect (Algorithm 2 only: decoder propagated when given)."""
    decoder = kl_upper is not None
    docs, props = propagate.measures(diffusion, eps_model, sampler, mixture, decoder=decoder)
    out = docs["output"]
    for key in ("w1", "ks"):
        out[f"{key}_ratio"] = out[key] / medians[key]
        out[f"{key}_ratio_err"] = out[f"{key}_err"] / medians[key]
    out["describes"] = OUTPUT
    test = stats.kstest(pooled, lambda v: propagate.cdf_at(props["output"], v))
    details = {
        "sampler": sampler.describe(diffusion.T),
        "output": out,
        "samples_vs_propagated": {"n": int(pooled.size), "ks": float(test.statistic), "p_value": float(test.pvalue)},
        "method": propagate.METHOD,
    }
    if decoder:
        dec = docs["decoder"]
        dec["describes"] = DECODER
        upper, upper_err = kl_upper
        dec["kl_upper"] = upper
        dec["kl_upper_err"] = upper_err
        dec["kl_within_upper"] = bool(dec["kl"] - dec["kl_err"] <= upper + upper_err)
        details["decoder"] = dec
    headline = {
        "exact_kl": out["kl"],
        "exact_w1_ratio": out["w1_ratio"],
        "exact_ks_ratio": out["ks_ratio"],
        "exact_mode_err": out["mode_err"],
    }
    return headline, details, props["output"]


def judge_samplers(
    models: dict,
    samples: dict[str, np.ndarray],
    mixture: GaussianMixture,
    diffusion: GaussianDiffusion,
    tables: dict,
    heldout: np.ndarray,
    entropy: float,
    cfg: CompareConfig,
    sampler: SamplerConfig | None = None,
) -> dict[str, tuple[dict, dict, propagate.Propagated | None]]:
    """{name: (headline, details, exact)} for each eps-predictor of models ({name: eps_model}, the
    oracle among them as names.ORACLE), headline and details JSON-serialisable: samples {name: x0
    (S, n, D)}, one S and n for all, drawn by `sampler` (default Algorithm 2); tables {name: the
    eps_error table of each trained model}; heldout (N, D) held-out draws (the first cfg.nll_n of
    them, all if 0), scored on the same (x_t, eps) draws for every model (seed cfg.seed); the floors
    drawn for the pooled size S * n (numpy generator cfg.seed). exact: the sampler's propagated output
    distribution (1-D; None for D > 1)."""
    sampler = sampler or SamplerConfig()
    if cfg.nll_n:
        heldout = heldout[: cfg.nll_n]
    n_seeds, n = next(iter(samples.values())).shape[:2]
    # The exact expected bound (Eq. 5) of each saved model: the oracle's plus sum_t w_t e_t.
    oracle_bound, oracle_bound_err, gaps = expected_bounds(diffusion, mixture, tables)
    gaps[ORACLE] = (0.0, 0.0)
    for name, m in models.items():  # a learned Sigma: its own exact bound (ddpm_lab.gmm.variance.model_bound)
        if getattr(m, "learned_variance", False):
            bound, bound_err = model_bound(diffusion, mixture, m, rng=np.random.default_rng([cfg.seed, 3]))
            gaps[name] = (bound - oracle_bound, bound_err + oracle_bound_err)

    # The same gap estimated on held-out data, paired (same x_t and eps draws for every model).
    x0 = torch.as_tensor(heldout, dtype=torch.float32)
    nll = {name: diffusion.nll_bound_rows(m, x0, cfg.nll_batch, cfg.seed) for name, m in models.items()}

    # Floors of the sampled statistics: exact samples of the pooled size S * n.
    reference = exact_reference(mixture, n_seeds * n, cfg.floor_draws, cfg.directions, np.random.default_rng(cfg.seed))

    algorithm2 = sampler.sampler == "ddpm" and sampler.n_steps(diffusion.T) == diffusion.T
    judged = {}
    for name in models:
        headline, details = compare_samples(samples[name], mixture, **reference)
        gap, gap_err = gaps[name]
        held = {"n": int(x0.shape[0]), **heldout_gap(nll[name], nll[ORACLE], gap, gap_err)}  # oracle: 0, z None
        exact, prop = {}, None
        if mixture.dim == 1:
            # KL(q || p_theta) <= E_q[L] - H(q) = (oracle bound - H(q)) + gap (the bound's chain rule)
            upper = (oracle_bound + gap - entropy, oracle_bound_err + gap_err) if algorithm2 else None
            medians = {key: details[key]["floor"]["median"] for key in ("w1", "ks")}
            exact, details["exact_sampled"], prop = exact_sampled(
                diffusion, models[name], sampler, mixture, samples[name].reshape(-1), medians, upper
            )
        else:
            details["exact_sampled"] = None  # grid propagation is 1-D
        judged[name] = (
            {"bound_gap": gap, "gap_err": gap_err, **headline, **exact},
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
            prop,
        )
        print(
            f"compare_dist: {name}: bound gap {gap:.5f} +- {gap_err:.1g} nats (held-out {held['gap_to_oracle']:.5f}"
            f" +- {held['gap_to_oracle_se']:.5f}); W1 x{headline['w1_ratio']:.2f} (floor p95 x{headline['w1_p95']:.2f}),"
            f" KS x{headline['ks_ratio']:.2f} (p95 x{headline['ks_p95']:.2f}), mode error {headline['mode_err']:.4f}"
            f" (p95 {headline['mode_p95']:.4f})"
            + (
                f"; exact: KL {exact['exact_kl']:.2e} nats, W1 x{exact['exact_w1_ratio']:.2f}, KS"
                f" x{exact['exact_ks_ratio']:.2f}, mode error {exact['exact_mode_err']:.4f}"
                if exact
                else ""
            )
        )
    return judged
