"""Stage compare_dist: judge each sampler against the exact mixture, every number with its error.

For eq12, eq3 and the oracle eps*: the exact expected Eq. 5 bound and its gap to the oracle's
(from the per-t excess errors the training stages measured), beside its held-out paired
Monte-Carlo estimate; W1 and KS against the exact CDF (D > 1: sliced W1 too) of the sampling
seeds pooled, as ratios to the floor of exact samples of the same n with its 5-95% band; the
recovered mode weights beside their multinomial floor (ddpm_lab.gmm.evaluate).
Params: `diffusion`, `compare_dist`. Writes <out>/dist_<name>.json (the headline numbers, DVC
metrics) and <out>/details/dist_<name>.json (everything else).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.gmm.evaluate import judge_samplers
from ddpm_lab.gmm.names import ALL_MODELS, MODELS
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, read_json, write_outputs
from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture, read_eps_error, read_samples
from ddpm_lab.runtime.torch_setup import use_threads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--samples", default="data/samples", type=Path)
    ap.add_argument(
        "--eps-error", default="metrics/details", type=Path, help="folder of the training stages' eps_error_<model>.csv"
    )
    ap.add_argument("--out", default="metrics", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "compare_dist", args.params)
    use_threads(cfg.threads)
    mixture = load_mixture(args.data / "mixture.json")
    entropy = float(read_json(args.data / "mixture.json")["entropy"])
    heldout = read_array(args.data / "heldout.npy", ndim=2)
    diffusion = dcfg.build()
    models = load_eps_predictors(args.models, ALL_MODELS, dcfg, mixture, diffusion.np["alphas_cumprod"])
    samples = read_samples(args.samples, models, mixture.dim)
    tables = {name: read_eps_error(args.eps_error / f"eps_error_{name}.csv", dcfg.T) for name in MODELS}

    judged = judge_samplers(models, samples, mixture, diffusion, tables, heldout, entropy, cfg)
    write_outputs(
        {
            path: json_bytes(doc)
            for name, (headline, details) in judged.items()
            for path, doc in (
                (args.out / f"dist_{name}.json", headline),
                (args.out / "details" / f"dist_{name}.json", details),
            )
        }
    )


if __name__ == "__main__":
    run_stage(main)
