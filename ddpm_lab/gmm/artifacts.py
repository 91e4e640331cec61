"""Inputs several GMM stages read: the mixture written by generate_gmm, a trained eps-model, the
per-timestep excess errors a training stage measured."""
from __future__ import annotations

import pandas as pd

from ddpm_lab.runtime.params import DataError, DiffusionConfig
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.io import load_trained_model, read_csv, read_json
from ddpm_lab.gmm.model import EpsMLP, MLPConfig

MODELS = ("eq12", "eq3")  # the trained eps-models of the GMM study, by objective



def load_mixture(path) -> GaussianMixture:
    info = read_json(path)
    try:
        return GaussianMixture(info["weights"], info["means"], info["stds"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a mixture written by generate_gmm ({e})") from None


def load_eps_model(path, diffusion: DiffusionConfig) -> EpsMLP:
    """The EMA eps-network of a train_eq12 / train_eq3 checkpoint, checked against the diffusion params."""
    return load_trained_model(path, diffusion, lambda cfg: EpsMLP(MLPConfig(**cfg)))[0]


EPS_ERROR_COLUMNS = ["t", "alpha_bar", "weight_eq12", "mmse", "mmse_err", "eps_error", "eps_error_err"]


def read_eps_error(path, T: int) -> pd.DataFrame:
    """The per-t excess errors a training stage wrote (columns EPS_ERROR_COLUMNS, t = 1..T)."""
    return read_csv(path, EPS_ERROR_COLUMNS, n_rows=T)
