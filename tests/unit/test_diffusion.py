"""The DDPM maths against closed forms and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion, normal_log_prob
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.core.schedule import make_betas

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])


@pytest.fixture(scope="module")
def diffusion():
    return GaussianDiffusion(make_betas("linear", 1000))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_contract(schedule):
    betas = make_betas(schedule, 200)
    assert betas.shape == (200,) and betas.dtype == np.float64
    assert np.all((betas > 0) & (betas < 1))
    abar = np.cumprod(1 - betas)
    assert np.all(np.diff(abar) < 0)  # strictly more noise at every step


def test_cosine_schedule_matches_nichol_dhariwal_closed_form():
    # Nichol & Dhariwal 2021, Eq. 17: abar_t = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
    # s = 0.008; so prod_{u<=t} (1 - beta_u) must equal that ratio wherever no beta was clipped at
    # 0.999 (only the last steps are), and beta_t = 1 - abar_t / abar_{t-1} exactly.
    T, s = 1000, 0.008
    betas = make_betas("cosine", T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    abar = np.cumprod(1 - betas)
    for t in (1, 10, 250, 500, 900, 990):
        assert abar[t - 1] == pytest.approx(f(t) / f(0), rel=1e-10)
    assert betas[0] == pytest.approx(1 - f(1) / f(0), rel=1e-12)
    assert betas[-1] == 0.999  # the clip, as in the paper (abar_T = 0 would make beta_T = 1)


def test_linear_schedule_endpoints():
    betas = make_betas("linear", 1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)


def test_unknown_schedule_lists_choices():
    with pytest.raises(ValueError, match="unknown schedule 'quadratic'.*linear, cosine"):
        make_betas("quadratic", 10)


@pytest.mark.parametrize("bad", [[0.0, 0.1], [0.1, 1.0], [-0.1]])
def test_betas_outside_unit_interval_rejected(bad):
    with pytest.raises(ValueError, match=r"betas must lie in \(0, 1\)"):
        GaussianDiffusion(np.array(bad))


def test_unknown_variance_lists_choices():
    with pytest.raises(ValueError, match="unknown variance 'fixed'.*beta, beta_tilde"):
        GaussianDiffusion(make_betas("linear", 10), "fixed")


def test_q_sample_moments_match_eq4(diffusion):
    # Eq. 4 for x0 = 2: mean sqrt(abar_t) * 2, variance 1 - abar_t. With n = 200k draws the
    # standard error of the mean is <= sqrt(1/200k) = 0.0022; tolerance 0.01 is > 4 SE.
    g = torch.Generator().manual_seed(0)
    n = 200_000
    for t in (1, 10, 500, 1000):
        x0 = torch.full((n, 1), 2.0, dtype=torch.float64)
        xt = diffusion.q_sample(x0, torch.full((n,), t), torch.randn((n, 1), generator=g, dtype=torch.float64))
        abar = diffusion.np["alphas_cumprod"][t]
        assert xt.mean().item() == pytest.approx(2 * math.sqrt(abar), abs=0.01)
        assert xt.var().item() == pytest.approx(1 - abar, rel=0.01, abs=1e-6)


def test_q_trajectory_chains_eq2_to_eq4_marginal(diffusion):
    # The cumulative-sum trajectory must have the Eq. 4 marginal at every t, and its steps the
    # Eq. 2 conditional: x_t - sqrt(alpha_t) x_{t-1} ~ N(0, beta_t).
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((20_000, 1), 1.5)
    xs = diffusion.q_trajectory(x0, g)
    assert xs.shape == (20_000, 1001, 1)
    assert torch.equal(xs[:, 0], x0.double())
    for t in (1, 300, 1000):
        abar = diffusion.np["alphas_cumprod"][t]
        assert xs[:, t].mean().item() == pytest.approx(1.5 * math.sqrt(abar), abs=0.03)
        assert xs[:, t].var().item() == pytest.approx(1 - abar, rel=0.05, abs=1e-6)
        step = xs[:, t] - math.sqrt(diffusion.np["alphas"][t]) * xs[:, t - 1]
        assert step.var().item() == pytest.approx(diffusion.np["betas"][t], rel=0.05)


def test_posterior_matches_direct_gaussian_conditioning(diffusion):
    # Independent computation: (x_{t-1}, x_t) | x_0 is jointly Gaussian with
    # x_{t-1} ~ N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1}), x_t = sqrt(alpha_t) x_{t-1} + N(0, beta_t).
    # Conditioning: mean = m1 + c12/v2 (x_t - m2), var = v1 - c12^2 / v2.
    x0 = torch.tensor([[0.7], [-1.2], [3.0]], dtype=torch.float64)
    xt = torch.tensor([[0.1], [0.5], [-2.0]], dtype=torch.float64)
    for t in (2, 17, 640, 1000):
        tt = torch.full((3,), t)
        abar_prev, a = diffusion.np["alphas_cumprod_prev"][t], diffusion.np["alphas"][t]
        m1, v1 = math.sqrt(abar_prev) * x0, 1 - abar_prev
        m2, v2 = math.sqrt(a) * m1, a * v1 + (1 - a)
        c12 = math.sqrt(a) * v1
        mean, var = diffusion.q_posterior_mean_variance(x0, xt, tt)
        torch.testing.assert_close(mean, m1 + c12 / v2 * (xt - m2))
        torch.testing.assert_close(var, torch.full_like(xt, v1 - c12**2 / v2))


def test_eq11_mean_equals_posterior_mean_at_true_noise(diffusion):
    # Eq. 10-11: with eps_theta = the true eps, mu_theta(x_t) = mu~_t(x_t, x_0).
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn((64, 2), generator=g, dtype=torch.float64)
    eps = torch.randn((64, 2), generator=g, dtype=torch.float64)
    t = torch.randint(1, 1001, (64,), generator=g)
    xt = diffusion.q_sample(x0, t, eps)
    torch.testing.assert_close(
        diffusion.p_mean_variance(eps, xt, t)[0], diffusion.q_posterior_mean_variance(x0, xt, t)[0]
    )


def test_beta_tilde_variance_clips_t1(diffusion):
    d = GaussianDiffusion(make_betas("linear", 1000), "beta_tilde")
    assert d.np["posterior_variance"][1] == 0.0
    assert d.np["sigma2"][1] == d.np["posterior_variance"][2] > 0


def test_exact_score_matches_autograd_of_log_density():
    x = torch.linspace(-7, 6, 57, dtype=torch.float64)[:, None].requires_grad_(True)
    for abar in (1.0, 0.9, 0.3, 0.01):
        logq = MIX.marginal_log_prob(x, abar).sum()
        (grad,) = torch.autograd.grad(logq, x)
        torch.testing.assert_close(MIX.score(x.detach(), abar), grad)


def test_exact_score_matches_autograd_2d():
    mix = GaussianMixture([0.6, 0.4], [[-1.0, 2.0], [2.0, -1.0]], [[0.5, 1.0], [0.7, 0.3]])
    x = torch.randn((30, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(mix.marginal_log_prob(x, 0.5).sum(), x)
    torch.testing.assert_close(mix.score(x.detach(), 0.5), grad)


def test_marginal_log_prob_is_mixture_at_alpha_bar_one():
    x = np.linspace(-6, 5, 23)[:, None]
    np.testing.assert_allclose(MIX.marginal_log_prob(torch.from_numpy(x), 1.0).numpy(), MIX.log_prob(x))


def test_eps_star_is_conditional_expectation_of_eps(diffusion):
    # E[eps | x_t] by Monte Carlo: regress eps on bins of x_t and compare to eps*(bin centre).
    g = torch.Generator().manual_seed(3)
    n, t = 400_000, 300
    x0 = torch.from_numpy(MIX.sample(n, np.random.default_rng(3)))
    eps = torch.randn((n, 1), generator=g, dtype=torch.float64)
    xt = diffusion.q_sample(x0, torch.full((n,), t), eps)[:, 0]
    bins = torch.linspace(-3, 3, 13)
    idx = torch.bucketize(xt, bins)
    for b in range(1, 13):
        sel = idx == b
        centre_mean = eps[sel, 0].mean().item()
        pred = OracleEps(MIX, diffusion.np["alphas_cumprod"])(xt[sel, None], torch.full((int(sel.sum()),), t))
        # Compare bin averages of eps and of eps*(x_t): equal in expectation; tolerance 4 SE.
        se = eps[sel, 0].std().item() / math.sqrt(sel.sum().item())
        assert pred.mean().item() == pytest.approx(centre_mean, abs=4 * se + 1e-3)


def test_eps_mmse_floor_matches_monte_carlo(diffusion):
    # eps_mmse (quadrature) vs a direct Monte-Carlo mean of ||eps - eps*(x_t)||^2.
    ts = [1, 100, 400, 900]
    mm, err = MIX.eps_mmse(diffusion.np["alphas_cumprod"][ts])
    assert np.all(err < 1e-9)  # the quadrature error estimate: negligible next to the MC tolerance
    g = torch.Generator().manual_seed(4)
    n = 200_000
    x0 = torch.from_numpy(MIX.sample(n, np.random.default_rng(4)))
    orc = OracleEps(MIX, diffusion.np["alphas_cumprod"])
    for t, m in zip(ts, mm):
        eps = torch.randn((n, 1), generator=g, dtype=torch.float64)
        tt = torch.full((n,), t)
        err = ((eps - orc(diffusion.q_sample(x0, tt, eps), tt)) ** 2)[:, 0]
        assert err.mean().item() == pytest.approx(m, abs=4 * err.std().item() / math.sqrt(n))


@pytest.fixture(scope="module")
def mmse(diffusion):
    return MIX.eps_mmse(diffusion.np["alphas_cumprod"][1:])[0]


@pytest.mark.parametrize("weighting", ["eq12", "eq14"])
def test_eq12_loss_of_eps_star_equals_its_exact_floor(diffusion, mmse, weighting):
    # Monte-Carlo mean of the noise loss with eps* against sum_t w_t mmse_t (or mean_t mmse_t).
    x0 = torch.from_numpy(MIX.sample(200_000, np.random.default_rng(5)))
    loss = diffusion.loss_eq12(
        OracleEps(MIX, diffusion.np["alphas_cumprod"]), x0, torch.Generator().manual_seed(5), weighting
    )
    se = loss.std().item() / math.sqrt(loss.numel())
    assert loss.mean().item() == pytest.approx(diffusion.loss_eq12_floor(mmse, weighting), abs=4 * se)


def test_eq3_trajectory_bound_of_eps_star_equals_exact_value(diffusion, mmse):
    # Eq. 3 on sampled trajectories (unbiased) vs its exact expectation via Eq. 5 and quadrature.
    x0 = torch.from_numpy(MIX.sample(4000, np.random.default_rng(6)))
    orc = OracleEps(MIX, diffusion.np["alphas_cumprod"])
    g = torch.Generator().manual_seed(6)
    vals = torch.cat([diffusion.loss_eq3(orc, xb, g) for xb in x0.split(500)])
    exact = diffusion.expected_bound(mmse, MIX.second_moment(), 1)
    se = vals.std().item() / math.sqrt(vals.numel())
    assert vals.mean().item() == pytest.approx(exact, abs=4 * se)
    # ... and the bound is a bound: above the exact entropy H, by little for the oracle at T = 1000.
    assert MIX.entropy() < exact < MIX.entropy() + 0.05


def test_eq5_bound_matches_eq3_in_expectation(diffusion, mmse):
    x0 = torch.from_numpy(MIX.sample(3000, np.random.default_rng(7)))
    orc = OracleEps(MIX, diffusion.np["alphas_cumprod"])
    g = torch.Generator().manual_seed(7)
    vals = torch.cat([diffusion.nll_bound(orc, xb, g) for xb in x0.split(300)])
    se = vals.std().item() / math.sqrt(vals.numel())
    assert vals.mean().item() == pytest.approx(diffusion.expected_bound(mmse, MIX.second_moment(), 1), abs=4 * se)


def test_loss_eq3_runs_the_network_once_per_batch(diffusion):
    calls = []

    def model(x, t):
        calls.append(x.shape)
        return torch.zeros_like(x)

    diffusion.loss_eq3(model, torch.zeros((3, 1)), torch.Generator().manual_seed(0))
    assert calls == [torch.Size([3 * 1000, 1])]


def test_normal_log_prob_matches_scipy():
    from scipy import stats

    x, m, v = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.0, 0.5]]), torch.tensor([[2.0, 0.1]])
    expected = stats.norm.logpdf([0.3, -1.0], [0.0, 0.5], np.sqrt([2.0, 0.1])).sum()
    assert normal_log_prob(x, m, v).item() == pytest.approx(expected, rel=1e-6)


def test_entropy_quadrature_matches_monte_carlo():
    lp = MIX.log_prob(MIX.sample(400_000, np.random.default_rng(8)))
    assert MIX.entropy() == pytest.approx(-lp.mean(), abs=4 * lp.std() / math.sqrt(lp.size))
