"""A learned reverse variance (Nichol & Dhariwal 2021, Eq. 15) in the GMM branch: the network's v
read by Algorithm 2 and respaced DDPM, by the exact propagation, by every bound estimator and by
the exact bound; L_hybrid trains v only through its L_vlb part; bad params give one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, sample
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.gmm import propagate as P
from ddpm_lab.gmm import variance as V
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.runtime.params import ConfigError
from tests.helpers import defaults_with

MIX = GaussianMixture([0.4, 0.6], [[-1.5], [1.0]], [[0.4], [0.6]])


def diffusion(T: int = 30, variance: str = "beta") -> GaussianDiffusion:
    return GaussianDiffusion(make_betas("linear", T, 1e-3, 0.25), variance)


def pair(v: float, seed: int = 0) -> tuple[EpsMLP, EpsMLP]:
    """A fixed-variance MLP and a learned-variance MLP with the same eps and a constant v."""
    fixed = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8), seed)
    learned = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8, learned_variance=True), seed)
    state = fixed.state_dict()
    with torch.no_grad():
        learned.load_state_dict({k: val for k, val in state.items() if not k.startswith("out.")}, strict=False)
        learned.out.weight.zero_()
        learned.out.weight[:1] = fixed.out.weight
        learned.out.bias[:1] = fixed.out.bias
        learned.out.bias[1:] = v
    return fixed.eval(), learned.eval()


class SmoothLearned:
    """An eps-model with a learned variance, smooth in x_t: eps = 0.8 eps* + 0.05 sin(x), v = 0.5 + 0.3 tanh(x)."""

    learned_variance = True

    def __init__(self, d: GaussianDiffusion):
        self.ab = torch.from_numpy(d.np["alphas_cumprod"])

    def eps_v(self, x, t):
        t = torch.as_tensor(t).expand(x.shape[0]) if not isinstance(t, torch.Tensor) or t.dim() == 0 else t
        eps = 0.8 * MIX.eps_star(x.double(), self.ab[t]) + 0.05 * torch.sin(x.double())
        return eps.to(x.dtype), (0.5 + 0.3 * torch.tanh(x.double())).to(x.dtype)

    def __call__(self, x, t):
        return self.eps_v(x, t)[0]


def test_learned_sigma2_interpolates_between_beta_tilde_and_beta():
    d = diffusion()
    t = torch.arange(1, d.T + 1)
    ones = torch.ones(d.T)
    assert torch.allclose(d.learned_sigma2(ones, t), torch.from_numpy(d.np["betas"][1:]), rtol=1e-12)
    bt = GaussianDiffusion(d.np["betas"][1:], "beta_tilde").np["sigma2"][1:]  # beta~_1 -> beta~_2, as they clip
    assert torch.allclose(d.learned_sigma2(0 * ones, t), torch.from_numpy(bt), rtol=1e-12)


@pytest.mark.parametrize("steps", [0, 7])
@pytest.mark.parametrize("v, variance", [(1.0, "beta"), (0.0, "beta_tilde")])
def test_ddpm_reads_the_learned_sigma(v, variance, steps):
    """v = 1 everywhere is sigma^2 = beta, v = 0 is beta~ (on the respaced steps too): the same draws as
    the fixed variance, to float rounding."""
    fixed, learned = pair(v)
    d = diffusion(variance=variance)
    cfg = SamplerConfig(steps=steps)
    a, _ = sample(d, fixed, (500, 1), torch.Generator().manual_seed(1), sampler=cfg)
    b, _ = sample(
        d, as_eps_model(learned, "eps", d.np["alphas_cumprod"]), (500, 1), torch.Generator().manual_seed(1), sampler=cfg
    )
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert not torch.equal(
        a,
        sample(
            diffusion(variance="beta_tilde" if v else "beta"),
            fixed,
            (500, 1),
            torch.Generator().manual_seed(1),
            sampler=cfg,
        )[0],
    )


def test_ddim_and_the_ode_samplers_ignore_a_learned_variance():
    fixed, learned = pair(3.0)
    d = diffusion()
    m = as_eps_model(learned, "eps", d.np["alphas_cumprod"])
    for cfg in (SamplerConfig(sampler="ddim", steps=5, eta=0.5), SamplerConfig(sampler="heun", steps=4)):
        a, _ = sample(d, fixed, (100, 1), torch.Generator().manual_seed(2), sampler=cfg)
        b, _ = sample(d, m, (100, 1), torch.Generator().manual_seed(2), sampler=cfg)
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("v", [1.0, 0.3])
def test_propagation_with_per_node_sigmas_matches_the_convolution(v):
    """A constant v through the per-node kernel sum equals the fixed-sigma convolution (_kernel_step)
    with that sigma; the decoder too."""
    fixed, learned = pair(v)
    d = diffusion(T=20)
    m = as_eps_model(learned, "eps", d.np["alphas_cumprod"])
    grid = P.grid_for(MIX, d, SamplerConfig(), True, m)
    p = np.exp(-0.5 * grid.nodes**2)
    mu = 0.97 * grid.nodes
    sigma = float(d.learned_sigma2(torch.tensor([v]), torch.tensor([10])).sqrt())
    a = P._kernel_step(p, mu, grid.lo, sigma, grid.h)
    b = P._kernel_step_nodes(p, mu, np.full_like(p, sigma), grid.lo, grid.h)
    assert np.max(np.abs(a - b)) < 1e-12 * np.max(a)
    if v == 1.0:  # the whole chain: the learned model against the fixed-beta one
        out_f = P.propagate(d, fixed, SamplerConfig(), grid, decoder=True)
        out_l = P.propagate(d, m, SamplerConfig(), grid, decoder=True)
        for which in ("output", "decoder"):
            assert np.max(np.abs(out_f[which].F - out_l[which].F)) < 1e-5


def test_exact_propagation_of_a_learned_sigma_agrees_with_its_samples():
    from scipy import stats

    d = diffusion(T=25)
    m = SmoothLearned(d)
    prop = P.propagate(d, m, SamplerConfig(), P.grid_for(MIX, d, SamplerConfig(), False, m))["output"]
    x, _ = sample(d, m, (20000, 1), torch.Generator().manual_seed(0))
    assert stats.kstest(x[:, 0].numpy(), lambda v: P.cdf_at(prop, v)).pvalue > 1e-3


def test_heldout_and_every_estimator_agree_with_the_exact_bound_of_a_learned_sigma():
    """The exact expected bound of an x_t-dependent Sigma (model_bound) against Monte Carlo through
    the lab's own estimators: the held-out Eq. 5 rows (nll_bound_rows) and Eq. 3's log-ratios
    (trajectory), each within 4 standard errors (plus the quadrature's error)."""
    d = diffusion(T=20)
    m = SmoothLearned(d)
    exact, err = V.model_bound(d, MIX, m)
    x0 = torch.from_numpy(MIX.sample(20000, np.random.default_rng(4))).float()
    rows = d.nll_bound_rows(m, x0, 2000, 0)
    assert abs(rows.mean() - exact) < 4 * rows.std() / math.sqrt(rows.size) + err
    g = torch.Generator().manual_seed(5)
    for est in ("trajectory", "trajectory_kl"):
        r = d.loss_bound(m, x0.double(), g, est).double().numpy()
        assert abs(r.mean() - exact) < 4 * r.std() / math.sqrt(r.size) + err, est


def test_hybrid_trains_v_through_l_vlb_only():
    """L_hybrid's L_vlb part moves v alone: the gradient on the eps output's weights is L_simple's."""
    _, net = pair(0.5)
    d = diffusion()
    x0 = torch.from_numpy(MIX.sample(256, np.random.default_rng(0))).float()

    def grads(lam):
        net.zero_grad()
        d.loss_eq12(
            net, x0, torch.Generator().manual_seed(0), "hybrid", learned_variance=True, hybrid_lambda=lam
        ).mean().backward()
        return net.out.weight.grad.clone()

    simple, hybrid = grads(0.0), grads(0.5)
    assert torch.equal(simple[:1], hybrid[:1])
    assert simple[1:].abs().max() == 0 and hybrid[1:].abs().max() > 0
    with pytest.raises(ValueError, match="learned_variance"):
        d.loss_eq12(net, x0, torch.Generator(), "eq14", learned_variance=True)


def test_stable_target_gives_l_vlb_the_posterior_mean_over_the_minibatch():
    """With target "stable", L_hybrid's L_vlb term keeps its sampled value but takes the gradient of
    its posterior mean given x_t over the minibatch's x_0: sum_j w_j L_{t-1}(x_0 = x0_j), w_j the
    weights of q(x_t | x0_j) (GaussianDiffusion.reference_posterior_mean)."""
    d = diffusion(T=30)
    x0 = torch.tensor([[-1.5], [-0.2], [0.4], [1.1], [2.0]], dtype=torch.float64)
    t = torch.tensor([3, 12, 20, 25, 30])
    d.timesteps = lambda B, generator: t  # fixed t; the noise is the generator's first draw
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0), dtype=x0.dtype)
    v = torch.tensor([0.2, 0.5, 0.9, 1.3, -0.4], dtype=torch.float64, requires_grad=True)

    def model(x, tt):
        return torch.cat([0.3 * x, v[:, None]], dim=1)

    losses = {}
    for target in ("sampled", "stable"):
        v.grad = None
        loss = d.loss_eq12(model, x0, torch.Generator().manual_seed(0), "hybrid", target=target, learned_variance=True)
        loss.sum().backward()
        losses[target] = (loss.detach(), v.grad.clone())
    torch.testing.assert_close(losses["stable"][0], losses["sampled"][0], rtol=1e-12, atol=1e-14)
    # by hand: each row's term averaged over the minibatch's x_0 given its x_t
    a = torch.from_numpy(d.np["sqrt_alphas_cumprod"])[t][:, None]
    s = torch.from_numpy(d.np["sqrt_one_minus_alphas_cumprod"])[t][:, None]
    x_t = a * x0 + s * noise
    w = torch.softmax(-((x_t - a * x0.T) ** 2) / (2 * s**2), dim=1)  # (rows, j)
    eps_fixed = (0.3 * x_t).detach()
    vv = v.detach().clone().requires_grad_()
    sigma2 = d.learned_sigma2(vv[:, None], t)
    terms = torch.stack([d.model_terms(t, ((x_t - a * x0[j]) / s), eps_fixed, sigma2) for j in range(len(x0))], dim=1)
    (d.T * 0.001 * (w * terms).sum()).backward()
    torch.testing.assert_close(losses["stable"][1], vv.grad, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(losses["sampled"][1], vv.grad)


def test_preconditioned_l_vlb_scales_each_rows_v_gradient_by_u_t():
    """hybrid_vlb "preconditioned": each row's L_{t-1} is weighted by u_t = min(1 / l_t^2, cap), l_t =
    log beta_t - log beta~_t, so v's gradient per row is the kl one times u_t, and L_simple's part is
    untouched; "kl" is u_t = 1."""
    from ddpm_lab.core.weightings import PRECONDITION_CAP, VLB_WEIGHTS

    d = GaussianDiffusion(make_betas("linear", 1000, 1e-4, 0.02), "beta")
    ell = d.np["log_beta"] - d.np["log_beta_tilde"]
    u = VLB_WEIGHTS["preconditioned"](d)
    assert np.array_equal(VLB_WEIGHTS["kl"](d), np.ones(1001))
    np.testing.assert_allclose(u[1:], np.minimum(1.0 / ell[1:] ** 2, PRECONDITION_CAP), rtol=1e-12)
    assert u[2] < 10 and u[1000] == PRECONDITION_CAP  # small where v moves Sigma most, capped where it barely does
    x0 = torch.tensor([[-1.5], [-0.2], [0.4], [1.1], [2.0]], dtype=torch.float64)
    t = torch.tensor([1, 2, 50, 300, 1000])
    d.timesteps = lambda B, generator: t
    v = torch.tensor([0.2, 0.5, 0.9, 1.3, -0.4], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)

    def model(x, tt):
        return torch.cat([w * x, v[:, None]], dim=1)

    out = {}
    for vlb in ("kl", "preconditioned"):
        v.grad = w.grad = None
        d.loss_eq12(
            model, x0, torch.Generator().manual_seed(0), "hybrid", learned_variance=True, hybrid_vlb=vlb
        ).sum().backward()
        out[vlb] = (v.grad.clone(), w.grad.clone())
    torch.testing.assert_close(out["preconditioned"][0], out["kl"][0] * torch.from_numpy(u)[t], rtol=1e-10, atol=0)
    torch.testing.assert_close(out["preconditioned"][1], out["kl"][1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown hybrid_vlb 'fisher'"):
        d.loss_eq12(model, x0, torch.Generator(), "hybrid", learned_variance=True, hybrid_vlb="fisher")


def test_hybrid_floor_is_the_best_diagonal_kernel():
    """The learned-variance floor (per_xt_terms, diagonal): in 1-D the isotropic per-x_t optimum; in
    2-D, on the same Monte-Carlo draws, below it (each coordinate takes its own variance)."""
    d = diffusion(T=20)
    terms, _ = V.per_xt_terms(d, MIX, diagonal=True)
    iso, _ = V.per_xt_terms(d, MIX)
    assert np.allclose(terms, iso, rtol=1e-12)  # 1-D: diagonal is isotropic
    mix2 = GaussianMixture([0.5, 0.5], [[-1.0, 0.5], [1.0, -0.5]], [[0.3, 0.9], [0.5, 0.4]])
    diag, _ = V.per_xt_terms(d, mix2, np.random.default_rng(0), diagonal=True)
    iso2, _ = V.per_xt_terms(d, mix2, np.random.default_rng(0))
    assert diag.sum() < iso2.sum()  # the same draws: a diagonal variance per x_t beats an isotropic one


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"model.learned_variance": True},
            "train_eq12.weighting = 'eq12': expected hybrid with model.learned_variance true",
        ),
        (
            {"train_eq12.weighting": "hybrid"},
            "train_eq12.weighting = 'hybrid': expected a weighting other than hybrid",
        ),
        ({"train_eq12.hybrid_lambda": -0.1}, "train_eq12.hybrid_lambda = -0.1: expected a number >= 0"),
        ({"train_eq12.hybrid_vlb": "fisher"}, "train_eq12.hybrid_vlb = 'fisher': expected one of kl, preconditioned"),
        (
            {
                "model.learned_variance": True,
                "train_eq12.weighting": "hybrid",
                "train_eq12.t_sampling": "importance",
            },
            "train_eq12.t_sampling = 'importance': expected uniform or stratified with weighting hybrid",
        ),
        (
            {"model.learned_variance": True, "train_eq12.weighting": "hybrid", "sample.sampler": "heun"},
            "sample.sampler = 'heun': expected ddpm with model.learned_variance true",
        ),
    ],
)
def test_bad_learned_variance_params_give_one_line(values, message):
    with pytest.raises(ConfigError) as err:
        gmm_params.check_all(defaults_with(values))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_learned_variance_params_are_accepted():
    gmm_params.check_all(defaults_with({"model.learned_variance": True, "train_eq12.weighting": "hybrid"}))
