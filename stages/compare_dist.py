"""Stage compare_dist: judge each sampler's draws against the exact mixture.

For eq12, eq3 and the oracle: W1 and KS (median over sampling seeds) each beside its noise
floor (median over true-vs-true draws of the same n), recovered mode weights, and the Eq. 5
form of the bound on held-out data in nats beside the entropy H and the oracle's bound, as a
paired estimate (same x_t and eps draws for model and oracle). Params: `diffusion`,
`compare_dist`. Writes <out>/dist_<name>.json.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ddpm_lab.cli import run_stage
from ddpm_lab.config import DataError, DiffusionConfig, from_section, require
from ddpm_lab.gmm import OracleEps
from ddpm_lab.io import json_bytes, load_params, read_array, read_json, write_outputs
from ddpm_lab.metrics import compare_samples, noise_floor
from stages.common import load_eps_model, load_mixture

MODELS = ("eq12", "eq3")


@dataclass(frozen=True)
class CompareConfig:
    """Section `compare_dist`: floor_draws true-vs-true pairs for the noise floor; nll_n held-out
    rows for the bound (0: all); nll_batch rows per batched call of T evaluations each; seed."""

    floor_draws: int
    nll_n: int
    nll_batch: int
    seed: int

    def __post_init__(self):
        require(self.floor_draws >= 1, "floor_draws", self.floor_draws, "an integer >= 1")
        require(self.nll_n >= 0, "nll_n", self.nll_n, "a non-negative integer (0: all held-out rows)")
        require(self.nll_batch >= 1, "nll_batch", self.nll_batch, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")


@torch.no_grad()
def nll_per_row(diffusion, eps_model, x0: torch.Tensor, batch: int, seed: int) -> np.ndarray:
    """Eq. 5 bound for each row of x0, in batches; the generator is reseeded identically for
    every model, so the (x_t, eps) draws are shared and differences are paired."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([diffusion.nll_bound(eps_model, xb, g) for xb in x0.split(batch)]).double().numpy()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--samples", default="data/samples", type=Path)
    ap.add_argument("--out", default="metrics", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = from_section(DiffusionConfig, params, "diffusion", args.params)
    cfg = from_section(CompareConfig, params, "compare_dist", args.params)
    mixture = load_mixture(args.data / "mixture.json")
    entropy = float(read_json(args.data / "mixture.json")["entropy"])
    heldout = read_array(args.data / "heldout.npy", ndim=2)
    if cfg.nll_n:
        heldout = heldout[:cfg.nll_n]
    diffusion = dcfg.build()
    models = {name: load_eps_model(args.models / f"{name}.pt", dcfg) for name in MODELS}
    models["oracle"] = OracleEps(mixture, diffusion.np["alphas_cumprod"])
    samples = {name: read_array(args.samples / f"{name}.npz", ndim=3, key="x0") for name in models}
    n = {x.shape[1] for x in samples.values()}
    if len(n) != 1 or any(x.shape[2] != mixture.dim for x in samples.values()):
        raise DataError(f"{args.samples}: sample arrays of shapes {[x.shape for x in samples.values()]}: "
                        f"expected (S, n, {mixture.dim}) with one n for all samplers")
    n = n.pop()

    rng = np.random.default_rng(cfg.seed)
    floor = noise_floor(mixture, n, cfg.floor_draws, rng)
    x0 = torch.as_tensor(heldout, dtype=torch.float32)
    nll = {name: nll_per_row(diffusion, m, x0, cfg.nll_batch, cfg.seed) for name, m in models.items()}
    se = lambda v: float(np.std(v, ddof=1) / math.sqrt(v.size))  # noqa: E731

    outputs = {}
    for name in models:
        m = compare_samples(samples[name], mixture, floor, np.random.default_rng([cfg.seed, 1]))
        gap = nll[name] - nll["oracle"]
        m.update(model=name, n=n, n_seeds=int(samples[name].shape[0]), nll_heldout_n=int(x0.shape[0]),
                 nll_bound=float(nll[name].mean()), nll_bound_se=se(nll[name]),
                 oracle_nll_bound=float(nll["oracle"].mean()), entropy=entropy,
                 nll_gap_to_oracle=float(gap.mean()), nll_gap_to_oracle_se=se(gap) if name != "oracle" else 0.0)
        outputs[args.out / f"dist_{name}.json"] = json_bytes(m)
        print(f"compare_dist: {name}: W1/floor {m['w1_ratio']:.3f}, KS/floor {m['ks_ratio']:.3f}, "
              f"NLL bound {m['nll_bound']:.4f} (oracle {m['oracle_nll_bound']:.4f}, H {entropy:.4f}) nats")
    write_outputs(outputs)


if __name__ == "__main__":
    run_stage(main)
