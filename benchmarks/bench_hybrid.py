"""The hybrid-oracle diagnostic on the committed default study: where in t the Eq. 12 model
loses the sampled distribution (ddpm_lab.gmm.hybrid).

Reads models/eq12.pt and data/gmm/mixture.json (`dvc repro` or `dvc pull` first) and the
`diffusion`, `sampler_tradeoff` (n, seeds, floor_draws, directions, seed, hybrid_t0) and
`replicate` params of params.yaml; runs the same library calls as stage sampler_tradeoff's
hybrid part, and keeps the table (and optionally the figure) where the docs read them. Also
prints each t-range's share of the exact bound gap, sum_t w_t e_t, from the training stage's
metrics/details/eps_error_eq12.csv.

    python benchmarks/bench_hybrid.py [--write benchmarks/results/hybrid_oracle.csv] [--figure docs/figures/hybrid_oracle.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture, read_eps_error
from ddpm_lab.gmm.names import EQ12, ORACLE
from ddpm_lab.gmm.params import read
from ddpm_lab.runtime.io import load_params, png_writer, write_outputs
from ddpm_lab.runtime.seeds import read_replicate
from ddpm_lab.runtime.torch_setup import use_threads

if __package__:  # python -m benchmarks.bench_hybrid
    from . import harness
else:  # python benchmarks/bench_hybrid.py: its folder, benchmarks/, comes first on the import path
    import harness


def main(argv=None) -> None:
    matplotlib.use("Agg")
    from ddpm_lab.gmm import figures
    from ddpm_lab.gmm.hybrid import gap_shares, hybrid_table, switch_points
    from ddpm_lab.gmm.tradeoff import tradeoff_reference

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(harness.PARAMS))
    ap.add_argument("--write", type=Path, help="the table (benchmarks/results/hybrid_oracle.csv)")
    ap.add_argument("--figure", type=Path, help="the figure (docs/figures/hybrid_oracle.png)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "sampler_tradeoff", args.params)
    if not cfg.hybrid_t0:
        raise SystemExit(f"{args.params}: sampler_tradeoff.hybrid_t0 = []: expected the switch points to run")
    use_threads(cfg.threads)
    mixture = load_mixture(harness.ROOT / "data" / "gmm" / "mixture.json")
    diffusion = dcfg.build()
    models = load_eps_predictors(harness.ROOT / "models", (EQ12, ORACLE), dcfg, mixture, diffusion.np["alphas_cumprod"])
    t0 = time.perf_counter()
    table = hybrid_table(
        diffusion,
        models[EQ12],
        models[ORACLE],
        mixture,
        cfg.hybrid_t0,
        cfg.seeds,
        cfg.n,
        tradeoff_reference(mixture, cfg),
        read_replicate(params, args.params),
    )
    print(f"bench_hybrid: {len(table)} samplers in {time.perf_counter() - t0:.0f} s")
    e = read_eps_error(harness.ROOT / "metrics" / "details" / f"eps_error_{EQ12}.csv", dcfg.T)
    for r in gap_shares(e, switch_points(cfg.hybrid_t0, dcfg.T)).itertuples():
        print(
            f"  t in ({r.t_from - 1}, {r.t_to}]: {r.gap:.5f} nats of the bound gap ({r.share:.1%}); mean e_t {r.mean_e:.5f}"
        )
    outputs = {}
    if args.write:
        outputs[args.write] = table.to_csv(index=False).encode()
    if args.figure:
        outputs[args.figure] = png_writer(
            figures.hybrid_oracle(table, dcfg.T, len(cfg.seeds), cfg.n, cfg.floor_draws), 110
        )
    write_outputs(outputs)
    for path in outputs:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
