"""How the noise loss draws t (GaussianDiffusion.loss_eq12's t_sampling): stratified and importance
sampling are unbiased for the same expectation as i.i.d. uniform t, and uniform t keeps its bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import T_SAMPLINGS, DiffusionConfig
from ddpm_lab.core.training import Eq12TrainConfig

D = DiffusionConfig(T=100, schedule="linear", beta_start=1e-3, beta_end=0.2, variance="beta").build()


def model_x(x, t):  # eps_theta = x_t: an error that depends on t
    return x


def test_stratified_timesteps_cover_every_t_once_per_T_rows():
    g = torch.Generator().manual_seed(0)
    t = D.stratified_timesteps(D.T, g)
    assert sorted(t.tolist()) == list(range(1, D.T + 1))
    t = D.stratified_timesteps(7 * D.T + 3, g)
    counts = np.bincount(t.numpy(), minlength=D.T + 1)[1:]
    assert counts.min() >= 7 and counts.max() <= 8


def test_importance_timesteps_follow_the_weights():
    g = torch.Generator().manual_seed(1)
    t, factor = D.importance_timesteps(200_000, g, "eq12")
    w = D.mse_weights("eq12")
    assert torch.allclose(factor, torch.tensor(float(w.sum()), dtype=torch.float64), rtol=1e-12)
    freq = np.bincount(t.numpy(), minlength=D.T + 1)[1:] / len(t)
    np.testing.assert_allclose(freq, w / w.sum(), atol=4 * np.sqrt((w / w.sum()).max() / len(t)))


@pytest.mark.parametrize("weighting", ["eq12", "eq14"])
def test_every_t_sampling_has_the_expectation_of_uniform_t(weighting):
    """The exact expectation sum_t c_t E||eps - x_t||^2 (c_t = mse_weights), with x_0 = 0.5 so that
    E||eps - x_t||^2 = abar_t x_0^2 + (1 - sqrt(1 - abar_t))^2 in closed form; each t_sampling's
    mean over 400 minibatches of 256 within 4 standard errors of it."""
    abar = D.np["alphas_cumprod"][1:]
    exact = float(D.mse_weights(weighting) @ (abar * 0.25 + (1 - np.sqrt(1 - abar)) ** 2))
    x0 = torch.full((256, 1), 0.5, dtype=torch.float64)
    spread = {}
    for t_sampling in T_SAMPLINGS:
        g = torch.Generator().manual_seed(2)
        means = np.array(
            [float(D.loss_eq12(model_x, x0, g, weighting, t_sampling=t_sampling).mean()) for _ in range(400)]
        )
        se = means.std(ddof=1) / np.sqrt(len(means))
        assert abs(means.mean() - exact) < 4 * se, (t_sampling, means.mean(), exact, se)
        spread[t_sampling] = means.std(ddof=1)
    print(f"{weighting}: SD of the minibatch mean by t_sampling: {spread}")
    assert spread["stratified"] < spread["uniform"]  # the point of stratifying


def test_uniform_is_the_default_and_keeps_its_draws():
    x0 = torch.randn(64, 1, generator=torch.Generator().manual_seed(3))
    a = D.loss_eq12(model_x, x0, torch.Generator().manual_seed(4))
    b = D.loss_eq12(model_x, x0, torch.Generator().manual_seed(4), t_sampling="uniform")
    g = torch.Generator().manual_seed(4)
    t = torch.randint(1, D.T + 1, (64,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    c = D.T * torch.from_numpy(D.np["eq12_weights"])[t].float() * ((noise - D.q_sample(x0, t, noise)) ** 2).sum(1)
    assert torch.equal(a, b) and torch.allclose(a, c)
    assert Eq12TrainConfig().t_sampling == "uniform"
    with pytest.raises(ValueError, match="unknown t_sampling 'sobol'"):
        D.loss_eq12(model_x, x0, torch.Generator(), t_sampling="sobol")
    with pytest.raises(ValueError, match="t_sampling = 'sobol': expected one of uniform, stratified, importance"):
        Eq12TrainConfig(t_sampling="sobol")
