"""Noise schedules beta_1..beta_T, as pure float64 functions (no torch, no I/O).

Linear schedule: Ho et al. 2020, Sec. 4 (beta_1 = 1e-4 .. beta_T = 0.02).
Cosine schedule: Nichol & Dhariwal 2021 (arXiv:2102.09672), Eq. 17.
"""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("linear", "cosine")
# Whether a schedule takes beta_start / beta_end (the cosine schedule sets its own betas).
SCHEDULE_BETAS = {"linear": True, "cosine": False}


def linear_betas(T: int, beta_start: float, beta_end: float) -> np.ndarray:
    """beta_t linearly spaced from beta_start (t = 1) to beta_end (t = T). Returns (T,) float64."""
    return np.linspace(beta_start, beta_end, T, dtype=np.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal 2021, Eq. 17: abar(t) = f(t)/f(0), f(t) = cos(((t/T + s)/(1 + s)) pi/2)^2,
    beta_t = 1 - abar(t)/abar(t-1), clipped at max_beta. Returns (T,) float64."""
    t = np.arange(T + 1, dtype=np.float64)
    f = np.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def make_betas(schedule: str, T: int, beta_start: float | None = None, beta_end: float | None = None) -> np.ndarray:
    """beta_1..beta_T for a named schedule. Returns (T,) float64 in (0, 1).
    linear: from beta_start to beta_end (None: Ho et al.'s 1e-4 and 0.02); cosine: its own
    betas, so beta_start and beta_end must be None (a ValueError otherwise, not ignored)."""
    if schedule == "linear":
        return linear_betas(T, 1e-4 if beta_start is None else beta_start, 0.02 if beta_end is None else beta_end)
    if schedule == "cosine":
        if beta_start is not None or beta_end is not None:
            raise ValueError(f"schedule cosine takes no beta_start / beta_end, got {beta_start!r} / {beta_end!r}")
        return cosine_betas(T)
    raise ValueError(f"unknown schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")
