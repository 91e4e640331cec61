"""The image branch's learned reverse variance (improved-diffusion, Nichol & Dhariwal 2021): the U-Net's
v head, L_hybrid training (the bound's term trains v only), ddpm sampling and the bound in bits/dim
with Sigma = exp(v log beta_t + (1 - v) log beta~_t), and the params that couple them."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig, GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.core.targets import EpsFromTarget, as_eps_model
from ddpm_lab.images import likelihood as L
from ddpm_lab.images import sections as images_params
from ddpm_lab.images.sample import sample_images
from ddpm_lab.images.train import ImageTrainConfig, train_unet
from ddpm_lab.images.unet import UNet, UNetConfig, config_parameters, n_parameters
from ddpm_lab.runtime.params import ConfigError
from tests.helpers import TINY_DIFFUSION, TINY_MODEL, TINY_TRAIN, defaults_with

pytestmark = pytest.mark.usefixtures("one_torch_thread")

C = 1  # image channels
M = 16  # the digits' levels - 1
LEARNED = UNetConfig(**{**TINY_MODEL, "learned_variance": True})
FIXED = UNetConfig(**TINY_MODEL)


def _diffusion(variance: str = "beta") -> GaussianDiffusion:
    return DiffusionConfig(**{**TINY_DIFFUSION, "variance": variance}).build()


def _images(n: int, seed: int = 0) -> np.ndarray:
    """n 1x8x8 images on the digits' 17 levels."""
    k = np.random.default_rng(seed).integers(0, M + 1, size=(n, C, 8, 8))
    return (2.0 * k / M - 1.0).astype(np.float32)


