"""The torch runtime shared by the image stages: deterministic kernels, the CPU thread count
and the device. Both train_images and sample_images import it; it imports neither job."""
from __future__ import annotations

import os

import torch

from ddpm_lab.unet import resolve_device


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
