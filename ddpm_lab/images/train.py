"""Training of the image branch: its config, L_simple training of the U-Net with EMA, and
resumable checkpoints that only the same params, data and training code resume. No file
paths here (bytes in, bytes out), so all of it is importable and tested; the run of the stage
(files, ranks, stopping) is in train_run.py. Sampling is in sample.py, the grid figure in
figures.py: train_images imports neither.

Ho, Jain & Abbeel (2020), arXiv:2006.11239: L_simple (Eq. 14) training.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
import torch

from ddpm_lab.runtime.params import DataError, Int, doc, require, schema
from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.runtime.distributed import BACKENDS, NPROC_MAX, World
from ddpm_lab.runtime.io import load_torch, torch_bytes
from ddpm_lab.core.training import Eq12TrainConfig, restore_training_state, train
from ddpm_lab.images.unet import UNet, UNetConfig
from ddpm_lab.runtime.torch_setup import DEVICES


@schema
class ImageTrainConfig(Eq12TrainConfig):
    """Section `images_train`: the fields of Eq12TrainConfig (weighting eq14 is L_simple), plus
    where and how the training runs. device and checkpoint_every do not change the result on one
    device; threads can (the order of float sums in CPU kernels), so it is part of the fingerprint.
    nproc and backend change the result only by the order of float sums too (the global batch is
    the same), and are left out of it, so a run resumes with any nproc."""

    device: Annotated[str, doc("auto (cuda if present, else cpu), cpu or cuda", choices=DEVICES)] = "auto"
    checkpoint_every: Annotated[
        Int,
        doc(
            "steps between resumable checkpoints (a scratch file under .cache/ddpm_lab/resume/, keyed by params, data and code, removed when the stage completes), >= 0 (0: none)"
        ),
    ] = 500
    nproc: Annotated[
        Int,
        doc(
            f"data-parallel processes (DDP, ddpm_lab/runtime/distributed.py), in [1, {NPROC_MAX}], a divisor of "
            "batch_size; > 1 launches the stage as nproc ranks, as torchrun does"
        ),
    ] = 1
    backend: Annotated[
        str,
        doc("torch.distributed backend of nproc > 1: auto (nccl on CUDA, gloo on CPU), gloo or nccl", choices=BACKENDS),
    ] = "auto"

    def __post_init__(self):
        super().__post_init__()
        require(self.device in DEVICES, "device", self.device, f"one of {', '.join(DEVICES)}")
        require(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "an integer >= 0 (0: never)")
        require(
            1 <= self.nproc <= NPROC_MAX,
            "nproc",
            self.nproc,
            f"an integer in [1, {NPROC_MAX}] (processes of data-parallel training)",
        )
        require(
            self.batch_size % self.nproc == 0,
            "nproc",
            self.nproc,
            f"a divisor of batch_size = {self.batch_size} (each process evaluates batch_size / nproc rows)",
        )
        require(self.backend in BACKENDS, "backend", self.backend, f"one of {', '.join(BACKENDS)}")

    def fingerprint(self) -> dict:
        """The fields that change the trained weights (what a resumable checkpoint must match):
        all but device (the stage records the device actually used), checkpoint_every, nproc
        and backend (a run resumes with any number of processes)."""
        d = asdict(self)
        for k in ("device", "checkpoint_every", "nproc", "backend"):
            d.pop(k)
        return d


def data_digest(x: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes: identifies the training data in checkpoints."""
    h = hashlib.sha256(f"{x.shape}{x.dtype}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


# -- resumable checkpoints ---------------------------------------------------------------
# The library modules train_images runs that shape the training, i.e. its imports within
# ddpm_lab/ except io (reads the data, whose bytes data_digest covers, and writes files) and
# cli (error lines, progress bars). config is in: DiffusionConfig.build() makes the betas;
# train_run too: it picks the device and makes the fingerprint.
# tests/unit/test_images_pipeline.py checks this against the stage's import closure.
TRAINING_CODE = (
    "ddpm_lab.runtime.params",
    "ddpm_lab.core.schedule",
    "ddpm_lab.core.diffusion",
    "ddpm_lab.core.targets",
    "ddpm_lab.core.weightings",
    "ddpm_lab.core.estimators",
    "ddpm_lab.core.nn",
    "ddpm_lab.images.unet",
    "ddpm_lab.core.training",
    "ddpm_lab.runtime.stats",
    "ddpm_lab.runtime.torch_setup",
    "ddpm_lab.runtime.distributed",
    "ddpm_lab.images.train",
    "ddpm_lab.images.train_run",
    "ddpm_lab.images.params",
)


def code_digest(modules: tuple[str, ...] = TRAINING_CODE) -> str:
    """SHA-256 of the source files of the modules that shape the training: a checkpoint made by
    other code is not resumed (same params alone do not make the same run)."""
    h = hashlib.sha256()
    for name in modules:
        h.update(name.encode())
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.hexdigest()


def resume_bytes(fingerprint: dict, state: dict) -> bytes:
    """A resumable checkpoint: the training state and what it was trained with."""
    return torch_bytes({"fingerprint": fingerprint, "state": state})


def load_resume(raw: bytes | None, fingerprint: dict, name: str) -> tuple[dict | None, str]:
    """(state to resume from or None, a line saying why). A checkpoint of another configuration
    is not resumed (training starts over); an unreadable one is a DataError naming it."""
    if raw is None:
        return None, f"no checkpoint at {name}: training from step 0"
    ckpt = load_torch(raw, name, "one written by train_images; delete it to train from step 0")
    if not isinstance(ckpt, dict) or not {"fingerprint", "state"} <= set(ckpt):
        raise DataError(
            f"{name}: lacks 'fingerprint' / 'state': expected a checkpoint written by train_images; "
            f"delete it to train from step 0"
        )
    if ckpt["fingerprint"] != fingerprint:
        return None, f"{name} is from other params or data: training from step 0"
    return ckpt["state"], f"resuming from {name} at step {ckpt['state'].get('step')}"


def train_unet(
    x_train: np.ndarray,
    diffusion: GaussianDiffusion,
    mcfg: UNetConfig,
    tcfg: ImageTrainConfig,
    device: torch.device,
    progress: Callable | None = None,
    resume: dict | None = None,
    on_checkpoint: Callable[[dict], None] | None = None,
    world: World = World(),
):
    """L_simple (Eq. 14, or the weighting tcfg.weighting names) training of a seeded U-Net, which
    predicts mcfg.prediction (ddpm_lab.core.targets), and with mcfg.learned_variance also v (weighting
    hybrid: L_simple + hybrid_lambda T L_{t-1}, the mean held fixed in the second term), on
    x_train (N, C, H, W) in [-1, 1], with EMA. Returns (ema UNet on cpu, history (S, 2)).
    world: this process's rank among tcfg.nproc; each rank evaluates its shard of every
    global batch (ddpm_lab.runtime.distributed), and all end with the same weights."""
    model = UNet.seeded(mcfg, tcfg.seed).to(device)
    if resume is not None:
        check_resume(resume, mcfg, tcfg)
    data = torch.as_tensor(x_train, dtype=torch.float32).to(device)
    rows = world.shard(tcfg.batch_size) if world.size > 1 else None
    loss_fn = lambda m, x0, g: diffusion.loss_eq12(  # noqa: E731
        m, x0, g, tcfg.weighting, rows, tcfg.t_sampling, mcfg.prediction, tcfg.min_snr_gamma, tcfg.target,
        mcfg.learned_variance, tcfg.hybrid_lambda, tcfg.hybrid_vlb,
    )  # fmt: skip
    ema, history = train(
        model,
        loss_fn,
        data,
        tcfg,
        progress=progress,
        checkpoint_every=tcfg.checkpoint_every,
        on_checkpoint=on_checkpoint,
        resume=resume,
        world=world if world.size > 1 else None,
    )
    return ema.cpu(), history


def check_resume(state: dict, mcfg: UNetConfig, tcfg: ImageTrainConfig) -> None:
    """DataError unless `state` loads into a fresh U-Net, its EMA, Adam and a generator."""
    probe = UNet(mcfg)
    try:
        restore_training_state(
            state, probe, copy.deepcopy(probe), torch.optim.Adam(probe.parameters()), torch.Generator(), tcfg
        )
    except (ValueError, RuntimeError, KeyError, TypeError) as e:
        raise DataError(
            f"resumable checkpoint does not fit this model ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}): delete it to train from step 0"
        ) from None
