"""The rows of benchmarks/bench_recipes.py: its CSV (one row per run, appended as each finishes),
the summary table per candidate and the figure of quality against training time."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

if __package__:  # benchmarks.recipe_table, as python -m benchmarks.bench_recipes imports it
    from .recipe_runs import FLOOR_N, W1_RATIO_TARGET, Floor
else:  # recipe_table, as python benchmarks/bench_recipes.py imports it (its folder first on the import path)
    from recipe_runs import FLOOR_N, W1_RATIO_TARGET, Floor

COLUMNS = [
    "candidate",
    "replicate",
    "overrides",
    "seed",
    "train_seconds",
    "run_seconds",
    "measure_seconds",
    "bound_gap",
    "bound_gap_mid",
    "kl",
    "kl_err",
    "w1",
    "w1_err",
    "ks",
    "ks_err",
    "mode_err",
    "mode_err_err",
    "mode_weights",
    "assigned_weights",
    "w1_ratio",
    "ks_ratio",
    "meets",
    "w1_data",
    "ks_data",
    "mode_err_data",
    "sampled_w1_ratio",
    "sampled_ks_ratio",
    "sampled_mode_err",
    "sampled_inside",
]


def read_rows(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict) -> None:
    new = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    if not new:
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if header != COLUMNS:  # rows of an older version of this file: rewritten under the new header
            old = read_rows(path)
            with path.open("w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
                w.writeheader()
                w.writerows({k: r.get(k, "") for k in COLUMNS} for r in old)
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(row)


def mean_se(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan


def summary(rows: list[dict], names: list[str], floor: Floor) -> str:
    """Per candidate: mean +- SE over its replicates, the max of the ratios, the replicates meeting
    all targets (judged again here, against `floor`)."""
    head = (
        f"{'candidate':<22} {'n':>2} {'train s':>12} {'bound gap':>16} {'W1 ratio':>14} {'max':>5} "
        f"{'KS ratio':>14} {'max':>5} {'mode err':>16} {'max':>6} {'meets':>5}"
    )
    lines = [head, "-" * len(head)]
    for name in names:
        rs = [r for r in rows if r["candidate"] == name]
        if not rs:
            continue

        def col(key):
            return [float(r[key]) for r in rs]

        def ms(key, fmt):
            m, s = mean_se(col(key))
            return f"{m:{fmt}}+-{s:{fmt}}" if not math.isnan(s) else f"{m:{fmt}}"

        meets = sum(floor.meets(float(r["w1_ratio"]), float(r["ks_ratio"]), float(r["mode_err"])) for r in rs)
        lines.append(
            f"{name:<22} {len(rs):>2} {ms('train_seconds', '.1f'):>12} {ms('bound_gap', '.5f'):>16} "
            f"{ms('w1_ratio', '.2f'):>14} {max(col('w1_ratio')):>5.2f} {ms('ks_ratio', '.2f'):>14} "
            f"{max(col('ks_ratio')):>5.2f} {ms('mode_err', '.4f'):>16} {max(col('mode_err')):>6.4f} "
            f"{meets:>2}/{len(rs)}"
        )
    return "\n".join(lines)


def tradeoff_figure(rows: list[dict], names: list[str], drawn: dict, title: str):
    """Quality against training time, per candidate: the exact W1 and KS ratios (mean +- SE over
    the replicates, x the worst) against the mean seconds of the training loop (one thread), the
    stable-target candidates apart from the sampled-target ones, the target (0.5) and the training
    draws' own distance from the truth drawn across."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for ax, key, label in ((axes[0], "w1_ratio", "exact W1"), (axes[1], "ks_ratio", "exact KS")):
        for name in names:
            rs = [r for r in rows if r["candidate"] == name]
            if not rs:
                continue
            x = float(np.mean([float(r["train_seconds"]) for r in rs]))
            m, se = mean_se([float(r[key]) for r in rs])
            stable = "stable" in rs[0]["overrides"]
            color = "tab:blue" if stable else "tab:gray"
            ax.errorbar(x, m, yerr=0 if math.isnan(se) else se, fmt="o", color=color, capsize=3)
            ax.plot(x, max(float(r[key]) for r in rs), "x", color=color)
            if key == "w1_ratio":  # the same x in both panels: names on the first only
                ax.annotate(name, (x, m), textcoords="offset points", xytext=(5, 3), fontsize=7, color=color)
        ax.axhline(W1_RATIO_TARGET, ls="--", color="tab:red", lw=1, label="target: 0.5 x floor median")
        ax.axhline(drawn[key], ls=":", color="k", lw=1, label="the training draws themselves")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("training loop, seconds (1 thread)")
        ax.set_ylabel(f"{label} / floor median at n = {FLOOR_N:,}")
        ax.grid(alpha=0.3, which="both")
    axes[0].plot([], [], "o", color="tab:blue", label="stable target (mean +- SE)")
    axes[0].plot([], [], "o", color="tab:gray", label="sampled target (mean +- SE)")
    axes[0].plot([], [], "x", color="k", label="worst replicate")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
