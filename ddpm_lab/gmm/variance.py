"""The reverse variance, exactly: the expected bound (Eq. 5) of the mixture's optimal mean under
each choice of sigma_t^2, including the best one per t and the best one per x_t.

For the mean mu*(x_t) = E[mu~_t(x_t, x_0) | x_t] (the oracle eps*, Eq. 11) and an isotropic
reverse variance s = sigma_t^2, the expected KL term of Eq. 5 at t >= 2 is

    L_{t-1}(s) = D/2 (beta~_t / s - 1 - log(beta~_t / s)) + c_t^2 m_t / (2 s),

with c_t^2 = beta_t^2 / (alpha_t (1 - abar_t)) (mu~ - mu* = -c_t (eps - eps*)) and m_t the
mixture's least noise error E||eps - eps*(x_t)||^2 (GaussianMixture.eps_mmse); at t = 1 the
decoder term is L_0(s) = D/2 log(2 pi s) + c_1^2 m_1 / (2 s). Setting dL/ds = 0:

    s*_t = beta~_t + c_t^2 m_t / D                                          (optimal per t)

which is Bao et al. 2022 (Analytic-DPM), Theorem 1, for DDPM's lambda_t^2 = beta~_t, written with
m_t / D = 1 - (1 - abar_t) E||grad log q_t(x_t)||^2 / D; there L_{t-1}(s*) = D/2 log(s*_t / beta~_t).
Per x_t, the same minimisation conditional on x_t gives the variance of the exact posterior
Var(x_{t-1} | x_t) averaged over dimensions (it is a Gaussian mixture, not a Gaussian):

    s*_t(x_t) = beta~_t + c_t^2 v_t(x_t) / D,  v_t(x_t) = E[||eps - eps*(x_t)||^2 | x_t],

and L_{t-1} = D/2 E_q log(s*_t(x_t) / beta~_t), the least any isotropic Gaussian kernel with the
best mean can lose at t. By Jensen (log is concave) it is at most the per-t optimum's, which is at
most that of beta_t and of beta~_t. What it still loses is the gap between the Gaussian kernel and
the mixture posterior itself.

Everything is a quadrature over the exact q(x_t) in 1-D (GaussianMixture.marginal_expectation: an
error estimate, valid for smooth integrands) and Monte Carlo with its standard error for D > 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ddpm_lab.core.diffusion import DiffusionConfig, GaussianDiffusion
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.runtime.stats import weighted_sum

CHOICES = ("beta", "beta_tilde", "optimal_t", "optimal_xt")


def noise_coef2(diffusion: GaussianDiffusion) -> np.ndarray:
    """c_t^2 = beta_t^2 / (alpha_t (1 - abar_t)) for t = 1..T (T,): mu~_t - mu_theta = -c_t (eps - eps_theta)."""
    b, a, abar = (diffusion.np[k][1:] for k in ("betas", "alphas", "alphas_cumprod"))
    return b**2 / (a * (1.0 - abar))


def optimal_sigma2(diffusion: GaussianDiffusion, mmse: np.ndarray, D: int) -> np.ndarray:
    """s*_t = beta~_t + c_t^2 mmse_t / D for t = 1..T (T,): Analytic-DPM's optimal per-t variance
    (Bao et al. 2022, Theorem 1, lambda_t^2 = beta~_t), mmse_t = E||eps - eps*||^2 summed over D.
    GaussianDiffusion(variance="optimal") holds the same, mmse_t / D clipped to [0, 1]."""
    return diffusion.np["posterior_variance"][1:] + noise_coef2(diffusion) * np.asarray(mmse) / D


def bound_terms(diffusion: GaussianDiffusion, sigma2: np.ndarray, mmse: np.ndarray, D: int) -> np.ndarray:
    """The expected terms of Eq. 5 for the optimal mean and reverse variances sigma2 (t = 1..T, (T,)):
    entry 0 is L_0 (the continuous decoder N(mu*, sigma_1^2 I)), entry t - 1 is L_{t-1}. (T,)"""
    s, bt, c2 = np.asarray(sigma2, dtype=np.float64), diffusion.np["posterior_variance"][1:], noise_coef2(diffusion)
    terms = c2 * np.asarray(mmse) / (2.0 * s)
    r = bt[1:] / s[1:]
    terms[1:] += 0.5 * D * (r - 1.0 - np.log(r))
    terms[0] += 0.5 * D * math.log(2.0 * math.pi * s[0])
    return terms


def posterior_eps_variance(
    mixture: GaussianMixture, x_t: torch.Tensor, alpha_bar, per_dim: bool = False
) -> torch.Tensor:
    """v_t(x_t) = E[||eps - eps*(x_t)||^2 | x_t], summed over D, for x_t (B, D) and alpha_bar ((B,) or
    scalar). Given component k, eps and x_t are jointly Gaussian: E[eps | x_t, k] = sqrt(1 - abar)
    (x_t - sqrt(abar) m_k) / var_k and Var(eps | x_t, k) = 1 - (1 - abar) / var_k per dimension,
    var_k = abar s_k^2 + 1 - abar; the mixture's is the responsibilities' mixture of these. (B,)
    float64, or per_dim: each dimension's (B, D)."""
    log_comp, diff, var_t = mixture._marginal_components(x_t, alpha_bar)
    resp = torch.softmax(log_comp, dim=1)[:, :, None]  # (B, K, 1)
    one_minus = 1.0 - torch.as_tensor(alpha_bar, dtype=torch.float64).reshape(-1, 1, 1)
    mean_k = one_minus.sqrt() * diff / var_t  # (B, K, D)
    second = (resp * (1.0 - one_minus / var_t + mean_k**2)).sum(1)  # E[eps_d^2 | x_t]: (B, D)
    mean = (resp * mean_k).sum(1)
    if per_dim:
        return (second - mean**2).clamp_min(0.0)
    return (second - mean**2).sum(1).clamp_min(0.0)


