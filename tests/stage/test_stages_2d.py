"""The GMM stages on a 2-D mixture with diagonal covariances (the default is 1-D)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from tests.helpers import run_gmm_stages, tiny_params


@pytest.mark.parametrize("variance", ["beta", "optimal"])
def test_two_dimensional_mixture_runs_through_every_stage(tmp_path, monkeypatch, variance):
    """Every GMM stage on a 2-D mixture; with variance optimal its sigma_t^2 comes from a Monte-Carlo mmse."""
    monkeypatch.chdir(tmp_path)
    p = tiny_params(**{"diffusion.variance": variance})
    p["gmm"].update(weights=[0.5, 0.5], means=[[-2.0, 0.0], [2.0, 1.0]], stds=[[0.5, 1.0], [0.7, 0.3]])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    run_gmm_stages()
    assert np.load("data/gmm/train.npy").shape == (300, 2)
    assert np.load("data/samples/eq12.npz")["x0"].shape == (2, 50, 2)
    m = json.loads(open("metrics/dist_eq12.json").read())
    # D > 1: per-coordinate W1 / KS plus the sliced W1 (joint structure), each with its floor band.
    assert {"w1_ratio", "ks_ratio", "sliced_w1_ratio", "sliced_w1_p95", "bound_gap", "gap_err"} <= set(m)
    assert m["gap_err"] > 0  # Monte Carlo in 2-D: a standard error, not a quadrature bound
    d = json.loads(open("metrics/details/dist_eq12.json").read())
    assert len(d["mode"]["mode_weights"]) == 2 and np.isfinite(d["heldout_paired_estimate"]["bound"])
    assert d["expected_bound"]["method"].startswith("Monte Carlo")
    assert len(list((tmp_path / "images").glob("*.png"))) == 10
