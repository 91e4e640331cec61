"""Reverse sampling, Algorithm 2 of Ho et al. 2020 (arXiv:2006.11239), for any eps_model(x_t, t)."""
from __future__ import annotations

import numpy as np
import torch

from ddpm_lab.diffusion import EpsModel, GaussianDiffusion


@torch.no_grad()
def sample(diffusion: GaussianDiffusion, eps_model: EpsModel, shape: tuple, generator: torch.Generator,
           record: int = 0, record_every: int = 0, progress=None):
    """Algorithm 2: x_T ~ N(0, I); for t = T..1:
    x_{t-1} = (x_t - (1 - alpha_t)/sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z,
    z ~ N(0, I) for t > 1, z = 0 at t = 1. One batched network call per step.

    shape: (B, ...). record: how many of the B chains to keep a trajectory of, at every
    record_every-th t (and at t = T and t = 0). progress: optional callable wrapping the t range.
    Returns x_0: (B, ...) float32, and (ts, path) with ts: (S,) and path: (S, record, ...).
    """
    T = diffusion.T
    sigma = np.sqrt(diffusion.np["sigma2"]).tolist()  # sigma_t, t = 0..T
    x = torch.randn(shape, generator=generator)
    t_batch = torch.empty(shape[0], dtype=torch.long)
    keep = set(range(T, 0, -record_every)) | {T} if record and record_every else set()
    ts, path = [], []
    steps = range(T, 0, -1)
    for t in (progress(steps) if progress else steps):
        if t in keep:
            ts.append(t)
            path.append(x[:record].clone())
        x, _ = diffusion.p_mean_variance(eps_model(x, t_batch.fill_(t)), x, t_batch)  # Eq. 11 mean
        if t > 1:
            x = x + sigma[t] * torch.randn(shape, generator=generator)
    if keep:
        ts.append(0)
        path.append(x[:record].clone())
    return x, (np.array(ts), torch.stack(path).numpy() if path else np.empty((0,)))
