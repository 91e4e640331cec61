"""Calibration of the image floor: how often a generator as good as the data lands outside it.

Over random splits of the digits, a set of real images that neither the classifier nor the floor
sees plays the generated set, through `evaluate_samples`, the function the evaluate_images stage
calls. A calibrated floor puts such a set above its 95th percentile in about 5% of splits, and
outside its 5-95% band in about 10%.

That rate averages over the reference too. reference_rates measures it per reference (per split),
for the pipeline's floor (`pooled`: both sets of each draw random) and for a floor conditional on
the reference (`conditional`: n unseen images against that reference), with the "generated" sets
drawn two ways: exchangeable with the floor's unseen images (the same finite pool), or from a
fresh source of unseen images that no floor draw uses, as an exact generator's would be."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ddpm_lab.images.data import ImageDataConfig, load_split
from ddpm_lab.images.metrics import (
    EvalConfig,
    FeatureClassifier,
    _kid_from_kernels,
    evaluate_samples,
    floor_draws,
    floor_split,
    frechet_distance,
    kid,
    polynomial_kernel,
)

MEASURES = ("fd", "kid")


@dataclass
class FloorCalibration:
    """Counts over the splits: above the floor's p95 (`above`), below its p05 (`below`), and each
    value's rank among the floor draws (0.5 on average when calibrated)."""

    splits: int = 0
    above: dict = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    below: dict = field(default_factory=lambda: dict.fromkeys(MEASURES, 0))
    ranks: dict = field(default_factory=lambda: {m: [] for m in MEASURES})
    last_split: dict = field(default_factory=dict)

    def outside(self, measure: str) -> int:
        return self.above[measure] + self.below[measure]


def calibrate_floor(
    cfg: EvalConfig, n_heldout: int, n_generated: int, seeds: Iterable[int], progress=None
) -> FloorCalibration:
    """One split per seed: `n_heldout` digits held out as the reference (load_split's seed), the
    last `n_generated` training images as the "generated" set, and the rest as the training images
    that evaluate_samples divides into classifier and floor pool (its rng seeded by [cfg.seed, 1, seed])."""
    out = FloorCalibration()
    for s in seeds:
        split = load_split(ImageDataConfig(source="digits", n_heldout=n_heldout, seed=s))
        x_train, y_train = split.x_train[:-n_generated], split.y_train[:-n_generated]
        _, d = evaluate_samples(
            split.x_train[-n_generated:],
            x_train,
            y_train,
            split.x_heldout,
            split.y_heldout,
            cfg,
            rng=np.random.default_rng([cfg.seed, 1, s]),
        )
        out.splits += 1
        out.last_split = {"n_train": len(x_train), **d["split"]}
        for m in MEASURES:
            out.above[m] += not d[f"{m}_inside_floor_band"]
            out.below[m] += d[m]["value"] < d[f"{m}_floor"]["p05"]
            out.ranks[m].append(float(np.mean(np.array(d[f"{m}_floor"]["draws"]) < d[m]["value"])))
        if progress is not None:
            progress(out)
    return out


def conditional_draws(f_pool: np.ndarray, f_ref: np.ndarray, draws: int, rng: np.random.Generator):
    """A floor conditional on the reference: (FD values, KID values) of `draws` sets of len(f_ref)
    rows of f_pool (without replacement) against f_ref itself."""
    n, k_ref = len(f_ref), polynomial_kernel(f_ref, f_ref)
    k_pool, k_cross = polynomial_kernel(f_pool, f_pool), polynomial_kernel(f_pool, f_ref)
    fd, kid_values = [], []
    for _ in range(draws):
        i = rng.choice(len(f_pool), size=n, replace=False)
        fd.append(frechet_distance(f_pool[i], f_ref))
        kid_values.append(_kid_from_kernels(k_pool[np.ix_(i, i)], k_ref, k_cross[i]))
    return fd, kid_values


def _above(reference, framing, f_ref, floors: dict, source: np.ndarray, draws: int, rng) -> list[dict]:
    """Rows {reference, framing, floor, n, measure, above, draws}: how many of `draws` sets of
    len(f_ref) rows of `source` land above each floor's 95th percentile against f_ref."""
    n = len(f_ref)
    values = {"fd": [], "kid": []}
    for _ in range(draws):
        g = source[rng.choice(len(source), size=n, replace=False)]
        values["fd"].append(frechet_distance(g, f_ref))
        values["kid"].append(kid(g, f_ref))
    rows = []
    for name, (fd, kid_values) in floors.items():
        for m, floor in zip(MEASURES, (fd, kid_values)):
            p95 = np.percentile(floor, 95)
            above = int(np.sum(np.array(values[m]) > p95))
            rows.append(
                dict(reference=reference, framing=framing, floor=name, n=n, measure=m, above=above, draws=draws)
            )
    return rows


def reference_rates(cfg: EvalConfig, n_heldout: int, seeds: Iterable[int], draws: int, progress=None) -> list[dict]:
    """Per split of the digits (one reference each, load_split's seed), the exceedance counts of
    _above for both floors and both framings:
    - `exchangeable`, at the pipeline's sizes: the reference is the first n = n_heldout held-out
      images, as in evaluate_samples; the "generated" sets are n of the other unseen images (floor
      pool and the rest of the held-out), the very images the floors draw from.
    - `fresh`, at a third of that n (the digits hold too few unseen images for a fresh source at
      full n): the reference is m = n // 3 held-out images, the floors draw from it and 2m pool
      images (the pipeline's ratio of unseen images to n, about 3), and the "generated" sets are
      m of the remaining unseen images, which no floor draw uses.
    The split and the classifier are evaluate_samples' (floor_split, cfg.classifier)."""
    rows = []
    for s in seeds:
        with threadpool_limits(1):
            rows += _reference(cfg, n_heldout, s, draws)
        if progress is not None:
            progress(rows)
    return rows


def _reference(cfg: EvalConfig, n_heldout: int, s: int, draws: int) -> list[dict]:
    split = load_split(ImageDataConfig(source="digits", n_heldout=n_heldout, seed=s))
    split_rng, rng = np.random.default_rng([cfg.seed, 2, s]).spawn(2)
    feat, pool = floor_split(split.y_train, cfg.feature_share, split_rng)
    clf = FeatureClassifier(cfg.classifier).fit(split.x_train[feat], split.y_train[feat])
    f_pool, f_held = clf.features(split.x_train[pool]), clf.features(split.x_heldout)
    n, m = n_heldout, n_heldout // 3
    ref, others = f_held[:n], np.concatenate([f_pool, f_held[n:]])
    floors = {
        "pooled": floor_draws(np.concatenate([f_pool, f_held]), n, cfg.floor_draws, rng),
        "conditional": conditional_draws(others, ref, cfg.floor_draws, rng),
    }
    rows = _above(s, "exchangeable", ref, floors, others, draws, rng)
    ref, near = f_held[:m], f_pool[: 2 * m]
    floors = {
        "pooled": floor_draws(np.concatenate([near, ref]), m, cfg.floor_draws, rng),
        "conditional": conditional_draws(near, ref, cfg.floor_draws, rng),
    }
    rows += _above(s, "fresh", ref, floors, np.concatenate([f_pool[2 * m :], f_held[m:]]), draws, rng)
    return rows
