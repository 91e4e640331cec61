"""Sample quality against the number of sampling steps S (stage sampler_tradeoff).

For every sampler ("ddpm": ancestral DDPM on the respaced subsequence tau_i = round(i T / S),
Nichol & Dhariwal 2021, Sec. 4, which is Algorithm 2 of Ho et al. 2020 at S = T; "ddim": DDIM with
eta = 0, Song et al. 2021, Eq. 12), every S and every eps-predictor (the trained Eq. 12 model and
the exact eps*, the oracle, whose error is the discretisation alone), n points are drawn from each
seed (replicate folded in, as in stage sample: ddpm_lab.core.sampling.sample_seeds; the same seeds
for every sampler, S and model). The seeds' draws are pooled and judged as compare_dist judges them
(ddpm_lab.gmm.metrics.compare_samples): exact-CDF W1 and KS as ratios to the median of one floor for
the pooled n with that floor's 5-95% band, the mode-weight error beside its multinomial floor, and
for D > 1 the sliced W1. Each draw costs S network evaluations. No wall-clock time is measured.

Disabled (sampler_tradeoff.enabled false), nothing is sampled: `not_run_outputs` says so and how
to run it. No file I/O here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ddpm_lab.core.diffusion import GaussianDiffusion
from ddpm_lab.core.sampling import SamplerConfig, sample_seeds
from ddpm_lab.gmm.names import EQ12, ORACLE
from ddpm_lab.runtime.not_run import not_run_details, not_run_figure
from ddpm_lab.runtime.params import DataError

if TYPE_CHECKING:
    from ddpm_lab.gmm.mixture import GaussianMixture
    from ddpm_lab.gmm.params import TradeoffConfig

ENABLE = "dvc exp run -S sampler_tradeoff.enabled=true"
HEADLINE_S = 50  # the headline's W1 ratio at this S, when it is one of the steps
MODELS = (EQ12, ORACLE)  # the trained Eq. 12 model and the exact eps*


def headline(table: pd.DataFrame) -> dict:
    """The headline of the details table: per sampler, the smallest S whose W1 ratio lies inside
    the floor's band (at or below its p95: runtime.stats.in_band), for the Eq. 12 model and for the oracle (None if no S does), and the
    model's W1 ratio at S = HEADLINE_S when that S was run."""
    out = {"enabled": True}
    for sampler, part in table.groupby("sampler", sort=False):
        head = {}
        for name in MODELS:
            inside = part[(part["model"] == name) & part["w1_inside"]]
            head[f"{name}_min_S"] = int(inside["steps"].min()) if len(inside) else None
        at = part[(part["model"] == EQ12) & (part["steps"] == HEADLINE_S)]
        if len(at):
            head[f"{EQ12}_w1_S{HEADLINE_S}"] = float(at["w1_ratio"].iloc[0])
        out[sampler] = head
    return out


def tradeoff_reference(mixture: GaussianMixture, cfg: TradeoffConfig) -> dict:
    """One floor for every row: exact samples of the pooled size (seeds x n), as in compare_dist
    (numpy generator cfg.seed)."""
    from ddpm_lab.gmm.metrics import exact_reference  # scipy: only when enabled

    return exact_reference(
        mixture, len(cfg.seeds) * cfg.n, cfg.floor_draws, cfg.directions, np.random.default_rng(cfg.seed)
    )


