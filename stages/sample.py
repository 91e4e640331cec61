"""Stage sample: Algorithm 2 from the eq12 and eq3 models and from the exact eps* (the oracle).

Every sampler uses the same seeds (params sample.seeds), so the three differ only by their
eps-predictor. Writes <out>/<name>.npz with x0: (S, n, D) for the S seeds, and, from the
first seed, t: (K,) and path: (K, n_trajectories, D), a thinned set of reverse trajectories, and
the sampler that drew them (its description, and its settings for compare_dist's propagation).
--name NAME samples one of them (dvc.yaml runs one stage per name, sample@NAME, so that a new
eq12 model resamples eq12 alone; the oracle reads only the mixture, a model only its checkpoint);
without it, all three. Params: `diffusion`, `sample`, `replicate` (folded into each of sample.seeds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.gmm.names import ALL_MODELS, ORACLE
from ddpm_lab.runtime.io import load_params, npz_bytes, write_outputs
from ddpm_lab.core.sampling import sample_seeds
from ddpm_lab.runtime.seeds import read_replicate
from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture, sampler_arrays
from ddpm_lab.gmm.variance import diffusion_for, diffusion_of_model
from ddpm_lab.runtime.torch_setup import use_threads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--out", default="data/samples", type=Path)
    ap.add_argument("--name", choices=ALL_MODELS, help="sample this eps-predictor only (default: all three)")
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "sample", args.params)
    replicate = read_replicate(params, args.params)
    use_threads(cfg.threads)
    names = [args.name] if args.name else list(ALL_MODELS)
    mixture = load_mixture(args.data / "mixture.json") if ORACLE in names else None
    # sigma_t^2 of variance optimal: the oracle's from the mixture, a model's from its checkpoint (the same numbers)
    diffusion = (
        diffusion_for(dcfg, mixture)
        if mixture is not None
        else diffusion_of_model(dcfg, args.models / f"{names[0]}.pt")
    )
    samplers = load_eps_predictors(args.models, names, dcfg, mixture, diffusion.np["alphas_cumprod"])

    outputs = {}
    for name, eps_model in samplers.items():
        x0s, (t, path) = sample_seeds(
            diffusion,
            eps_model,
            (cfg.n, mixture.dim if name == ORACLE else eps_model.config.data_dim),
            cfg.seeds,
            replicate,
            sampler=cfg,
            record=cfg.n_trajectories,
            record_every=cfg.trajectory_every,
            desc=f"sample {name}",
        )
        outputs[args.out / f"{name}.npz"] = npz_bytes(
            x0=x0s, t=t, path=path, sampler=np.array(cfg.describe(dcfg.T)), **sampler_arrays(cfg)
        )
        print(f"sample: {name}: {len(cfg.seeds)} x {cfg.n} draws, {cfg.describe(dcfg.T)}")
    write_outputs(outputs)


if __name__ == "__main__":
    run_stage(main)
