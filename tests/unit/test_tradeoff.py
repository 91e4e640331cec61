"""ddpm_lab.gmm.tradeoff (the library of stage sampler_tradeoff) on tiny inputs: a table row from
compare_samples' output, the headline and its summary lines, the not-run outputs, and the table
itself (the oracle eps* and a tiny untrained network at T = 10). The stage end to end:
tests/stage/test_sampler_tradeoff.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.gmm import tradeoff
from ddpm_lab.gmm.metrics import table_row
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.params import TradeoffConfig
from ddpm_lab.runtime.params import DataError

MIXTURE = GaussianMixture([0.4, 0.6], [-2.0, 1.5], [0.5, 0.7])
DCFG = DiffusionConfig(T=10, schedule="linear", beta_start=0.01, beta_end=0.6, variance="beta")
CFG = TradeoffConfig(
    enabled=True,
    steps=[2, 10, 50],
    samplers=["ddim", "ddpm"],
    n=40,
    seeds=[0, 3],
    floor_draws=20,
    directions=4,
    seed=0,
    hybrid_t0=[],
    threads=1,
)


def judged(ratio: float, inside: bool, sliced: bool = False) -> tuple[dict, dict]:
    """compare_samples-like (headline, details) with every statistic at `ratio` of its floor."""
    stat = {"value": 0.1 * ratio, "ratio": ratio, "floor_ratio": {"p05": 0.7, "p95": 1.4}, "inside_band": inside}
    details = {
        "w1": stat,
        "ks": stat,
        "mode": {"mode_band": {"median": 0.02, "p05": 0.01, "p95": 0.04}},
        "n_pooled": 80,
    }
    if sliced:
        details["sliced_w1"] = stat
    return {"mode_err": 0.05}, details


def test_table_row_reads_every_statistic_and_its_band():
    row = table_row("eq12", "ddim", 20, *judged(1.2, True))
    assert row == {
        "model": "eq12",
        "sampler": "ddim",
        "steps": 20,
        "nfe_per_draw": 20,
        "w1": pytest.approx(0.12),
        "w1_ratio": 1.2,
        "w1_p05": 0.7,
        "w1_p95": 1.4,
        "w1_inside": True,
        "ks": pytest.approx(0.12),
        "ks_ratio": 1.2,
        "ks_p05": 0.7,
        "ks_p95": 1.4,
        "ks_inside": True,
        "mode_err": 0.05,
        "mode_p05": 0.01,
        "mode_p95": 0.04,
        "mode_inside": False,
        "n_pooled": 80,
    }
    assert list(row)[:4] == ["model", "sampler", "steps", "nfe_per_draw"]  # the CSV's column order
    assert "sliced_w1_ratio" in table_row("oracle", "ddpm", 5, *judged(0.9, True, sliced=True))


def test_headline_smallest_S_inside_per_sampler_and_model():
    rows = []
    for sampler in ("ddpm", "ddim"):
        for S, inside in ((10, False), (50, True), (100, True)):
            rows.append(table_row("eq12", sampler, S, *judged(S / 50, inside and sampler == "ddpm")))
            rows.append(table_row("oracle", sampler, S, *judged(1.0, inside)))
    head = tradeoff.headline(pd.DataFrame(rows))
    assert head == {
        "enabled": True,
        "ddpm": {"eq12_min_S": 50, "oracle_min_S": 50, "eq12_w1_S50": 1.0},
        "ddim": {"eq12_min_S": None, "oracle_min_S": 50, "eq12_w1_S50": 1.0},
    }
    lines = tradeoff.summary_lines(head)
    assert lines == [
        "sampler_tradeoff: ddpm: W1 inside the floor's band (at or below its p95) from S = 50 (eq12 model), S = 50 "
        "(oracle); eq12 W1 x1.00 at S = 50",
        "sampler_tradeoff: ddim: W1 inside the floor's band (at or below its p95) from S = None (eq12 model), S = 50 "
        "(oracle); eq12 W1 x1.00 at S = 50",
    ]
    # Without S = HEADLINE_S among the steps: no W1 ratio at it, in the headline or its lines.
    without = tradeoff.headline(pd.DataFrame([r for r in rows if r["steps"] != tradeoff.HEADLINE_S]))
    assert without["ddpm"] == {"eq12_min_S": 100, "oracle_min_S": 100}
    assert not any("at S =" in line for line in tradeoff.summary_lines(without))


def test_not_run_outputs_say_how_to_enable():
    head, details, fig = tradeoff.not_run_outputs()
    assert head == {} and details == f"enabled,how_to_enable\nfalse,{tradeoff.ENABLE}\n".encode()
    assert any(tradeoff.ENABLE in t.get_text() for t in fig.texts)


def test_table_one_row_per_sampler_steps_and_model(capsys):
    diffusion = DCFG.build()
    models = {
        "eq12": EpsMLP.seeded(MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=1), 0).eval(),
        "oracle": OracleEps(MIXTURE, diffusion.np["alphas_cumprod"]),
    }
    table = tradeoff.tradeoff_table(diffusion, models, MIXTURE, CFG, 0, Path("models"))
    out = capsys.readouterr().out
    assert "steps [2, 10, 50] at diffusion.T = 10: [2, 10]" in out  # clamped to T, deduplicated
    assert list(zip(table["sampler"], table["steps"], table["model"])) == [
        (s, S, m) for s in ("ddim", "ddpm") for S in (2, 10) for m in ("eq12", "oracle")
    ]
    assert (table["n_pooled"] == 80).all() and (table["nfe_per_draw"] == table["steps"]).all()
    assert table["w1_p95"].nunique() == 1  # one floor for every row
    # The same draws on a rerun: seeded by the seeds (and the replicate) only.
    assert table.equals(tradeoff.tradeoff_table(diffusion, models, MIXTURE, CFG, 0, Path("models")))
    assert not table.equals(tradeoff.tradeoff_table(diffusion, models, MIXTURE, CFG, 1, Path("models")))


def test_table_refuses_non_finite_draws():
    diffusion = DCFG.build()
    nan_model = lambda x, t: torch.full_like(x, float("nan"))  # noqa: E731
    with pytest.raises(DataError, match=r"^models/eq12\.pt: DDIM \(eta = 0\), 2 of 10 steps drew non-finite values"):
        tradeoff.tradeoff_table(diffusion, {"eq12": nan_model}, MIXTURE, CFG, 0, Path("models"))
    with pytest.raises(DataError, match=r"^the oracle eps\*: DDIM"):
        tradeoff.tradeoff_table(diffusion, {"oracle": nan_model}, MIXTURE, CFG, 0, Path("models"))
