"""Summaries of repeated measurements: a mean with its standard error, a median with its 5-95% band."""
from __future__ import annotations

import math

import numpy as np


def mean_se(values) -> tuple[float, float | None]:
    """The mean of values (n,) and its standard error std (ddof 1) / sqrt(n); None for n = 1."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values: empty: expected at least one value")
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None)


def band(values) -> dict[str, float]:
    """{"median", "p05", "p95"} of finite values (m,) (np.percentile, linear interpolation)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"values: {v.size} values: expected at least one, all finite")
    p05, med, p95 = np.percentile(v, [5, 50, 95])
    return {"median": float(med), "p05": float(p05), "p95": float(p95)}
