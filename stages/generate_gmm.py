"""Stage generate_gmm: seeded train and held-out draws of the mixture in params `gmm`.

Writes <out>/train.npy (n_train, D), <out>/heldout.npy (n_heldout, D) and <out>/mixture.json
(weights, means, stds and the exact entropy H in nats, the floor of any model's NLL).
Params: `gmm`. As the first stage of the GMM branch it also checks every section of that branch
(each with what it needs of the machine and of the other sections: ddpm_lab/gmm/params.py)
before any work; `ddpm-lab preflight` checks both branches at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import check_all
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.io import json_bytes, load_params, npy_bytes, write_outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/gmm", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    # Every section of the branch before any work: a bad value anywhere stops `dvc repro` here.
    cfg = check_all(params, source=args.params)["gmm"]
    mixture = GaussianMixture(cfg.weights, cfg.means, cfg.stds)
    rng = np.random.default_rng(cfg.seed)
    train = mixture.sample(cfg.n_train, rng)
    heldout = mixture.sample(cfg.n_heldout, rng)
    info = {
        **mixture.to_dict(),
        "dim": mixture.dim,
        "entropy": mixture.entropy(rng=np.random.default_rng([cfg.seed, 1])),
    }
    write_outputs(
        {
            args.out / "train.npy": npy_bytes(train),
            args.out / "heldout.npy": npy_bytes(heldout),
            args.out / "mixture.json": json_bytes(info),
        }
    )
    print(
        f"generate_gmm: {cfg.n_train} train + {cfg.n_heldout} held-out draws, D = {mixture.dim}, "
        f"H = {info['entropy']:.4f} nats -> {args.out}"
    )


if __name__ == "__main__":
    run_stage(main)
