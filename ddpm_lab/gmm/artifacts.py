"""Inputs several GMM stages read: the mixture written by generate_gmm, a trained eps-model (or
every eps-predictor of the study, the oracle included), the sampled draws, the per-timestep
excess errors a training stage measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ddpm_lab.runtime.params import DataError
from ddpm_lab.core.diffusion import DiffusionConfig, EpsModel, GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.runtime.io import load_trained_model, read_array, read_csv, read_json
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.names import ORACLE


def load_mixture(path) -> GaussianMixture:
    info = read_json(path)
    try:
        return GaussianMixture(info["weights"], info["means"], info["stds"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a mixture written by generate_gmm ({e})") from None


def load_eps_net(path, diffusion: DiffusionConfig) -> EpsMLP:
    """The EMA network of a train_eq12 / train_eq3 checkpoint as trained: it outputs its
    config.prediction (eps, x0 or v); checked against the diffusion params."""
    return load_trained_model(path, diffusion, lambda cfg: EpsMLP(MLPConfig(**cfg)))[0]


def load_eps_model(path, diffusion: DiffusionConfig) -> EpsModel:
    """The eps-model of a train_eq12 / train_eq3 checkpoint: its network itself when it predicts eps,
    else that network's output converted to eps (ddpm_lab.core.targets.EpsFromTarget)."""
    net = load_eps_net(path, diffusion)
    return as_eps_model(net, net.config.prediction, GaussianDiffusion(diffusion.betas()).np["alphas_cumprod"])


def load_eps_predictors(models, names, dcfg: DiffusionConfig, mixture: GaussianMixture | None, alphas_cumprod) -> dict:
    """{name: eps-predictor} for each of names, in order: the oracle (names.ORACLE) is the exact eps*
    of mixture at alphas_cumprod; any other name is the trained model in <models>/<name>.pt (the
    mixture may then be None: a trained model does not read it)."""
    return {
        name: OracleEps(mixture, alphas_cumprod) if name == ORACLE else load_eps_model(models / f"{name}.pt", dcfg)
        for name in names
    }


def read_samples(folder, names, dim: int) -> dict:
    """{name: x0 (S, n, dim)} of <folder>/<name>.npz for each of names, written by stage sample:
    one S and n for all, else a DataError."""
    samples = {name: read_array(folder / f"{name}.npz", ndim=3, key="x0") for name in names}
    shapes = {x.shape for x in samples.values()}
    if len(shapes) != 1 or any(x.shape[2] != dim for x in samples.values()):
        raise DataError(
            f"{folder}: sample arrays of shapes {[x.shape for x in samples.values()]}: "
            f"expected (S, n, {dim}) with one S and n for all samplers"
        )
    return samples


EPS_ERROR_COLUMNS = ["t", "alpha_bar", "weight_eq12", "mmse", "mmse_err", "eps_error", "eps_error_err"]


SAMPLER_KEYS = ("sampler", "steps", "eta")  # the SamplerConfig fields a samples file records


def sampler_arrays(cfg: SamplerConfig) -> dict[str, np.ndarray]:
    """The settings of the sampler that drew a samples file, as its arrays sampler_<field>."""
    return {f"sampler_{k}": np.array(getattr(cfg, k)) for k in SAMPLER_KEYS}


def read_sampler_config(path) -> SamplerConfig:
    """The SamplerConfig recorded in a samples file by sampler_arrays, else a DataError."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [name for k in SAMPLER_KEYS if (name := f"sampler_{k}") not in z]
            values = {k: z[f"sampler_{k}"].item() for k in SAMPLER_KEYS} if not missing else None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: run the stage that writes it (dvc repro)") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable numpy file ({e})") from None
    if missing:
        raise DataError(
            f"{path}: has no array {missing[0]!r}: expected samples written by stage sample (rerun dvc repro)"
        )
    try:
        return SamplerConfig(**values)
    except ValueError as e:  # a schema error names the field and value
        raise DataError(f"{path}: sampler settings {values}: {e}") from None


EXACT_CURVE_COLUMNS = ["x", "density", "cdf"]  # compare_dist's exact_dist_<name>.csv (ddpm_lab.gmm.propagate.curve)


def read_exact_curve(path, dim: int) -> pd.DataFrame:
    """The propagated output density and CDF that compare_dist wrote (columns EXACT_CURVE_COLUMNS;
    no rows for a mixture of dim > 1, which is not propagated)."""
    return read_csv(path, EXACT_CURVE_COLUMNS, 0 if dim > 1 else None)


def read_eps_error(path, T: int) -> pd.DataFrame:
    """The per-t excess errors a training stage wrote (columns EPS_ERROR_COLUMNS, t = 1..T)."""
    return read_csv(path, EPS_ERROR_COLUMNS, n_rows=T)