def _forced(v: float, seed: int = 1) -> tuple[UNet, UNet]:
    """(a learned-variance U-Net whose v output is the constant v, the fixed-variance U-Net with the
    same weights and so the same target output). The zero-initialised output conv is randomised on
    the target channels, so that eps is not identically 0."""
    net = UNet.seeded(LEARNED, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w, b = net.conv_out.weight, net.conv_out.bias
        w[:C] = 0.05 * torch.randn(w[:C].shape, generator=g)
        b[:C] = 0.05 * torch.randn(b[:C].shape, generator=g)
        w[C:] = 0.0
        b[C:] = v
    fixed = UNet(FIXED)
    state = net.state_dict()
    state["conv_out.weight"], state["conv_out.bias"] = state["conv_out.weight"][:C], state["conv_out.bias"][:C]
    fixed.load_state_dict(state)
    return net.eval(), fixed.eval()


# -- the network -------------------------------------------------------------------------------
def test_learned_variance_doubles_the_output_channels_and_the_counts_follow():
    net = UNet.seeded(LEARNED, 0)
    out = net(torch.zeros(2, C, 8, 8), torch.tensor([1, 5]))
    assert out.shape == (2, 2 * C, 8, 8)
    assert LEARNED.out_channels == 2 * C and FIXED.out_channels == C
    assert config_parameters(LEARNED) == n_parameters(net)
    assert config_parameters(LEARNED) - config_parameters(FIXED) == n_parameters(net.conv_out) // 2
    # the trunk is seeded as before: only the output conv differs from the fixed-variance network
    fixed = UNet.seeded(FIXED, 0)
    for (name, a), b in zip(fixed.state_dict().items(), net.state_dict().values()):
        if not name.startswith("conv_out"):
            assert torch.equal(a, b), name


# -- training ----------------------------------------------------------------------------------
def _conv_out_grads(lam: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, gradient of the output conv's weight on the target channels, on the v channels) of one
    L_hybrid minibatch of a seeded learned-variance U-Net."""
    net = UNet.seeded(LEARNED, 0)
    x0 = torch.from_numpy(_images(8))
    loss = _diffusion().loss_eq12(
        net, x0, torch.Generator().manual_seed(3), "hybrid", learned_variance=True, hybrid_lambda=lam
    )
    loss.mean().backward()
    g = net.conv_out.weight.grad
    return loss.detach(), g[:C].clone(), g[C:].clone()


def test_hybrid_trains_v_through_the_bound_and_the_mean_through_l_simple_only():
    """The bound's term reaches v (its head gets a gradient only with lambda > 0) and not the
    target: the target head's gradient is the same with lambda = 0 (L_simple alone) and lambda = 1."""
    loss0, target0, v0 = _conv_out_grads(0.0)
    loss1, target1, v1 = _conv_out_grads(1.0)
    assert torch.isfinite(loss1).all() and not torch.equal(loss1, loss0)  # L_0 at t = 1 may be < 0
    assert torch.count_nonzero(v0) == 0 and torch.count_nonzero(v1) > 0
    assert torch.count_nonzero(target0) > 0
    torch.testing.assert_close(target1, target0, rtol=1e-6, atol=1e-9)


def test_train_unet_with_hybrid_learns_v():
    x = _images(32)
    tcfg = ImageTrainConfig(**{**TINY_TRAIN, "grad_clip": 1.0, "seed": 0, "weighting": "hybrid", "steps": 4})
    ema, history = train_unet(x, _diffusion(), LEARNED, tcfg, torch.device("cpu"))
    assert np.isfinite(history[:, 1]).all()
    assert torch.count_nonzero(ema.conv_out.weight[C:]) > 0  # zero at initialisation: v was trained
    with pytest.raises(ValueError, match="weighting 'eq14' with learned_variance True"):
        train_unet(
            x,
            _diffusion(),
            LEARNED,
            ImageTrainConfig(**{**TINY_TRAIN, "weighting": "eq14", "steps": 2, "warmup": 1}),
            torch.device("cpu"),
        )


# -- sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("v, variance", [(0.0, "beta_tilde"), (1.0, "beta")])
def test_ddpm_samples_with_the_learned_sigma(v, variance):
    """v = 0 gives Sigma = beta~_t, v = 1 gives beta_t: the same draws (the same noise, step by step)
    as the fixed-variance network under that variance at S = T, to float rounding; under the other
    variance they differ, so the learned sigma is what is used."""
    learned, fixed = _forced(v)
    other = "beta" if variance == "beta_tilde" else "beta_tilde"

    def draw(model, var, sampler="ddpm"):
        cfg = SamplerConfig(sampler=sampler, steps=0)
        gen = torch.Generator().manual_seed(5)
        return sample_images(_diffusion(var), model, 6, (C, 8, 8), gen, torch.device("cpu"), sampler=cfg)

    got = draw(learned, other)  # the diffusion's own variance is not read
    np.testing.assert_allclose(got, draw(fixed, variance), rtol=0, atol=2e-5)
    assert np.abs(got - draw(fixed, other)).max() > 1e-2
    # ddim's sigma is eta's: it ignores the learned variance
    np.testing.assert_array_equal(draw(learned, other, "ddim"), draw(fixed, other, "ddim"))


def test_sample_images_wraps_the_unet_with_its_learned_variance():
    learned, _ = _forced(0.5)
    wrapped = as_eps_model(learned, "eps", _diffusion().np["alphas_cumprod"])
    assert isinstance(wrapped, EpsFromTarget) and wrapped.learned_variance
    eps, v = wrapped.eps_v(torch.zeros(2, C, 8, 8), torch.tensor([3, 4]))
    assert eps.shape == v.shape == (2, C, 8, 8)
    torch.testing.assert_close(v, torch.full_like(v, 0.5))


# -- the bound in bits/dim ---------------------------------------------------------------------
@pytest.mark.parametrize("v, variance", [(1.0, "beta"), (0.0, "beta_tilde")])
def test_bound_with_a_forced_v_is_the_fixed_variance_bound(v, variance):
    """Sigma at v = 1 is beta_t, at v = 0 beta~_t (beta~_2 at t = 1): every term, the decoder L_0
    included, equals the fixed-variance bound with the same eps and the same noise draws."""
    learned, fixed = _forced(v)
    d = _diffusion(variance)
    abar = d.np["alphas_cumprod"]
    x0 = torch.from_numpy(_images(5, seed=2))
    got = L.bound_terms(_diffusion("beta"), as_eps_model(learned, "eps", abar), x0, M, torch.Generator().manual_seed(7))
    want = L.bound_terms(d, as_eps_model(fixed, "eps", abar), x0, M, torch.Generator().manual_seed(7))
    for key in ("prior", "diffusion", "decoder", "total"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-9, err_msg=key)


class PixelV:
    """An eps-model with a learned variance whose v varies pixel by pixel (in [-0.2, 1.2]: Eq. 15
    also extrapolates) and whose eps is 0.3 x_t."""

    learned_variance = True

    def eps_v(self, x_t, t):
        v = torch.linspace(-0.2, 1.2, x_t[0].numel()).view_as(x_t[0]).expand_as(x_t)
        return 0.3 * x_t, v

    def __call__(self, x_t, t):
        return self.eps_v(x_t, t)[0]


def test_bound_reads_the_learned_sigma_per_pixel():
    """Each L_{t-1} is the KL of model_terms with Sigma = learned_sigma2(v, t) element by element (the
    same noise draws, t = T first), and L_0 the decoder's mass under N(mu_theta, Sigma at t = 1)."""
    d, model = _diffusion(), PixelV()
    x0 = torch.from_numpy(_images(4, seed=3))
    terms = L.bound_terms(d, model, x0, M, torch.Generator().manual_seed(11))
    gen, kl = torch.Generator().manual_seed(11), torch.zeros(4, dtype=torch.float64)
    for t_int in range(d.T, 0, -1):
        t = torch.full((4,), t_int, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=gen)
        x_t = d.q_sample(x0, t, noise)
        eps, v = model.eps_v(x_t, t)
        sigma2 = d.learned_sigma2(v, t)
        if t_int == 1:
            mean = d.p_mean_variance(eps, x_t, t)[0]
            decoder = -L.discretised_gaussian_log_likelihood(x0, mean, sigma2, M).sum((1, 2, 3))
        else:
            kl += d.model_terms(t, noise.double(), eps.double(), sigma2)
    np.testing.assert_allclose(terms["diffusion"], kl.numpy(), rtol=1e-5)
    np.testing.assert_allclose(terms["decoder"], decoder.numpy(), rtol=1e-6)
    fixed = L.bound_terms(d, model.__call__, x0, M, torch.Generator().manual_seed(11))  # diffusion.sigma2
    assert np.abs(fixed["diffusion"] - terms["diffusion"]).min() > 1e-3


# -- params ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"images_model.learned_variance": True},
            "params.yaml: images_train.weighting = 'eq14': expected hybrid with images_model.learned_variance true",
        ),
        (
            {"images_train.weighting": "hybrid"},
            "params.yaml: images_train.weighting = 'hybrid': expected a weighting other than hybrid with "
            "images_model.learned_variance false",
        ),
        (
            {
                "images_model.learned_variance": True,
                "images_train.weighting": "hybrid",
                "images_sample.sampler": "ddim",
            },
            "params.yaml: images_sample.sampler = 'ddim': expected ddpm with images_model.learned_variance true",
        ),
        (
            {
                "images_model.learned_variance": True,
                "images_train.weighting": "hybrid",
                "images_sample.sampler": "heun",
            },
            "params.yaml: images_sample.sampler = 'heun': expected ddpm with images_model.learned_variance true",
        ),
        (
            {"images_model.learned_variance": "yes"},
            "params.yaml: images_model.learned_variance = 'yes': expected true or false",
        ),
    ],
)
def test_bad_learned_variance_params_give_one_line(values, message):
    with pytest.raises(ConfigError) as err:
        images_params.check_all(defaults_with(values))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_learned_variance_params_are_accepted():
    cfgs = images_params.check_all(
        defaults_with({"images_model.learned_variance": True, "images_train.weighting": "hybrid"})
    )
    assert cfgs["images_model"].learned_variance and cfgs["images_train"].weighting == "hybrid"
    assert images_params.check_all(defaults_with({}))["images_model"].learned_variance is False
