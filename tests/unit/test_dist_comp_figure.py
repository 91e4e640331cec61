"""dist_comp shows one n: the draws it is given (the seeds pooled, as plot passes them) are the n
of its histograms, its text, its asymptotic KS band and its exact floor's p95 of KS."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from ddpm_lab.gmm import figures  # noqa: E402
from ddpm_lab.gmm.mixture import GaussianMixture  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_the_cdf_panel_draws_the_band_and_the_floor_at_the_pooled_n():
    headline = json.loads((ROOT / "metrics/dist_eq12.json").read_text())
    details = json.loads((ROOT / "metrics/details/dist_eq12.json").read_text())
    mixture = GaussianMixture([0.3, 0.5, 0.2], [-4.0, 0.0, 3.0], [0.5, 0.8, 0.4])
    rng = np.random.default_rng(0)
    n = 3 * 1000
    x0, oracle = mixture.sample(n, rng), mixture.sample(n, rng)
    fig = figures.dist_comp("eq12", mixture, x0, oracle, headline, details, bins=50)
    ax2 = fig.axes[1]
    labels = [t.get_text() for t in ax2.get_legend().get_texts()]
    assert any(f"n = {n:,}" in s and "band" in s for s in labels)
    assert any(f"n = {n:,}" in s and "p95" in s for s in labels)
    p95 = details["ks"]["floor"]["p95"]
    levels = sorted(line.get_ydata()[0] for line in ax2.get_lines() if line.get_linestyle() == ":")
    assert levels == pytest.approx([-p95, p95])
    text = fig.axes[0].texts[0].get_text()
    assert f"n = {n:,}" in text
