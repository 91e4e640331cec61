"""ddpm_lab.runtime.stats (the statistics helpers in one place) against brute force, and
ddpm_lab.runtime.io.png_writer (the one PNG writer of the figures)."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

from ddpm_lab.runtime.io import png_writer, write_outputs
from ddpm_lab.runtime.stats import band, in_band, jackknife_se, mean_se, ratio_se, weighted_sum


def test_mean_se_and_band():
    assert mean_se([1.0, 2.0, 3.0, 6.0]) == pytest.approx((3.0, np.std([1, 2, 3, 6], ddof=1) / 2))
    assert mean_se([5.0]) == (5.0, None)
    with pytest.raises(ValueError):
        mean_se([])
    b = band(np.arange(101.0))
    assert b == {"median": 50.0, "p05": 5.0, "p95": 95.0}
    assert in_band(b, 5.0) and in_band(b, 95.0) and in_band(b, 50) and not in_band(b, 96) and not in_band(b, 95.01)
    assert in_band(b, 4.99) and in_band(b, 0.0)  # one-sided: at or below p95, lower is better
    assert isinstance(in_band(b, np.float64(50.0)), bool)


def test_jackknife_se_of_the_mean_is_its_standard_error():
    # For the mean, the jackknife standard error is exactly std (ddof 1) / sqrt(M).
    x = np.random.default_rng(0).normal(size=12)
    loo = np.array([np.delete(x, i).mean() for i in range(x.size)])
    assert jackknife_se(loo) == pytest.approx(mean_se(x)[1], rel=1e-12)
    assert jackknife_se(np.full(5, 2.0)) == 0.0


def test_ratio_se_adds_relative_errors_in_quadrature():
    r, se = ratio_se(30.0, 3.0, 2.0, 0.4)
    assert r == 15.0 and se == pytest.approx(15.0 * math.hypot(0.1, 0.2))
    # By simulation: independent normal estimates, small relative errors.
    rng = np.random.default_rng(1)
    a, b = rng.normal(30.0, 0.3, 200_000), rng.normal(2.0, 0.04, 200_000)
    assert np.std(a / b) == pytest.approx(ratio_se(30.0, 0.3, 2.0, 0.04)[1], rel=0.02)


def test_weighted_sum_adds_bounds_linearly_and_standard_errors_in_quadrature():
    w, v, err = np.array([1.0, -2.0]), np.array([3.0, -4.0]), np.array([0.3, 0.4])
    assert weighted_sum(w, v, err, monte_carlo=False) == pytest.approx((11.0, 1.1))
    assert weighted_sum(w, v, err, monte_carlo=True) == pytest.approx((11.0, math.hypot(0.3, 0.8)))


def test_png_writer_with_and_without_the_version_stamp(tmp_path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    write_outputs({tmp_path / "plain.png": png_writer(fig, 40), tmp_path / "stamped.png": png_writer(fig, 40, True)})
    plain, stamped = (tmp_path / "plain.png").read_bytes(), (tmp_path / "stamped.png").read_bytes()
    assert plain[:8] == stamped[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"matplotlib" not in plain.lower() and b"matplotlib" in stamped.lower()
    # The same bytes as savefig with the same arguments: the writer adds nothing of its own.
    fig.savefig(tmp_path / "direct.png", format="png", dpi=40, metadata={"Software": None})
    assert (tmp_path / "direct.png").read_bytes() == plain
    png_writer(fig, 40)(str(tmp_path / "again.png"))
    assert (tmp_path / "again.png").read_bytes() == plain  # no date, no version: the same bytes on rerun
    plt.close(fig)
