"""Check a whole params file before running anything: `python -m ddpm_lab.tools.preflight [--params FILE]`.

Builds every section's config, each with its own validation and its needs (memory estimates,
constraints across sections: ddpm_lab.runtime.params.check_section), in pipeline order, and stops at
the first bad value with the stages' one-line error and exit status 2; prints one line and
exits 0 when all are valid. It does no work and writes nothing (about two seconds, imports).

Why a separate entry point: every stage validates the sections it reads, and the first stage
(generate_gmm) also checks every section's needs (config.check_params) before any work; but a
stage imports only its own code (dvc.yaml lists exactly that, tests/test_deps.py), so no stage
can build the other stages' config classes. This module imports them all; no stage imports it.
"""
from __future__ import annotations

import argparse

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import DiffusionConfig, GMMConfig, IMAGE_SHAPES, from_section
from ddpm_lab.images.data import ImageDataConfig
from ddpm_lab.images.metrics import EvalConfig
from ddpm_lab.gmm.params import CompareConfig, EstimatorVarianceConfig, PlotConfig, SampleConfig, TradeoffConfig
from ddpm_lab.images.sample import ImageSampleConfig
from ddpm_lab.images.train import ImageTrainConfig
from ddpm_lab.runtime.io import load_params
from ddpm_lab.runtime.seeds import read_replicate
from ddpm_lab.gmm.model import MLPConfig
from ddpm_lab.core.training import Eq3TrainConfig, Eq12TrainConfig
from ddpm_lab.images.unet import UNetConfig


def validate_params(params: dict, source: str = "params.yaml") -> dict:
    """Build every section of params (the GMM and the image branch) with all its checks, in
    pipeline order; raise the first ConfigError. Returns {section: config}."""
    out = {"replicate": read_replicate(params, source), "gmm": from_section(GMMConfig, params, "gmm", source)}
    out["diffusion"] = from_section(DiffusionConfig, params, "diffusion", source)
    out["model"] = from_section(MLPConfig, params, "model", source, data_dim=out["gmm"].dim)
    out["train_eq12"] = from_section(Eq12TrainConfig, params, "train_eq12", source)
    out["train_eq3"] = from_section(Eq3TrainConfig, params, "train_eq3", source)
    out["sample"] = from_section(SampleConfig, params, "sample", source)
    out["compare_dist"] = from_section(CompareConfig, params, "compare_dist", source)
    out["plot"] = from_section(PlotConfig, params, "plot", source)
    out["sampler_tradeoff"] = from_section(TradeoffConfig, params, "sampler_tradeoff", source)
    out["estimator_variance"] = from_section(EstimatorVarianceConfig, params, "estimator_variance", source)
    out["images_data"] = from_section(ImageDataConfig, params, "images_data", source)
    out["images_diffusion"] = from_section(DiffusionConfig, params, "images_diffusion", source)
    channels, side = IMAGE_SHAPES[out["images_data"].source]
    out["images_model"] = from_section(UNetConfig, params, "images_model", source, in_channels=channels, image_size=side)
    out["images_train"] = from_section(ImageTrainConfig, params, "images_train", source)
    out["images_sample"] = from_section(ImageSampleConfig, params, "images_sample", source)
    out["images_eval"] = from_section(EvalConfig, params, "images_eval", source)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    configs = validate_params(load_params(args.params), args.params)
    print(f"preflight: {args.params}: replicate and all {len(configs) - 1} sections valid")


if __name__ == "__main__":
    run_stage(main)
