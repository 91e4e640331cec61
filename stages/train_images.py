"""Stage train_images: train the U-Net eps_theta on the image split with L_simple (Eq. 14) and EMA.

Params: `images_diffusion`, `images_model`, `images_train`, `replicate` (folded into
images_train.seed, so into the resume fingerprint too). Writes the EMA model (a checkpoint
with its config), the loss history CSV (step, loss) and a metrics JSON. Every
images_train.checkpoint_every steps the whole training state goes to --resume (a `persist`
output in dvc.yaml): a run that was interrupted continues from there, to the same final
weights, when the params (threads included), the device type, the data and the training code
(image_train.TRAINING_CODE) are unchanged; otherwise it starts over.
--stop-at STEP ends the run (exit status 3) after the checkpoint at STEP, as an interruption would.

images_train.nproc > 1: the stage checks its inputs, then launches itself as nproc ranks
(ddpm_lab.runtime.distributed.launch, as `torchrun --standalone --nproc_per_node nproc` would); each
rank evaluates its shard of every global batch, rank 0 writes. Started by torchrun itself
(WORLD_SIZE set), it runs as that rank. A rank that dies ends the run with one line naming it;
the checkpoint written before stays, and a rerun (any nproc) resumes from it.
"""
from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from ddpm_lab.runtime.cli import EXIT_BAD_INPUT, progress, run_stage
from ddpm_lab.runtime.params import ConfigError, DataError, DiffusionConfig, from_section, to_dict
from ddpm_lab.core.diffusion import LOSS_UNITS
from ddpm_lab.runtime.distributed import (EXIT_PEER_LOST, RankFailed, World, join, launch, launched_world, leave, peer_lost,
                                  resolve_backend)
from ddpm_lab.images.train import ImageTrainConfig, code_digest, data_digest, load_resume, resume_bytes, train_unet
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, save_checkpoint_bytes, write_outputs
from ddpm_lab.runtime.seeds import fold_seed, read_replicate
from ddpm_lab.runtime.torch_setup import configure_torch
from ddpm_lab.core.training import tail_loss
from ddpm_lab.images.unet import UNetConfig, n_parameters

EXIT_STOPPED = 3


class Stopped(Exception):
    """Raised after the checkpoint at --stop-at has been written."""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/images/split.npz", type=Path)
    ap.add_argument("--model-out", default="models/images_unet.pt", type=Path)
    ap.add_argument("--resume", default="models/images_resume.pt", type=Path)
    ap.add_argument("--metrics-out", default="metrics/images_train.json", type=Path)
    ap.add_argument("--history-out", default="metrics/images_loss.csv", type=Path)
    ap.add_argument("--stop-at", type=int, default=0, help="stop after the checkpoint at this step")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "images_diffusion", args.params)
    tcfg = from_section(ImageTrainConfig, params, "images_train", args.params)
    replicate = read_replicate(params, args.params)
    tcfg = dataclasses.replace(tcfg, seed=fold_seed(tcfg.seed, replicate))
    x_train = read_array(args.data, ndim=4, key="x_train")
    mcfg = from_section(UNetConfig, params, "images_model", args.params,
                        in_channels=x_train.shape[1], image_size=x_train.shape[2])
    device = configure_torch(tcfg.device, tcfg.threads)
    backend = resolve_backend(tcfg.backend, device)
    world = launched_world(tcfg.nproc)
    if world is not None and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    fingerprint = {"diffusion": to_dict(dcfg), "model": mcfg.to_dict(), "train": tcfg.fingerprint(),
                   "device": device.type, "data_sha256": data_digest(x_train), "code_sha256": code_digest()}
    state, note = load_resume(args.resume.read_bytes() if args.resume.is_file() else None, fingerprint,
                              str(args.resume))
    if world is None and tcfg.nproc > 1:  # inputs checked: run as nproc ranks
        launch_ranks(tcfg, device, backend, argv, args.resume)
        return
    world = world or World()
    if world.main:
        print(f"train_images: {note}", file=sys.stderr)

    def on_checkpoint(st: dict) -> None:
        if world.main:
            write_outputs({args.resume: resume_bytes(fingerprint, st)})
        world.barrier()  # no rank stops (and gets rank 0 stopped) before the checkpoint is written
        if args.stop_at and st["step"] >= args.stop_at:
            raise Stopped(st["step"])

    t0 = time.perf_counter()
    try:
        if world.size > 1:
            join(world, backend)
        ema, history = train_unet(x_train, dcfg.build(), mcfg, tcfg, device, progress("train_images"),
                                  resume=state, on_checkpoint=on_checkpoint, world=world)
    except Stopped as s:
        if world.main:
            print(f"train_images: stopped after the checkpoint at step {s.args[0]} -> {args.resume}",
                  file=sys.stderr)
        raise SystemExit(EXIT_STOPPED) from None
    except (ConfigError, DataError):
        if world.main:
            raise
        raise SystemExit(EXIT_BAD_INPUT) from None  # every rank raises it; rank 0 says it
    except Exception as e:
        if world.size > 1 and peer_lost(e):
            raise SystemExit(EXIT_PEER_LOST) from None  # another rank died: the launcher names it
        raise
    except KeyboardInterrupt:
        if world.size > 1:  # the launcher passes Ctrl-C on to its ranks, and says it was stopped
            raise SystemExit(128 + signal.SIGINT) from None
        raise
    finally:
        leave()
    if not world.main:
        return
    tail, tail_se = tail_loss(history)
    metrics = {"branch": "images", "weighting": tcfg.weighting, "steps": tcfg.steps, "batch_size": tcfg.batch_size,
               "final_loss": tail, "final_loss_se": tail_se, "parameters": n_parameters(ema), "processes": world.size,
               "units": LOSS_UNITS[tcfg.weighting]}
    config = {"diffusion": to_dict(dcfg), "model": mcfg.to_dict(), "train": tcfg.to_dict(),
              "image_shape": list(x_train.shape[1:])}
    hist = pd.DataFrame({"step": history[:, 0].astype(int), "loss": history[:, 1]})
    write_outputs({args.model_out: save_checkpoint_bytes(ema.state_dict(), config),
                   args.metrics_out: json_bytes(metrics),
                   args.history_out: hist.to_csv(index=False, float_format="%.6g").encode()})
    print(f"train_images: {tcfg.steps} steps on {device}{f' x {world.size} processes' if world.size > 1 else ''} "
          f"in {time.perf_counter() - t0:.0f} s, "
          f"final loss {tail:.4f}, {n_parameters(ema)} parameters -> {args.model_out}")


def launch_ranks(tcfg: ImageTrainConfig, device: torch.device, backend: str, argv: list[str], resume: Path) -> None:
    """Run this stage as tcfg.nproc ranks; a failed rank ends it with one line and a non-zero exit."""
    if device.type == "cuda" and tcfg.nproc > torch.cuda.device_count():
        raise ConfigError(f"images_train.nproc = {tcfg.nproc}: expected at most {torch.cuda.device_count()} "
                          f"(the CUDA devices here, one per process)")
    print(f"train_images: launching {tcfg.nproc} processes ({backend}, {device.type})", file=sys.stderr)
    try:
        launch(tcfg.nproc, "stages.train_images", argv)
    except RankFailed as e:
        if e.exitcode in (EXIT_BAD_INPUT, EXIT_STOPPED):  # rank 0 said why
            raise SystemExit(e.exitcode) from None
        kept = f"the checkpoint {resume} is kept, a rerun resumes from it" if resume.is_file() else \
            "no checkpoint yet, a rerun starts from step 0"
        print(f"error: train_images: {e}: no outputs written; {kept}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    run_stage(main)
