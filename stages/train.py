"""Stage train_eq12 / train_eq3: train eps_theta with one of the paper's two objectives.

--objective eq12: the noise loss, weighted as Eq. 12 or unweighted as Eq. 14 (params
train_eq12.weighting); --objective eq3: the variational bound of Eq. 3 estimated on whole
forward trajectories. Params: `diffusion`, `model`, `train_<objective>`, `replicate` (folded
into train_<objective>.seed: the model's init, the batches and noise, the exact measurement).
Writes the EMA model (a checkpoint with its config) and the loss history CSV (step, loss). The
saved model is then measured exactly: its per-timestep excess error e_t over the least
error mmse_t (a CSV by t), and from it the model's expected loss next to the floor, the
expected loss of the exact eps* (a JSON of details). The run: ddpm_lab.gmm.train.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.runtime.params import DataError, to_dict
from ddpm_lab.gmm.params import read
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, save_checkpoint_bytes, write_outputs
from ddpm_lab.gmm.names import MODELS
from ddpm_lab.gmm.train import train_on_mixture
from ddpm_lab.runtime.seeds import fold_seed, read_replicate
from ddpm_lab.gmm.artifacts import load_mixture
from ddpm_lab.gmm.variance import diffusion_for
from ddpm_lab.runtime.torch_setup import keep_freed_memory, use_threads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objective", required=True, choices=MODELS)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--model-out", type=Path, help="default models/<objective>.pt")
    ap.add_argument("--metrics-out", type=Path, help="default metrics/details/train_<objective>.json")
    ap.add_argument("--eps-error-out", type=Path, help="default metrics/details/eps_error_<objective>.csv")
    ap.add_argument("--history-out", type=Path, help="default metrics/loss_<objective>.csv")
    args = ap.parse_args(argv)
    obj = args.objective

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    section = f"train_{obj}"
    tcfg = read(params, section, args.params)
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, read_replicate(params, args.params)))
    use_threads(tcfg.threads)
    keep_freed_memory()  # the stable target's per-step temporaries: no page faults each step
    data = read_array(args.data / "train.npy", ndim=2)
    mixture = load_mixture(args.data / "mixture.json")
    mcfg = read(params, "model", args.params, data_dim=data.shape[1])
    if data.shape[1] != mixture.dim:
        raise DataError(
            f"{args.data}/train.npy: D = {data.shape[1]}: expected D = {mixture.dim} as in "
            f"{args.data}/mixture.json (rerun generate_gmm)"
        )

    diffusion = diffusion_for(dcfg, mixture)
    run = train_on_mixture(obj, diffusion, mcfg, tcfg, data, mixture, progress=progress(f"train_{obj}"))
    config = {"objective": obj, "diffusion": to_dict(dcfg), "model": mcfg.to_dict(), "train": tcfg.to_dict()}
    if dcfg.variance == "optimal":  # the model carries its sigma_t^2, as it carries its diffusion (stage sample)
        config["noise_error"] = diffusion.np["noise_error"][1:].tolist()
    write_outputs(
        {
            args.model_out or Path(f"models/{obj}.pt"): save_checkpoint_bytes(run.ema.state_dict(), config),
            args.metrics_out or Path(f"metrics/details/train_{obj}.json"): json_bytes(run.metrics),
            args.eps_error_out or Path(f"metrics/details/eps_error_{obj}.csv"): run.eps_error.to_csv(
                index=False, float_format="%.9g"
            ).encode(),
            args.history_out or Path(f"metrics/loss_{obj}.csv"): run.history.to_csv(
                index=False, float_format="%.6g"
            ).encode(),
        }
    )
    m = run.metrics
    print(
        f"train_{obj}: logged loss {m['final_loss']:.4f} (last 10% of rows); saved model's exact expected loss "
        f"{m['saved_model_expected_loss']:.5f} = floor {m['loss_floor']:.5f} + excess "
        f"{m['saved_model_excess_loss']:.5f} (+- {m['saved_model_excess_loss_err']:.1g})"
    )


if __name__ == "__main__":
    run_stage(main)
