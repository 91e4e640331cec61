"""The GMM stages with a network that predicts x0 or v, and with the min-SNR and target-MSE
weightings: the checkpoint records the target, every stage reads the model as the eps it converts
to, the exact measures stay defined, and a bad value is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.targets import EpsFromTarget
from ddpm_lab.gmm.artifacts import load_eps_model, load_eps_net
from ddpm_lab.runtime.io import load_checkpoint
from ddpm_lab.runtime.params import from_section
from tests.helpers import expect_one_line_error, run_gmm_stages, snapshot, tiny_params, write


@pytest.mark.parametrize(
    "changes",
    [
        {"model.prediction": "x0"},
        {"model.prediction": "v", "train_eq12.weighting": "min_snr", "train_eq12.min_snr_gamma": 2.0},
    ],
    ids=["x0", "v-min_snr"],
)
def test_gmm_stages_with_another_target(tmp_path, monkeypatch, changes):
    monkeypatch.chdir(tmp_path)
    p = tiny_params(**changes)
    write(p)
    run_gmm_stages()
    prediction = changes["model.prediction"]
    dcfg = from_section(DiffusionConfig, p, "diffusion")
    for name in ("eq12", "eq3"):
        config, _ = load_checkpoint(tmp_path / "models" / f"{name}.pt")
        assert config["model"]["prediction"] == prediction
        model = load_eps_model(tmp_path / "models" / f"{name}.pt", dcfg)
        assert isinstance(model, EpsFromTarget) and model.prediction == prediction
        assert isinstance(load_eps_net(tmp_path / "models" / f"{name}.pt", dcfg), torch.nn.Module)
    train = json.loads((tmp_path / "metrics" / "details" / "train_eq12.json").read_text())
    weighting = changes.get("train_eq12.weighting", "eq12")
    assert train["weighting"] == weighting and train["objective"] == "eq12"
    assert np.isfinite(train["saved_model_expected_loss"])
    # excess over the floor: a model's error adds to the loss under every weighting
    assert train["saved_model_excess_loss"] >= -train["saved_model_excess_loss_err"]
    for name in ("eq12", "eq3", "oracle"):
        m = json.loads((tmp_path / "metrics" / f"dist_{name}.json").read_text())
        assert all(np.isfinite(v) for v in m.values())
    assert json.loads((tmp_path / "metrics" / "dist_oracle.json").read_text())["bound_gap"] == 0.0


@pytest.mark.parametrize(
    "dotted, value, pattern",
    [
        ("model.prediction", "score", r"model\.prediction = 'score': expected one of eps, x0, v"),
        (
            "train_eq12.weighting",
            "snr",
            r"train_eq12\.weighting = 'snr': expected one of eq12, eq14, hybrid, min_snr, target_mse",
        ),
        ("train_eq12.min_snr_gamma", 0, r"train_eq12\.min_snr_gamma = 0: expected a positive number"),
    ],
)
def test_bad_target_or_weighting_is_one_line(tmp_path, monkeypatch, capsys, dotted, value, pattern):
    monkeypatch.chdir(tmp_path)
    write(tiny_params(**{dotted: value}))
    before = snapshot(tmp_path)
    expect_one_line_error(capsys, "generate_gmm", [], rf"^error: params\.yaml: {pattern}")
    assert snapshot(tmp_path) == before
