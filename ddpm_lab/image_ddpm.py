"""The image branch's glue: its configs, U-Net training with resumable checkpoints, sampling
with Algorithm 2 from the EMA weights, and the sample grid. Stages call these; no file
paths here (bytes in, bytes out), so all of it is importable and tested.

Ho, Jain & Abbeel (2020), arXiv:2006.11239: L_simple (Eq. 14) training, Algorithm 2 sampling.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ddpm_lab.config import DataError, require
from ddpm_lab.diffusion import GaussianDiffusion
from ddpm_lab.io import torch_bytes
from ddpm_lab.sampling import sample
from ddpm_lab.training import Eq12TrainConfig, restore_training_state, train
from ddpm_lab.unet import DEVICES, UNet, UNetConfig, resolve_device


@dataclass(frozen=True)
class ImageTrainConfig(Eq12TrainConfig):
    """Section `images_train`: the TrainConfig fields, weighting (eq14 = L_simple), plus
    device: auto | cpu | cuda; threads: torch CPU threads (0: torch's default; bytes are
    reproducible for a fixed count); checkpoint_every: steps between resumable checkpoints
    (0: none). device, threads and checkpoint_every do not change the result on one device."""

    device: str = "auto"
    threads: int = 1
    checkpoint_every: int = 500

    def __post_init__(self):
        super().__post_init__()
        require(self.device in DEVICES, "device", self.device, f"one of {', '.join(DEVICES)}")
        require(self.threads >= 0, "threads", self.threads, "an integer >= 0 (0: torch's default)")
        require(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "an integer >= 0 (0: never)")

    def fingerprint(self) -> dict:
        """The fields that change the trained weights (what a resumable checkpoint must match)."""
        d = asdict(self)
        for k in ("device", "threads", "checkpoint_every"):
            d.pop(k)
        return d


@dataclass(frozen=True)
class ImageSampleConfig:
    """Section `images_sample`: n_samples images drawn with Algorithm 2 (the first 64 make the
    8 x 8 grid), seed of the sampling generator, device, threads (as in images_train)."""

    n_samples: int = 360
    seed: int = 0
    device: str = "auto"
    threads: int = 1

    def __post_init__(self):
        require(self.n_samples >= 64, "n_samples", self.n_samples, "an integer >= 64 (the 8 x 8 grid)")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        require(self.device in DEVICES, "device", self.device, f"one of {', '.join(DEVICES)}")
        require(self.threads >= 0, "threads", self.threads, "an integer >= 0 (0: torch's default)")


def configure_torch(device: str, threads: int) -> torch.device:
    """Deterministic kernels, the CPU thread count, and the device to run on. Same bytes are
    promised on CPU; on CUDA, cuBLAS gets the fixed workspace determinism needs (PyTorch notes,
    "Reproducibility") and kernels without a deterministic version only warn."""
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    if dev.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=dev.type == "cuda")
    return dev


def data_digest(x: np.ndarray) -> str:
    """SHA-256 of an array's shape, dtype and bytes: identifies the training data in checkpoints."""
    h = hashlib.sha256(f"{x.shape}{x.dtype}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


# -- resumable checkpoints ---------------------------------------------------------------
TRAINING_CODE = ("ddpm_lab.diffusion", "ddpm_lab.schedule", "ddpm_lab.nn", "ddpm_lab.unet", "ddpm_lab.training",
                 "ddpm_lab.image_ddpm")


def code_digest(modules: tuple[str, ...] = TRAINING_CODE) -> str:
    """SHA-256 of the source files of the modules that shape the training: a checkpoint made by
    other code is not resumed (same params alone do not make the same run)."""
    import importlib

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
    try:
        ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file; all mean the same here
        raise DataError(f"{name}: not a readable checkpoint ({type(e).__name__}): expected one written by "
                        f"train_images; delete it to train from step 0") from None
    if not isinstance(ckpt, dict) or not {"fingerprint", "state"} <= set(ckpt):
        raise DataError(f"{name}: lacks 'fingerprint' / 'state': expected a checkpoint written by train_images; "
                        f"delete it to train from step 0")
    if ckpt["fingerprint"] != fingerprint:
        return None, f"{name} is from other params or data: training from step 0"
    return ckpt["state"], f"resuming from {name} at step {ckpt['state'].get('step')}"


def train_unet(x_train: np.ndarray, diffusion: GaussianDiffusion, mcfg: UNetConfig, tcfg: ImageTrainConfig,
               device: torch.device, progress: Callable | None = None, resume: dict | None = None,
               on_checkpoint: Callable[[dict], None] | None = None):
    """L_simple (Eq. 14, or Eq. 12 if tcfg.weighting says so) training of a seeded U-Net on
    x_train (N, C, H, W) in [-1, 1], with EMA. Returns (ema UNet on cpu, history (S, 2))."""
    model = UNet.seeded(mcfg, tcfg.seed).to(device)
    if resume is not None:
        check_resume(resume, mcfg, tcfg)
    data = torch.as_tensor(x_train, dtype=torch.float32).to(device)
    loss_fn = lambda m, x0, g: diffusion.loss_eq12(m, x0, g, tcfg.weighting)  # noqa: E731
    ema, history = train(model, loss_fn, data, tcfg, progress=progress, checkpoint_every=tcfg.checkpoint_every,
                         on_checkpoint=on_checkpoint, resume=resume)
    return ema.cpu(), history


def check_resume(state: dict, mcfg: UNetConfig, tcfg: ImageTrainConfig) -> None:
    """DataError unless `state` loads into a fresh U-Net, its EMA, Adam and a generator."""
    probe = UNet(mcfg)
    try:
        restore_training_state(state, probe, copy.deepcopy(probe), torch.optim.Adam(probe.parameters()),
                               torch.Generator(), tcfg)
    except (ValueError, RuntimeError, KeyError, TypeError) as e:
        raise DataError(f"resumable checkpoint does not fit this model ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:200]}): delete it to train from step 0") from None


# -- sampling ----------------------------------------------------------------------------
def sample_images(diffusion: GaussianDiffusion, model: torch.nn.Module, n: int, image_shape: tuple,
                  generator: torch.Generator, device: torch.device, progress: Callable | None = None) -> np.ndarray:
    """Algorithm 2 with eps_theta = model on device, n images of image_shape (C, H, W); the
    noise is drawn on the CPU generator, so a seed gives the same x_T on any device. Returns
    x_0 clipped to the data range [-1, 1], (n, C, H, W) float32."""
    model = model.to(device).eval()

    def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x.to(device), t.to(device)).cpu()

    x0, _ = sample(diffusion, eps_model, (n, *image_shape), generator, progress=progress)
    return x0.clamp(-1.0, 1.0).numpy().astype(np.float32)


def grid_figure(images: np.ndarray, title: str, rows: int = 8, cols: int = 8):
    """A matplotlib figure of the first rows * cols images (N, C, H, W) in [-1, 1], grey scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(images) < rows * cols:
        raise ValueError(f"{len(images)} images: expected at least {rows * cols} for a {rows} x {cols} grid")
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 * cols, 1.0 * rows + 0.6))
    for ax, img in zip(axes.flat, images[:rows * cols]):
        pic = img[0] if img.shape[0] == 1 else np.transpose((img + 1) / 2, (1, 2, 0))
        ax.imshow(pic, cmap="gray_r" if img.shape[0] == 1 else None, vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
