"""The torch runtime shared by the stages: deterministic kernels, the CPU thread count and the device."""

from __future__ import annotations

import ctypes
import os

import torch


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cpu' / 'cuda' force one (cuda must exist)."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}: expected one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device = 'cuda': expected a machine with CUDA (none found); use auto or cpu")
    return torch.device(name)


# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Keep freed heap memory in the process instead of returning it to the OS at every free (glibc
    only; elsewhere nothing happens). A training step that allocates and frees a few MB of
    temporaries (the stable target's (B, B) logits: GaussianDiffusion.reference_posterior_mean)
    otherwise maps and faults in fresh pages each step: about 30% of the train_eq12 stage's time
    in system calls. The bytes computed do not change. Returns whether glibc took the settings."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 8 * _MMAP_THRESHOLD_MAX)
    )


def use_threads(threads: int) -> None:
    """torch's CPU thread count for this process, from a section's `threads` (0: torch's default).
    Set explicitly, because the thread count changes float sums, so bytes (and speed)."""
    if threads:
        torch.set_num_threads(threads)


def configure_torch(device: str, threads: int) -> torch.device:
    """Deterministic kernels, the CPU thread count, and the device to run on. Same bytes are
    promised on CPU; on CUDA, cuBLAS gets the fixed workspace determinism needs (PyTorch notes,
    "Reproducibility") and kernels without a deterministic version only warn."""
    dev = resolve_device(device)
    use_threads(threads)
    if dev.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=dev.type == "cuda")
    return dev
