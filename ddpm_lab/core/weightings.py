"""The weightings of the noise loss: a registry, each one function plus one `@weighting` entry.

A weighting is a per-t weight c_t of E||eps - eps_theta(x_t, t)||^2 (GaussianDiffusion.mse_weights),
so every weighting shares the minimiser eps* and differs only in where over t the loss looks:
Eq. 12's w_t (the bound less its constants), Eq. 14's 1/T (L_simple), min-SNR-gamma (Hang et al.
2023), and target_mse, the plain unweighted MSE of whatever the network predicts
(ddpm_lab/core/targets.py). The params schema (train_eq12.weighting), the loss (loss_eq12), its
floor (loss_eq12_floor), importance sampling of t and the loss curves' units read this registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ddpm_lab.core import targets

if TYPE_CHECKING:
    from ddpm_lab.core.diffusion import GaussianDiffusion


@dataclass(frozen=True)
class Weighting:
    """One registry entry: weights(diffusion, prediction, gamma) -> c_t, (T,), with
    E[loss] = const + sum_t c_t E||eps - eps_theta||^2; the unit of the loss's value; its citation;
    and, where it has one, a per-row form apply(diffusion, t, err) -> the loss of rows with
    eps-space squared errors err at timesteps t (default: T c_t err)."""

    name: str
    unit: str
    cite: str
    weights: Callable[[GaussianDiffusion, str, float], np.ndarray]
    apply: Callable[[GaussianDiffusion, torch.Tensor, torch.Tensor], torch.Tensor] | None = None


REGISTRY: dict[str, Weighting] = {}


def weighting(name: str, unit: str, cite: str, apply=None):
    """`@weighting("eq14", "squared error per sample", "Ho et al. 2020, Eq. 14")` on weights(...)
    registers a weighting of the noise loss."""

    def add(weights: Callable[[GaussianDiffusion, str, float], np.ndarray]):
        REGISTRY[name] = Weighting(name, unit, cite, weights, apply)
        return weights

    return add


@weighting(
    "eq12",
    "nats (bound, less constants)",
    "Ho et al. 2020, Eq. 12: w_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))",
    apply=lambda d, t, err: d.T * d._extract("eq12_weights", t, err).view(-1) * err,
)
def eq12(diffusion: GaussianDiffusion, prediction: str, gamma: float) -> np.ndarray:
    return diffusion.np["eq12_weights"][1:]


@weighting("eq14", "squared error per sample", "Ho et al. 2020, Eq. 14 (L_simple)", apply=lambda d, t, err: err)
def eq14(diffusion: GaussianDiffusion, prediction: str, gamma: float) -> np.ndarray:
    return np.full(diffusion.T, 1.0 / diffusion.T)


@weighting(
    "hybrid",
    "L_simple + lambda T L_{t-1} per sample",
    "Nichol & Dhariwal 2021, Sec. 3.1 (L_hybrid): Eq. 14's 1/T on the eps error, plus lambda times the bound's term "
    "at t for the learned variance, the mean held fixed (GaussianDiffusion.loss_eq12)",
    apply=lambda d, t, err: err,
)
def hybrid(diffusion: GaussianDiffusion, prediction: str, gamma: float) -> np.ndarray:
    return np.full(diffusion.T, 1.0 / diffusion.T)


@weighting(
    "min_snr",
    "weighted squared error per sample",
    "Hang et al. 2023, Sec. 3.4: (1/T) min(SNR_t, gamma) / SNR_t for eps, SNR_t = abar_t / (1 - abar_t)",
)
def min_snr(diffusion: GaussianDiffusion, prediction: str, gamma: float) -> np.ndarray:
    snr = diffusion.np["snr"][1:]
    return np.minimum(snr, gamma) / snr / diffusion.T


@weighting(
    "target_mse",
    "squared error of the prediction target per sample",
    "the unweighted MSE of the prediction's target: (1/T) / scale_t (ddpm_lab/core/targets.py)",
)
def target_mse(diffusion: GaussianDiffusion, prediction: str, gamma: float) -> np.ndarray:
    return 1.0 / (diffusion.T * targets.eps_scale(prediction, diffusion.np["alphas_cumprod"][1:]))


def weighted(
    diffusion: GaussianDiffusion, name: str, t: torch.Tensor, err: torch.Tensor, prediction: str, gamma: float
):
    """The loss of rows with eps-space squared errors err at timesteps t under weighting `name`."""
    entry = REGISTRY[name]
    if entry.apply is not None:
        return entry.apply(diffusion, t, err)
    c = torch.from_numpy(diffusion.T * entry.weights(diffusion, prediction, gamma))
    return c[t.long().cpu() - 1].to(err) * err


# -- L_hybrid's L_vlb over t ------------------------------------------------------------------
# A per-t weight u_t of L_hybrid's L_vlb part (train_eq12.hybrid_vlb), a registry like the one above:
# L_hybrid = L_simple + lambda T u_t L_{t-1}. Each t's term is minimised by the same Sigma_theta(x_t, t)
# whatever u_t, so u_t moves only where a finite network spends its effort over t.
VLB_WEIGHTS: dict[str, Callable[[GaussianDiffusion], np.ndarray]] = {}
PRECONDITION_CAP = 1e4  # u_t's largest value: l_t = 0.01, where beta~_t is within 1% of beta_t


def vlb_weight(name: str):
    """`@vlb_weight("kl")` on u(diffusion) -> (T + 1,) (index t; entry 0 unused) registers a weighting of L_vlb."""

    def add(u: Callable[[GaussianDiffusion], np.ndarray]):
        VLB_WEIGHTS[name] = u
        return u

    return add


@vlb_weight("kl")
def vlb_kl(diffusion: GaussianDiffusion) -> np.ndarray:
    """u_t = 1: the bound's own terms (Nichol & Dhariwal 2021, Sec. 3.1)."""
    return np.ones(diffusion.T + 1)


@vlb_weight("preconditioned")
def vlb_preconditioned(diffusion: GaussianDiffusion) -> np.ndarray:
    """u_t = min(1 / l_t^2, PRECONDITION_CAP), l_t = log beta_t - log beta~_t = d log Sigma_theta / dv
    (Nichol & Dhariwal 2021, Eq. 15). The curvature of L_{t-1} in v is l_t^2 / 2 per coordinate,
    0.3 at t = 2, 2e-4 at t = 100 and 3e-13 at t = T on the default linear schedule, so the gradient reaching v from
    large t is lost beside that from small t; u_t gives every t the curvature 1/2 in v (a Newton step
    in v per t), capped where beta_t and beta~_t agree and v hardly moves Sigma. This lab's choice,
    not the paper's (docs/variance.md measures both)."""
    ell = diffusion.np["log_beta"] - diffusion.np["log_beta_tilde"]
    u = np.full(diffusion.T + 1, PRECONDITION_CAP)
    np.divide(1.0, ell**2, out=u, where=ell**2 > 1.0 / PRECONDITION_CAP)
    return u
