"""Prediction targets (ddpm_lab.core.targets) and the weightings of the noise loss
(GaussianDiffusion.mse_weights): the conversions invert each other, every target gives the same
loss for the same eps_theta, and every weighting is minimised by the exact eps*."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpm_lab.core import targets
from ddpm_lab.core.diffusion import WEIGHTINGS, GaussianDiffusion
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.core.targets import PREDICTIONS, EpsFromTarget, as_eps_model
from ddpm_lab.gmm.exact import measure_model
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.gmm.model import EpsMLP, MLPConfig

T = 40
DIFF = GaussianDiffusion(make_betas("linear", T, 1e-3, 0.2))
ABAR = DIFF.np["alphas_cumprod"]


def coefficients(t: torch.Tensor):
    a = torch.from_numpy(np.sqrt(ABAR))[t].view(-1, 1)
    return a, torch.from_numpy(np.sqrt(1 - ABAR))[t].view(-1, 1)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_conversions_invert_each_other_and_recover_the_noise(prediction):
    g = torch.Generator().manual_seed(0)
    x0, noise, out = (torch.randn(64, 3, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.randint(1, T + 1, (64,), generator=g)
    a, s = coefficients(t)
    x_t = a * x0 + s * noise
    torch.testing.assert_close(targets.from_eps(prediction, targets.to_eps(prediction, out, x_t, a, s), x_t, a, s), out)
    torch.testing.assert_close(targets.to_eps(prediction, targets.from_eps(prediction, out, x_t, a, s), x_t, a, s), out)
    # the target of (x0, noise) is what a perfect network outputs: its eps is the noise
    want = targets.target(prediction, x0, noise, a, s)
    torch.testing.assert_close(targets.to_eps(prediction, want, x_t, a, s), noise)
    # ||eps - eps_hat||^2 = scale_t ||target - target_hat||^2, row by row
    scale = torch.from_numpy(targets.eps_scale(prediction, ABAR[1:]))[t - 1]
    eps_err = (noise - targets.to_eps(prediction, out, x_t, a, s)).pow(2).sum(1)
    torch.testing.assert_close(eps_err, scale * (want - out).pow(2).sum(1))


def target_net(eps_theta, prediction):
    """A network of `prediction` whose eps is eps_theta's (float64 coefficients)."""

    def net(x_t, t):
        a, s = coefficients(t)
        return targets.from_eps(prediction, eps_theta(x_t, t).double(), x_t.double(), a, s).to(x_t.dtype)

    return net


def EPS_THETA(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Some smooth eps_theta(x_t, t), in float64."""
    return 0.7 * torch.tanh(x * (1 + t.view(-1, 1) / T)) + 0.05 * x


@pytest.mark.parametrize("weighting", ["eq12", "eq14", "min_snr"])
@pytest.mark.parametrize("prediction", ["x0", "v"])
@pytest.mark.parametrize("t_sampling", ["uniform", "importance"])
def test_every_target_gives_the_same_loss_for_the_same_eps_theta(weighting, prediction, t_sampling):
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = DIFF.loss_eq12(EPS_THETA, x0, torch.Generator().manual_seed(7), weighting, t_sampling=t_sampling)
    got = DIFF.loss_eq12(
        target_net(EPS_THETA, prediction),
        x0,
        torch.Generator().manual_seed(7),
        weighting,
        t_sampling=t_sampling,
        prediction=prediction,
    )
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_target_mse_is_the_plain_mse_of_the_target(prediction):
    x0 = torch.randn(128, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    net = target_net(EPS_THETA, prediction)
    got = DIFF.loss_eq12(net, x0, torch.Generator().manual_seed(4), "target_mse", prediction=prediction)
    g = torch.Generator().manual_seed(4)  # the draws of loss_eq12 with t uniform: t, then the noise
    t = DIFF.timesteps(128, g)
    noise = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    a, s = coefficients(t)
    want = (targets.target(prediction, x0, noise, a, s) - net(a * x0 + s * noise, t)).pow(2).sum(1)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    if prediction == "eps":  # the plain MSE of eps is L_simple
        eq14 = DIFF.loss_eq12(net, x0, torch.Generator().manual_seed(4), "eq14")
        torch.testing.assert_close(got, eq14)


def test_min_snr_weights():
    snr = ABAR[1:] / (1 - ABAR[1:])
    w = DIFF.mse_weights("min_snr", gamma=5.0)
    np.testing.assert_allclose(w, np.minimum(snr, 5.0) / snr / T)
    assert np.all(w <= 1.0 / T + 1e-15) and np.any(w < 1.0 / T)  # the noisiest steps keep 1/T
    np.testing.assert_allclose(DIFF.mse_weights("min_snr", gamma=1e12), DIFF.mse_weights("eq14"))


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_eps_from_target_wraps_a_network_and_its_fast_path(prediction):
    mlp = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8, data_dim=1), 5)
    model = as_eps_model(mlp, prediction, ABAR)
    assert (model is mlp) == (prediction == "eps")
    x = torch.randn(300, 1, generator=torch.Generator().manual_seed(0))
    for t in (1, 17, T):
        a, s = float(np.sqrt(ABAR[t])), float(np.sqrt(1 - ABAR[t]))
        want = targets.to_eps(prediction, mlp(x, torch.full((300,), t)), x, a, s)
        torch.testing.assert_close(model(x, torch.full((300,), t)), want)
        if prediction != "eps":
            torch.testing.assert_close(model(x, t), want)  # an int t for the whole batch
        fast = model.sampling_eps([T, 17, 1])
        torch.testing.assert_close(fast(x, t), want, rtol=1e-5, atol=1e-5)
    if prediction != "eps":
        assert isinstance(model, EpsFromTarget) and model.config is mlp.config


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_every_weighting_is_minimised_by_eps_star(weighting, prediction):
    """The oracle eps* has no excess under any weighting, for any target: all weightings share
    their minimiser, and only how they trade the errors of other models differs."""
    mixture = GaussianMixture([0.3, 0.7], [-2.0, 1.0], [0.5, 0.8])
    oracle = as_eps_model(OracleEps(mixture, ABAR), "eps", ABAR)
    exact, _ = measure_model(mixture, DIFF, oracle, weighting, np.random.default_rng(0), weights=(prediction, 5.0))
    assert abs(exact["saved_model_excess_loss"]) <= max(exact["saved_model_excess_loss_err"], 1e-9)
    assert exact["loss_floor"] == pytest.approx(float(DIFF.mse_weights(weighting, prediction, 5.0) @ _mmse(mixture)))


def _mmse(mixture):
    return mixture.eps_mmse(ABAR[1:], rng=np.random.default_rng(0))[0]
