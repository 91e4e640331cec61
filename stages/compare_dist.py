"""Stage compare_dist: judge each sampler against the exact mixture, every number with its error.

For eq12, eq3 and the oracle eps*: the exact expected Eq. 5 bound and its gap to the oracle's
(from the per-t excess errors the training stages measured), beside its held-out paired
Monte-Carlo estimate; W1 and KS against the exact CDF (D > 1: sliced W1 too) of the sampling
seeds pooled, as ratios to the floor of exact samples of the same n with its 5-95% band; the
recovered mode weights beside their multinomial floor; in 1-D the same distances of the sampler's
output distribution itself, propagated on a grid with no sampling noise (ddpm_lab.gmm.evaluate).
Params: `diffusion`, `compare_dist` (the sampler is the one recorded in the samples files). Writes
<out>/dist_<name>.json (the headline numbers, DVC metrics), <out>/details/dist_<name>.json
(everything else) and <out>/details/exact_dist_<name>.csv (the propagated density and CDF, for
the figures; no rows for D > 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.gmm.evaluate import judge_samplers
from ddpm_lab.gmm.names import ALL_MODELS, MODELS, ORACLE
from ddpm_lab.gmm.propagate import curve
from ddpm_lab.runtime.io import json_bytes, load_params, read_array, read_json, write_outputs
from ddpm_lab.runtime.params import DataError
from ddpm_lab.gmm.variance import diffusion_for
from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture, read_eps_error, read_sampler_config, read_samples
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
    diffusion = diffusion_for(dcfg, mixture)
    models = load_eps_predictors(args.models, ALL_MODELS, dcfg, mixture, diffusion.np["alphas_cumprod"])
    samples = read_samples(args.samples, models, mixture.dim)
    tables = {name: read_eps_error(args.eps_error / f"eps_error_{name}.csv", dcfg.T) for name in MODELS}

    sampler = read_sampler_config(args.samples / f"{ORACLE}.npz")
    for name in MODELS:
        if read_sampler_config(args.samples / f"{name}.npz") != sampler:
            raise DataError(
                f"{args.samples}/{name}.npz: drawn by another sampler than {ORACLE}.npz: expected one sampler "
                "for all (rerun dvc repro)"
            )

    judged = judge_samplers(models, samples, mixture, diffusion, tables, heldout, entropy, cfg, sampler)
    outputs = {}
    for name, (headline, details, exact) in judged.items():
        outputs[args.out / f"dist_{name}.json"] = json_bytes(headline)
        outputs[args.out / "details" / f"dist_{name}.json"] = json_bytes(details)
        outputs[args.out / "details" / f"exact_dist_{name}.csv"] = (
            curve(exact, mixture).to_csv(index=False, float_format="%.8g").encode()
        )
    write_outputs(outputs)


if __name__ == "__main__":
    run_stage(main)
