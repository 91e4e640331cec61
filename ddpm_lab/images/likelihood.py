"""The image model's variational bound in bits per dimension, the NLL column of Ho et al. 2020's
Table 2: Eq. 5 with the discretised Gaussian decoder of Eq. 13.

For a held-out image x_0 with D pixels, the bound on -log p_theta(x_0) is

    L = L_T + sum_{t=2}^T L_{t-1} + L_0,
    L_T     = KL(q(x_T | x_0) || N(0, I))                       (closed form, prior_kl),
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t))
            = 1/2 sum_d (log(sigma_t^2 / beta~_t) + beta~_t / sigma_t^2 - 1 + (mu~_t - mu_theta)_d^2 / sigma_t^2),
    L_0     = -log p_theta(x_0 | x_1) = -sum_d log int_{delta_-(x_0d)}^{delta_+(x_0d)} N(x; mu_theta(x_1, 1)_d, sigma_1^2) dx,

each L_{t-1} at one x_t ~ q(x_t | x_0) (as improved-diffusion's calc_bpd_loop does, every t for
every image). sigma_t^2 is the diffusion's fixed variance, or, for a U-Net with
images_model.learned_variance, its own Sigma_theta(x_t, t) = exp(v log beta_t + (1 - v) log beta~_t)
pixel by pixel (Nichol & Dhariwal 2021, Eq. 15), in every L_{t-1} and in L_0 (sigma_1^2 from v at
t = 1). The decoder's bins follow the data's own quantisation: pixel values 0..M scaled to [-1, 1]
(ddpm_lab.images.data.to_unit_range) lie on M + 1 levels 2 k / M - 1, and the bin of a level is
+- 1/M around it, the two end bins running to -inf and +inf (Eq. 13). The 8x8 digits
take M = 16 (17 levels), MNIST and Fashion-MNIST M = 255. Bits per dimension: L / (D log 2).
The standard error is that of the mean over the held-out images (one draw of every x_t each).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.targets import eps_and_v
from ddpm_lab.runtime.params import DataError


def _log_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails (float64)."""
    upper = a > 0  # both in the upper tail: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    hi = torch.where(upper, -a, b)
    lo = torch.where(upper, -b, a)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi).clamp(max=1.0 - 1e-16))


def discretised_gaussian_log_likelihood(
    x0: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, max_value: int
) -> torch.Tensor:
    """log p(x0) per element under Eq. 13's decoder: the mass of N(mean, var) on x0's bin,
    [x0 - 1/M, x0 + 1/M] with M = max_value, the end bins (x0 = -1, x0 = 1) running to -inf / +inf.
    Same shape as x0, float64."""
    x0, mean, var = (v.double() for v in (x0, mean, var))
    h, std = 1.0 / max_value, var.sqrt()
    a, b = (x0 - h - mean) / std, (x0 + h - mean) / std
    a = torch.where(x0 <= -1.0 + 0.5 * h, torch.full_like(a, -math.inf), a)
    b = torch.where(x0 >= 1.0 - 0.5 * h, torch.full_like(b, math.inf), b)
    return _log_mass(a, b)


def check_levels(x0: np.ndarray, max_value: int, where: str) -> None:
    """DataError unless every value of x0 is one of the M + 1 levels 2 k / M - 1 (to float32 rounding)."""
    k = (np.asarray(x0, dtype=np.float64) + 1.0) * max_value / 2.0
    off = float(np.max(np.abs(k - np.round(k)))) if k.size else 0.0
    if off > 1e-3 or k.min() < -1e-3 or k.max() > max_value + 1e-3:
        raise DataError(
            f"{where}: pixel values off the {max_value + 1} levels 2 k / {max_value} - 1 of the data's "
            f"quantisation (by up to {off:.3g} of a level): expected images scaled from 0..{max_value}"
        )


