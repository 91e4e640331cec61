"""Stage estimator_variance: the gradient variance of the bound's estimators per
network evaluation, at the initial weights and the two trained models.

On tiny params (T = 20, hidden 8, models trained for 3 and 2 steps): the three outputs, one row per
point and estimator, K clamped to T, the evaluation counts (checked against the rows the network
really sees), the same bytes on rerun; Eq. 12's trace halves when its rows double (within its
standard errors); bad params and mismatched checkpoints give one line and write nothing. The
library's statistics against brute force: tests/unit/test_gradient_noise.py.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import from_section
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.gmm import gradient_noise as gn
from ddpm_lab.gmm.model import EpsMLP
from ddpm_lab.gmm.artifacts import load_eps_model
from tests.helpers import TINY_GMM, expect_one_line_error, private_copy, ran, snapshot, tiny_params, write

STAGE = importlib.import_module("stages.estimator_variance")  # run end to end, never used as a library

OUTPUTS = ("metrics/estimator_variance.json", "metrics/details/estimator_variance.csv", "images/estimator_variance.png")
TINY = dict(
    enabled=True, minibatches=6, rows_trajectory=2, rows_subsampled=4, terms=[1, 5, 50], rows_eq12=32, seed=0, threads=1
)


def params(**changes) -> dict:
    p = tiny_params()
    p["estimator_variance"].update({**TINY, **changes})
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """generate_gmm, train_eq12 (3 steps) and train_eq3 (2 steps) at T = 20: what the stage reads."""
    root = tmp_path_factory.mktemp("estimator_variance")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write(params())
        run_stage(importlib.import_module("stages.generate_gmm").main, [])
        for obj in ("eq12", "eq3"):
            run_stage(importlib.import_module("stages.train").main, ["--objective", obj])
    return root


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained directory, as the working directory."""
    return private_copy(trained, tmp_path, monkeypatch)


