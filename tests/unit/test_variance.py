"""The reverse variance, exact (ddpm_lab.gmm.variance): Analytic-DPM's optimal per-t variance
against a direct numerical minimisation of the expected KL it minimises, the per-x_t variance
against the law of total variance, and the bounds of the fixed variances against
GaussianDiffusion.expected_bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.gmm import variance as V
from ddpm_lab.gmm.mixture import GaussianMixture

MIX = GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [[0.4], [0.3]])
DIFF = GaussianDiffusion(make_betas("linear", 100, 1e-4 * 10, 0.02 * 10), "beta")
ABAR = DIFF.np["alphas_cumprod"][1:]


@pytest.fixture(scope="module")
def mmse():
    return MIX.eps_mmse(ABAR)


def test_fixed_variances_give_expected_bound(mmse):
    out = V.oracle_bounds(DIFF, MIX, mmse)
    for choice in ("beta", "beta_tilde"):
        d = GaussianDiffusion(DIFF.np["betas"][1:], choice)
        assert out[choice]["bound"] == pytest.approx(d.expected_bound(mmse[0], MIX.second_moment(), 1), rel=1e-13)


@pytest.mark.parametrize("t", [1, 2, 10, 40, 90])
def test_optimal_variance_minimises_the_exact_expected_kl(t, mmse):
    """The expected L_{t-1} (L_0 at t = 1) as a function of sigma^2, from 400,000 draws of (x_0, x_t)
    through the diffusion's own posterior mean mu~ and the oracle's mean, minimised numerically:
    its minimiser agrees with beta~_t + c_t^2 mmse_t / D within 5 Monte-Carlo standard errors."""
    g = np.random.default_rng(t)
    x0 = torch.from_numpy(MIX.sample(400_000, g))
    tt = torch.full((len(x0),), t, dtype=torch.long)
    x_t = DIFF.q_sample(x0.float(), tt, torch.from_numpy(g.standard_normal(x0.shape)).float()).double()
    mu_tilde, bt = (v.double() for v in DIFF.q_posterior_mean_variance(x0.float(), x_t.float(), tt))
    eps_star = MIX.eps_star(x_t, torch.full((len(x0),), ABAR[t - 1], dtype=torch.float64))
    mu_star = DIFF.p_mean_variance(eps_star.float(), x_t.float(), tt)[0].double()
    sq = ((mu_tilde - mu_star) ** 2).sum(1).numpy()
    b = float(bt[0, 0])

    def expected_kl(s):
        if t == 1:  # L_0: -log N(x_0; mu*, s), whose x_0 is mu~ at t = 1
            return 0.5 * math.log(2 * math.pi * s) + sq.mean() / (2 * s)
        return 0.5 * (b / s - 1 - math.log(b / s)) + sq.mean() / (2 * s)

    s_num = minimize_scalar(
        expected_kl, bounds=(max(b, 1e-12) * 0.5 + 1e-12, 1.0), method="bounded", options={"xatol": 1e-12}
    ).x
    s_star = V.optimal_sigma2(DIFF, mmse[0], 1)[t - 1]
    se = sq.std() / math.sqrt(len(sq))
    assert abs(s_num - s_star) < 5 * se + 1e-6 * s_star, (s_num, s_star, se)
    # and the closed form is the minimum of bound_terms' own per-t term
    terms = lambda s: V.bound_terms(DIFF, np.full(DIFF.T, s), mmse[0], 1)[t - 1]  # noqa: E731
    assert minimize_scalar(
        terms, bounds=(s_star / 4, s_star * 4), method="bounded", options={"xatol": 1e-14}
    ).x == pytest.approx(s_star, rel=1e-5)


def test_per_xt_variance_averages_to_the_mmse(mmse):
    """Law of total variance: E_q[v_t(x_t)] = E||eps - eps*||^2 = mmse_t, by the same quadrature."""
    ab = torch.from_numpy(ABAR)
    v, err = MIX.marginal_expectation(lambda x, i: V.posterior_eps_variance(MIX, x, ab[i]), ABAR)
    np.testing.assert_allclose(v, mmse[0], rtol=1e-9, atol=1e-12)


def test_per_xt_variance_is_the_posterior_variance_at_a_point():
    """v_t(x_t) at one x_t against the variance of eps over x_0 ~ p(x_0 | x_t), drawn by importance
    weights q(x_t | x_0) on prior draws."""
    ab, x = 0.4, 0.7
    g = np.random.default_rng(0)
    x0 = MIX.sample(2_000_000, g)[:, 0]
    w = np.exp(-((x - math.sqrt(ab) * x0) ** 2) / (2 * (1 - ab)))
    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    mean = np.sum(w * eps) / w.sum()
    var_mc = np.sum(w * (eps - mean) ** 2) / w.sum()
    v = float(V.posterior_eps_variance(MIX, torch.tensor([[x]], dtype=torch.float64), ab)[0])
    assert v == pytest.approx(var_mc, rel=5e-3)


@pytest.mark.parametrize("S", [5, 20, 100])
def test_bounds_ordered_and_respacing_at_T_is_identity(S, mmse):
    d = V.respaced(DIFF, S)
    out = V.oracle_bounds(d, MIX)
    assert (
        out["optimal_xt"]["bound"] <= out["optimal_t"]["bound"] <= min(out["beta"]["bound"], out["beta_tilde"]["bound"])
    )
    if S == DIFF.T:
        np.testing.assert_allclose(d.np["betas"], DIFF.np["betas"], rtol=1e-12)


def test_two_dimensions_take_monte_carlo_with_its_error():
    mix = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [[0.3, 0.3], [0.5, 0.2]])
    d = V.respaced(DIFF, 10)
    out = V.oracle_bounds(d, mix, rng=np.random.default_rng(0))
    assert all(o["err"] > 0 for o in out.values())
    assert out["optimal_xt"]["bound"] <= out["optimal_t"]["bound"] + 3 * out["optimal_t"]["err"]


def test_model_bound_of_fixed_variances_and_of_the_per_xt_optimum(mmse):
    """model_bound with sigma^2 = the diffusion's own (no x_t dependence) and eps* is expected_bound;
    with the per-x_t optimum it is oracle_bounds' optimal_xt."""
    ab = torch.from_numpy(DIFF.np["alphas_cumprod"])
    eps_star = lambda x, t: MIX.eps_star(x, ab[t])  # noqa: E731
    fixed = lambda x, t: torch.from_numpy(DIFF.np["sigma2"])[t]  # noqa: E731
    bound, err = V.model_bound(DIFF, MIX, eps_star, fixed)
    assert bound == pytest.approx(DIFF.expected_bound(mmse[0], MIX.second_moment(), 1), abs=1e-9)
    c2, bt = torch.from_numpy(V.noise_coef2(DIFF)), torch.from_numpy(DIFF.np["posterior_variance"][1:])
    best = lambda x, t: bt[t - 1] + c2[t - 1] * V.posterior_eps_variance(MIX, x, ab[t])  # noqa: E731
    assert V.model_bound(DIFF, MIX, eps_star, best)[0] == pytest.approx(
        V.oracle_bounds(DIFF, MIX, mmse)["optimal_xt"]["bound"], abs=1e-9
    )


