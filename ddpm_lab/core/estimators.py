"""Unbiased estimators of the Eq. 3 bound: a registry, each one function plus one `@estimator` entry.

Each estimates the bound on -log p_theta(x_0) (Eq. 3 = Eq. 5 in expectation), in nats, per row of
x0; they differ in how many network evaluations a row costs and in their variance
(docs/estimators.md). The params schema (train_eq3.estimator), GaussianDiffusion.loss_bound and
.evaluations, the Eq. 3 training objective and the gradient-noise study
(ddpm_lab/gmm/gradient_noise.py) read this registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ddpm_lab.core import targets

if TYPE_CHECKING:
    from ddpm_lab.core.diffusion import GaussianDiffusion

TERMS = ("log_ratio", "kl")  # the kind of term a subsampled estimator draws


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var I), summed over all but the first dimension. Returns (B,)."""
    lp = -0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)
    return lp.flatten(1).sum(1)


def log_ratios(diffusion: GaussianDiffusion, eps_model, x_prev, x_t, t, dtype) -> torch.Tensor:
    """Eq. 3's terms log p_theta(x_{t-1} | x_t) - log q(x_t | x_{t-1}) (Eq. 2) at the pairs
    (x_prev, x_t) (N, ...) float64 of timesteps t (N,), the network seeing x_t in dtype. Returns (N,)."""
    eps, v = targets.eps_and_v(eps_model, x_t.to(dtype), t)
    mean, var = diffusion.p_mean_variance(eps.double(), x_t, t, v)
    log_p = normal_log_prob(x_prev, mean, var)  # log p_theta(x_{t-1} | x_t)
    log_q = normal_log_prob(
        x_t, diffusion._extract("sqrt_alphas", t, x_t) * x_prev, diffusion._extract("betas", t, x_t).expand_as(x_t)
    )  # Eq. 2
    return log_p - log_q


@dataclass(frozen=True)
class Estimator:
    """One registry entry: estimate(diffusion, eps_model, x0, generator, terms, term) -> (B,) nats;
    evaluations(diffusion, terms) -> network evaluations per row; its citation."""

    name: str
    cite: str
    estimate: Callable
    evaluations: Callable[[GaussianDiffusion, int], int]


REGISTRY: dict[str, Estimator] = {}


def estimator(name: str, cite: str, evaluations: Callable[[GaussianDiffusion, int], int] = lambda d, terms: d.T):
    """`@estimator("trajectory", "Ho et al. 2020, Eq. 3")` on estimate(...) registers an estimator
    (evaluations: per row, T by default)."""

    def add(estimate: Callable):
        REGISTRY[name] = Estimator(name, cite, estimate, evaluations)
        return estimate

    return add


@estimator("trajectory", "Ho et al. 2020, Eq. 3: the log-ratios on one sampled forward trajectory")
def trajectory(diffusion: GaussianDiffusion, eps_model, x0, generator, terms: int, term: str) -> torch.Tensor:
    """GaussianDiffusion.loss_eq3 (T network evaluations)."""
    return diffusion.loss_eq3(eps_model, x0, generator)


@estimator("trajectory_kl", "Ho et al. 2020, Eq. 5: its closed-form KLs at one trajectory's x_t")
def trajectory_kl(diffusion: GaussianDiffusion, eps_model, x0, generator, terms: int, term: str) -> torch.Tensor:
    """The same trajectory (the same generator draws) and the same T network evaluations as
    `trajectory`, each term replaced by its expectation given (x_t, x_0): Eq. 5's closed-form KLs at
    the trajectory's x_t (GaussianDiffusion._bound_at): each term Rao-Blackwellised on its own, which
    need not lower the variance of the sum (the log-ratios of one trajectory partly cancel)."""
    xs = diffusion.q_trajectory(x0, generator)  # (B, T+1, ...), the draws loss_eq3 makes
    t = torch.arange(1, diffusion.T + 1).expand(x0.shape[0], -1)
    return diffusion._bound_at(eps_model, x0, xs[:, 1:], t, scale=1.0)


def check_terms(diffusion: GaussianDiffusion, terms: int) -> int:
    if not (isinstance(terms, int) and 1 <= terms <= diffusion.T):
        raise ValueError(f"terms must be an integer in [1, T = {diffusion.T}], got {terms!r}")
    return terms


@estimator(
    "subsampled",
    "K of the T terms of Eq. 5 (or Eq. 3), drawn without replacement and scaled by T / K",
    evaluations=check_terms,
)
def subsampled(diffusion: GaussianDiffusion, eps_model, x0, generator, terms: int, term: str) -> torch.Tensor:
    """K = terms distinct timesteps per row, drawn uniformly without replacement, their terms scaled
    by T / K (K network evaluations). term "kl": Eq. 5's KL terms at x_t ~ q(x_t | x_0), jointly
    from one trajectory (GaussianDiffusion._walk), plus L_T in closed form; term "log_ratio": Eq. 3's
    log-ratio terms on the pairs (x_{t-1}, x_t) of one trajectory, plus -log p(x_T) at the same
    trajectory's end."""
    d, T = diffusion, diffusion.T
    K = check_terms(d, terms)
    if term not in TERMS:
        raise ValueError(f"unknown term {term!r}: expected one of {', '.join(TERMS)}")
    B = x0.shape[0]
    # K distinct timesteps per row, ascending: the first K of a random permutation of 1..T
    t = torch.sort(torch.rand((B, T), generator=generator).argsort(1)[:, :K] + 1, dim=1).values
    if term == "kl":
        return d._bound_at(eps_model, x0, d._walk(x0, t, generator), t, scale=T / K)
    # the pairs (x_{t-1}, x_t) and x_T of one trajectory: the walk at t - 1, t (and T), in order
    pts = torch.cat([torch.stack([t - 1, t], dim=2).flatten(1), torch.full((B, 1), T)], dim=1)
    xp = d._walk(x0, pts, generator)  # (B, 2K + 1, ...)
    x_prev, x_t = xp[:, 0 : 2 * K : 2].flatten(0, 1), xp[:, 1 : 2 * K : 2].flatten(0, 1)
    ratios = log_ratios(d, eps_model, x_prev, x_t, t.flatten(), x0.dtype)
    x_T = xp[:, -1]
    log_prior = normal_log_prob(x_T, torch.zeros_like(x_T), torch.ones_like(x_T))
    return (-log_prior - (T / K) * ratios.view(B, K).sum(1)).to(x0.dtype)
