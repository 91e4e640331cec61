"""Stage sampler_tradeoff: sample quality against the number of sampling steps S.

Off by default: then it samples nothing and its outputs say how to run it. On tiny params (T = 50
with betas rescaled by 1000 / T, so that x_T is close to N(0, I) as at T = 1000; a 3-step eq12
model): one row per sampler, S and model, S clamped to T and deduplicated, the oracle at S = T
near the floor, the same bytes on a rerun. Bad params: one line, nothing written. The library's
parts on their own: tests/unit/test_tradeoff.py.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ddpm_lab.core.sampling import SAMPLERS
from ddpm_lab.gmm import tradeoff
from ddpm_lab.runtime.cli import run_stage
from tests.helpers import expect_one_line_error, snapshot, tiny_params, write

STAGE = importlib.import_module("stages.sampler_tradeoff")  # run end to end, never used as a library
GENERATE = importlib.import_module("stages.generate_gmm")

OUTPUTS = (
    "metrics/sampler_tradeoff.json",
    "metrics/details/sampler_tradeoff.csv",
    "images/sampler_tradeoff.png",
    "metrics/details/hybrid_oracle.csv",
    "images/hybrid_oracle.png",
)
ENABLED = dict(
    enabled=True,
    steps=[5, 50, 100],
    samplers=["ddpm", "ddim"],
    n=300,
    seeds=[0, 1],
    floor_draws=20,
    directions=8,
    hybrid_t0=[60, 0, 10],
)
MIX_2D = dict(weights=[0.5, 0.5], means=[[-2.0, 0.0], [2.0, 1.0]], stds=[[0.5, 1.0], [0.7, 0.3]])


def params_t50(dim: int = 1, **tradeoff) -> dict:
    """tiny_params with T = 50 and the paper's betas rescaled by 1000 / T (abar_T ~ 1e-5)."""
    p = tiny_params()
    p["diffusion"].update(T=50, beta_start=0.002, beta_end=0.4)
    if dim == 2:
        p["gmm"].update(MIX_2D)
    p["sampler_tradeoff"].update(tradeoff)
    return p