def test_model_bound_of_a_learned_sigma_agrees_with_monte_carlo():
    """A model with a wrong eps and improved-diffusion's learned Sigma (v depending on x_t): the exact
    expected bound against the mean of the per-draw bound over 200,000 draws of (x_0, x_t) per t
    (Eq. 5 with one x_t per t: the KL of two Gaussians, their means from the diffusion's Eq. 7 and
    Eq. 11), within 4 standard errors."""
    d = GaussianDiffusion(make_betas("linear", 20, 1e-3, 0.3), "beta")
    ab = torch.from_numpy(d.np["alphas_cumprod"])
    eps = lambda x, t: 0.8 * MIX.eps_star(x, ab[t]) + 0.05 * torch.sin(x)  # noqa: E731
    sig = lambda x, t: d.learned_sigma2(0.5 + 0.3 * torch.tanh(x[:, 0]), t)  # noqa: E731
    exact, err = V.model_bound(d, MIX, eps, sig)
    g = np.random.default_rng(3)
    n, total, var = 200_000, 0.0, 0.0
    x0 = torch.from_numpy(MIX.sample(n, g))
    total = float(d.prior_kl(x0.pow(2).sum(1), 1).mean())
    var = float(d.prior_kl(x0.pow(2).sum(1), 1).var() / n)
    for t in range(1, d.T + 1):
        tt = torch.full((n,), t, dtype=torch.long)
        x_t = ab[t].sqrt() * x0 + (1 - ab[t]).sqrt() * torch.from_numpy(g.standard_normal(x0.shape))
        # mu~ and mu_theta through the diffusion's own Eq. 7 and Eq. 11 (float32, as sampling runs them)
        mu_tilde = d.q_posterior_mean_variance(x0.float(), x_t.float(), tt)[0].double()
        mu_theta = d.p_mean_variance(eps(x_t, tt).float(), x_t.float(), tt)[0].double()
        mu_gap2 = (mu_tilde - mu_theta).pow(2).sum(1)
        s = sig(x_t, tt).reshape(-1)
        if t == 1:
            per = 0.5 * torch.log(2 * math.pi * s) + mu_gap2 / (2 * s)
        else:
            b = float(d.np["posterior_variance"][t])
            per = 0.5 * (b / s - 1 - torch.log(b / s)) + mu_gap2 / (2 * s)
        total += float(per.mean())
        var += float(per.var() / n)
    assert abs(exact - total) < 4 * math.sqrt(var) + err, (exact, total, math.sqrt(var))


