"""The sampler's output distribution propagated on a grid (ddpm_lab.gmm.propagate), checked against
closed forms (a Gaussian target makes every sampler affine, so its output is Gaussian), against
Monte-Carlo draws of the samplers themselves, and against the chain rule of the bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special, stats

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, sample, step_coefficients
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.gmm import propagate as P
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps

SAMPLERS = [
    SamplerConfig(),  # Algorithm 2: kernels, then the last step's map
    SamplerConfig(steps=7),  # respaced DDPM
    SamplerConfig(sampler="ddim", steps=9, eta=0.5),  # kernels, then a map
    SamplerConfig(sampler="ddim", steps=9),  # one deterministic map
    SamplerConfig(sampler="euler", steps=6),
    SamplerConfig(sampler="heun", steps=4),
    SamplerConfig(sampler="dpmpp_2m", steps=5),
]
IDS = ["ddpm", "ddpm7", "ddim_eta", "ddim", "euler", "heun", "dpmpp_2m"]


def diffusion(T: int = 40, variance: str = "beta") -> GaussianDiffusion:
    return GaussianDiffusion(make_betas("linear", T, 1e-4 * 1000 / T, 0.02 * 1000 / T), variance)


def gaussian_output(d: GaussianDiffusion, eps_model, cfg: SamplerConfig) -> tuple[float, float]:
    """Mean and variance of the sampler's output from N(0, 1) when eps_model is affine in x_t at
    every t (eps* of a Gaussian target): every step is affine plus Gaussian noise, so the output is
    Gaussian. Deterministic chains: the map itself, read off at x_T = 0 and 1 in float64. Others:
    the recursion M <- a_x M - a_eps eps(M), V <- (a_x - a_eps eps')^2 V + sigma^2, with the last,
    noiseless step a map too."""
    wrapped = P._Float64Eps(eps_model, 2)
    if not P.kernel_sigmas(d, cfg).size:
        y, _ = sample(d, wrapped, (2, 1), None, sampler=cfg, x_T=torch.tensor([[0.0], [1.0]], dtype=torch.float64))
        b, a = float(y[0, 0]), float(y[1, 0] - y[0, 0])
        return b, a * a
    c = step_coefficients(d, cfg)
    M, V = 0.0, 1.0
    for t, a_x, a_eps, sigma in zip(c["t"], c["a_x"], c["a_eps"], c["sigma"]):
        e = wrapped(torch.tensor([[0.0], [1.0]], dtype=torch.float64), torch.full((2,), int(t)))[:, 0].numpy()
        slope = a_x - a_eps * (e[1] - e[0])
        M, V = a_x * M - a_eps * (e[0] + (e[1] - e[0]) * M), slope * slope * V + sigma * sigma
    return M, V


def moments(prop: P.Propagated) -> tuple[float, float]:
    mean = np.trapezoid(prop.x * prop.p, prop.x)
    return mean, np.trapezoid((prop.x - mean) ** 2 * prop.p, prop.x)


FAST = ("ddpm", "ddim_eta", "heun")  # one of each path in the fast tier; the rest in the stage tier
CASES = [pytest.param(c, id=i, marks=() if i in FAST else pytest.mark.stage) for c, i in zip(SAMPLERS, IDS)]


@pytest.mark.parametrize("cfg", CASES)
def test_gaussian_target_is_exact(cfg):
    # q = N(0.7, 0.3^2): eps* is affine in x_t, every sampler's output is N(M, V) (gaussian_output).
    # Propagated mean and variance match to 1e-6; its KL and W1 to the truth match the closed forms
    # KL(N(m, s^2) || N(M, V)) = log(sqrt(V) / s) + (s^2 + (m - M)^2) / (2 V) - 1/2 and, by quadrature
    # of |F_p - F_q|, W1, each within its reported grid error plus 1e-6.
    d = diffusion()
    q = GaussianMixture([1.0], [0.7], [0.3])
    oracle = OracleEps(q, d.np["alphas_cumprod"])
    M, V = gaussian_output(d, oracle, cfg)
    prop = P.propagate(d, oracle, cfg, P.grid_for(q, d, cfg))["output"]
    mean, var = moments(prop)
    assert abs(mean - M) < 1e-6 and abs(var - V) < 1e-6 * V, (mean, M, var, V)
    docs, _ = P.measures(d, oracle, cfg, q)
    out = docs["output"]
    kl = math.log(math.sqrt(V) / 0.3) + (0.09 + (0.7 - M) ** 2) / (2 * V) - 0.5
    assert out["kl_unresolved_q_mass"] < 1e-12
    assert abs(out["kl"] - kl) <= out["kl_err"] + 1e-6, (out["kl"], kl, out["kl_err"])
    x = np.linspace(-5, 6, 200_001)
    w1 = np.trapezoid(np.abs(special.ndtr((x - M) / math.sqrt(V)) - special.ndtr((x - 0.7) / 0.3)), x)
    assert abs(out["w1"] - w1) <= out["w1_err"] + 1e-6, (out["w1"], w1)
    assert out["folds"] == 0 and out["mass_lost"] < 1e-9


MIXTURE = GaussianMixture([0.3, 0.5, 0.2], [-2.0, 0.0, 1.5], [0.25, 0.4, 0.2])


@pytest.mark.stage  # 20,000 draws per sampler: seconds each, so not in the fast default tier
@pytest.mark.parametrize("cfg", [SAMPLERS[0], SAMPLERS[2], SAMPLERS[5]], ids=["ddpm", "ddim_eta", "heun"])
def test_draws_follow_the_propagated_cdf(cfg):
    # 20,000 draws of the sampler itself (seeded) against the propagated CDF: under the null the KS
    # test's p is uniform, so p > 1e-3 fails one seed in a thousand; a wrong propagation at this n
    # (a CDF off by 0.02 anywhere) gives p ~ 1e-7.
    d = diffusion()
    oracle = OracleEps(MIXTURE, d.np["alphas_cumprod"])
    x0, _ = sample(d, oracle, (20_000, 1), torch.Generator().manual_seed(3), sampler=cfg)
    prop = P.propagate(d, oracle, cfg, P.grid_for(MIXTURE, d, cfg))["output"]
    p = stats.kstest(x0[:, 0].numpy(), lambda v: P.cdf_at(prop, v)).pvalue
    assert p > 1e-3, p


class Perturbed:
    """eps* made wrong: 1.1 eps* + 0.05, a model with a known excess error at every t."""

    def __init__(self, oracle):
        self.oracle = oracle

    def __call__(self, x, t):
        return 1.1 * self.oracle(x, t) + 0.05


@pytest.mark.parametrize("variance", ["beta", pytest.param("beta_tilde", marks=pytest.mark.stage)])
def test_decoder_kl_respects_the_bound(variance):
    # KL(q || p_theta) <= E_q[L] - H(q) (Eq. 5's chain rule), for the oracle (E_q[L] its exact bound)
    # and for a perturbed eps* (its bound: the oracle's plus sum_t w_t e_t, e_t by quadrature).
    d = diffusion(variance=variance)
    abar = d.np["alphas_cumprod"][1:]
    oracle = OracleEps(MIXTURE, d.np["alphas_cumprod"])
    rng = np.random.default_rng(0)
    mmse, _ = MIXTURE.eps_mmse(abar, rng=rng)
    bound = d.expected_bound(mmse, MIXTURE.second_moment(), 1)
    entropy = MIXTURE.entropy()
    w = d.mse_weights("bound")
    cfg = SamplerConfig()
    for model, gap in ((oracle, 0.0), (Perturbed(oracle), None)):
        if gap is None:
            e, _ = MIXTURE.eps_error(model, abar, rng=rng)
            gap = float(w @ e)
        docs, _ = P.measures(d, model, cfg, MIXTURE, decoder=True)
        kl = docs["decoder"]["kl"]
        assert 0 < kl <= bound + gap - entropy, (kl, bound + gap - entropy)
        assert docs["decoder"]["kl_err"] < 1e-3 * kl
    assert gap > 0.05  # the perturbed model is far from eps*: the check is not vacuous


def test_a_fold_is_counted_and_handled():
    # y = x^2 folds the line at 0: for X ~ N(0, 1), Y is chi-square with 1 degree of freedom,
    # F(y) = erf(sqrt(y / 2)). The segment spreading of (2) gives it within the nodes' resolution.
    x = np.linspace(-10, 10, 8_001)
    prop = P._pushforward(x, np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), x * x)
    assert prop.folds > 0
    ys = np.array([0.05, 0.5, 1.0, 2.0, 4.0])
    assert np.max(np.abs(P.cdf_at(prop, ys) - special.erf(np.sqrt(ys / 2)))) < 1e-3


def test_grid_adapts_to_the_mixture_and_the_schedule():
    d = diffusion(T=1000)
    narrow = GaussianMixture([0.5, 0.5], [-30.0, 2.0], [0.01, 1.0])
    g = P.grid_for(narrow, d, SamplerConfig())
    assert g.h <= 0.01 / P.NODES_PER_STD and g.lo <= -30 - P.SPAN_STDS * 0.01
    wide = GaussianMixture([1.0], [0.0], [3.0])
    sig = P.kernel_sigmas(d, SamplerConfig())
    assert P.grid_for(wide, d, SamplerConfig()).h <= sig.min() / P.NODES_PER_SIGMA
    assert P.grid_for(wide, d, SamplerConfig(sampler="heun", steps=5)).lo == -P.SPAN_STDS  # nodes of x_T


def test_refused_inputs():
    d = diffusion()
    with pytest.raises(ValueError, match="1-D"):
        P.grid_for(GaussianMixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]]), d, SamplerConfig())
    oracle = OracleEps(MIXTURE, d.np["alphas_cumprod"])
    with pytest.raises(ValueError, match="decoder"):
        P.measures(d, oracle, SamplerConfig(steps=5), MIXTURE, decoder=True)
