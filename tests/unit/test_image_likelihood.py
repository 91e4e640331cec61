"""The image bound in bits/dim (ddpm_lab.images.likelihood): the discretised decoder L_0 (Ho et al.
2020, Eq. 13) and the prior term L_T against closed forms, the KL terms against their value for
a model whose mean is exact, and the data's quantisation checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.schedule import make_betas
from ddpm_lab.images import likelihood as L
from ddpm_lab.images.data import PIXEL_MAX
from ddpm_lab.runtime.params import DataError

M = PIXEL_MAX["digits"]  # 17 levels


def levels(m: int) -> torch.Tensor:
    return torch.arange(m + 1, dtype=torch.float64) * 2.0 / m - 1.0


@pytest.mark.parametrize("mean, std", [(0.3, 0.05), (-0.9, 0.2), (1.4, 0.01), (-3.0, 0.05)])
def test_decoder_is_the_normal_mass_of_each_bin(mean, std):
    """Eq. 13 by scipy: Phi((x + 1/M - mean) / std) - Phi((x - 1/M - mean) / std), the end bins open;
    far tails (log mass near -1,000) agree in log space."""
    x = levels(M)
    got = L.discretised_gaussian_log_likelihood(x, torch.full_like(x, mean), torch.full_like(x, std**2), M).numpy()
    lo = np.where(x.numpy() <= -1 + 1e-9, -np.inf, (x.numpy() - 1 / M - mean) / std)
    hi = np.where(x.numpy() >= 1 - 1e-9, np.inf, (x.numpy() + 1 / M - mean) / std)
    with np.errstate(divide="ignore", invalid="ignore"):  # np.where evaluates both branches
        want = np.where(
            lo > 0,
            stats.norm.logsf(lo) + np.log1p(-np.exp(stats.norm.logsf(hi) - stats.norm.logsf(lo))),
            stats.norm.logcdf(hi) + np.log1p(-np.exp(stats.norm.logcdf(lo) - stats.norm.logcdf(hi))),
        )
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert math.fsum(np.exp(got)) == pytest.approx(1.0, abs=1e-12)  # the bins tile the real line


def test_decoder_tends_to_density_times_bin_width_for_wide_gaussians():
    x = torch.tensor([0.0])
    got = float(L.discretised_gaussian_log_likelihood(x, torch.tensor([0.1]), torch.tensor([0.25]), 255)[0])
    assert got == pytest.approx(stats.norm.logpdf(0.0, 0.1, 0.5) + math.log(2 / 255), abs=1e-5)


def oracle_for_point(diffusion: GaussianDiffusion, x0: torch.Tensor):
    """The exact eps of data that is the one image x0: eps*(x_t) = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)."""
    ab = torch.from_numpy(diffusion.np["alphas_cumprod"])

    def eps(x_t, t):
        a = ab[t].reshape(-1, *([1] * (x_t.dim() - 1))).float()
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    return eps


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_bound_of_an_exact_mean_is_the_variance_mismatch_alone(variance):
    """With mu_theta = mu~ (data: one image), every L_{t-1} is 1/2 D (log r + 1/r - 1), r = sigma^2 / beta~,
    L_T is prior_kl's closed form, and L_0 is the decoder's mass at the image's own level."""
    d = GaussianDiffusion(make_betas("linear", 50, 1e-3, 0.2), variance)
    x0 = levels(M)[torch.randint(0, M + 1, (1, 1, 2, 2), generator=torch.Generator().manual_seed(0))].float()
    terms = L.bound_terms(d, oracle_for_point(d, x0), x0.repeat(3, 1, 1, 1), M, torch.Generator().manual_seed(1))
    r = d.np["sigma2"][2:] / d.np["posterior_variance"][2:]
    np.testing.assert_allclose(terms["diffusion"], 0.5 * 4 * np.sum(np.log(r) + 1 / r - 1), rtol=1e-5, atol=1e-4)
    ab_T = d.np["alphas_cumprod"][-1]
    sq = float((x0.double() ** 2).sum())
    kl_T = 0.5 * 4 * ((1 - ab_T) - 1 - math.log(1 - ab_T)) + 0.5 * ab_T * sq  # KL(N(sqrt(ab) x, 1 - ab) || N(0, 1))
    np.testing.assert_allclose(terms["prior"], kl_T, rtol=1e-10)
    # at t = 1, mu~ = x_0: L_0 is minus the log mass of N(x_0, sigma_1^2) on x_0's own bin, pixel by pixel
    s1, x = math.sqrt(d.np["sigma2"][1]), x0.double().numpy().ravel()
    lo = np.where(x <= -1 + 1e-9, -np.inf, -1 / M / s1)
    hi = np.where(x >= 1 - 1e-9, np.inf, 1 / M / s1)
    np.testing.assert_allclose(terms["decoder"], -np.sum(np.log(stats.norm.cdf(hi) - stats.norm.cdf(lo))), rtol=1e-4)
    out = L.bits_per_dim(terms, 4)
    assert out["bits_per_dim"] == pytest.approx(terms["total"].mean() / (4 * math.log(2)))


def test_the_bound_is_seeded_and_the_levels_checked():
    d = GaussianDiffusion(make_betas("linear", 10, 1e-2, 0.2))
    x0 = levels(M)[torch.arange(8).reshape(2, 1, 2, 2)].float()
    net = lambda x, t: 0.5 * x  # noqa: E731
    a, b = (L.bound_terms(d, net, x0, M, torch.Generator().manual_seed(3)) for _ in range(2))
    np.testing.assert_array_equal(a["total"], b["total"])
    L.check_levels(x0.numpy(), M, "x")
    with pytest.raises(DataError, match=r"off the 17 levels 2 k / 16 - 1"):
        L.check_levels(x0.numpy() + 0.01, M, "x")
    with pytest.raises(DataError, match="0..255"):
        L.check_levels(np.array([1.5]), 255, "x")