def test_analytic_dpm_estimate_of_the_exact_denoiser_is_the_mmse(mmse):
    """Bao et al.'s estimate D - E||eps_theta||^2 with eps_theta = eps* and data from the mixture: the
    exact mmse_t within 4 standard errors at every t."""
    ab = torch.from_numpy(DIFF.np["alphas_cumprod"])
    eps_star = lambda x, t: MIX.eps_star(x.double(), ab[t]).float()  # noqa: E731
    x0 = MIX.sample(5000, np.random.default_rng(0))
    est, se = V.analytic_dpm_mmse(DIFF, eps_star, x0, 20_000, np.random.default_rng(1))
    assert np.all(np.abs(est - mmse[0]) < 4 * se + 1e-6)


def test_model_bounds_are_least_at_the_models_own_optimum(mmse):
    error = mmse[0] + np.linspace(0.2, 0.0, DIFF.T)  # a model that errs most at small t
    out = V.model_bounds(DIFF, MIX, error, mmse[0])
    assert out["optimal (model)"] == min(out.values())
    assert out["beta"] == pytest.approx(DIFF.expected_bound(error, MIX.second_moment(), 1), rel=1e-12)
    assert out["optimal (data)"] == pytest.approx(out["Analytic-DPM estimate"], rel=1e-12)  # the estimate given exactly
    exact = V.model_bounds(DIFF, MIX, mmse[0], mmse[0])
    assert exact["optimal (model)"] == pytest.approx(exact["optimal (data)"], rel=1e-12)


def test_optimal_kernel_oracle_over_all_steps_reaches_the_per_xt_floor():
    """OptimalKernelOracle at S = T: its v gives each step the posterior's variance per x_t, so its
    exact bound terms (t >= 2; the last step adds no noise) are per_xt_terms', the least any Gaussian
    kernel with the best mean reaches."""
    from ddpm_lab.core.sampling import SamplerConfig

    oracle = V.OptimalKernelOracle(MIX, DIFF, SamplerConfig())
    terms, errs = V.learned_bound_terms(DIFF, MIX, oracle)
    floor, floor_errs = V.per_xt_terms(DIFF, MIX)
    assert np.allclose(terms[1:], floor[1:], rtol=1e-5, atol=1e-9 + (errs + floor_errs)[1:].max())


@pytest.mark.parametrize("S", [5, 37])
def test_optimal_kernel_oracle_matches_the_respaced_step_variance(S):
    """On a respaced step t -> s, sigma^2 from the oracle's v is beta~_i + c_i^2 Var(eps | x_t), with
    beta_i = 1 - abar_t / abar_s: Var(x_s | x_t) by the law of total variance."""
    from ddpm_lab.core.sampling import SamplerConfig, learned_sigma, step_coefficients

    cfg = SamplerConfig(steps=S)
    oracle, c = V.OptimalKernelOracle(MIX, DIFF, cfg), step_coefficients(DIFF, cfg)
    x = torch.linspace(-4, 4, 41, dtype=torch.float64)[:, None]
    abar = DIFF.np["alphas_cumprod"]
    for i in range(S - 1):  # the last step adds no noise
        t, s = int(c["t"][i]), int(c["t"][i + 1])
        beta = 1 - abar[t] / abar[s]
        want = (1 - abar[s]) / (1 - abar[t]) * beta + beta**2 / ((1 - beta) * (1 - abar[t])) * V.posterior_eps_variance(
            MIX, x, abar[t], per_dim=True
        )
        eps, v = oracle.eps_v(x, torch.full((41,), t))
        torch.testing.assert_close(learned_sigma(c, i, v) ** 2, want, rtol=1e-10, atol=0)
        torch.testing.assert_close(eps, MIX.eps_star(x, torch.tensor(abar[t])))


def test_optimal_kernel_oracle_refuses_what_it_was_not_built_for():
    from ddpm_lab.core.sampling import SamplerConfig

    with pytest.raises(ValueError, match="not of ddim"):
        V.OptimalKernelOracle(MIX, DIFF, SamplerConfig(sampler="ddim"))
    oracle = V.OptimalKernelOracle(MIX, DIFF, SamplerConfig(steps=10))
    with pytest.raises(ValueError, match="off the chain"):
        oracle.eps_v(torch.zeros(3, 1), torch.full((3,), 11))
