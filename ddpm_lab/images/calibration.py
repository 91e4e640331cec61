"""Calibration of the image floor: how often a generator as good as the data lands outside it.

Over random splits of the digits, a set of real images that neither the classifier nor the floor
sees plays the generated set, through `evaluate_samples`, the function the evaluate_images stage
calls. A calibrated floor puts such a set above its 95th percentile in about 5% of splits, and
outside its 5-95% band in about 10%."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ddpm_lab.images.data import ImageDataConfig, load_split
from ddpm_lab.images.metrics import EvalConfig, evaluate_samples

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
