"""Stage sampler_tradeoff: sample quality against the number of sampling steps S, and where in t
the Eq. 12 model loses the distribution.

For every sampler of sampler_tradeoff.samplers and every S of sampler_tradeoff.steps, the Eq. 12
model (models/eq12.pt) and the exact eps* (the oracle: discretisation error alone) draw n points
from each seed, pooled and judged as compare_dist judges them (ddpm_lab.gmm.tradeoff); then the
hybrid-oracle diagnostic over the switch points sampler_tradeoff.hybrid_t0 (ddpm_lab.gmm.hybrid).
Off by default (sampler_tradeoff.enabled false): the outputs then say how to run it. Writes
metrics/sampler_tradeoff.json (per sampler, the smallest S whose W1 ratio is inside the band),
metrics/details/{sampler_tradeoff,hybrid_oracle}.csv, images/{sampler_tradeoff,hybrid_oracle}.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

from ddpm_lab.gmm import tradeoff
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.gmm.params import read
from ddpm_lab.runtime.io import json_bytes, load_params, png_writer, write_outputs
from ddpm_lab.runtime.seeds import read_replicate

DPI = 110


def main(argv=None) -> None:
    matplotlib.use("Agg")  # process-wide: chosen once, here, at the stage's entry
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--models", default="models", type=Path)
    ap.add_argument("--data", default="data/gmm", type=Path)
    ap.add_argument("--metrics-out", default="metrics/sampler_tradeoff.json", type=Path)
    ap.add_argument("--details-out", default="metrics/details/sampler_tradeoff.csv", type=Path)
    ap.add_argument("--figure-out", default="images/sampler_tradeoff.png", type=Path)
    ap.add_argument("--hybrid-out", default="metrics/details/hybrid_oracle.csv", type=Path)
    ap.add_argument("--hybrid-figure-out", default="images/hybrid_oracle.png", type=Path)
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "sampler_tradeoff", args.params)
    replicate = read_replicate(params, args.params)
    if not cfg.enabled:
        head, details, fig = tradeoff.not_run_outputs()
        hybrid_details, hybrid_fig = tradeoff.hybrid_not_run(enabled=False)
    else:  # the disabled stage must take a second or two: what only sampling and plotting need is imported here
        import matplotlib.pyplot as plt

        from ddpm_lab.gmm import figures as plots
        from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture
        from ddpm_lab.gmm.variance import diffusion_for
        from ddpm_lab.runtime.torch_setup import use_threads

        use_threads(cfg.threads)
        mixture = load_mixture(args.data / "mixture.json")
        diffusion = diffusion_for(dcfg, mixture)
        models = load_eps_predictors(args.models, tradeoff.MODELS, dcfg, mixture, diffusion.np["alphas_cumprod"])
        head, table, hybrid = tradeoff.run_study(diffusion, models, mixture, cfg, replicate, args.models)
        details = table.to_csv(index=False).encode()
        fig = plots.sampler_tradeoff(table, dcfg.T, len(cfg.seeds), cfg.n, cfg.floor_draws)
        if hybrid is None:
            hybrid_details, hybrid_fig = tradeoff.hybrid_not_run(enabled=True)
        else:
            hybrid_details = hybrid.to_csv(index=False).encode()
            hybrid_fig = plots.hybrid_oracle(hybrid, dcfg.T, len(cfg.seeds), cfg.n, cfg.floor_draws)
    write_outputs(
        {
            args.metrics_out: json_bytes(head),
            args.details_out: details,
            args.figure_out: png_writer(fig, DPI),
            args.hybrid_out: hybrid_details,
            args.hybrid_figure_out: png_writer(hybrid_fig, DPI),
        }
    )
    if not cfg.enabled:
        print(
            f"sampler_tradeoff: disabled (sampler_tradeoff.enabled is false): nothing sampled; to run it: {tradeoff.ENABLE}"
        )
        return
    plt.close("all")
    print("\n".join(tradeoff.summary_lines(head)))


if __name__ == "__main__":
    run_stage(main)
