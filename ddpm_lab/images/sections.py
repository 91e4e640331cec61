"""Every section of the image branch at once, with its schema: what prepare_images (the
branch's first stage) and `ddpm-lab preflight` check before any work. Apart from
ddpm_lab/images/params.py because it imports every job of the branch."""

from __future__ import annotations

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.images.data import ImageDataConfig
from ddpm_lab.images.metrics import EvalConfig
from ddpm_lab.images.params import read
from ddpm_lab.images.sample import ImageSampleConfig
from ddpm_lab.images.train import ImageTrainConfig
from ddpm_lab.images.unet import UNetConfig

SECTIONS = {
    "images_data": ImageDataConfig,
    "images_diffusion": DiffusionConfig,
    "images_model": UNetConfig,
    "images_train": ImageTrainConfig,
    "images_sample": ImageSampleConfig,
    "images_eval": EvalConfig,
}


def check_all(params: dict, source: str = "params.yaml") -> dict:
    """Every section of the image branch with its needs, before any work: {section: config}, or
    the first failure as a ConfigError."""
    return {section: read(params, section, source, cls=cls) for section, cls in SECTIONS.items()}
