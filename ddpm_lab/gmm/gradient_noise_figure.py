"""The figure of stage estimator_variance: the gradient noise of the bound's estimators per network
evaluation, at each parameter point (ddpm_lab.gmm.gradient_noise). Returns a matplotlib Figure;
the stage saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt  # the stage chooses the backend (Agg) at its entry
import numpy as np
import pandas as pd

from ddpm_lab.gmm.gradient_noise import POINT_STYLE, POINTS, REFERENCE, Estimator


def estimator_variance(table: pd.DataFrame, ests: list[Estimator], T: int, M: int) -> plt.Figure:
    """Top: cost (trace x evaluations per minibatch, log scale) per estimator at each point, with
    +-1 SE bars. Bottom: the squared distance of each mean gradient to trajectory_kl's, over its
    expectation if equal, with the 5-95% range of that ratio if equal (chi^2_k / k) as its bar."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 8.6), sharex=True, height_ratios=[1.6, 1])
    x = np.arange(len(ests))
    offsets = np.linspace(-0.22, 0.22, len(POINTS))
    for (point, label), dx in zip(POINTS.items(), offsets):
        color, marker = POINT_STYLE[point]
        part = table[table["point"] == point].set_index("estimator").loc[[e.name for e in ests]]
        v, e = part["cost"].to_numpy(), part["cost_se"].to_numpy()
        lower = np.minimum(e, 0.9 * v)  # a log axis: the bar stops above 0
        top.errorbar(x + dx, v, yerr=[lower, e], fmt=marker, color=color, ms=6, capsize=3, lw=1.2, label=label)
        drawn = part.index != REFERENCE
        xs, ratio = (x + dx)[drawn], part["dist2_ratio"].to_numpy()[drawn]
        bottom.vlines(
            xs, part["dist2_p05"].to_numpy()[drawn], part["dist2_p95"].to_numpy()[drawn], color=color, lw=3, alpha=0.3
        )
        bottom.plot(xs, ratio, marker, color=color, ms=6, ls="none")
    top.set_yscale("log")
    top.set_ylabel(
        "trace of the gradient covariance\n× network evaluations per minibatch\n"
        "(cost of one unit of gradient precision; lower is cheaper)",
        fontsize=9,
    )
    top.set_title(
        f"Gradient noise of the bound's estimators, per network evaluation (diffusion T = {T}; "
        f"{M} minibatches per estimate; bars ±1 SE, jackknife)",
        fontsize=10,
    )
    top.legend(fontsize=8, loc="best", title="parameter point", title_fontsize=8)
    one = bottom.axhline(1.0, color="black", ls="--", lw=1)
    ref = [e.name for e in ests].index(REFERENCE)
    bottom.text(
        ref,
        1.0,
        "reference\n(not drawn)",
        ha="center",
        va="center",
        fontsize=8,
        color="dimgray",
        bbox=dict(facecolor="white", edgecolor="none"),
    )
    bottom.set_yscale("log")
    bottom.set_ylabel(
        f"‖mean grad − {REFERENCE} mean grad‖²\n/ its expectation if equal\n(bars: 5-95% range if equal)", fontsize=9
    )
    bottom.set_title(
        f"Check: every estimator estimates the gradient {REFERENCE} estimates "
        f"(independent minibatches; about 1 if so, far above 1 if not)",
        fontsize=10,
    )
    band = plt.Line2D([], [], color="gray", lw=3, alpha=0.3)
    bottom.legend(
        [one, band],
        [
            "1: the expectation if the mean gradients are equal",
            "5-95% range of the ratio if equal (chi² / dof, Satterthwaite)",
        ],
        fontsize=8,
        loc="lower left",
    )
    bottom.set_xticks(x)
    bottom.set_xticklabels([e.label() for e in ests], fontsize=8)
    bottom.set_xlabel(
        "estimator of the bound's gradient (rows per minibatch: "
        + ", ".join(f"{f} {r}" for f, r in dict.fromkeys((e.family.replace("_kl", " KL"), e.rows) for e in ests))
        + ")",
        fontsize=9,
    )
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="major", axis="y")
    fig.tight_layout()
    return fig
