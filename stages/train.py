"""Stage train_eq12 / train_eq3: train eps_theta with one of the paper's two objectives.

--objective eq12: the noise loss, weighted as Eq. 12 or unweighted as Eq. 14 (params
train_eq12.weighting); --objective eq3: the variational bound of Eq. 3 estimated on whole
forward trajectories. Params: `diffusion`, `model`, `train_<objective>`, `replicate` (folded
into train_<objective>.seed: the model's init, the batches and noise, the exact measurement).
Writes the EMA model (a checkpoint with its config) and the loss history CSV (step, loss). The
saved model is then measured exactly: its per-timestep excess error e_t over the least
error mmse_t (a CSV by t), and from it the model's expected loss next to the floor, the
expected loss of the exact eps* (a JSON of details).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.runtime.params import DataError, DiffusionConfig, from_section, to_dict
from ddpm_lab.gmm.exact import measure_model
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, save_checkpoint_bytes, write_outputs
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.runtime.seeds import fold_seed, read_replicate
from ddpm_lab.core.training import Eq3TrainConfig, Eq12TrainConfig, tail_loss, train
from ddpm_lab.gmm.artifacts import EPS_ERROR_COLUMNS, load_mixture
from ddpm_lab.runtime.torch_setup import use_threads

OBJECTIVES = ("eq12", "eq3")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objective", required=True, choices=OBJECTIVES)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--model-out", type=Path, help="default models/<objective>.pt")
    ap.add_argument("--metrics-out", type=Path, help="default metrics/details/train_<objective>.json")
    ap.add_argument("--eps-error-out", type=Path, help="default metrics/details/eps_error_<objective>.csv")
    ap.add_argument("--history-out", type=Path, help="default metrics/loss_<objective>.csv")
    args = ap.parse_args(argv)
    obj = args.objective

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion", args.params)
    section = f"train_{obj}"
    tcfg = from_section(Eq12TrainConfig if obj == "eq12" else Eq3TrainConfig, params, section, args.params)
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, read_replicate(params, args.params)))
    use_threads(tcfg.threads)
    data = read_array(args.data / "train.npy", ndim=2)
    mixture = load_mixture(args.data / "mixture.json")
    mcfg = from_section(MLPConfig, params, "model", args.params, data_dim=data.shape[1])
    if data.shape[1] != mixture.dim:
        raise DataError(f"{args.data}/train.npy: D = {data.shape[1]}: expected D = {mixture.dim} as in "
                        f"{args.data}/mixture.json (rerun generate_gmm)")
    diffusion = dcfg.build()

    model = EpsMLP.seeded(mcfg, tcfg.seed)
    if obj == "eq12":
        weighting = tcfg.weighting
        loss_fn = lambda m, x0, g: diffusion.loss_eq12(m, x0, g, weighting)  # noqa: E731
    else:
        weighting = tcfg.describe()  # the estimator of the bound
        loss_fn = lambda m, x0, g: diffusion.loss_bound(m, x0, g, tcfg.estimator,  # noqa: E731
                                                        tcfg.terms_per_trajectory, tcfg.term)
    torch.use_deterministic_algorithms(True)
    ema, history = train(model, loss_fn, torch.as_tensor(data, dtype=torch.float32), tcfg,
                         progress=progress(f"train_{obj}"))

    # Eq. 12 is the bound less its constants (L_T, the variance terms, L_0's normaliser): adding them
    # (L_T at E||x_0||^2, exact for the mixture) makes the logged loss an unbiased estimate of the
    # bound in nats, on one axis and one floor (the oracle's bound) with the Eq. 3 estimators.
    in_bound = obj == "eq3" or weighting == "eq12"
    if obj == "eq12" and in_bound:
        history[:, 1] += diffusion.prior_kl(mixture.second_moment(), mixture.dim) + diffusion.bound_constant(mixture.dim)
    # The saved (EMA) model measured exactly: per-t excess errors e_t over the least error mmse_t.
    exact, by_t = measure_model(mixture, diffusion, ema, "bound" if in_bound else weighting,
                                np.random.default_rng([tcfg.seed, 2]))
    tail, tail_se = tail_loss(history)
    metrics = {**exact, "objective": obj, "weighting": weighting, "steps": tcfg.steps, "batch_size": tcfg.batch_size,
               "network_evaluations": tcfg.steps * tcfg.batch_size * (
                   1 if obj == "eq12" else diffusion.evaluations(tcfg.estimator, tcfg.terms_per_trajectory)),
               "final_loss": tail, "final_loss_se": tail_se}
    by_t = pd.DataFrame({name: by_t[name] for name in EPS_ERROR_COLUMNS})
    config = {"objective": obj, "diffusion": to_dict(dcfg), "model": mcfg.to_dict(), "train": tcfg.to_dict()}
    hist = pd.DataFrame({"step": history[:, 0].astype(int), "loss": history[:, 1]})
    write_outputs({
        args.model_out or Path(f"models/{obj}.pt"): save_checkpoint_bytes(ema.state_dict(), config),
        args.metrics_out or Path(f"metrics/details/train_{obj}.json"): json_bytes(metrics),
        args.eps_error_out or Path(f"metrics/details/eps_error_{obj}.csv"): by_t.to_csv(index=False,
                                                                                       float_format="%.9g").encode(),
        args.history_out or Path(f"metrics/loss_{obj}.csv"): hist.to_csv(index=False, float_format="%.6g").encode(),
    })
    print(f"train_{obj}: logged loss {tail:.4f} (last 10% of rows); saved model's exact expected loss "
          f"{exact['saved_model_expected_loss']:.5f} = floor {exact['loss_floor']:.5f} + excess "
          f"{exact['saved_model_excess_loss']:.5f} (+- {exact['saved_model_excess_loss_err']:.1g})")


if __name__ == "__main__":
    run_stage(main)
