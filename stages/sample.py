"""Stage sample: Algorithm 2 from the eq12 and eq3 models and from the exact eps* (the oracle).

Every sampler uses the same seeds (params sample.seeds), so the three differ only by their
eps-predictor. Writes <out>/<name>.npz with x0: (S, n, D) for the S seeds, and, from the
first seed, t: (K,) and path: (K, n_trajectories, D), a thinned set of reverse trajectories.
Params: `diffusion`, `sample`, `replicate` (folded into each of sample.seeds).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ddpm_lab.gmm.params import SampleConfig
from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.runtime.params import DiffusionConfig, from_section
from ddpm_lab.gmm.mixture import OracleEps
from ddpm_lab.runtime.io import load_params, npz_bytes, write_outputs
from ddpm_lab.core.sampling import sample
from ddpm_lab.runtime.seeds import fold_seed, read_replicate
from ddpm_lab.gmm.artifacts import MODELS, load_eps_model, load_mixture
from ddpm_lab.runtime.torch_setup import use_threads



def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--out", default="data/samples", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion", args.params)
    cfg = from_section(SampleConfig, params, "sample", args.params)
    replicate = read_replicate(params, args.params)
    use_threads(cfg.threads)
    mixture = load_mixture(args.data / "mixture.json")
    diffusion = dcfg.build()
    samplers = {name: load_eps_model(args.models / f"{name}.pt", dcfg) for name in MODELS}
    samplers["oracle"] = OracleEps(mixture, diffusion.np["alphas_cumprod"])

    outputs = {}
    for name, eps_model in samplers.items():
        x0s = []
        for i, seed in enumerate(cfg.seeds):
            g = torch.Generator().manual_seed(fold_seed(seed, replicate))
            x0, (ts, path) = sample(diffusion, eps_model, (cfg.n, mixture.dim), g,
                                    record=cfg.n_trajectories if i == 0 else 0,
                                    record_every=cfg.trajectory_every,
                                    progress=progress(f"sample {name} seed {seed}"), sampler=cfg)
            x0s.append(x0.numpy())
            if i == 0:
                t_kept, path_kept = ts, path
        outputs[args.out / f"{name}.npz"] = npz_bytes(x0=np.stack(x0s), t=t_kept, path=path_kept,
                                                      sampler=np.array(cfg.describe(dcfg.T)))
        print(f"sample: {name}: {len(cfg.seeds)} x {cfg.n} draws, {cfg.describe(dcfg.T)}")
    write_outputs(outputs)


if __name__ == "__main__":
    run_stage(main)