@torch.no_grad()
def bound_terms(
    diffusion: GaussianDiffusion,
    eps_model: Callable,
    x0: torch.Tensor,
    max_value: int,
    generator: torch.Generator,
    progress: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Per image of x0 (N, ...) in [-1, 1]: {"prior": L_T, "diffusion": sum_{t>=2} L_{t-1}, "decoder":
    L_0, "total"}, in nats, (N,) float64 each. eps_model(x_t, t) -> eps, float32 in and out; the noise of
    every x_t comes from `generator` (t = T first), so a seed gives the same bound on any device. A model
    with a learned variance (ddpm_lab.core.targets.eps_and_v) sets sigma_t^2 per element of each L_{t-1} and
    of L_0 by its v (GaussianDiffusion.learned_sigma2); every other model, diffusion.sigma2.
    progress wraps the iterable of timesteps (a tqdm bar, say)."""
    x0 = x0.float()
    n, dims = x0.shape[0], tuple(range(1, x0.dim()))
    D = int(np.prod(x0.shape[1:]))
    flat_sq = x0.double().pow(2).sum(dims)
    prior = diffusion.prior_kl(flat_sq, D).double()
    kl_sum, decoder = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    steps = range(diffusion.T, 0, -1)
    for t_int in progress(steps) if progress is not None else steps:
        t = torch.full((n,), t_int, dtype=torch.long)
        noise = torch.randn(x0.shape, generator=generator)
        x_t = diffusion.q_sample(x0, t, noise)
        eps, v = eps_and_v(eps_model, x_t, t)  # v: None, or a learned Sigma_theta's (var then per element)
        mean, var = diffusion.p_mean_variance(eps.float(), x_t, t, None if v is None else v.float())
        mean, var = mean.double(), var.double()
        if t_int == 1:
            decoder = -discretised_gaussian_log_likelihood(x0, mean, var, max_value).sum(dims)
        else:
            mu_tilde, beta_tilde = (v.double() for v in diffusion.q_posterior_mean_variance(x0, x_t, t))
            kl = 0.5 * (torch.log(var / beta_tilde) + beta_tilde / var - 1.0 + (mu_tilde - mean) ** 2 / var)
            kl_sum += kl.sum(dims)
    total = prior + kl_sum + decoder
    return {k: v.numpy() for k, v in {"prior": prior, "diffusion": kl_sum, "decoder": decoder, "total": total}.items()}


def heldout_bound(model_path, dcfg, x_heldout: np.ndarray, max_value: int, device, seed: int, progress=None) -> dict:
    """bits_per_dim of the U-Net checkpoint at model_path (trained under dcfg, the images_diffusion
    section) on the held-out images (N, C, H, W), its noise from a generator seeded with seed, the
    network on device; with the decoder's level count."""
    from ddpm_lab.core.targets import as_eps_model
    from ddpm_lab.images.unet import UNet, UNetConfig
    from ddpm_lab.runtime.io import load_trained_model

    model, _ = load_trained_model(model_path, dcfg, lambda c: UNet(UNetConfig(**c)), "images_diffusion")
    diffusion, model = dcfg.build(), model.to(device)
    eps_model = as_eps_model(
        lambda x, t: model(x.to(device), t.to(device)).cpu(),
        model.config.prediction,
        diffusion.np["alphas_cumprod"],
        model.config.learned_variance,
    )
    x0 = torch.from_numpy(np.asarray(x_heldout, dtype=np.float32))
    terms = bound_terms(diffusion, eps_model, x0, max_value, torch.Generator().manual_seed(seed), progress)
    return {**bits_per_dim(terms, int(np.prod(x0.shape[1:]))), "levels": max_value + 1}


def bits_per_dim(terms: dict[str, np.ndarray], D: int) -> dict:
    """Mean bound in bits per dimension over the images, with its standard error, and each part's mean."""
    scale = 1.0 / (D * math.log(2.0))
    total = terms["total"] * scale
    n = total.size
    return {
        "bits_per_dim": float(total.mean()),
        "bits_per_dim_se": float(total.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "n_images": int(n),
        "dims": int(D),
        "parts_bits_per_dim": {k: float(terms[k].mean() * scale) for k in ("prior", "diffusion", "decoder")},
    }
