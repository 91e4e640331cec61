"""Closed forms for Gaussian data x_0 ~ N(mu, sd^2), against which the samplers are measured
(tests/unit/test_sampler_contract.py, benchmarks/bench_sampler_orders.py).

For such data eps* is affine in x_t, and in x~ = x_t / sqrt(abar_t) = x_0 + sigma eps (sigma_t^2 =
(1 - abar_t) / abar_t) the marginals are N(mu, sd^2 + sigma^2); the probability-flow ODE keeps each
point's standardised position, so its map from x_T to x_0 is
x_0 = mu + (x~_T - mu) sd / sqrt(sd^2 + sigma_T^2) (Song et al. 2021, "Score-Based Generative
Modeling through SDEs", Sec. 4.3, solved for a Gaussian).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, sample


def eps_star(diffusion: GaussianDiffusion, mu: float, sd: float):
    """eps*(x_t, t) = sqrt(1 - abar_t) (x_t - sqrt(abar_t) mu) / (abar_t sd^2 + 1 - abar_t)."""
    abar = torch.from_numpy(diffusion.np["alphas_cumprod"])  # index t = 0..T

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = abar[t].view(-1, 1).to(x.dtype)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * sd**2 + 1 - ab)

    return eps


def pf_map(diffusion: GaussianDiffusion, mu: float, sd: float, x_T: torch.Tensor) -> torch.Tensor:
    """The exact probability-flow map from x_T to x_0."""
    ab = float(diffusion.np["alphas_cumprod"][-1])
    return mu + (x_T / math.sqrt(ab) - mu) * sd / math.sqrt(sd**2 + (1 - ab) / ab)


def map_errors(diffusion: GaussianDiffusion, sampler: str, steps, mu: float = 1.5, sd: float = 0.3) -> dict[int, float]:
    """The largest |x_0 - pf_map(x_T)| over 201 starting points x_T in [-3, 3], float64, at each S of steps."""
    x_T = torch.linspace(-3, 3, 201, dtype=torch.float64)[:, None]
    want, eps = pf_map(diffusion, mu, sd, x_T), eps_star(diffusion, mu, sd)
    out = {}
    for S in steps:
        x0, _ = sample(diffusion, eps, x_T.shape, torch.Generator(), sampler=SamplerConfig(sampler, S), x_T=x_T)
        out[int(S)] = float((x0.double() - want).abs().max())
    return out


def orders(errors: dict[int, float]) -> list[float]:
    """log2 of the error ratio between consecutive S (doublings): the measured order."""
    S = sorted(errors)
    return [float(np.log2(errors[a] / errors[b])) for a, b in zip(S, S[1:])]
