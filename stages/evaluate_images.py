"""Stage evaluate_images: the image metrics, each beside its floor -> metrics/images.json.

Params: `images_eval` (the feature classifier). Frechet distance of generated vs held-out
images in the classifier's feature space against the floor (as many real training images vs
held-out), the classifier's held-out accuracy, its class histogram and mean confidence on the
samples, and the nearest-training-image distances of samples against held-out real images.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpm_lab.cli import run_stage
from ddpm_lab.config import DataError, from_section
from ddpm_lab.image_metrics import ClassifierConfig, evaluate_samples
from ddpm_lab.io import json_bytes, load_params, read_array, write_outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data", default="data/images/split.npz", type=Path)
    ap.add_argument("--samples", default="data/images/samples.npz", type=Path)
    ap.add_argument("--out", default="metrics/images.json", type=Path)
    args = ap.parse_args(argv)

    cfg = from_section(ClassifierConfig, load_params(args.params), "images_eval", args.params)
    split = {k: read_array(args.data, key=k) for k in ("x_train", "y_train", "x_heldout", "y_heldout")}
    generated = read_array(args.samples, ndim=4, key="images")
    if generated.shape[1:] != split["x_train"].shape[1:]:
        raise DataError(f"{args.samples}: images of shape {generated.shape[1:]}: expected "
                        f"{split['x_train'].shape[1:]} as in {args.data} (rerun with dvc repro)")
    metrics = {"branch": "images", **evaluate_samples(
        generated, split["x_train"], split["y_train"], split["x_heldout"], split["y_heldout"], cfg,
        rng=np.random.default_rng([cfg.seed, 1]))}
    write_outputs({args.out: json_bytes(metrics)})
    fd, cls, mem = metrics["frechet"], metrics["classes"]["generated"], metrics["memorisation"]
    print(f"evaluate_images: FD {fd['generated_vs_heldout']:.3f} vs floor {fd['floor_train_vs_heldout']:.3f} "
          f"(x{fd['ratio_to_floor']:.2f}); classifier held-out accuracy "
          f"{metrics['classifier']['heldout_accuracy']:.3f}; {cls['classes_present']}/10 digits, "
          f"confidence {cls['mean_confidence']:.3f}; {mem['n_generated_closer_than_heldout_min']} samples "
          f"closer to train than any held-out image -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
