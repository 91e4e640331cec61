"""Stage sampler_tradeoff: sample quality against the number of sampling steps S.

For every S of sampler_tradeoff.steps and every sampler of sampler_tradeoff.samplers ("ddpm":
ancestral DDPM on the respaced subsequence tau_i = round(i T / S), Nichol & Dhariwal 2021,
Sec. 4, which is Algorithm 2 of Ho et al. 2020 at S = T; "ddim": DDIM with eta = 0, Song et al.
2021, Eq. 12), the trained Eq. 12 model (models/eq12.pt) and the exact eps* (the oracle, whose
error is the discretisation alone) draw n points from each seed (replicate folded in, as in
stage sample; the same seeds for every sampler, S and model). The seeds' draws are pooled and
judged as compare_dist judges them (ddpm_lab.gmm.metrics.compare_samples): exact-CDF W1 and KS as
ratios to the median of one floor for the pooled n with that floor's 5-95% band, the mode-weight
error beside its multinomial floor, and for D > 1 the sliced W1. Each draw costs S network
evaluations. No wall-clock time is written (outputs are the same bytes on rerun; a separate
benchmark times the samplers).

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
from typing import TYPE_CHECKING

import matplotlib

from ddpm_lab.gmm.params import TradeoffConfig
from ddpm_lab.runtime.cli import progress, run_stage
from ddpm_lab.runtime.params import DataError, DiffusionConfig, from_section
from ddpm_lab.runtime.io import json_bytes, load_params, write_outputs
from ddpm_lab.core.sampling import SamplerConfig, sample
from ddpm_lab.runtime.seeds import fold_seed, read_replicate

# The disabled stage must take a second or two, so what only sampling and measuring need (scipy
# through ddpm_lab.gmm.mixture / metrics / plots, pyplot) is imported in run_tradeoff, not here.
if TYPE_CHECKING:
    import pandas as pd

ENABLE = "dvc exp run -S sampler_tradeoff.enabled=true"
HEADLINE_S = 50  # the headline's W1 ratio at this S, when it is one of the steps
DPI = 110
MODELS = ("eq12", "oracle")  # the trained Eq. 12 model and the exact eps*


def measure(table: pd.DataFrame) -> dict:
    """The headline of the details table: per sampler, the smallest S whose W1 ratio lies inside
    the floor's 5-95% band, for the Eq. 12 model and for the oracle (None if no S does), and the
    model's W1 ratio at S = HEADLINE_S when that S was run."""
    out = {"enabled": True}
    for sampler, part in table.groupby("sampler", sort=False):
        head = {}
        for name in MODELS:
            inside = part[(part["model"] == name) & part["w1_inside"]]
            head[f"{name}_min_S"] = int(inside["steps"].min()) if len(inside) else None
        at = part[(part["model"] == "eq12") & (part["steps"] == HEADLINE_S)]
        if len(at):
            head[f"eq12_w1_S{HEADLINE_S}"] = float(at["w1_ratio"].iloc[0])
        out[sampler] = head
    return out


def table_row(name: str, sampler: str, S: int, headline: dict, details: dict) -> dict:
    """One row of the details table from compare_samples' (headline, details)."""
    row = {"model": name, "sampler": sampler, "steps": S, "nfe_per_draw": S}
    for stat in ("w1", "ks", "sliced_w1"):
        if stat in details:
            d = details[stat]
            row.update({stat: d["value"], f"{stat}_ratio": d["ratio"], f"{stat}_p05_ratio": d["floor_ratio"]["p05"],
                        f"{stat}_p95_ratio": d["floor_ratio"]["p95"], f"{stat}_inside": d["inside_band"]})
    band = details["mode"]["mode_band"]
    err = headline["mode_err"]
    row.update({"mode_err": err, "mode_p05": band["p05"], "mode_p95": band["p95"],
                "mode_inside": bool(band["p05"] <= err <= band["p95"]), "n_pooled": details["n_pooled"]})
    return row


def save_png(fig):
    """A write_outputs writer of fig: the same bytes on every run (no software version stamp)."""
    return lambda path: fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def write_not_run(args) -> None:
    """The outputs of the disabled stage: no headline metric (an empty JSON object, so `dvc
    metrics show` gains no column), how to enable it in the details, and a figure saying so."""
    from matplotlib.figure import Figure  # not pyplot: its import would add half a second, and nothing to close

    fig = Figure(figsize=(8, 2.6))
    fig.text(0.5, 0.74, "Sampler trade-off (quality against sampling steps S): not run", ha="center", va="center",
             fontsize=13, weight="bold")
    fig.text(0.5, 0.36, "\n".join(["sampler_tradeoff.enabled is false in params.yaml, so nothing was sampled.",
                                    "To run it:", ENABLE]),
             ha="center", va="center", fontsize=10, family="monospace", linespacing=1.6)
    write_outputs({args.metrics_out: json_bytes({}),
                   args.details_out: f"enabled,how_to_enable\nfalse,{ENABLE}\n".encode(),
                   args.figure_out: save_png(fig)})
    print(f"sampler_tradeoff: disabled (sampler_tradeoff.enabled is false): nothing sampled; to run it: {ENABLE}")