def per_xt_terms(
    diffusion: GaussianDiffusion,
    mixture: GaussianMixture,
    rng: np.random.Generator | None = None,
    diagonal: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The expected Eq. 5 terms of the oracle with the best isotropic variance per x_t (entry 0: L_0,
    entry t - 1: L_{t-1}), and their errors: t >= 2: D/2 E log(1 + c_t^2 v_t(x_t) / (D beta~_t));
    t = 1: D/2 E log(2 pi e c_1^2 v_1(x_1) / D). diagonal: the best diagonal variance per x_t (the
    family of a learned Sigma, Nichol & Dhariwal 2021), each dimension d with its own v_{t,d}:
    1/2 sum_d E log(1 + c_t^2 v_{t,d} / beta~_t) (the same in 1-D). (T,), (T,)"""
    D, T = mixture.dim, diffusion.T
    abar = torch.from_numpy(diffusion.np["alphas_cumprod"][1:])
    c2 = torch.from_numpy(noise_coef2(diffusion))
    bt = torch.from_numpy(diffusion.np["posterior_variance"][1:])

    def term(x, i):
        v = posterior_eps_variance(mixture, x, abar[i], per_dim=diagonal).reshape(x.shape[0], -1)
        n = 1 if diagonal else D  # the dimensions that share one variance
        first, c, b = (i == 0)[:, None], c2[i][:, None], bt[i][:, None]
        inner = torch.where(first, 2 * math.pi * math.e * c * v / n, 1.0 + c * v / (n * b.clamp_min(1e-300)))
        return 0.5 * n * torch.log(inner).sum(1)

    return mixture.marginal_expectation(term, diffusion.np["alphas_cumprod"][1 : T + 1], rng)


def oracle_bounds(
    diffusion: GaussianDiffusion,
    mixture: GaussianMixture,
    mmse: tuple[np.ndarray, np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
) -> dict:
    """The exact expected bound (Eq. 5, nats) of the oracle mean under each reverse variance of
    CHOICES, with its error: {choice: {"bound", "err", "sigma2" (T,) or None}}. mmse: the mixture's
    (eps_mmse values, errors), computed here when not given. The bound's L_T and the per-t terms
    follow GaussianDiffusion.expected_bound, whose "beta" and "beta_tilde" variances are its own."""
    D, mc = mixture.dim, mixture.dim > 1
    abar = diffusion.np["alphas_cumprod"][1:]
    m, m_err = mmse if mmse is not None else mixture.eps_mmse(abar, rng)
    prior = float(diffusion.prior_kl(mixture.second_moment(), D))
    out = {}
    for choice in ("beta", "beta_tilde", "optimal_t"):
        if choice == "optimal_t":
            s = optimal_sigma2(diffusion, m, D)
        else:
            s = GaussianDiffusion(diffusion.np["betas"][1:], choice).np["sigma2"][1:]
        slope = noise_coef2(diffusion) / (2.0 * s)  # dL/dm (at s*, where dL/ds = 0, the same)
        total = prior + float(bound_terms(diffusion, s, m, D).sum())
        out[choice] = {"bound": total, "err": weighted_sum(slope, m, m_err, mc)[1], "sigma2": s}
    terms, errs = per_xt_terms(diffusion, mixture, rng)
    out["optimal_xt"] = {
        "bound": prior + float(terms.sum()),
        "err": weighted_sum(np.ones_like(errs), terms, errs, mc)[1],
        "sigma2": None,
    }
    return out


def respaced(diffusion: GaussianDiffusion, S: int) -> GaussianDiffusion:
    """The S-step process on the sampler's subsequence tau_i = round(i T / S) (timestep_subsequence):
    betas 1 - abar_{tau_i} / abar_{tau_{i-1}} (Nichol & Dhariwal 2021, Sec. 4), so that its bound is
    that of respaced ancestral sampling (Algorithm 2 on the subsequence); variance optimal keeps
    m_t = mmse_t / D at the kept t."""
    from ddpm_lab.core.sampling import timestep_subsequence

    tau = timestep_subsequence(diffusion.T, S)
    abar = diffusion.np["alphas_cumprod"][np.concatenate([[0], tau])]
    mmse = diffusion.np["noise_error"][tau] if diffusion.variance == "optimal" else None
    return GaussianDiffusion(1.0 - abar[1:] / abar[:-1], diffusion.variance, mmse, 1 if mmse is not None else None)


class OptimalKernelOracle(OracleEps):
    """The oracle eps* with, on each step of a DDPM chain (respaced to S steps or not), the best
    Gaussian kernel's variance per x_t: the exact Var(x_s | x_t) of that step, per dimension,

        s*(x_t) = beta~_i + c_i^2 Var(eps | x_t),   c_i^2 = beta_i^2 / (alpha_i (1 - abar_t)),

    beta_i = 1 - abar_t / abar_s and beta~_i = (1 - abar_s) / (1 - abar_t) beta_i the step's
    (ddpm_lab.core.sampling.step_coefficients), Var(eps | x_t) from the mixture
    (posterior_eps_variance): x_s given (x_t, x_0) is N(mu~, beta~_i) and mu~ moves with x_0 by c_i
    per unit of eps. The moments of the true reverse step are matched exactly; what is left is its
    shape (a mixture, not a Gaussian). It answers as a network with a learned variance does, through
    eps_v(x_t, t) -> (eps*, v), v placing s* on the step's log beta / log beta~ line (Nichol &
    Dhariwal 2021, Eq. 15, unclipped), so the samplers and ddpm_lab.gmm.propagate read it unchanged.
    Built for one `sampler` (ddpm): its steps fix beta_i and beta~_i."""

    learned_variance = True

    def __init__(self, mixture: GaussianMixture, diffusion: GaussianDiffusion, sampler):
        from ddpm_lab.core.sampling import step_coefficients

        if sampler.sampler != "ddpm":
            raise ValueError(f"OptimalKernelOracle: the best kernel of a ddpm step, not of {sampler.sampler}")
        super().__init__(mixture, diffusion.np["alphas_cumprod"])
        c = step_coefficients(diffusion, sampler)
        steps = respaced(diffusion, sampler.n_steps(diffusion.T))  # step i of the chain: t = tau_i
        # by t (nan off the chain): beta~_i, c_i^2 (the chain's own process) and the ends of v's line
        # (the sampler's); the step to x_0 adds no noise, and v = 1 there stands for "no variance of its own"
        self.rows = np.full((4, diffusion.T + 1), np.nan)
        self.rows[:2, c["t"][::-1]] = np.stack([steps.np["posterior_variance"][1:], noise_coef2(steps)])
        self.rows[2:, c["t"]] = np.stack([c["log_beta"], c["log_beta_tilde"]])

    def eps_v(self, x_t: torch.Tensor, t: torch.Tensor):
        t = torch.as_tensor(t).reshape(-1).expand(x_t.shape[0])
        bt, c2, log_beta, log_beta_tilde = (torch.from_numpy(r)[t][:, None] for r in self.rows)
        if bool(torch.isnan(bt).any()):
            raise ValueError("OptimalKernelOracle: a t off the chain it was built for")
        var = posterior_eps_variance(self.mixture, x_t.double(), self.alphas_cumprod[t], per_dim=True)
        last = bt <= 0
        log_s = torch.log(torch.where(last, 1.0, bt + c2 * var))
        v = torch.where(last, 1.0, (log_s - log_beta_tilde) / torch.where(last, 1.0, log_beta - log_beta_tilde))
        return self(x_t, t), v.to(x_t.dtype)


MMSE_SEED = 0  # D > 1: the seed of the Monte-Carlo draws of the mixture's mmse, the same in every stage


def diffusion_for(dcfg: DiffusionConfig, mixture: GaussianMixture) -> GaussianDiffusion:
    """The GMM branch's GaussianDiffusion for section `diffusion`: with variance optimal, sigma_t^2
    from the mixture's own noise error mmse_t (GaussianMixture.eps_mmse: quadrature in 1-D, Monte
    Carlo seeded by MMSE_SEED for D > 1), the same for every model, as beta~_t is."""
    if dcfg.variance != "optimal":
        return dcfg.build()
    abar = np.cumprod(1.0 - dcfg.betas())
    mmse, _ = mixture.eps_mmse(abar, np.random.default_rng(MMSE_SEED))
    return dcfg.build(mmse, mixture.dim)


def diffusion_of_model(dcfg: DiffusionConfig, path) -> GaussianDiffusion:
    """diffusion_for as the training stage built it for the checkpoint at path: with variance
    optimal, from the noise error m_t = mmse_t / D the checkpoint carries (stage train), so that
    sampling a model reads only its checkpoint."""
    if dcfg.variance != "optimal":
        return dcfg.build()
    from ddpm_lab.runtime.io import load_checkpoint
    from ddpm_lab.runtime.params import DataError

    config, _ = load_checkpoint(path)
    if "noise_error" not in config:
        raise DataError(
            f"{path}: no noise_error for diffusion.variance = optimal: expected a model trained with it (rerun with dvc repro)"
        )
    return dcfg.build(np.asarray(config["noise_error"], dtype=np.float64), 1)


def _conditional_terms(diffusion: GaussianDiffusion, mixture: GaussianMixture, x, i, eps, sigma2) -> torch.Tensor:
    """E[term of Eq. 5 | x_t] (model_bound_terms) at x_t = x (B, D) of the timesteps i + 1 (B,), for
    a model's eps (B, D) and variance sigma2 ((B,), (B, 1) or (B, D)) there: the terms are affine in
    the squared noise error (GaussianDiffusion.terms_of_error), whose conditional mean given x_t is
    v_t(x_t) + (eps* - eps)^2 per dimension. (B,) float64"""
    abar = torch.from_numpy(diffusion.np["alphas_cumprod"][1:])
    s = sigma2.double().reshape(x.shape[0], -1).expand(x.shape[0], mixture.dim)
    err = posterior_eps_variance(mixture, x, abar[i], per_dim=True) + (mixture.eps_star(x, abar[i]) - eps).pow(2)
    return diffusion.terms_of_error(i + 1, err, s)


def model_bound_terms(
    diffusion: GaussianDiffusion,
    mixture: GaussianMixture,
    eps_model,
    sigma2_model,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact expected Eq. 5 terms (entry 0: L_0, entry t - 1: L_{t-1}) of a model with noise
    prediction eps_model(x_t, t) and a variance sigma2_model(x_t, t) > 0 that may depend on x_t (a
    learned Sigma; isotropic (B,) or (B, 1), or diagonal (B, D): each dimension's terms below summed),
    with their errors. Given x_t, x_0 follows the exact posterior, so

        E[L_{t-1} | x_t] = D/2 (beta~_t / s - 1 - log(beta~_t / s)) + c_t^2 (v_t(x_t) + ||eps* - eps_theta||^2) / (2 s),
        E[L_0 | x_1]     = D/2 log(2 pi s) + c_1^2 (v_1(x_1) + ||eps* - eps_theta||^2) / (2 s),

    s = sigma2_model(x_t, t), v_t the posterior noise variance (posterior_eps_variance): the mean
    error splits into the posterior's own spread and the model's distance from eps*. Averaged over
    the exact q(x_t) by GaussianMixture.marginal_expectation (quadrature in 1-D, Monte Carlo for
    D > 1). eps_model and sigma2_model take (x_t (B, D) float64, t (B,) long or int) and return (B, D)
    and (B,), (B, 1) or (B, D). Returns ((T,), (T,))."""

    def term(x, i):
        return _conditional_terms(diffusion, mixture, x, i, eps_model(x, i + 1).double(), sigma2_model(x, i + 1))

    return mixture.marginal_expectation(term, diffusion.np["alphas_cumprod"][1:], rng)


