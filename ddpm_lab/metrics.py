"""Distances between a generated sample and the true mixture, each next to its noise floor.

For D > 1, W1 is the mean over coordinates of the 1-D marginal W1, and KS the largest
marginal KS statistic (both exact for D = 1, the default).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from ddpm_lab.gmm import GaussianMixture


def w1(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between samples a: (n, D) and b: (m, D) (marginal mean for D > 1)."""
    return float(np.mean([stats.wasserstein_distance(a[:, d], b[:, d]) for d in range(a.shape[1])]))


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest over marginals for D > 1)."""
    return float(max(stats.ks_2samp(a[:, d], b[:, d]).statistic for d in range(a.shape[1])))


STATISTICS = {"w1": w1, "ks": ks}


def noise_floor(mixture: GaussianMixture, n: int, draws: int, rng: np.random.Generator) -> dict:
    """Median over `draws` pairs of independent true samples of size n of each statistic: the
    value an exact sampler would get against a true sample of the same size."""
    vals = {name: [] for name in STATISTICS}
    for _ in range(draws):
        a, b = mixture.sample(n, rng), mixture.sample(n, rng)
        for name, fn in STATISTICS.items():
            vals[name].append(fn(a, b))
    return {name: float(np.median(v)) for name, v in vals.items()}


def mode_weights(mixture: GaussianMixture, x: np.ndarray) -> np.ndarray:
    """Fraction of samples x: (n, D) whose most probable component is k. Returns (K,)."""
    k = mixture.component_log_prob(x).argmax(1)
    return np.bincount(k, minlength=mixture.n_components) / x.shape[0]


def compare_samples(samples: np.ndarray, mixture: GaussianMixture, floor: dict,
                    rng: np.random.Generator) -> dict:
    """Judge generated samples (S, n, D) (S sampling seeds) against fresh true samples of size n:
    the median over seeds of each statistic, its ratio to the floor, and mode weights."""
    per_seed = {name: [] for name in STATISTICS}
    for x in samples:
        ref = mixture.sample(x.shape[0], rng)
        for name, fn in STATISTICS.items():
            per_seed[name].append(fn(x, ref))
    out = {}
    for name, vals in per_seed.items():
        med = float(np.median(vals))
        out[name] = med
        out[f"{name}_per_seed"] = [float(v) for v in vals]
        out[f"{name}_floor"] = floor[name]
        out[f"{name}_ratio"] = med / floor[name]
    weights = mode_weights(mixture, samples.reshape(-1, samples.shape[-1]))
    # The same rule applied to the truth: components overlap, so even exact samples are
    # assigned these fractions, not exactly w_k.
    ref_weights = mode_weights(mixture, mixture.sample(200_000, rng))
    out.update(mode_weights=weights.tolist(), true_weights=mixture.weights.tolist(),
               true_assigned_weights=ref_weights.tolist(),
               mode_weight_max_abs_err=float(np.max(np.abs(weights - mixture.weights))))
    return out
