"""A trained eps-model measured exactly against the mixture it was trained on.

Because eps*(x_t, t) = E[eps | x_t] (Ho et al. 2020, arXiv:2006.11239), a
model's mean squared noise error at step t splits into the least error of any predictor and the
model's own excess: E||eps - eps_theta||^2 = mmse_t + e_t, e_t = E_{q(x_t)}||eps_theta - eps*||^2.
Every objective of the paper is affine in these per-t errors (Eq. 12, Eq. 14, and the bound of
Eq. 3 / Eq. 5, `GaussianDiffusion.mse_weights`), so e_t gives the model's exact expected loss and
its excess over the floor, in the objective's own units.
"""

from __future__ import annotations

import math

import numpy as np

from ddpm_lab.core.diffusion import LOSS_UNITS, MIN_SNR_GAMMA, EpsModel, GaussianDiffusion
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.stats import mean_se, weighted_sum  # weighted_sum: per-t errors from marginal_expectation


def measure_model(
    mixture: GaussianMixture,
    diffusion: GaussianDiffusion,
    eps_model: EpsModel,
    objective: str,
    rng: np.random.Generator,
    weights: tuple[str, float] | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The exact expected `objective` (a weighting of the noise loss, or "bound") of eps_model, its
    floor (the expected loss of eps*) and the excess (weights: (prediction, gamma) of the weightings
    target_mse and min_snr; default eps and 5), each with its error (quadrature bound in 1-D, Monte-Carlo
    standard error for D > 1, drawn from rng). Returns (summary, by_t) where by_t holds, for t = 1..T,
    t, alpha_bar, weight_eq12, mmse, mmse_err, eps_error, eps_error_err ((T,) arrays)."""
    if objective not in LOSS_UNITS:
        raise ValueError(f"unknown objective {objective!r}: expected one of {', '.join(LOSS_UNITS)}")
    abar = diffusion.np["alphas_cumprod"][1:]
    mmse, mmse_err = mixture.eps_mmse(abar, rng=rng)
    e, e_err = mixture.eps_error(eps_model, abar, rng=rng)
    prediction, gamma = weights or ("eps", MIN_SNR_GAMMA)  # what target_mse and min_snr weigh by
    weights = diffusion.mse_weights(objective, prediction, gamma)  # E[objective] = const + sum_t c_t mse_t
    monte_carlo = mixture.dim > 1
    floor = diffusion.expected_loss(objective, mmse, mixture.second_moment(), mixture.dim, prediction, gamma)
    excess, excess_err = weighted_sum(weights, e, e_err, monte_carlo)
    summary = {
        "objective": objective,
        "units": LOSS_UNITS[objective],
        "loss_floor": floor,
        "loss_floor_err": weighted_sum(weights, mmse, mmse_err, monte_carlo)[1],
        "saved_model_expected_loss": floor + excess,
        "saved_model_excess_loss": excess,
        "saved_model_excess_loss_err": excess_err,
        "error_method": "Monte Carlo; err = standard error"
        if monte_carlo
        else "Gauss-Kronrod quadrature (K21 / G10 panels) over the exact q(x_t); err = sum |K - G| + noise and "
        "rounding allowances",
    }
    by_t = {
        "t": np.arange(1, diffusion.T + 1),
        "alpha_bar": abar,
        "weight_eq12": diffusion.np["eq12_weights"][1:],
        "mmse": mmse,
        "mmse_err": mmse_err,
        "eps_error": e,
        "eps_error_err": e_err,
    }
    return summary, by_t


def heldout_gap(model_rows: np.ndarray, oracle_rows: np.ndarray, exact_gap: float, exact_err: float) -> dict:
    """The held-out Monte-Carlo estimate of a model's bound and of its gap to the oracle, from
    per-row bounds (N,) computed on the same (x_t, eps) draws (paired), beside the exact gap:
    bound +- SE, gap +- SE of the paired differences, and z = (gap - exact) / sqrt(SE^2 + err^2),
    which should look standard normal when both are right."""
    bound, bound_se = mean_se(model_rows)
    gap, gap_se = mean_se(np.asarray(model_rows) - np.asarray(oracle_rows))
    scale = math.hypot(gap_se or 0.0, exact_err)
    return {
        "bound": bound,
        "bound_se": bound_se,
        "gap_to_oracle": gap,
        "gap_to_oracle_se": gap_se,
        "gap_z": (gap - exact_gap) / scale if scale > 0 else None,
    }


def expected_bounds(diffusion: GaussianDiffusion, mixture: GaussianMixture, tables: dict) -> tuple[float, float, dict]:
    """The exact expected bound (Eq. 5) of the oracle eps*, its error, and each saved model's gap to
    it, sum_t w_t e_t with its error, from the per-t tables a training stage measured ({name: the
    eps_error table, columns mmse, mmse_err, eps_error, eps_error_err}; mmse_t is the first table's:
    every table holds the same). Returns (oracle_bound, oracle_bound_err, {name: (gap, gap_err)})."""
    w, mc = diffusion.mse_weights("bound"), mixture.dim > 1
    mmse = next(iter(tables.values()))[["mmse", "mmse_err"]].to_numpy()
    oracle_bound = diffusion.expected_bound(mmse[:, 0], mixture.second_moment(), mixture.dim)
    oracle_bound_err = weighted_sum(w, mmse[:, 0], mmse[:, 1], mc)[1]
    gaps = {
        name: weighted_sum(w, t["eps_error"].to_numpy(), t["eps_error_err"].to_numpy(), mc)
        for name, t in tables.items()
    }
    return oracle_bound, oracle_bound_err, gaps