def learned_bound_terms(
    diffusion: GaussianDiffusion, mixture: GaussianMixture, eps_model, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """model_bound_terms of a network with a learned variance (ddpm_lab.core.targets.EpsFromTarget:
    eps and Sigma_theta = GaussianDiffusion.learned_sigma2 of its v from one call), the network seeing
    x_t in float32; in 1-D the integrand is taken at the rounded x_t as a whole, as
    GaussianMixture.eps_error does (and for the same reason)."""
    ab = torch.from_numpy(diffusion.np["alphas_cumprod"][1:])

    def term(x, i):
        x32 = x.float()
        eps, v = eps_model.eps_v(x32, i + 1)
        sigma2 = diffusion.learned_sigma2(v, i + 1)
        if mixture.dim > 1:
            return _conditional_terms(diffusion, mixture, x, i, eps.double(), sigma2)
        x_in = x32.double()
        ratio = (mixture.marginal_log_prob(x_in, ab[i]) - mixture.marginal_log_prob(x, ab[i])).exp()
        return _conditional_terms(diffusion, mixture, x_in, i, eps.double(), sigma2) * ratio

    return mixture.marginal_expectation(term, diffusion.np["alphas_cumprod"][1:], rng)


def model_bound(
    diffusion: GaussianDiffusion,
    mixture: GaussianMixture,
    eps_model,
    sigma2_model=None,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """The exact expected bound (Eq. 5, nats) of a model with an x_t-dependent variance, with its
    error: L_T (closed form) plus the sum of model_bound_terms (sigma2_model None: the model's own
    learned variance, learned_bound_terms)."""
    if sigma2_model is None:
        terms, errs = learned_bound_terms(diffusion, mixture, eps_model, rng)
    else:
        terms, errs = model_bound_terms(diffusion, mixture, eps_model, sigma2_model, rng)
    total, err = weighted_sum(np.ones_like(terms), terms, errs, mixture.dim > 1)
    return float(diffusion.prior_kl(mixture.second_moment(), mixture.dim)) + total, err


@torch.no_grad()
def analytic_dpm_mmse(
    diffusion: GaussianDiffusion, eps_model, x0: np.ndarray, per_t: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic-DPM's estimate of mmse_t from a trained model (Bao et al. 2022, Eq. 8 and Sec. 3):
    E_q ||grad log q_t||^2 by the model's score over data, which in eps terms is
    mmse_t ~= D - E||eps_theta(x_t, t)||^2, x_t ~ q(x_t | x_0) for per_t rows of x0 (N, D) drawn with
    replacement from rng, the same draws at every t. Clipped to [0, D], as GaussianDiffusion clips.
    Returns (estimate (T,), its standard error (T,)); eps_model takes float32 (B, D) and t (B,)."""
    D, T = x0.shape[1], diffusion.T
    rows = torch.from_numpy(x0[rng.integers(len(x0), size=per_t)]).float()
    noise = torch.from_numpy(rng.standard_normal((T, per_t, D))).float()
    est, se = np.empty(T), np.empty(T)
    for t in range(1, T + 1):
        tt = torch.full((per_t,), t, dtype=torch.long)
        sq = eps_model(diffusion.q_sample(rows, tt, noise[t - 1]), tt).double().pow(2).sum(1)
        est[t - 1], se[t - 1] = D - float(sq.mean()), float(sq.std() / math.sqrt(per_t))
    return np.clip(est, 0.0, D), se


def model_bounds(
    diffusion: GaussianDiffusion, mixture: GaussianMixture, error: np.ndarray, estimate: np.ndarray
) -> dict:
    """The exact expected bound (nats) of a trained model with a fixed-per-t variance, given its
    per-t mean squared noise error `error` = mmse_t + e_t (T,), under each variance: beta_t, beta~_t,
    the data's optimum (diffusion_for: mmse_t), Analytic-DPM's estimate from the model
    (`estimate` of mmse_t: analytic_dpm_mmse) and the model's own optimum (its error in place of
    mmse_t). {name: bound}."""
    D, betas = mixture.dim, diffusion.np["betas"][1:]
    prior = float(diffusion.prior_kl(mixture.second_moment(), D))
    abar = diffusion.np["alphas_cumprod"][1:]
    data, _ = mixture.eps_mmse(abar, np.random.default_rng(MMSE_SEED))
    sigma2 = {
        "beta": GaussianDiffusion(betas, "beta").np["sigma2"][1:],
        "beta_tilde": GaussianDiffusion(betas, "beta_tilde").np["sigma2"][1:],
        "optimal (data)": GaussianDiffusion(betas, "optimal", data, D).np["sigma2"][1:],
        "Analytic-DPM estimate": GaussianDiffusion(betas, "optimal", estimate, D).np["sigma2"][1:],
        "optimal (model)": GaussianDiffusion(betas, "optimal", error, D).np["sigma2"][1:],
    }
    return {name: prior + float(bound_terms(diffusion, s, error, D).sum()) for name, s in sigma2.items()}


def learned_measure(
    summary: dict,
    diffusion: GaussianDiffusion,
    mixture: GaussianMixture,
    eps_model,
    objective: str,
    hybrid_lambda: float,
    rng: np.random.Generator | None = None,
) -> dict:
    """ddpm_lab.gmm.exact.measure_model's summary of a network with a learned variance, completed:
    its exact expected bound (learned_bound_terms) beside the least a diagonal Gaussian kernel with
    the best mean can reach (per_xt_terms, diagonal), and the objective's floor and expected value
    made whole. objective "bound" (Eq. 3): both are bounds; "hybrid" (L_hybrid): the summary's
    L_simple part plus hybrid_lambda times the sum of the terms (L_T left out: the loss has none)."""
    mc = mixture.dim > 1
    prior = float(diffusion.prior_kl(mixture.second_moment(), mixture.dim))
    model, model_err = learned_bound_terms(diffusion, mixture, eps_model, rng)
    floor, floor_err = per_xt_terms(diffusion, mixture, rng, diagonal=True)
    ones = np.ones_like(model)
    bound, bound_err = weighted_sum(ones, model, model_err, mc)
    best, best_err = weighted_sum(ones, floor, floor_err, mc)
    gap, gap_err = weighted_sum(ones, model - floor, model_err + floor_err, mc)
    out = dict(summary, exact_bound=prior + bound, exact_bound_err=bound_err, variance="learned")
    if objective == "bound":
        out.update(loss_floor=prior + best, loss_floor_err=best_err)
        out.update(
            saved_model_expected_loss=prior + bound, saved_model_excess_loss=gap, saved_model_excess_loss_err=gap_err
        )
    elif objective == "hybrid":
        lam = hybrid_lambda
        out.update(loss_floor=summary["loss_floor"] + lam * best)
        out.update(loss_floor_err=summary["loss_floor_err"] + lam * best_err)
        out.update(saved_model_expected_loss=summary["saved_model_expected_loss"] + lam * bound)
        out.update(saved_model_excess_loss=summary["saved_model_excess_loss"] + lam * gap)
        out.update(saved_model_excess_loss_err=summary["saved_model_excess_loss_err"] + lam * gap_err)
    else:
        raise ValueError(f"learned_measure: objective {objective!r}: expected bound or hybrid")
    return out
