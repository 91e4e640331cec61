"""One train_images run, from checked sections and data to the bytes of its outputs: the device,
the resumable checkpoint (read at the start, written every images_train.checkpoint_every steps),
a requested stop after a checkpoint, and images_train.nproc > 1.

The resumable checkpoint is resumed, to the same final weights, when the params (threads
included), the device type, the data and the training code (ddpm_lab.images.train.TRAINING_CODE)
are unchanged; otherwise training starts over. Unless the caller names a file for it, it is a
scratch file named by the SHA-256 of exactly that fingerprint (resume_path: under
.cache/ddpm_lab/resume/, ignored by git and DVC), so every variant keeps its own, and the stage
removes it once its outputs are written: it is no output of the stage, which DVC can then restore
from its run-cache (an out with `persist: true` turns the run-cache off for its stage).

images_train.nproc > 1: the process started by hand launches the stage again as nproc ranks
(ddpm_lab.runtime.distributed.launch_ranks, as `torchrun --standalone --nproc_per_node nproc`
would); each rank evaluates its shard of every global batch, rank 0 writes. A process that
torchrun started (WORLD_SIZE set) runs as that rank. A rank that dies ends the run with one line
naming it; the checkpoint written before stays, and a rerun (any nproc) resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ddpm_lab.core.diffusion import LOSS_UNITS
from ddpm_lab.core.training import tail_loss
from ddpm_lab.images.train import ImageTrainConfig, code_digest, data_digest, load_resume, resume_bytes, train_unet
from ddpm_lab.images.unet import UNetConfig, n_parameters
from ddpm_lab.runtime.cli import progress
from ddpm_lab.runtime.distributed import Stopped, World, launch_ranks, launched_world, rank_run, resolve_backend
from ddpm_lab.runtime.io import json_bytes, save_checkpoint_bytes, write_outputs
from ddpm_lab.runtime.params import to_dict
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.runtime.torch_setup import configure_torch

STAGE = "train_images"  # the name in its lines (stderr, error lines, progress bar)
RESUME_DIR = Path(".cache/ddpm_lab/resume")  # the scratch checkpoints, under the working directory


def resume_path(fingerprint: dict) -> Path:
    """The scratch checkpoint of a run: RESUME_DIR/<the first 16 hex digits of the SHA-256 of its
    fingerprint>.pt, so that a variant never finds another's (and load_resume still checks)."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    return RESUME_DIR / f"{digest[:16]}.pt"


@dataclass(frozen=True)
class TrainRun:
    """What rank 0 of a finished run writes: the EMA model (a checkpoint with its config), the
    metrics JSON and the loss history CSV (step, loss), as bytes; `line(model_out)` says it;
    `drop_scratch()`, once they are written, removes the scratch checkpoint."""

    model: bytes
    metrics: bytes
    history: bytes
    done: str  # "<steps> steps on <device>[ x <n> processes]"
    result: str  # "final loss ..., <n> parameters"
    t0: float  # time.perf_counter() before training
    scratch: Path | None = None  # the scratch checkpoint (resume_path); None: the caller named the file

    def drop_scratch(self) -> None:
        """Remove the scratch checkpoint and its folders left empty: the outputs are written, nothing
        is left to resume."""
        if self.scratch is not None:
            self.scratch.unlink(missing_ok=True)
            try:
                os.removedirs(self.scratch.parent)  # resume/, then ddpm_lab/ and .cache/ when empty
            except OSError:
                pass

    def line(self, model_out) -> str:
        return f"{STAGE}: {self.done} in {time.perf_counter() - self.t0:.0f} s, {self.result} -> {model_out}"


def run_training(
    x_train: np.ndarray,
    dcfg: DiffusionConfig,
    mcfg: UNetConfig,
    tcfg: ImageTrainConfig,
    resume: Path | None,
    relaunch: tuple[str, list[str]],
    stop_at: int = 0,
) -> TrainRun | None:
    """Train the U-Net on x_train (N, C, H, W) with the checked sections (tcfg's seed folded with
    the replicate), resuming from the checkpoint file `resume` if it fits and writing it every
    tcfg.checkpoint_every steps (None: the scratch file resume_path(fingerprint), which the
    returned run's drop_scratch() removes). stop_at > 0: stop (SystemExit(EXIT_STOPPED)) after
    the checkpoint at that step. relaunch: (module, argv) of the stage, run as tcfg.nproc ranks when
    nproc > 1 and no launcher started this process. Returns the outputs on rank 0; None in the
    launching process and on the other ranks (rank 0 has them)."""
    device = configure_torch(tcfg.device, tcfg.threads)
    backend = resolve_backend(tcfg.backend, device)
    world = launched_world(tcfg.nproc)
    if world is not None and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    fingerprint = {
        "diffusion": to_dict(dcfg),
        "model": mcfg.to_dict(),
        "train": tcfg.fingerprint(),
        "device": device.type,
        "data_sha256": data_digest(x_train),
        "code_sha256": code_digest(),
    }
    scratch = resume_path(fingerprint) if resume is None else None
    resume = scratch or resume
    state, note = load_resume(resume.read_bytes() if resume.is_file() else None, fingerprint, str(resume))
    if world is None and tcfg.nproc > 1:  # inputs checked: run as nproc ranks
        module, argv = relaunch
        launch_ranks(tcfg.nproc, module, argv, device, backend, STAGE, resume)
        return None
    world = world or World()
    if world.main:
        print(f"{STAGE}: {note}", file=sys.stderr)

    def on_checkpoint(st: dict) -> None:
        if world.main:
            write_outputs({resume: resume_bytes(fingerprint, st)})
        world.barrier()  # no rank stops (and gets rank 0 stopped) before the checkpoint is written
        if stop_at and st["step"] >= stop_at:
            raise Stopped(f"{STAGE}: stopped after the checkpoint at step {st['step']} -> {resume}")

    t0 = time.perf_counter()
    with rank_run(world, backend):
        ema, history = train_unet(
            x_train,
            dcfg.build(),
            mcfg,
            tcfg,
            device,
            progress(STAGE),
            resume=state,
            on_checkpoint=on_checkpoint,
            world=world,
        )
    if not world.main:
        return None
    tail, tail_se = tail_loss(history)
    metrics = {
        "branch": "images",
        "weighting": tcfg.weighting,
        "steps": tcfg.steps,
        "batch_size": tcfg.batch_size,
        "final_loss": tail,
        "final_loss_se": tail_se,
        "parameters": n_parameters(ema),
        "processes": world.size,
        "units": LOSS_UNITS[tcfg.weighting],
    }
    config = {
        "diffusion": to_dict(dcfg),
        "model": mcfg.to_dict(),
        "train": tcfg.to_dict(),
        "image_shape": list(x_train.shape[1:]),
    }
    hist = pd.DataFrame({"step": history[:, 0].astype(int), "loss": history[:, 1]})
    return TrainRun(
        model=save_checkpoint_bytes(ema.state_dict(), config),
        metrics=json_bytes(metrics),
        history=hist.to_csv(index=False, float_format="%.6g").encode(),
        done=f"{tcfg.steps} steps on {device}{f' x {world.size} processes' if world.size > 1 else ''}",
        result=f"final loss {tail:.4f}, {n_parameters(ema)} parameters",
        t0=t0,
        scratch=scratch,
    )
