"""The image branch's params: what each of its sections needs of the machine and of the other
sections (memory estimates, coupled keys). The schemas live beside their components:
`images_data` (ddpm_lab/images/data.py), `images_diffusion` (ddpm_lab/core/diffusion.py),
`images_model` (ddpm_lab/images/unet.py), `images_train` (ddpm_lab/images/train.py),
`images_sample` (ddpm_lab/images/sample.py), `images_eval` (ddpm_lab/images/metrics.py).

A stage reads a section with `read(params, section, source, cls=Schema)` (the signature of the
GMM branch's read): the section's schema with its needs. The stage names the schema because
this module imports no job of the branch (training, sampling, metrics), so each stage still
imports only its own job; the first stage, prepare_images, checks every section before any
work (ddpm_lab/images/sections.py).
"""

from __future__ import annotations

import dataclasses

from ddpm_lab.images.unet import UNetConfig, activations, config_parameters, state_bytes
from ddpm_lab.runtime.params import (
    F32,
    F64,
    TRAIN_STATE,
    fits,
    from_section,
    other,
    require,
    require_fits,
    require_memory,
)

# Image shape (channels, side) of each images_data.source, known before any data is read.
IMAGE_SHAPES = {"digits": (1, 8), "mnist": (1, 28), "fashion_mnist": (1, 28)}
IMAGE_COUNTS = {"digits": 1_797, "mnist": 70_000, "fashion_mnist": 70_000}  # train + test images


def image_shape(params: dict) -> tuple[int, int] | None:
    """(channels, side) of images_data.source, or None if it names no known source (the
    section's own check refuses it)."""
    raw = params.get("images_data") if isinstance(params, dict) else None
    src = raw.get("source") if isinstance(raw, dict) else None
    return IMAGE_SHAPES.get(src) if isinstance(src, str) else None


def model_fixed(params: dict, source: str = "params.yaml") -> dict:
    """The fields of images_model taken from the data: in_channels, image_size."""
    shape = image_shape(params) or (1, 8)
    return {"in_channels": shape[0], "image_size": shape[1]}


def _unet(params: dict, source: str) -> UNetConfig | None:
    """The U-Net of params, or None if invalid or too big (then section images_model is refused
    by its own check)."""
    if image_shape(params) is None:
        return None
    u = other(UNetConfig, params, "images_model", source, **model_fixed(params, source))
    return u if u is not None and fits(state_bytes(u)) else None


def check_images_model(u: UNetConfig, params: dict, source: str) -> None:
    if fits(state_bytes(u)):
        return
    what = "the U-Net's weights, gradients, Adam moments and EMA"
    sizes = {
        "base_channels": u.base_channels,
        "num_res_blocks": u.num_res_blocks,
        "channel_mults": max(u.channel_mults),
    }
    key = max(sizes, key=sizes.get)  # the largest size is the one to blame
    if key == "channel_mults":
        require_fits(key, u.channel_mults, state_bytes(u), what)
    # groups and heads set to 1 while sizes vary: the count of parameters does not depend on them
    require_memory(
        key, sizes[key], lambda v: state_bytes(dataclasses.replace(u, **{key: max(v, 1)}, groups=1, attn_heads=1)), what
    )


def check_images_train(cfg, params: dict, source: str) -> None:
    u = _unet(params, source)
    if u is None:
        return
    cfg.check_learned_variance(u.learned_variance, "images_model")
    n_params, acts = config_parameters(u), activations(u)
    # Training keeps the activations for the backward pass and their gradients: about 3x.
    require_memory(
        "batch_size",
        cfg.batch_size,
        lambda b: F32 * (TRAIN_STATE * n_params + 3 * b * acts),
        "one U-Net training step",
        " images per step",
    )


def check_images_sample(cfg, params: dict, source: str) -> None:
    u = _unet(params, source)
    if u is None:
        return
    require(
        cfg.sampler == "ddpm" or not u.learned_variance,
        "sampler",
        cfg.sampler,
        "ddpm with images_model.learned_variance true (only ddpm reads the learned variance: ddim's is set by "
        "eta, the ODE samplers add no noise)",
    )
    n_params, acts = config_parameters(u), activations(u)
    pixels = u.in_channels * u.image_size**2
    # Without gradients only the skip connections and a few working tensors are alive: about a third.
    require_memory(
        "n_samples",
        cfg.n_samples,
        lambda n: F32 * (n_params + n * (acts // 3 + 4 * pixels)),
        "one batched U-Net call on every sample",
        " images",
    )


def check_images_eval(cfg, params: dict, source: str) -> None:
    shape = image_shape(params)
    if shape is None:
        return
    widths = [shape[0] * shape[1] ** 2, *cfg.hidden, 10]
    n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
    # scikit-learn's MLP: float64 weights, gradients and two Adam moments; the features of every image.
    need = F64 * (4 * n_params + IMAGE_COUNTS[params["images_data"]["source"]] * sum(cfg.hidden) * 2)
    require_fits("hidden", cfg.hidden, need, "the feature classifier and the features of every image")


def check_images_diffusion(cfg, params: dict, source: str) -> None:
    require(
        cfg.variance != "optimal",
        "variance",
        cfg.variance,
        "beta or beta_tilde (optimal needs the data's exact noise error, which only the GMM branch has)",
    )


# section -> its needs
NEEDS = {
    "images_diffusion": check_images_diffusion,
    "images_model": check_images_model,
    "images_train": check_images_train,
    "images_sample": check_images_sample,
    "images_eval": check_images_eval,
}


def read(params: dict, section: str, source: str = "params.yaml", *, cls: type | None = None, **fixed):
    """Section `section` of the image branch as schema `cls` (required: the stage's own job
    defines it), validated with its needs, or ConfigError (one line). images_model's in_channels
    and image_size come from images_data.source unless given. The same signature as
    ddpm_lab/gmm/params.py's read."""
    if cls is None:
        raise TypeError(f"read(params, {section!r}): the image branch needs cls=, the section's schema")
    if section == "images_model" and not fixed:
        fixed = model_fixed(params, source)
    return from_section(cls, params, section, source, needs=NEEDS.get(section), **fixed)
