"""Stage generate_gmm: seeded train and held-out draws of the mixture in params `gmm`.

Writes <out>/train.npy (n_train, D), <out>/heldout.npy (n_heldout, D) and <out>/mixture.json
(weights, means, stds and the exact entropy H in nats, the floor of any model's NLL).
Params: `gmm`. As the first stage it also checks what every section needs (memory estimates,
constraints across sections: ddpm_lab.runtime.params.check_params) before any work; each other section
is validated in full by its own stage, or all at once by `python -m ddpm_lab.tools.preflight`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import GMMConfig, check_params, from_section
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.runtime.io import json_bytes, load_params, npy_bytes, write_outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="data/gmm", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    # The first stage checks the needs of every section (memory estimates, constraints across
    # sections) before any work: such a value anywhere stops `dvc repro` here, not stages later.
    check_params(params, source=args.params)
    cfg = from_section(GMMConfig, params, "gmm", source=args.params)
    mixture = GaussianMixture(cfg.weights, cfg.means, cfg.stds)
    rng = np.random.default_rng(cfg.seed)
    train = mixture.sample(cfg.n_train, rng)
    heldout = mixture.sample(cfg.n_heldout, rng)
    info = {**mixture.to_dict(), "dim": mixture.dim,
            "entropy": mixture.entropy(rng=np.random.default_rng([cfg.seed, 1]))}
    write_outputs({args.out / "train.npy": npy_bytes(train),
                   args.out / "heldout.npy": npy_bytes(heldout),
                   args.out / "mixture.json": json_bytes(info)})
    print(f"generate_gmm: {cfg.n_train} train + {cfg.n_heldout} held-out draws, D = {mixture.dim}, "
          f"H = {info['entropy']:.4f} nats -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
