"""Estimators of one bound: the Eq. 3 trajectory log-ratios, their
per-term Rao-Blackwellised form (Eq. 5's KLs on the same trajectory) and K-of-T subsampling with either
kind of term all have the exact expected bound (Eq. 5 by quadrature) as their mean, for a
deliberately imperfect model, not only eps*."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.gmm.exact import measure_model
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.core.schedule import make_betas

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])
T = 40
CASES = [
    ("trajectory", 0, "kl"),
    ("trajectory_kl", 0, "kl"),
    ("subsampled", 1, "kl"),
    ("subsampled", 7, "kl"),
    ("subsampled", 1, "log_ratio"),
    ("subsampled", 7, "log_ratio"),
    ("subsampled", T, "log_ratio"),
]


@pytest.fixture(scope="module")
def setup():
    d = GaussianDiffusion(make_betas("linear", T, 1e-3, 0.2), "beta")
    model = EpsMLP.seeded(MLPConfig(hidden=16, n_blocks=1, emb_dim=8), 3)  # untrained: far from eps*
    with torch.no_grad():
        exact = measure_model(MIX, d, model, "bound", np.random.default_rng(0))[0]
    return d, model, exact


def estimate(d, model, estimator, K, term, n=40_000, seed=1):
    x0 = torch.from_numpy(MIX.sample(n, np.random.default_rng(seed))).float()
    with torch.no_grad():
        v = d.loss_bound(model, x0, torch.Generator().manual_seed(seed), estimator, K, term).double().numpy()
    return v.mean(), v.std(ddof=1) / math.sqrt(n), v


@pytest.mark.parametrize("estimator,K,term", CASES)
def test_every_estimator_is_unbiased_for_the_exact_bound(setup, estimator, K, term):
    d, model, exact = setup
    mean, se, _ = estimate(d, model, estimator, K, term)
    target = exact["saved_model_expected_loss"]
    assert abs(mean - target) < 4 * se + 1e-6, (estimator, K, term, mean, se, target)
    assert exact["saved_model_excess_loss"] > 0.5  # the model is far from eps*: a real test of the constants


def test_the_oracle_is_unbiased_too(setup):
    d, _, _ = setup
    oracle = OracleEps(MIX, d.np["alphas_cumprod"])
    floor = measure_model(MIX, d, oracle, "bound", np.random.default_rng(0))[0]["loss_floor"]
    for estimator, K, term in CASES[1:4]:
        mean, se, _ = estimate(d, oracle, estimator, K, term, n=20_000)
        assert abs(mean - floor) < 4 * se, (estimator, K, term, mean, se, floor)


def test_trajectory_is_loss_eq3_byte_for_byte(setup):
    d, model, _ = setup
    x0 = torch.from_numpy(MIX.sample(64, np.random.default_rng(2))).float()
    a = d.loss_bound(model, x0, torch.Generator().manual_seed(5), "trajectory")
    b = d.loss_eq3(model, x0, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_subsampled_makes_K_evaluations_at_distinct_timesteps(setup):
    d, _, _ = setup
    seen = []

    def model(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)

    x0 = torch.zeros(5, 1)
    for term in ("kl", "log_ratio"):
        seen.clear()
        d.loss_bound(model, x0, torch.Generator().manual_seed(0), "subsampled", 6, term)
        (t,) = seen
        assert t.numel() == 5 * 6 and all(len(set(row.tolist())) == 6 for row in t.view(5, 6))
        assert t.min() >= 1 and t.max() <= T
    assert d.evaluations("subsampled", 6) == 6 and d.evaluations("trajectory") == d.evaluations("trajectory_kl") == T


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"estimator": "trajectry"}, "unknown estimator"),
        ({"estimator": "subsampled", "terms": 0}, "terms must be"),
        ({"estimator": "subsampled", "terms": T + 1}, "terms must be"),
        ({"estimator": "subsampled", "terms": 2, "term": "kll"}, "unknown term"),
    ],
)
def test_bad_estimator_arguments(setup, kwargs, match):
    d, model, _ = setup
    with pytest.raises(ValueError, match=match):
        d.loss_bound(model, torch.zeros(2, 1), torch.Generator(), **kwargs)
