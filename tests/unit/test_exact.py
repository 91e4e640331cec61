"""The saved model measured exactly: per-t excess errors e_t, the exact expected bound and its
agreement with the held-out paired Monte-Carlo estimate (Ho et al. 2020, Eq. 5 and Eq. 12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.gmm.exact import heldout_gap, measure_model, weighted_sum
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.core.schedule import make_betas

MIX = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])
MIX2 = GaussianMixture([0.5, 0.5], [[-2.0, -2.0], [2.0, 2.0]], [[0.5, 0.7], [0.6, 0.4]])


@pytest.fixture(scope="module")
def diffusion():
    return GaussianDiffusion(make_betas("linear", 200, 1e-3, 0.1))  # a short chain keeps the tests quick


class Perturbed:
    """A deliberately imperfect eps-model: eps*(x_t, t) scaled by (1 + a) plus an offset c."""

    def __init__(self, mixture, diffusion, a=0.0, c=0.0):
        self.oracle, self.a, self.c = OracleEps(mixture, diffusion.np["alphas_cumprod"]), a, c

    def __call__(self, x_t, t):
        return (1 + self.a) * self.oracle(x_t, t) + self.c


def test_eps_star_has_zero_excess_and_the_oracle_bound(diffusion):
    # e_t = 0 for eps* itself (up to float32 rounding of the model input/output, ~1e-14),
    # so the expected bound of "the model" equals the oracle's exactly.
    abar = diffusion.np["alphas_cumprod"][1:]
    mmse, _ = MIX.eps_mmse(abar)
    e, err = MIX.eps_error(OracleEps(MIX, diffusion.np["alphas_cumprod"]), abar)
    assert np.all(np.abs(e) < 1e-10) and np.all(err < 1e-10)
    oracle = diffusion.expected_bound(mmse, MIX.second_moment(), 1)
    assert diffusion.expected_bound(mmse + e, MIX.second_moment(), 1) == pytest.approx(oracle, abs=1e-9)


@pytest.mark.parametrize("mixture", [MIX, MIX2], ids=["1-D quadrature", "2-D Monte Carlo"])
def test_constant_offset_gives_its_square_at_every_t(diffusion, mixture):
    # eps* + c in every coordinate: ||eps_theta - eps*||^2 = D c^2 at every x_t, so e_t = D c^2
    # exactly; this pins the normalisation of the quadrature and of the Monte-Carlo mean.
    abar = diffusion.np["alphas_cumprod"][1:]
    e, err = mixture.eps_error(Perturbed(mixture, diffusion, c=0.1), abar, rng=np.random.default_rng(0), n_mc=500)
    np.testing.assert_allclose(e, mixture.dim * 0.01, rtol=1e-5)  # float32 model output: ~1e-6 relative


@pytest.mark.parametrize("mixture", [MIX, MIX2], ids=["1-D quadrature", "2-D Monte Carlo"])
def test_eps_error_matches_a_direct_monte_carlo_mean(diffusion, mixture):
    # A scaled eps*: e_t = a^2 E||eps*||^2, not constant in x; compare to fresh draws of x_t.
    abar = diffusion.np["alphas_cumprod"][1:]
    model = Perturbed(mixture, diffusion, a=0.3)
    e, err = mixture.eps_error(model, abar, rng=np.random.default_rng(1), n_mc=4000)
    rng = np.random.default_rng(2)
    for t in (1, 20, 100, 200):
        x0 = mixture.sample(100_000, rng)
        xt = np.sqrt(abar[t - 1]) * x0 + np.sqrt(1 - abar[t - 1]) * rng.standard_normal(x0.shape)
        xt = torch.from_numpy(xt)
        tt = torch.full((xt.shape[0],), t)
        sq = ((model(xt.float(), tt).double() - model.oracle(xt, tt).double()) ** 2).sum(1).numpy()
        se = math.hypot(sq.std() / math.sqrt(sq.size), err[t - 1])  # both sides' noise (err is 0-ish in 1-D)
        assert e[t - 1] == pytest.approx(sq.mean(), abs=4 * se)
    if mixture.dim == 1:
        # The quadrature's own error estimate: negligible. It is mostly the allowance for the float32
        # model's rounding noise, whose true effect here reaches ~6e-9 on e_t ~ 0.09 (see test_quadrature).
        assert np.max(err) < 1e-7


def test_heldout_paired_gap_agrees_with_the_exact_gap(diffusion):
    # The held-out estimate (Eq. 5 per row, paired with the oracle on the same x_t and eps draws)
    # is unbiased for sum_t w_t e_t; it must agree within 4 standard errors.
    abar = diffusion.np["alphas_cumprod"][1:]
    model = Perturbed(MIX, diffusion, a=0.2, c=0.05)
    e, err = MIX.eps_error(model, abar)
    exact, exact_err = weighted_sum(diffusion.mse_weights("bound"), e, err, monte_carlo=False)
    assert exact_err < 1e-6 * exact
    x0 = torch.from_numpy(MIX.sample(3000, np.random.default_rng(3))).float()
    oracle = OracleEps(MIX, diffusion.np["alphas_cumprod"])
    with torch.no_grad():
        gap = (
            (
                diffusion.nll_bound(model, x0, torch.Generator().manual_seed(4))
                - diffusion.nll_bound(oracle, x0, torch.Generator().manual_seed(4))
            )
            .double()
            .numpy()
        )
    se = gap.std(ddof=1) / math.sqrt(gap.size)
    assert gap.mean() == pytest.approx(exact, abs=4 * se)
    assert se < 0.2 * exact  # the test has power: the gap is many standard errors from 0


def test_weighted_sum_adds_bounds_linearly_and_standard_errors_in_quadrature():
    w, v, err = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([0.3, 0.4])
    assert weighted_sum(w, v, err, monte_carlo=False) == pytest.approx((11.0, 1.1))
    assert weighted_sum(w, v, err, monte_carlo=True) == pytest.approx((11.0, math.hypot(0.3, 0.8)))


def test_mse_weights_reproduce_the_eq12_and_eq14_floors(diffusion):
    mse = np.linspace(1.0, 0.0, diffusion.T)
    assert diffusion.loss_eq12_floor(mse, "eq14") == pytest.approx(mse.mean())
    assert diffusion.loss_eq12_floor(mse, "eq12") == pytest.approx(float(diffusion.np["eq12_weights"][1:] @ mse))
    with pytest.raises(ValueError, match="unknown objective 'eq99'"):
        diffusion.mse_weights("eq99")


def test_heldout_gap_is_the_paired_mean_with_its_standard_error():
    model, oracle = np.array([2.0, 3.0, 4.0, 5.0]), np.array([1.0, 1.5, 2.0, 2.5])
    out = heldout_gap(model, oracle, exact_gap=1.5, exact_err=0.0)
    diffs = model - oracle  # 1, 1.5, 2, 2.5: mean 1.75, sd 0.6455, se 0.3227
    assert out["gap_to_oracle"] == pytest.approx(1.75)
    assert out["gap_to_oracle_se"] == pytest.approx(diffs.std(ddof=1) / 2)
    assert out["gap_z"] == pytest.approx(0.25 / (diffs.std(ddof=1) / 2))
    assert out["bound"] == pytest.approx(3.5)
    assert heldout_gap(oracle, oracle, 0.0, 0.0)["gap_z"] is None  # 0 / 0: undefined, not a number


def test_nll_bound_rows_is_paired_and_independent_of_the_batch_size(diffusion):
    x0 = torch.from_numpy(MIX.sample(12, np.random.default_rng(5))).float()
    oracle = OracleEps(MIX, diffusion.np["alphas_cumprod"])
    a = diffusion.nll_bound_rows(oracle, x0, batch=12, seed=3)
    assert a.shape == (12,)
    np.testing.assert_array_equal(a, diffusion.nll_bound_rows(oracle, x0, batch=12, seed=3))  # seeded
    assert not np.array_equal(a, diffusion.nll_bound_rows(oracle, x0, batch=12, seed=4))


def test_measure_model_of_eps_star_is_its_floor(diffusion):
    summary, by_t = measure_model(
        MIX, diffusion, OracleEps(MIX, diffusion.np["alphas_cumprod"]), "bound", np.random.default_rng(0)
    )
    assert summary["saved_model_excess_loss"] == pytest.approx(0.0, abs=1e-10)
    assert summary["loss_floor"] == pytest.approx(diffusion.expected_bound(by_t["mmse"], MIX.second_moment(), 1))
    with pytest.raises(ValueError, match="unknown objective 'eq99'"):
        measure_model(MIX, diffusion, None, "eq99", np.random.default_rng(0))
