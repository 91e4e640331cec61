"""Algorithm 2: one contract for every schedule and variance, and the oracle sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.gmm.distances import floor_draws, statistics
from ddpm_lab.runtime.stats import band
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.core.sampling import sample
from ddpm_lab.core.schedule import make_betas

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
@pytest.mark.parametrize("shape", [(16, 1), (8, 2), (4, 1, 3, 3)])
def test_sampler_contract(schedule, variance, shape):
    d = GaussianDiffusion(make_betas(schedule, 50), variance)
    model = (
        EpsMLP.seeded(MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=shape[1]), 0)
        if len(shape) == 2
        else (lambda x, t: 0.1 * x)
    )
    x1, (ts, path) = sample(d, model, shape, torch.Generator().manual_seed(3), record=2, record_every=7)
    x2, _ = sample(d, model, shape, torch.Generator().manual_seed(3), record=2, record_every=7)
    x3, _ = sample(d, model, shape, torch.Generator().manual_seed(4))
    assert x1.shape == shape and torch.isfinite(x1).all()
    assert torch.equal(x1, x2)  # seeded determinism
    assert not torch.equal(x1, x3)
    assert ts[0] == 50 and ts[-1] == 0 and path.shape == (len(ts), 2, *shape[1:])
    np.testing.assert_array_equal(path[-1], x1[:2].numpy())


def test_no_noise_at_last_step():
    # T = 1: x_0 = (x_1 - beta_1/sqrt(1 - abar_1) eps) / sqrt(alpha_1) exactly, with no z added.
    d = GaussianDiffusion(np.array([0.3]))
    x0, _ = sample(d, lambda x, t: torch.full_like(x, 0.5), (5, 1), torch.Generator().manual_seed(9))
    x_T = torch.randn((5, 1), generator=torch.Generator().manual_seed(9))
    expected = (x_T - 0.3 / math.sqrt(0.3) * 0.5) / math.sqrt(0.7)
    torch.testing.assert_close(x0, expected)


def test_one_network_call_per_step():
    d = GaussianDiffusion(make_betas("linear", 30))
    batch_sizes = []

    def model(x, t):
        assert torch.all(t == t[0])
        batch_sizes.append(x.shape[0])
        return torch.zeros_like(x)

    sample(d, model, (11, 1), torch.Generator().manual_seed(0))
    assert batch_sizes == [11] * 30


def test_oracle_sampler_reproduces_the_mixture():
    # Algorithm 2 driven by the exact eps* at T = 1000: only the discretisation separates it from
    # p(x_0), which is negligible here. Seeded; W1 against a fresh true sample is compared to the
    # median true-vs-true W1 at the same n (ratio ~ 1, spread ~ +-30% at n = 10k: bound 1.5), and
    # the one-sample KS test against the exact CDF must not reject at the 0.1% level.
    d = GaussianDiffusion(make_betas("linear", 1000))
    x0, _ = sample(d, OracleEps(MIX, d.np["alphas_cumprod"]), (10_000, 1), torch.Generator().manual_seed(0))
    x0 = x0.double().numpy()
    rng = np.random.default_rng(0)
    floor = band(floor_draws(MIX, 10_000, 50, rng)["w1"])
    # Against the exact CDF: an exact sampler lands above the floor's 95th percentile 5% of the
    # time; a margin of 1.2 x p95 leaves room for the T = 1000 discretisation (~0.003 nats).
    assert statistics(x0, MIX)["w1"] < 1.2 * floor["p95"]
    assert stats.kstest(x0[:, 0], lambda v: MIX.marginal_cdf(v)).pvalue > 1e-3


# --- respaced DDPM and DDIM ----------------------------------------------------------------------

from ddpm_lab.core.sampling import SamplerConfig, step_coefficients, timestep_subsequence  # noqa: E402


@pytest.mark.parametrize("T,S", [(1000, 1), (1000, 10), (1000, 50), (1000, 333), (1000, 1000), (7, 3), (7, 7)])
def test_subsequence_is_evenly_spaced_and_ends_at_T(T, S):
    tau = timestep_subsequence(T, S)
    assert len(tau) == S and tau[-1] == T and tau[0] >= 1 and np.all(np.diff(tau) >= 1)
    if S == T:
        np.testing.assert_array_equal(tau, np.arange(1, T + 1))


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_respaced_betas_telescope_to_abar(variance):
    """On the subsequence, prod_i (1 - beta_i) = abar_T: the respaced chain has the same marginals."""
    d = GaussianDiffusion(make_betas("linear", 1000), variance)
    c = step_coefficients(d, SamplerConfig("ddpm", 20))
    alpha = 1.0 / c["a_x"] ** 2
    assert math.isclose(np.prod(alpha), d.np["alphas_cumprod"][-1], rel_tol=1e-12)
    assert c["sigma"][-1] == 0 and np.all(c["sigma"][:-1] > 0)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_with_eta_1_and_all_steps_is_algorithm_2_with_beta_tilde(schedule):
    """Song et al. 2021: eta = 1, S = T gives sigma_t^2 = beta~_t and the mean of Eq. 11, so the
    same noise gives the same draws as Algorithm 2 with variance beta_tilde."""
    d = GaussianDiffusion(make_betas(schedule, 200), "beta_tilde")
    model = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8), 0)
    x_ddpm, _ = sample(d, model, (512, 1), torch.Generator().manual_seed(5))
    x_ddim, _ = sample(d, model, (512, 1), torch.Generator().manual_seed(5), sampler=SamplerConfig("ddim", 0, 1.0))
    c_ddpm, c_ddim = step_coefficients(d, SamplerConfig()), step_coefficients(d, SamplerConfig("ddim", 200, 1.0))
    for k in ("a_x", "a_eps", "sigma"):
        np.testing.assert_allclose(c_ddim[k], c_ddpm[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert (x_ddim - x_ddpm).abs().max() < 1e-4


def test_ddim_eta_0_is_deterministic_given_x_T():
    """eta = 0 draws x_T and nothing else: the generator ends where one draw of x_T leaves it."""
    d = GaussianDiffusion(make_betas("linear", 100))
    g = torch.Generator().manual_seed(9)
    x, _ = sample(d, OracleEps(MIX, d.np["alphas_cumprod"]), (64, 1), g, sampler=SamplerConfig("ddim", 10))
    ref = torch.Generator().manual_seed(9)
    torch.randn((64, 1), generator=ref)
    assert torch.equal(g.get_state(), ref.get_state()) and torch.isfinite(x).all()


@pytest.mark.parametrize("cfg", [SamplerConfig("ddpm", 25), SamplerConfig("ddim", 25), SamplerConfig("ddim", 25, 0.5)])
def test_few_step_samplers_make_one_call_per_step_in_descending_t(cfg):
    d = GaussianDiffusion(make_betas("linear", 100))
    seen = []

    def model(x, t):
        seen.append(int(t[0]))
        return torch.zeros_like(x)

    x, (ts, path) = sample(d, model, (8, 1), torch.Generator().manual_seed(0), record=2, record_every=5, sampler=cfg)
    assert seen == list(timestep_subsequence(100, 25)[::-1])
    assert list(ts) == seen[::5] + [0] and path.shape == (len(ts), 2, 1)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_oracle_with_50_steps_reproduces_the_mixture(sampler):
    """With the exact eps*, 50 steps are close to the truth: a W1 within a few floor medians
    (the discretisation error is measured against S by the sampler_tradeoff stage)."""
    d = GaussianDiffusion(make_betas("linear", 1000))
    x, _ = sample(
        d,
        OracleEps(MIX, d.np["alphas_cumprod"]),
        (20_000, 1),
        torch.Generator().manual_seed(1),
        sampler=SamplerConfig(sampler, 50),
    )
    w1 = statistics(x.numpy(), MIX)["w1"]
    floor = band(floor_draws(MIX, 20_000, 50, np.random.default_rng(0))["w1"])
    assert w1 < 5 * floor["median"], (w1, floor)


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"sampler": "ddpn"}, "sampler"),
        ({"steps": -1}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"eta": 1.5}, "eta"),
        ({"sampler": "ddpm", "eta": 0.5}, "eta"),
    ],
)
def test_bad_sampler_settings_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=rf"^{key} = "):
        SamplerConfig(**kwargs)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_steps_at_or_above_T_mean_every_step(sampler):
    """steps 0, T and anything above T are all S = T: the same calls, the same bytes (so that
    `-S diffusion.T=...` alone never makes a params file invalid)."""
    d = GaussianDiffusion(make_betas("linear", 30))
    draws = []
    for steps in (0, 30, 31, 1000):
        cfg = SamplerConfig(sampler=sampler, steps=steps)
        assert cfg.n_steps(30) == 30
        calls = []

        def model(x, t):
            calls.append(int(t[0]))
            return 0.1 * x

        x0, _ = sample(d, model, (7, 1), torch.Generator().manual_seed(5), sampler=cfg)
        assert calls == list(range(30, 0, -1))
        draws.append(x0)
    assert all(torch.equal(draws[0], x) for x in draws[1:])
    assert SamplerConfig(steps=10).n_steps(30) == 10 and SamplerConfig(steps=10).n_steps(5) == 5
