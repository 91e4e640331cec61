"""Stage sample_images: Algorithm 2 from the EMA U-Net -> the samples and an 8 x 8 grid of them.

Params: `images_diffusion` (checked against the model's), `images_sample`, `replicate` (folded
into images_sample.seed). Writes <samples>
(an .npz of images (n_samples, C, H, W) in [-1, 1]) and <grid> (a PNG of the first 64).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.images.params import read
from ddpm_lab.images.figures import GRID_DPI, grid_figure
from ddpm_lab.images.sample import ImageSampleConfig, sample_images
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.runtime.io import load_params, load_trained_model, npz_bytes, write_outputs
from ddpm_lab.runtime.seeds import fold_seed, read_replicate
from ddpm_lab.runtime.torch_setup import configure_torch
from ddpm_lab.images.unet import UNet, UNetConfig


def main(argv=None) -> None:
    matplotlib.use("Agg")  # process-wide: chosen once, here, at the stage's entry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", default="models/images_unet.pt", type=Path)
    ap.add_argument("--samples-out", default="data/images/samples.npz", type=Path)
    ap.add_argument("--grid-out", default="images/generated_images.png", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "images_diffusion", args.params, cls=DiffusionConfig)
    scfg = read(params, "images_sample", args.params, cls=ImageSampleConfig)
    seed = fold_seed(scfg.seed, read_replicate(params, args.params))
    device = configure_torch(scfg.device, scfg.threads)
    model, config = load_trained_model(args.model, dcfg, lambda cfg: UNet(UNetConfig(**cfg)), "images_diffusion")
    t0 = time.perf_counter()
    images = sample_images(
        dcfg.build(),
        model,
        scfg.n_samples,
        tuple(config["image_shape"]),
        torch.Generator().manual_seed(seed),
        device,
        progress("sample_images"),
        sampler=scfg,
    )
    fig = grid_figure(
        images, f"DDPM samples ({scfg.describe(dcfg.T)}, EMA U-Net, T = {dcfg.T}): 64 of {scfg.n_samples}"
    )
    steps = scfg.n_steps(dcfg.T)  # network calls per image, of T; the sampler named for evaluate_images
    write_outputs(
        {
            args.samples_out: npz_bytes(
                images=images, steps=np.array(steps), T=np.array(dcfg.T), sampler=np.array(scfg.describe(dcfg.T))
            ),
            args.grid_out: lambda p: fig.savefig(p, format="png", dpi=GRID_DPI, metadata={"Software": None}),
        }
    )
    print(
        f"sample_images: {scfg.n_samples} images on {device} in {time.perf_counter() - t0:.0f} s "
        f"-> {args.samples_out}, {args.grid_out}"
    )


if __name__ == "__main__":
    run_stage(main)
