"""Sampling of the image branch: its config and Algorithm 2 from the (EMA) U-Net on a device.

Ho, Jain & Abbeel (2020), arXiv:2006.11239, Algorithm 2. No file paths here (arrays in,
arrays out); the grid figure is in ddpm_lab/images/figures.py.
"""

from __future__ import annotations

from typing import Annotated, Callable

import numpy as np
import torch

from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.runtime.params import Int, Seed, Threads, doc, require, schema
from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, sample
from ddpm_lab.runtime.torch_setup import DEVICES


@schema(kw_only=True)
class ImageSampleConfig(SamplerConfig):
    """Section `images_sample`: reverse sampling from the EMA weights with the sampler of
    SamplerConfig (by default Algorithm 2 over all T steps)."""

    n_samples: Annotated[Int, doc("images drawn, >= 64 (the first 64 make the 8 x 8 grid)")] = 360
    seed: Annotated[Seed, doc("seed of the sampling generator; folded with `replicate`")] = 0
    device: Annotated[str, doc("auto (cuda if present, else cpu), cpu or cuda", choices=DEVICES)] = "auto"
    threads: Threads = 1

    def __post_init__(self):
        super().__post_init__()
        require(self.n_samples >= 64, "n_samples", self.n_samples, "an integer >= 64 (the 8 x 8 grid)")
        require(self.device in DEVICES, "device", self.device, f"one of {', '.join(DEVICES)}")


def sample_images(
    diffusion: GaussianDiffusion,
    model: torch.nn.Module,
    n: int,
    image_shape: tuple,
    generator: torch.Generator,
    device: torch.device,
    progress: Callable | None = None,
    sampler: SamplerConfig | None = None,
) -> np.ndarray:
    """`sampler` (default Algorithm 2) with eps_theta = model on device, n images of image_shape (C, H, W); the
    noise is drawn on the CPU generator, so a seed gives the same x_T on any device. Returns
    x_0 clipped to the data range [-1, 1], (n, C, H, W) float32. The U-Net's output is its
    config.prediction, converted to eps (ddpm_lab.core.targets); with config.learned_variance, sampler
    ddpm draws with the U-Net's own Sigma (ddpm_lab.core.sampling.learned_sigma), the others ignore it."""
    model = model.to(device).eval()

    def net(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x.to(device), t.to(device)).cpu()

    cfg = model.config  # net is a plain function: the wrapper is told of a learned variance here
    eps_model = as_eps_model(net, cfg.prediction, diffusion.np["alphas_cumprod"], cfg.learned_variance)

    x0, _ = sample(diffusion, eps_model, (n, *image_shape), generator, progress=progress, sampler=sampler)
    return x0.clamp(-1.0, 1.0).numpy().astype(np.float32)