def run_tradeoff(args, dcfg: DiffusionConfig, cfg: TradeoffConfig, replicate: int) -> None:
    """Sample and measure every sampler, S and model; write the three outputs."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import torch

    from ddpm_lab.gmm import figures as plots
    from ddpm_lab.gmm.mixture import OracleEps
    from ddpm_lab.gmm.metrics import compare_samples, exact_reference
    from ddpm_lab.gmm.artifacts import load_eps_model, load_mixture
    from ddpm_lab.runtime.torch_setup import use_threads

    use_threads(cfg.threads)
    mixture = load_mixture(args.data / "mixture.json")
    diffusion = dcfg.build()
    models = {"eq12": load_eps_model(args.models / "eq12.pt", dcfg),
              "oracle": OracleEps(mixture, diffusion.np["alphas_cumprod"])}
    steps = cfg.step_counts(dcfg.T)
    if steps != cfg.steps:
        print(f"sampler_tradeoff: steps {cfg.steps} at diffusion.T = {dcfg.T}: {steps} "
              f"(values above T replaced by T, duplicates dropped, ascending)")
    n_seeds = len(cfg.seeds)
    # One floor for every row: exact samples of the pooled size (seeds x n), as in compare_dist.
    reference = exact_reference(mixture, n_seeds * cfg.n, cfg.floor_draws, cfg.directions,
                                np.random.default_rng(cfg.seed))

    rows = []
    for sampler in cfg.samplers:
        for S in steps:
            scfg = SamplerConfig(sampler=sampler, steps=S, eta=0.0)
            for name, eps_model in models.items():
                x0s = []
                for seed in cfg.seeds:
                    g = torch.Generator().manual_seed(fold_seed(seed, replicate))
                    x0, _ = sample(diffusion, eps_model, (cfg.n, mixture.dim), g, sampler=scfg,
                                   progress=progress(f"{sampler} S={S} {name} seed {seed}"))
                    x0s.append(x0.numpy())
                x0s = np.stack(x0s)
                if not np.all(np.isfinite(x0s)):
                    where = args.models / "eq12.pt" if name == "eq12" else "the oracle eps*"
                    raise DataError(f"{where}: {scfg.describe(dcfg.T)} drew non-finite values: expected finite "
                                    f"draws (a diverged model? rerun train_eq12)")
                headline, details = compare_samples(x0s, mixture, **reference)
                r = table_row(name, sampler, S, headline, details)
                rows.append(r)
                print(f"sampler_tradeoff: {scfg.describe(dcfg.T)}, {name}: W1 x{r['w1_ratio']:.2f}, "
                      f"KS x{r['ks_ratio']:.2f} (floor p95 x{r['w1_p95_ratio']:.2f}, x{r['ks_p95_ratio']:.2f}), "
                      f"mode error {r['mode_err']:.4f} (p95 {r['mode_p95']:.4f})"
                      + (f", sliced W1 x{r['sliced_w1_ratio']:.2f}" if "sliced_w1_ratio" in r else ""))
    table = pd.DataFrame(rows)
    headline = measure(table)
    fig = plots.sampler_tradeoff(table, dcfg.T, n_seeds, cfg.n, cfg.floor_draws)
    write_outputs({args.metrics_out: json_bytes(headline), args.details_out: table.to_csv(index=False).encode(),
                   args.figure_out: save_png(fig)})
    plt.close(fig)
    for sampler in cfg.samplers:
        h = headline[sampler]
        print(f"sampler_tradeoff: {sampler}: W1 inside the floor's 5-95% band from S = {h['eq12_min_S']} "
              f"(eq12 model), S = {h['oracle_min_S']} (oracle)"
              + (f"; eq12 W1 x{h[f'eq12_w1_S{HEADLINE_S}']:.2f} at S = {HEADLINE_S}" if HEADLINE_S in steps else ""))


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
    dcfg = from_section(DiffusionConfig, params, "diffusion", args.params)
    cfg = from_section(TradeoffConfig, params, "sampler_tradeoff", args.params)
    replicate = read_replicate(params, args.params)
    if cfg.enabled:
        run_tradeoff(args, dcfg, cfg, replicate)
    else:
        write_not_run(args)


if __name__ == "__main__":
    run_stage(main)