def tradeoff_table(
    diffusion: GaussianDiffusion,
    models: dict,
    mixture: GaussianMixture,
    cfg: TradeoffConfig,
    replicate: int,
    models_dir: Path,
    reference: dict | None = None,
) -> pd.DataFrame:
    """The details table: one row per sampler of cfg.samplers, S of cfg.step_counts(T) and
    eps-predictor of models ({name: eps_model}, in that order), the draws of cfg.seeds pooled and
    judged against one floor (`reference`, by default tradeoff_reference(mixture, cfg)). A model that
    draws non-finite values is a DataError naming its checkpoint in models_dir."""
    from ddpm_lab.gmm.metrics import compare_samples, table_row  # scipy: only when enabled

    T = diffusion.T
    steps = cfg.step_counts(T)
    if steps != cfg.steps:
        print(
            f"sampler_tradeoff: steps {cfg.steps} at diffusion.T = {T}: {steps} "
            f"(values above T replaced by T, duplicates dropped, ascending)"
        )
    reference = reference or tradeoff_reference(mixture, cfg)
    rows = []
    for sampler in cfg.samplers:
        for S in steps:
            scfg = SamplerConfig(sampler=sampler, steps=S, eta=0.0)
            for name, eps_model in models.items():
                x0s, _ = sample_seeds(
                    diffusion,
                    eps_model,
                    (cfg.n, mixture.dim),
                    cfg.seeds,
                    replicate,
                    sampler=scfg,
                    desc=f"{sampler} S={S} {name}",
                )
                if not np.all(np.isfinite(x0s)):
                    where = models_dir / f"{name}.pt" if name != ORACLE else "the oracle eps*"
                    raise DataError(
                        f"{where}: {scfg.describe(T)} drew non-finite values: expected finite "
                        f"draws (a diverged model? rerun train_{EQ12})"
                    )
                r = table_row(name, sampler, S, *compare_samples(x0s, mixture, **reference), nfe=scfg.nfe(T))
                rows.append(r)
                print(
                    f"sampler_tradeoff: {scfg.describe(T)}, {name}: W1 x{r['w1_ratio']:.2f}, "
                    f"KS x{r['ks_ratio']:.2f} (floor p95 x{r['w1_p95']:.2f}, x{r['ks_p95']:.2f}), "
                    f"mode error {r['mode_err']:.4f} (p95 {r['mode_p95']:.4f})"
                    + (f", sliced W1 x{r['sliced_w1_ratio']:.2f}" if "sliced_w1_ratio" in r else "")
                )
    return pd.DataFrame(rows)


def run_study(
    diffusion: GaussianDiffusion,
    models: dict,
    mixture: GaussianMixture,
    cfg: TradeoffConfig,
    replicate: int,
    models_dir: Path,
) -> tuple[dict, pd.DataFrame, pd.DataFrame | None]:
    """The enabled stage's study against one floor: the sampler table (its headline and details
    table) and, unless cfg.hybrid_t0 is empty, the hybrid-oracle diagnostic's table
    (ddpm_lab.gmm.hybrid.hybrid_table; None when skipped)."""
    from ddpm_lab.gmm.hybrid import hybrid_table

    reference = tradeoff_reference(mixture, cfg)
    table = tradeoff_table(diffusion, models, mixture, cfg, replicate, models_dir, reference)
    hybrid = None
    if cfg.hybrid_t0:
        model, oracle = models[EQ12], models[ORACLE]
        hybrid = hybrid_table(diffusion, model, oracle, mixture, cfg.hybrid_t0, cfg.seeds, cfg.n, reference, replicate)
    return headline(table), table, hybrid


def summary_lines(head: dict) -> list[str]:
    """One line per sampler of a headline: from which S the W1 lies inside the floor's band, for
    each model, and the model's W1 ratio at S = HEADLINE_S when that S was run."""
    at = f"{EQ12}_w1_S{HEADLINE_S}"
    return [
        f"sampler_tradeoff: {sampler}: W1 inside the floor's band (at or below its p95) from S = {h[f'{EQ12}_min_S']} "
        f"(eq12 model), S = {h[f'{ORACLE}_min_S']} (oracle)"
        + (f"; eq12 W1 x{h[at]:.2f} at S = {HEADLINE_S}" if at in h else "")
        for sampler, h in head.items()
        if sampler != "enabled"
    ]


DISABLED = "sampler_tradeoff.enabled is false in params.yaml, so nothing was sampled."
HYBRID_TITLE = "Hybrid-oracle diagnostic (where in t the model loses the distribution)"


def not_run_outputs() -> tuple[dict, bytes, object]:
    """The outputs of the disabled stage: no headline metric (an empty JSON object, so `dvc
    metrics show` gains no column), how to enable it in the details (CSV bytes), and a figure
    saying so. Returns (headline, details, figure)."""
    fig = not_run_figure("Sampler trade-off (quality against sampling steps S)", DISABLED, ENABLE)
    return {}, not_run_details(ENABLE), fig


def hybrid_not_run(enabled: bool) -> tuple[bytes, object]:
    """The hybrid diagnostic's details (CSV bytes) and figure when it was not run: the stage is
    disabled, or sampler_tradeoff.hybrid_t0 is empty."""
    if enabled:
        how = "dvc exp run -S 'sampler_tradeoff.hybrid_t0=[0,10,30,100,300,1000]'"
        fig = not_run_figure(HYBRID_TITLE, "sampler_tradeoff.hybrid_t0 is empty in params.yaml.", how)
    else:
        how = ENABLE
        fig = not_run_figure(HYBRID_TITLE, DISABLED, how)
    return not_run_details(how, flag="run"), fig
