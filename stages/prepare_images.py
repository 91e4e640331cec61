"""Stage prepare_images: the seeded train / held-out split of the images in params `images_data`.

Writes <out> (an .npz of x_train (N, 1, H, W) float32 in [-1, 1], y_train (N,), x_heldout,
y_heldout). Default: scikit-learn's embedded 8x8 digits; MNIST / Fashion-MNIST from IDX files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.images.sections import check_all
from ddpm_lab.images.data import load_split
from ddpm_lab.runtime.io import load_params, npz_bytes, write_outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/images/split.npz", type=Path)
    args = ap.parse_args(argv)

    cfg = check_all(load_params(args.params), args.params)["images_data"]  # every image section, before any work
    split = load_split(cfg)
    write_outputs(
        {
            args.out: npz_bytes(
                x_train=split.x_train, y_train=split.y_train, x_heldout=split.x_heldout, y_heldout=split.y_heldout
            )
        }
    )
    print(
        f"prepare_images: {cfg.source}, {len(split.x_train)} train + {len(split.x_heldout)} held-out images "
        f"of shape {split.x_train.shape[1:]} -> {args.out}"
    )


if __name__ == "__main__":
    run_stage(main)
