"""Stage train_images: train the U-Net eps_theta on the image split with L_simple (Eq. 14) and EMA.

Params: `images_diffusion`, `images_model`, `images_train`, `replicate` (folded into
images_train.seed, so into the resume fingerprint too). Writes the EMA model (a checkpoint
with its config), the loss history CSV (step, loss) and a metrics JSON. Every
images_train.checkpoint_every steps the whole training state goes to a scratch file named by
the SHA-256 of the params (threads included), the device type, the data and the training code
(ddpm_lab.images.train.TRAINING_CODE), under .cache/ddpm_lab/resume/ (ignored by git and DVC; no
output in dvc.yaml, so DVC's run-cache restores the stage): a run that was interrupted continues
from there, to the same final weights, when all of them are unchanged; otherwise it starts
over. The file is removed once the outputs are written. --resume PATH names the file instead,
and then keeps it after the run.
--stop-at STEP ends the run (exit status 3) after the checkpoint at STEP, as an interruption would.

images_train.nproc > 1: the stage checks its inputs, then launches itself as nproc ranks, as
`torchrun --standalone --nproc_per_node nproc` would; rank 0 writes. Started by torchrun itself
(WORLD_SIZE set), it runs as that rank. A rank that dies ends the run with one line naming it;
the checkpoint written before stays, and a rerun (any nproc) resumes from it. The run itself:
ddpm_lab.images.train_run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ddpm_lab.images.train_run import run_training
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.io import load_params, read_array, write_outputs
from ddpm_lab.images.params import read
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.images.train import ImageTrainConfig
from ddpm_lab.images.unet import UNetConfig
from ddpm_lab.runtime.seeds import fold_seed, read_replicate


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/images/split.npz", type=Path)
    ap.add_argument("--model-out", default="models/images_unet.pt", type=Path)
    ap.add_argument("--resume", type=Path, help="the resumable checkpoint, kept (default: a scratch file, removed)")
    ap.add_argument("--metrics-out", default="metrics/images_train.json", type=Path)
    ap.add_argument("--history-out", default="metrics/images_loss.csv", type=Path)
    ap.add_argument("--stop-at", type=int, default=0, help="stop after the checkpoint at this step")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "images_diffusion", args.params, cls=DiffusionConfig)
    tcfg = read(params, "images_train", args.params, cls=ImageTrainConfig)
    replicate = read_replicate(params, args.params)
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, replicate))
    x_train = read_array(args.data, ndim=4, key="x_train")
    mcfg = read(
        params, "images_model", args.params, cls=UNetConfig, in_channels=x_train.shape[1], image_size=x_train.shape[2]
    )
    run = run_training(
        x_train, dcfg, mcfg, tcfg, args.resume, relaunch=("stages.train_images", argv), stop_at=args.stop_at
    )
    if run is None:  # this process launched the ranks, or is a rank other than 0: rank 0 writes
        return
    write_outputs({args.model_out: run.model, args.metrics_out: run.metrics, args.history_out: run.history})
    run.drop_scratch()
    print(run.line(args.model_out))


if __name__ == "__main__":
    run_stage(main)
