"""Stage sampler_tradeoff: sample quality against the number of sampling steps S.

For every S of sampler_tradeoff.steps and every sampler of sampler_tradeoff.samplers (respaced
DDPM; DDIM with eta = 0), the trained Eq. 12 model (models/eq12.pt) and the exact eps* (the
oracle, whose error is the discretisation alone) draw n points from each seed; the seeds' draws
are pooled and judged as compare_dist judges them (ddpm_lab.gmm.sweep). No wall-clock time is
written (outputs are the same bytes on rerun; a separate benchmark times the samplers).

With sampler_tradeoff.enabled false (the default) nothing is sampled: the outputs say that the
trade-off was not run and how to run it (`dvc exp run -S sampler_tradeoff.enabled=true`).
Params: `diffusion`, `sampler_tradeoff`, `replicate`. Writes metrics/sampler_tradeoff.json (the
headline: per sampler, the smallest S whose W1 ratio is inside the band, for the model and the
oracle, and the model's W1 ratio at S = 50), metrics/details/sampler_tradeoff.csv (one row per
sampler, S and model) and images/sampler_tradeoff.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

from ddpm_lab.gmm import sweep
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
    args = ap.parse_args(argv)

    params = load_params(args.params)
    dcfg = read(params, "diffusion", args.params)
    cfg = read(params, "sampler_tradeoff", args.params)
    replicate = read_replicate(params, args.params)
    if not cfg.enabled:
        head, details, fig = sweep.not_run_outputs()
        write_outputs({args.metrics_out: json_bytes(head), args.details_out: details,
                       args.figure_out: png_writer(fig, DPI)})
        print(f"sampler_tradeoff: disabled (sampler_tradeoff.enabled is false): nothing sampled; to run it: "
              f"{sweep.ENABLE}")
        return
    # The disabled stage must take a second or two: what only sampling and plotting need is imported here.
    import matplotlib.pyplot as plt

    from ddpm_lab.gmm import figures as plots
    from ddpm_lab.gmm.artifacts import load_eps_predictors, load_mixture
    from ddpm_lab.runtime.torch_setup import use_threads

    use_threads(cfg.threads)
    mixture = load_mixture(args.data / "mixture.json")
    diffusion = dcfg.build()
    models = load_eps_predictors(args.models, sweep.MODELS, dcfg, mixture, diffusion.np["alphas_cumprod"])
    table = sweep.sweep(diffusion, models, mixture, cfg, replicate, args.models)
    head = sweep.headline(table)
    fig = plots.sampler_tradeoff(table, dcfg.T, len(cfg.seeds), cfg.n, cfg.floor_draws)
    write_outputs({args.metrics_out: json_bytes(head), args.details_out: table.to_csv(index=False).encode(),
                   args.figure_out: png_writer(fig, DPI)})
    plt.close(fig)
    print("\n".join(sweep.summary_lines(head)))


if __name__ == "__main__":
    run_stage(main)