def make_trained(root: Path, dim: int) -> Path:
    """generate_gmm and train_eq12 (3 steps) at T = 50 in root: what the stage reads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write(params_t50(dim))
        run_stage(GENERATE.main, [])
        run_stage(importlib.import_module("stages.train").main, ["--objective", "eq12"])
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return make_trained(tmp_path_factory.mktemp("tradeoff"), 1)


def read_outputs(root: Path) -> tuple[dict, pd.DataFrame]:
    return (json.loads((root / OUTPUTS[0]).read_text()), pd.read_csv(root / OUTPUTS[1]))


def test_disabled_stage_samples_nothing_and_says_how_to_enable(tmp_path, monkeypatch, capsys):
    # No data and no model in the directory: the disabled stage reads neither.
    monkeypatch.chdir(tmp_path)
    write(tiny_params())
    assert tiny_params()["sampler_tradeoff"]["enabled"] is False  # the default study does not pay for it
    start = time.perf_counter()
    run_stage(STAGE.main, [])
    assert time.perf_counter() - start < 3.0  # about 0.3 s here, imports aside
    assert tradeoff.ENABLE == "dvc exp run -S sampler_tradeoff.enabled=true"
    assert tradeoff.ENABLE in capsys.readouterr().out
    headline, details = read_outputs(tmp_path)
    assert headline == {}  # no headline column in `dvc metrics show` until it runs
    assert details.to_dict("records") == [{"enabled": False, "how_to_enable": tradeoff.ENABLE}]
    png = (tmp_path / OUTPUTS[2]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib" not in png  # no version stamp
    first = snapshot(tmp_path)
    run_stage(STAGE.main, [])
    assert snapshot(tmp_path) == first  # same bytes on rerun


def test_enabled_stage_on_tiny_params(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    write(params_t50(**ENABLED))
    run_stage(STAGE.main, [])
    out = capsys.readouterr().out
    assert "steps [5, 50, 100] at diffusion.T = 50: [5, 50]" in out  # clamped to T, deduplicated
    headline, table = read_outputs(trained)

    # One row per sampler, S and model; S network evaluations per draw; one floor for every row.
    assert len(table) == 8
    assert sorted(zip(table["sampler"], table["steps"], table["model"])) == sorted(
        (s, S, m) for s in ("ddpm", "ddim") for S in (5, 50) for m in ("eq12", "oracle")
    )
    assert (table["nfe_per_draw"] == table["steps"]).all() and (table["n_pooled"] == 600).all()
    assert "sliced_w1" not in table.columns  # D = 1
    for col in ("w1_p05", "w1_p95", "ks_p95", "mode_p95"):
        assert table[col].nunique() == 1
    assert np.allclose(table["w1"] / table["w1_ratio"], (table["w1"] / table["w1_ratio"]).iloc[0], rtol=1e-12)
    inside = (table["w1_p05"] <= table["w1_ratio"]) & (table["w1_ratio"] <= table["w1_p95"])
    assert (inside == table["w1_inside"]).all()

    oracle = table[table["model"] == "oracle"].set_index(["sampler", "steps"])
    for sampler in ("ddpm", "ddim"):
        # At S = T the oracle's only error is the T-step chain's: near the floor (a loose band).
        assert oracle.loc[(sampler, 50), "w1_ratio"] < 2 * oracle.loc[(sampler, 50), "w1_p95"]
        # Ten times fewer steps: a worse sample, from the discretisation alone.
        assert oracle.loc[(sampler, 5), "w1_ratio"] > oracle.loc[(sampler, 50), "w1_ratio"]

    # The headline: narrow, and what the table says.
    assert set(headline) == {"enabled", "ddpm", "ddim"} and headline["enabled"] is True
    for sampler in ("ddpm", "ddim"):
        h = headline[sampler]
        assert set(h) == {"eq12_min_S", "oracle_min_S", "eq12_w1_S50"}
        for name in ("eq12", "oracle"):
            rows = table[(table["sampler"] == sampler) & (table["model"] == name) & table["w1_inside"]]
            assert h[f"{name}_min_S"] == (int(rows["steps"].min()) if len(rows) else None)
        row = table[(table["sampler"] == sampler) & (table["model"] == "eq12") & (table["steps"] == 50)]
        assert h["eq12_w1_S50"] == pytest.approx(float(row["w1_ratio"].iloc[0]), rel=1e-12)
    assert (trained / OUTPUTS[2]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The hybrid diagnostic: both hybrids at t0 = 0, 10, T (60 clamped), ascending; its ends are the
    # pure samplers of the sweep, on the same seeds and floor, so the same draws and statistics.
    hybrid = pd.read_csv(trained / OUTPUTS[3])
    assert list(zip(hybrid["hybrid"], hybrid["t0"])) == [
        (h, t) for h in ("model_low", "model_high") for t in (0, 10, 50)
    ]
    assert list(hybrid["model_steps"]) == [0, 10, 50, 50, 40, 0]
    ddpm = table[(table["sampler"] == "ddpm") & (table["steps"] == 50)].set_index("model")
    h = hybrid.set_index(["hybrid", "t0"])
    for key, pure in (
        (("model_low", 0), "oracle"),
        (("model_low", 50), "eq12"),
        (("model_high", 0), "eq12"),
        (("model_high", 50), "oracle"),
    ):
        for col in ("w1", "ks", "mode_err", "w1_p95"):
            assert h.loc[key, col] == pytest.approx(ddpm.loc[pure, col], rel=1e-12), (key, col)
    assert "model at t <= t0" in out and (trained / OUTPUTS[4]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The exact columns (1-D: each hybrid's output propagated): the two hybrids' pure ends are one
    # chain each, so their exact distances agree; the untrained model is far from the oracle.
    for a, b in ((("model_low", 0), ("model_high", 50)), (("model_low", 50), ("model_high", 0))):
        for col in ("exact_kl", "exact_w1_ratio", "exact_ks_ratio", "exact_mode_err"):
            assert h.loc[a, col] == pytest.approx(h.loc[b, col], rel=1e-9), (a, col)
    assert h.loc[("model_low", 50), "exact_kl"] > h.loc[("model_low", 0), "exact_kl"] > 0

    # No wall-clock time anywhere: a rerun writes the same bytes (dvc repro -f leaves dvc.lock alone).
    first = {p: (trained / p).read_bytes() for p in OUTPUTS}
    run_stage(STAGE.main, [])
    assert {p: (trained / p).read_bytes() for p in OUTPUTS} == first


def test_enabled_stage_in_two_dimensions(tmp_path, monkeypatch):
    root = make_trained(tmp_path, 2)
    monkeypatch.chdir(root)
    write(params_t50(2, **{**ENABLED, "steps": [5, 50], "samplers": ["ddim"], "n": 200}))
    run_stage(STAGE.main, [])
    headline, table = read_outputs(root)
    assert len(table) == 4 and set(table["sampler"]) == {"ddim"} and set(headline) == {"enabled", "ddim"}
    # D > 1: the sliced W1 (joint structure) with its own floor band, beside the marginal W1 and KS.
    assert {"sliced_w1", "sliced_w1_ratio", "sliced_w1_p05", "sliced_w1_p95", "sliced_w1_inside"} <= set(table)
    oracle = table[table["model"] == "oracle"].set_index("steps")
    assert oracle.loc[50, "sliced_w1_ratio"] < 2 * oracle.loc[50, "sliced_w1_p95"]


BAD = [
    ("enabled", "yes", r"sampler_tradeoff\.enabled = 'yes': expected true or false"),
    (
        "steps",
        [10, 0],
        r"sampler_tradeoff\.steps = \[10, 0\]: expected distinct integers >= 1 \(sampling steps; "
        r"values above diffusion\.T are replaced by T\)",
    ),
    ("steps", [10, 10], r"sampler_tradeoff\.steps = \[10, 10\]: expected distinct integers >= 1"),
    (
        "samplers",
        ["ddpm", "plms"],
        r"sampler_tradeoff\.samplers = \['ddpm', 'plms'\]: expected distinct names among " + ", ".join(SAMPLERS),
    ),
    ("n", 1, r"sampler_tradeoff\.n = 1: expected an integer >= 2"),
    ("n", 10**12, r"sampler_tradeoff\.n = 1000000000000: expected at most [\d,]+ draws per seed"),
    ("seeds", [3, 3], r"sampler_tradeoff\.seeds = \[3, 3\]: expected distinct non-negative integers"),
    ("hybrid_t0", [5, 5], r"sampler_tradeoff\.hybrid_t0 = \[5, 5\]: expected distinct integers >= 0"),
    ("hybrid_t0", [-1], r"sampler_tradeoff\.hybrid_t0 = \[-1\]: expected distinct integers >= 0"),
    ("floor_draws", 5, r"sampler_tradeoff\.floor_draws = 5: expected an integer >= 20"),
    ("threads", -1, r"sampler_tradeoff\.threads = -1: expected an integer in \[0, 1024\]"),
]


@pytest.mark.parametrize("key,value,pattern", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_params_are_one_line_and_write_nothing(tmp_path, monkeypatch, capsys, key, value, pattern):
    monkeypatch.chdir(tmp_path)
    write(tiny_params())
    run_stage(STAGE.main, [])  # the disabled outputs: a bad value must leave them alone
    for enabled in (False, True):  # refused whether or not the section is enabled
        p = tiny_params()
        p["sampler_tradeoff"].update({"enabled": enabled, key: value})
        write(p)
        before = snapshot(tmp_path)
        capsys.readouterr()
        expect_one_line_error(capsys, STAGE, [], rf"^error: params\.yaml: {pattern}")
        assert snapshot(tmp_path) == before


def test_first_stage_checks_the_sections_memory(tmp_path, monkeypatch, capsys):
    # generate_gmm checks every section's needs before any work, this one included.
    monkeypatch.chdir(tmp_path)
    p = tiny_params()
    p["sampler_tradeoff"]["n"] = 10**12
    write(p)
    expect_one_line_error(capsys, GENERATE, [], r"sampler_tradeoff\.n = 1000000000000: expected at most")
    assert not Path("data").exists()
