"""Inputs several GMM stages read: the mixture written by generate_gmm, a trained eps-model."""
from __future__ import annotations

import torch

from ddpm_lab.config import ConfigError, DataError, DiffusionConfig
from ddpm_lab.gmm import GaussianMixture
from ddpm_lab.io import load_checkpoint, read_json
from ddpm_lab.models import EpsMLP, MLPConfig


def load_mixture(path) -> GaussianMixture:
    info = read_json(path)
    try:
        return GaussianMixture(info["weights"], info["means"], info["stds"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a mixture written by generate_gmm ({e})") from None


def load_eps_model(path, diffusion: DiffusionConfig) -> EpsMLP:
    """The EMA eps-network of a checkpoint, checked against the current diffusion params."""
    config, state = load_checkpoint(path)
    if config.get("diffusion") != diffusion.__dict__:
        raise ConfigError(f"params.yaml: diffusion = {diffusion.__dict__} but {path} was trained with "
                          f"{config.get('diffusion')}: expected equal (rerun with dvc repro)")
    try:
        model = EpsMLP(MLPConfig(**config["model"]))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"{path}: checkpoint does not fit an EpsMLP ({type(e).__name__}): "
                        f"expected a file written by stages/train.py") from None
    return model.eval().requires_grad_(False)


def float32(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)