def test_disabled_stage_measures_nothing_and_says_how_to_enable(tmp_path, monkeypatch, capsys):
    # No data and no model in the directory: the disabled stage reads neither.
    monkeypatch.chdir(tmp_path)
    write(tiny_params())
    assert tiny_params()["estimator_variance"]["enabled"] is False  # a train_eq12 variant does not pay for it
    start = time.perf_counter()
    run_stage(STAGE.main, [])
    assert time.perf_counter() - start < 3.0  # about 0.3 s here, imports aside
    assert STAGE.ENABLE == "dvc exp run -S estimator_variance.enabled=true" and STAGE.ENABLE in capsys.readouterr().out
    assert json.loads((tmp_path / OUTPUTS[0]).read_text()) == {}  # no numbers until it runs
    details = pd.read_csv(tmp_path / OUTPUTS[1])
    assert details.to_dict("records") == [{"enabled": False, "how_to_enable": STAGE.ENABLE}]
    png = (tmp_path / OUTPUTS[2]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib" not in png  # no version stamp
    first = snapshot(tmp_path)
    run_stage(STAGE.main, [])
    assert snapshot(tmp_path) == first  # same bytes on rerun


def test_outputs_rows_and_evaluation_counts(workdir, monkeypatch, capsys):
    seen = []  # rows the network is evaluated on, call by call
    forward = EpsMLP.forward
    monkeypatch.setattr(EpsMLP, "forward", lambda self, x, t: seen.append(x.shape[0]) or forward(self, x, t))
    run_stage(STAGE.main, [])
    out = capsys.readouterr().out
    assert "terms [1, 5, 50] at diffusion.T = 20: [1, 5, 20]" in out  # K above T replaced by T
    for path in OUTPUTS:
        assert (workdir / path).is_file()
    table = pd.read_csv(workdir / OUTPUTS[1], keep_default_na=False, na_values=[""])
    names = [
        "trajectory",
        "trajectory_kl",
        *[f"subsampled_{term}_K{K}" for term in ("log_ratio", "kl") for K in (1, 5, 20)],
        "eq12",
    ]
    assert list(table["point"]) == [p for p in ("init", "eq3", "eq12") for _ in names]
    assert list(table["estimator"]) == names * 3
    T = 20
    per_row = {"trajectory": T, "trajectory_kl": T, "eq12": 1, **{n: int(n.rsplit("K", 1)[1]) for n in names[2:-1]}}
    rows = {"trajectory": 2, "trajectory_kl": 2, "eq12": 32, **{n: 4 for n in names[2:-1]}}
    assert list(table["evals_per_row"]) == [per_row[n] for n in table["estimator"]]
    assert list(table["evals_per_minibatch"]) == [rows[n] * per_row[n] for n in table["estimator"]]
    assert (table["minibatches"] == 6).all()
    # Every minibatch evaluates the network on exactly rows x evaluations per row inputs, in one call.
    assert seen == [int(n) for n in table["evals_per_minibatch"] for _ in range(6)]
    # Every number is finite and carries its error; cost = trace x evaluations.
    assert np.all(np.isfinite(table["loss_mean"]))
    for col in ("grad_norm", "grad_norm_se", "grad_norm_noise", "trace", "trace_se", "cost", "cost_se", "loss_se"):
        assert np.all(np.isfinite(table[col])) and (table[col] > 0).all(), col
    assert np.allclose(table["cost"], table["trace"] * table["evals_per_minibatch"], rtol=1e-5)
    ref = table["estimator"] == gn.REFERENCE
    assert table.loc[ref, "dist2_ratio"].isna().all()
    dist2 = table.loc[~ref, list(gn.DIST2_COLUMNS)]
    assert np.all(np.isfinite(dist2.to_numpy())) and (dist2["dist2_dof"] >= 1).all()
    assert (dist2["dist2_p05"] < 1).all() and (dist2["dist2_p95"] > 1).all() and dist2["dist2_p"].between(0, 1).all()
    head = json.loads((workdir / OUTPUTS[0]).read_text())
    assert sorted(head) == ["eq3_cost_x", "eq3_cost_x_se"] and head["eq3_cost_x"] > 0 and head["eq3_cost_x_se"] > 0
    at = table[table["point"] == "init"].set_index("estimator")
    assert head["eq3_cost_x"] == pytest.approx(at.loc["trajectory", "cost"] / at.loc["eq12", "cost"], rel=1e-3)
    png = (workdir / OUTPUTS[2]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"matplotlib" not in png  # no version stamp


def test_same_bytes_on_rerun(workdir):
    run_stage(STAGE.main, [])
    first = snapshot(workdir)
    run_stage(STAGE.main, [])
    assert snapshot(workdir) == first


def test_eq12_trace_halves_with_twice_the_rows(trained):
    # i.i.d. rows: the trace of a minibatch mean's covariance is (one row's trace) / rows.
    p = params()
    dcfg = from_section(DiffusionConfig, p, "diffusion")
    diffusion = dcfg.build()
    model = load_eps_model(trained / "models/eq12.pt", dcfg).requires_grad_(True)
    data = torch.as_tensor(np.load(trained / "data/gmm/train.npy"), dtype=torch.float32)
    s = {
        rows: gn.GradientSummary.of(
            gn.minibatch_gradients(gn.Estimator("eq12", rows), diffusion, model, data, 200, 7, f"rows {rows}")[0]
        )
        for rows in (16, 32)
    }
    ratio = s[32].trace / s[16].trace
    assert 0.3 < ratio < 0.8, ratio  # loose: about 1/2
    assert abs(s[32].trace - s[16].trace / 2) < 4 * math.hypot(s[32].trace_se, s[16].trace_se / 2)


@pytest.mark.parametrize(
    "key,value,pattern",
    [
        ("minibatches", 2, r"estimator_variance\.minibatches = 2: expected an integer >= 3"),
        ("rows_eq12", 0, r"estimator_variance\.rows_eq12 = 0: expected an integer >= 1"),
        ("terms", [1, 1], r"estimator_variance\.terms = \[1, 1\]: expected distinct integers >= 1"),
        ("terms", [], r"estimator_variance\.terms = \[\]: expected a non-empty list of integers"),
        ("threads", -1, r"estimator_variance\.threads = -1: expected an integer in \[0, 1024\]"),
        (
            "rows_trajectory",
            10**13,
            r"estimator_variance\.rows_trajectory = 10000000000000: expected at most [\d,]+ rows",
        ),
        (
            "minibatches",
            10**13,
            r"estimator_variance\.minibatches = 10000000000000: expected at most [\d,]+ minibatches",
        ),
    ],
)
def test_bad_params_one_line(workdir, capsys, key, value, pattern):
    write(params(**{key: value}))
    before = snapshot(workdir)
    expect_one_line_error(capsys, STAGE, [], rf"^error: params\.yaml: {pattern}")
    assert snapshot(workdir) == before


def test_checkpoint_of_another_model_is_one_line(workdir, capsys):
    p = params()
    p["model"]["hidden"] = 9
    write(p)
    before = snapshot(workdir)
    expect_one_line_error(
        capsys,
        STAGE,
        [],
        r"params\.yaml: model = .*'hidden': 9.* but models/eq3\.pt was trained with "
        r".*'hidden': 8.*: expected equal",
    )
    assert snapshot(workdir) == before


@pytest.mark.slow
def test_dvc_repro_runs_the_stage_after_both_trainings(dvc_repo):
    # The wiring end to end: `dvc repro estimator_variance` runs the data and both trainings, then the
    # stage; its headline is a DVC metric; nothing to do on a second run; its own param reruns it alone.

    dvc_repo.set_params({**TINY_GMM, "estimator_variance": TINY})
    first = ran(dvc_repo.dvc("repro", "estimator_variance"))
    assert sorted(first[1:3]) == ["train_eq12", "train_eq3"]  # in DVC's order
    assert [first[0], first[-1], len(first)] == ["generate_gmm", "estimator_variance", 4]
    for path in OUTPUTS:
        assert (dvc_repo.path / path).is_file()
    shown = dvc_repo.dvc("metrics", "show").stdout
    # an output, not a DVC metric: `dvc metrics show` stays under 270 columns
    assert "metrics/estimator_variance.json" not in shown and "details" not in shown
    assert ran(dvc_repo.dvc("repro", "estimator_variance")) == []
    dvc_repo.set_params({"estimator_variance": {"seed": 1}})
    assert ran(dvc_repo.dvc("repro", "estimator_variance")) == ["estimator_variance"]
