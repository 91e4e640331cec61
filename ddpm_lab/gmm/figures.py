"""Figures of the GMM study. Each function returns a matplotlib Figure; the stage saves it.

All figures show the first coordinate when D > 1 (the exact marginal density is drawn).
"""

from __future__ import annotations

import matplotlib.pyplot as plt  # the stage chooses the backend (Agg) at its entry
import numpy as np
import pandas as pd

from ddpm_lab.core.diffusion import LOSS_UNITS
from ddpm_lab.core.sampling import REGISTRY
from ddpm_lab.gmm.mixture import GaussianMixture
from ddpm_lab.gmm.names import COLORS, EQ3, EQ12, HYBRID_COLORS, HYBRID_LABELS, HYBRIDS, MODEL_LOW, ORACLE
from ddpm_lab.gmm.names import LABELS as NAMES

TRUE = "black"
SMALL_PANEL_MAX_BINS = 40  # the forward-process panels are narrow: at most this many histogram bins


def _marginal_density(mixture: GaussianMixture, grid: np.ndarray) -> np.ndarray:
    """Exact density of coordinate 0 on grid: (G,)."""
    m = GaussianMixture(mixture.weights, mixture.means[:, :1], mixture.stds[:, :1])
    return np.exp(m.log_prob(grid[:, None]))


def _grid(mixture: GaussianMixture, pad: float = 4.0, n: int = 800) -> np.ndarray:
    lo = float(np.min(mixture.means[:, 0] - pad * mixture.stds[:, 0]))
    hi = float(np.max(mixture.means[:, 0] + pad * mixture.stds[:, 0]))
    return np.linspace(lo, hi, n)


def gmm_dist(mixture: GaussianMixture, train: np.ndarray, bins: int) -> plt.Figure:
    """The target: a histogram of the training draws under the exact density and its components."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    grid = _grid(mixture)
    ax.hist(
        train[:, 0],
        bins=bins,
        density=True,
        color="tab:blue",
        alpha=0.3,
        label=f"training draws (n = {train.shape[0]:,})",
    )
    for k in range(mixture.n_components):
        comp = (
            mixture.weights[k]
            * np.exp(-0.5 * ((grid - mixture.means[k, 0]) / mixture.stds[k, 0]) ** 2)
            / (np.sqrt(2 * np.pi) * mixture.stds[k, 0])
        )
        ax.plot(
            grid,
            comp,
            "--",
            lw=1,
            label=f"w={mixture.weights[k]:.2f} N({mixture.means[k, 0]:g}, {mixture.stds[k, 0]:g}²)",
        )
    ax.plot(grid, _marginal_density(mixture, grid), color=TRUE, lw=2, label="exact density p(x₀)")
    ax.set(xlabel="x₀", ylabel="density", title="The Gaussian-mixture target p(x₀)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def diffusion_process(
    mixture: GaussianMixture,
    alphas_cumprod: np.ndarray,
    paths: np.ndarray,
    times: list[int],
    bins: int,
    n_lines: int = 100,
) -> plt.Figure:
    """Forward diffusion. Top: forward trajectories x_0 -> x_T (Eq. 2). Bottom: histograms of x_t
    at chosen t under the exact marginal q(x_t) (Eq. 4 applied to the mixture)."""
    T = len(alphas_cumprod) - 1
    fig = plt.figure(figsize=(3.0 * len(times), 6.5))
    gs = fig.add_gridspec(2, len(times), height_ratios=[1.2, 1])
    ax = fig.add_subplot(gs[0, :])
    ax.plot(np.arange(T + 1), paths[:n_lines, :, 0].T, lw=0.5, alpha=0.5)
    for t in times:
        ax.axvline(t, color="gray", ls=":", lw=1)
    ax.set(
        xlabel="timestep t",
        ylabel="x_t",
        xlim=(0, T),
        title=f"Forward process: {min(n_lines, paths.shape[0])} of {paths.shape[0]:,} trajectories x₀ → x_T (Eq. 2)",
    )
    for i, t in enumerate(times):
        a = fig.add_subplot(gs[1, i])
        marg = mixture.marginal(float(alphas_cumprod[t]))
        grid = np.linspace(min(_grid(marg)[0], -4), max(_grid(marg)[-1], 4), 400)
        a.hist(
            paths[:, t, 0],
            bins=min(bins, SMALL_PANEL_MAX_BINS),
            density=True,
            color="tab:blue",
            alpha=0.35,
            label=f"x_t of all {paths.shape[0]:,} paths",
        )
        a.plot(grid, _marginal_density(marg, grid), color=TRUE, lw=1.5, label="exact q(x_t)")
        a.set(title=f"t = {t}  (ᾱ_t = {alphas_cumprod[t]:.3g})", xlabel="x_t")
        if i == 0:
            a.set_ylabel("density")
            a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def reverse_sampling(
    name: str,
    mixture: GaussianMixture,
    t: np.ndarray,
    path: np.ndarray,
    x0: np.ndarray,
    bins: int,
    sampler: str = "Algorithm 2",
) -> plt.Figure:
    """Reverse sampling (`sampler`: its description) from x_T to x_0: kept trajectories over t,
    coloured by the component each ends in, and the histogram of all final draws against the
    exact density."""
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [3, 1]}, sharey=True)
    end = mixture.assign(path[-1])
    cmap = plt.get_cmap("tab10")
    for j in range(path.shape[1]):
        ax.plot(t, path[:, j, 0], lw=0.5, alpha=0.45, color=cmap(end[j] % 10))
    for k in range(mixture.n_components):
        ax.plot([], [], color=cmap(k % 10), label=f"ends in component {k + 1} (mean {mixture.means[k, 0]:g})")
    ax.legend(fontsize=7, loc="upper left")
    ax.set(
        xlim=(t.max(), 0),
        xlabel="timestep t (sampling runs right, from T to 0)",
        ylabel="x_t",
        title=f"Reverse sampling: {sampler}; {NAMES[name]}, {path.shape[1]} trajectories",
    )
    grid = _grid(mixture)
    side.hist(
        x0[:, 0],
        bins=bins,
        density=True,
        orientation="horizontal",
        color=COLORS[name],
        alpha=0.5,
        label=f"x₀ draws (n = {x0.shape[0]:,})",
    )
    side.plot(_marginal_density(mixture, grid), grid, color=TRUE, lw=1.5, label="exact p(x₀)")
    side.set(xlabel="density", title="x₀")
    side.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def dist_comp(
    name: str,
    mixture: GaussianMixture,
    x0: np.ndarray,
    oracle_x0: np.ndarray,
    headline: dict,
    details: dict,
    bins: int,
    exact: dict[str, pd.DataFrame] | None = None,
) -> plt.Figure:
    """Generated vs true distribution: density (left) and CDF error (right) for the model and for
    the oracle sampler on the same seeds, x0 and oracle_x0 (n, D) the seeds' draws pooled, the n
    that every number of the figure uses: the distances to the truth as ratios to the median of
    exact samples of the same n, beside the 95th percentile of that floor, and in the CDF panel
    both the asymptotic 95% KS band at that n and the exact floor's p95 of KS. exact
    ({name: curve}, 1-D, the propagated output distributions of ddpm_lab.gmm.propagate.curve, rows
    x, density, cdf): drawn over both panels, free of sampling noise, with their exact distances."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 4.8))
    grid = _grid(mixture)
    n = x0.shape[0]
    ax.hist(x0[:, 0], bins=bins, density=True, color=COLORS[name], alpha=0.45, label=f"{NAMES[name]} draws")
    ax.hist(
        oracle_x0[:, 0],
        bins=bins,
        density=True,
        histtype="step",
        color=COLORS[ORACLE],
        label="oracle eps* draws (same seeds)",
    )
    ax.plot(grid, _marginal_density(mixture, grid), color=TRUE, lw=1.5, label="exact p(x₀)")
    exact = {k: c for k, c in (exact or {}).items() if len(c)}
    if name in exact:
        c = exact[name]
        ax.plot(
            c["x"], c["density"], color=COLORS[name], lw=1.2, ls="--", label=f"{NAMES[name]}: sampler output, exact"
        )
    ax.set(xlabel="x₀", ylabel="density", title=f"Generated vs true distribution, {NAMES[name]}")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.7)  # headroom for the legend and the numbers
    ax.legend(fontsize=8, loc="upper right")
    bound = details["expected_bound"]
    text = (
        f"all {details['n_seeds']} seeds pooled (n = {n:,}), vs exact CDF\n"
        f"W1 = {headline['w1_ratio']:.2f} × floor (exact p95: {headline['w1_p95']:.2f})\n"
        f"KS = {headline['ks_ratio']:.2f} × floor (exact p95: {headline['ks_p95']:.2f})\n"
        f"mode weights {np.round(details['mode']['mode_weights'], 3).tolist()}\n"
        f"  exact draws {np.round(details['mode']['assigned_weights_exact'], 3).tolist()}\n"
        f"  max error {headline['mode_err']:.4f} (exact p95: {headline['mode_p95']:.4f})\n"
        f"expected bound {bound['model']:.4f} nats (exact)\n"
        f"  oracle {bound['oracle']:.4f}, gap {bound['gap_to_oracle']:.4f}"
    )
    if "exact_w1_ratio" in headline:
        text += (
            "\nsampler output, exact (no sampling noise):\n"
            f"  W1 = {headline['exact_w1_ratio']:.2f} × floor, KS = {headline['exact_ks_ratio']:.2f} × floor\n"
            f"  KL(q‖p) = {headline['exact_kl']:.2e} nats, mode error {headline['exact_mode_err']:.4f}"
        )
    ax.text(
        0.02,
        0.97,
        text,
        transform=ax.transAxes,
        va="top",
        fontsize=7,
        family="monospace",
        bbox=dict(facecolor="white", alpha=0.8, edgecolor="lightgray"),
    )
    m1 = GaussianMixture(mixture.weights, mixture.means[:, :1], mixture.stds[:, :1])
    for data, key, style in ((x0, name, "-"), (oracle_x0, ORACLE, "--")):
        xs = np.sort(data[:, 0])
        ecdf = np.arange(1, xs.size + 1) / xs.size
        ax2.plot(xs, ecdf - m1.marginal_cdf(xs), style, color=COLORS[key], lw=1, label=NAMES[key])
    for key, style in ((name, "-"), (ORACLE, "--")):
        if key in exact:
            c = exact[key]
            ax2.plot(
                c["x"],
                c["cdf"] - m1.marginal_cdf(c["x"].to_numpy()),
                style,
                color=COLORS[key],
                lw=2.2,
                alpha=0.6,
                label=f"{NAMES[key]}: exact output CDF − exact CDF",
            )
    band = 1.36 / np.sqrt(n)
    ax2.axhspan(-band, band, color="gray", alpha=0.15, label=f"±1.36/√n (asymptotic 95% KS band, n = {n:,})")
    ks_p95 = details["ks"]["floor"]["p95"]
    for sign in (-1, 1):
        ax2.axhline(
            sign * ks_p95,
            color="gray",
            ls=":",
            lw=1.2,
            label=f"±p95 of KS over exact samples of n = {n:,} (the floor)" if sign > 0 else None,
        )
    ax2.axhline(0, color=TRUE, lw=0.8)
    ax2.set(xlabel="x₀", ylabel="empirical CDF − exact CDF", title="CDF error (its largest |value| is KS)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def loss_curve(
    name: str, history: pd.DataFrame, floor: float, units: str, smooth: int, expected: float | None = None
) -> plt.Figure:
    """Training loss per logged step, its moving average over `smooth` rows, the floor (the
    expected loss of the exact eps*, the best any network can reach) and, when given, the saved
    EMA model's exact expected loss (floor + its weighted excess error, computed by quadrature)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(history["step"], history["loss"], color=COLORS[name], alpha=0.3, lw=0.8, label="logged loss")
    smoothed = history["loss"].rolling(smooth, min_periods=1).mean()
    ax.plot(history["step"], smoothed, color=COLORS[name], lw=2, label=f"moving average ({smooth} rows)")
    ax.axhline(floor, color=TRUE, ls="--", lw=1.5, label=f"floor: expected loss of exact eps* = {floor:.4f}")
    if expected is not None:
        last = history["step"].iloc[-1]
        ax.plot(
            [last],
            [expected],
            marker="*",
            ms=14,
            color="crimson",
            ls="none",
            zorder=5,
            label=f"saved EMA model, exact expected loss = {expected:.4f} (floor + {expected - floor:.4f})",
        )
    lo, hi = np.percentile(history["loss"], [1, 95])
    ax.set_ylim(min(lo, floor) - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
    title = {EQ12: "Noise-prediction loss (Eq. 12 / 14)", EQ3: "Variational bound on trajectories (Eq. 3)"}
    ax.set(xlabel="optimiser step", ylabel=f"loss [{units}]", title=f"{title[name]}: training curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bound_curves(runs: dict[str, tuple[pd.DataFrame, dict]], smooth: int) -> plt.Figure:
    """The training losses that estimate the bound (Eq. 3's estimators, and Eq. 12 with its
    constants added), in nats on one axis, against network evaluations (the cost), with one floor:
    the oracle's bound. runs: name -> (loss history, the training stage's details JSON); a run
    whose units are not the bound's (Eq. 14) is left out and named in the title."""
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    left_out, floor, lows, highs = [], None, [], []
    for name, (history, fit) in runs.items():
        if fit["units"] != LOSS_UNITS["bound"]:
            left_out.append(f"{NAMES[name]} ({fit['weighting']}: not the bound)")
            continue
        per_step = fit["network_evaluations"] / fit["steps"]
        cost = history["step"] * per_step
        smoothed = history["loss"].rolling(smooth, min_periods=1).mean()
        label = f"{NAMES[name]} ({fit['weighting']}, {per_step:,.0f} evaluations per step)"
        ax.plot(cost, smoothed, color=COLORS[name], lw=2, label=f"{label}: moving average ({smooth} rows)")
        ax.plot(
            [cost.iloc[-1]],
            [fit["saved_model_expected_loss"]],
            marker="*",
            ms=14,
            color=COLORS[name],
            ls="none",
            markeredgecolor="black",
            zorder=5,
            label=f"saved {NAMES[name]}: exact expected bound {fit['saved_model_expected_loss']:.4f} "
            f"(gap {fit['saved_model_excess_loss']:.4f})",
        )
        floor = fit["loss_floor"]
        lows.append(smoothed.min())
        highs.append(np.percentile(smoothed, 90))
    if floor is not None:
        ax.axhline(floor, color=TRUE, ls="--", lw=1.5, label=f"floor: the oracle eps*'s expected bound = {floor:.4f}")
        lo, hi = min(lows + [floor]), max(highs)
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.1 * (hi - lo))
    ax.set(
        xscale="log",
        xlabel="network evaluations so far (steps x evaluations per step)",
        ylabel="loss [nats of the bound, Eq. 5]",
        title="Training objectives on one axis: estimates of the bound on -log p(x0)"
        + (f"\n(left out: {'; '.join(left_out)})" if left_out else ""),
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def eps_error_by_t(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Where each model loses the bound. Left: its excess error e_t = E||eps_theta - eps*||^2 over
    the exact q(x_t), beside the least error any predictor can reach, mmse_t. Right: the running
    sum over t of w_t e_t (Eq. 12 weights): the model's gap to the oracle's bound, in nats,
    accumulated from t = 1. tables: name -> the training stage's eps_error CSV (t, mmse, eps_error, ...)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12.5, 4.6))
    first = next(iter(tables.values()))
    ax.plot(first["t"], first["mmse"], color=TRUE, ls="--", lw=1.5, label="mmse_t: least error of any predictor")
    for name, tab in tables.items():
        band = tab["eps_error_err"]
        ax.plot(tab["t"], tab["eps_error"], color=COLORS[name], lw=1.5, label=f"e_t of the {NAMES[name]}")
        if band.max() > 0:
            ax.fill_between(
                tab["t"],
                (tab["eps_error"] - band).clip(lower=1e-300),
                tab["eps_error"] + band,
                color=COLORS[name],
                alpha=0.2,
                lw=0,
            )
        cum = np.cumsum(tab["weight_eq12"] * tab["eps_error"])
        ax2.plot(tab["t"], cum, color=COLORS[name], lw=2, label=f"{NAMES[name]}: gap {cum.iloc[-1]:.4f} nats at t = T")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="timestep t",
        ylabel="squared error of the noise prediction",
        title="Excess error e_t = E‖ε_θ(x_t, t) − ε*(x_t, t)‖² under the exact q(x_t)",
    )
    ax.legend(fontsize=8)
    ax2.set(
        xscale="log",
        xlabel="timestep t",
        ylabel="Σ_{s ≤ t} w_s e_s  [nats]",
        title="Cumulative gap to the oracle's bound (Eq. 5 weights w_t)",
    )
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def tradeoff_stats() -> dict[str, str]:
    """Column of the sampler_tradeoff table -> the y-axis label of its row of panels: every
    registered statistic (ddpm_lab/gmm/distances.py), then the mode error."""
    from ddpm_lab.gmm.distances import STATISTICS  # scipy: only when the sweep ran

    return {name: st.axis for name, st in STATISTICS.items()} | {
        "mode": "max mode-weight error\n(vs the assignment rule)"
    }


def _stat_columns(stat: str) -> tuple[str, str, str]:
    """The (value, floor p05, floor p95) columns of a statistic of the sweep tables."""
    if stat == "mode":
        return "mode_err", "mode_p05", "mode_p95"
    return f"{stat}_ratio", f"{stat}_p05", f"{stat}_p95"


def _floor_band(ax, first: pd.Series, stat: str, band_label: str, median_label: str) -> None:
    """The floor's 5-95% band shaded and, for the ratios, its median (1) dashed."""
    _, lo, hi = _stat_columns(stat)
    ax.axhspan(first[lo], first[hi], color="gray", alpha=0.2, lw=0, label=band_label)
    if stat != "mode":
        ax.axhline(1.0, color="gray", ls="--", lw=1, label=median_label)


def _quality_curve(ax, rows: pd.DataFrame, x: str, stat: str, style: str, color: str, label: str) -> None:
    """One curve of a statistic against x, a filled marker inside the floor's band, an open one outside."""
    value = _stat_columns(stat)[0]
    ax.plot(rows[x], rows[value], style, color=color, lw=1.5, label=label)
    inside = rows[f"{stat}_inside"].to_numpy(dtype=bool)
    ax.plot(rows[x][inside], rows[value][inside], "o", color=color, ms=6)
    ax.plot(rows[x][~inside], rows[value][~inside], "o", mfc="white", color=color, ms=6)


def _legend_with_markers(fig, ax, ncol: int) -> None:
    """The figure's legend: ax's entries, then what the filled and open markers mean."""
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        plt.Line2D([], [], ls="none", marker="o", color="gray"),
        plt.Line2D([], [], ls="none", marker="o", mfc="white", color="gray"),
    ]
    labels += ["inside the band", "outside the band"]
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)


def sampler_tradeoff(table: pd.DataFrame, T: int, n_seeds: int, n: int, floor_draws: int) -> plt.Figure:
    """Quality against the network evaluations per draw (NFE: the steps S, 2 S - 1 for Heun), one column
    per sampler, one row per statistic: the oracle eps* (its error is the discretisation alone)
    beside the Eq. 12 model (network + discretisation), the floor's 5-95% band shaded, its median
    dashed. A filled marker lies inside the band, an open one outside.
    table: the stage's details (columns model, sampler, steps, <stat>, <stat>_ratio,
    <stat>_p05, <stat>_p95, mode_err, mode_p05, mode_p95, ...)."""
    samplers = list(dict.fromkeys(table["sampler"]))
    labels = tradeoff_stats()
    stats = [s for s in labels if s == "mode" or f"{s}_ratio" in table.columns]
    fig, axes = plt.subplots(
        len(stats),
        len(samplers),
        figsize=(5.6 * len(samplers) + 0.6, 2.9 * len(stats) + 1.4),
        sharey="row",
        squeeze=False,
    )
    for j, sampler in enumerate(samplers):
        part = table[table["sampler"] == sampler]
        nfes = sorted(set(part["nfe_per_draw"]))  # this sampler's: Heun's are 2 S - 1
        for i, stat in enumerate(stats):
            ax = axes[i, j]
            value, lo, hi = _stat_columns(stat)
            _floor_band(
                ax,
                part.iloc[0],
                stat,
                f"exact sampler, same n: 5-95% of {floor_draws} draws",
                "exact sampler: median (ratio 1)",
            )
            for name, style in ((ORACLE, "--"), (EQ12, "-")):
                what = "discretisation error only" if name == ORACLE else "network + discretisation"
                rows = part[part["model"] == name].sort_values("nfe_per_draw")
                _quality_curve(ax, rows, "nfe_per_draw", stat, style, COLORS[name], f"{NAMES[name]}: {what}")
            if (table[value] > 0).all() and (table[[lo, hi]].to_numpy() > 0).all():
                ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_xticks(nfes)
            ax.set_xticklabels([str(s) for s in nfes], fontsize=7 if len(nfes) > 8 else None)
            ax.set_xlim(min(table["nfe_per_draw"]) / 1.2, max(table["nfe_per_draw"]) * 1.2)  # one scale for all
            ax.minorticks_off()
            ax.grid(alpha=0.3, which="major")
            if i == 0:
                ax.set_title(REGISTRY[sampler].label if sampler in REGISTRY else sampler, fontsize=10)
            if j == 0:
                ax.set_ylabel(labels[stat], fontsize=9)
            if i == len(stats) - 1:
                ax.set_xlabel("network evaluations per draw, NFE (log scale)")
    _legend_with_markers(fig, axes[0, 0], ncol=3)
    height = fig.get_figheight()
    fig.suptitle(
        f"Sample quality against network evaluations per draw (diffusion T = {T}); "
        f"{n_seeds} seeds x {n:,} draws pooled per point, against the exact mixture\n"
        f"each distance divided by the median of the same distance on exact samples of the same n "
        f"(the floor); shaded: the floor's 5-95% band",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.55 / height, 1, 1 - 0.5 / height))
    return fig


def hybrid_oracle(table: pd.DataFrame, T: int, n_seeds: int, n: int, floor_draws: int) -> plt.Figure:
    """The hybrid-oracle diagnostic (ddpm_lab.gmm.hybrid): sample quality against the switch
    point t0, one row per statistic, both hybrids on one axis, the floor's 5-95% band shaded. A
    filled marker lies inside the band, an open one outside.
    table: hybrid.hybrid_table's rows (columns hybrid, t0, <stat>_ratio, <stat>_p05, ...)."""
    labels = tradeoff_stats()
    stats = [s for s in labels if s == "mode" or f"{s}_ratio" in table.columns]
    fig, axes = plt.subplots(len(stats), 1, figsize=(8.4, 2.7 * len(stats) + 1.6), sharex=True, squeeze=False)
    for i, stat in enumerate(stats):
        ax = axes[i, 0]
        _floor_band(ax, table.iloc[0], stat, f"floor: 5-95% of {floor_draws} exact draws", "floor median (ratio 1)")
        for kind in HYBRIDS:
            rows = table[table["hybrid"] == kind].sort_values("t0")
            style = "-" if kind == MODEL_LOW else "--"
            _quality_curve(ax, rows, "t0", stat, style, HYBRID_COLORS[kind], HYBRID_LABELS[kind])
            exact = "exact_mode_err" if stat == "mode" else f"exact_{stat}_ratio"
            if exact in rows.columns:  # the propagated output (1-D): no sampling noise
                ax.plot(
                    rows["t0"],
                    rows[exact],
                    style,
                    color=HYBRID_COLORS[kind],
                    lw=3,
                    alpha=0.35,
                    label=f"{HYBRID_LABELS[kind]}: exact output",
                )
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, T)
        ax.grid(alpha=0.3)
        ax.set_ylabel(labels[stat], fontsize=9)
    axes[-1, 0].set_xlabel(f"t0: the switch point (symlog scale; t0 = 0 and t0 = T = {T} are the pure samplers)")
    _legend_with_markers(fig, axes[0, 0], ncol=2)
    height = fig.get_figheight()
    fig.suptitle(
        f"Where in t the Eq. 12 model loses the distribution: Algorithm 2 with the model on one side of t0\n"
        f"and the exact eps* on the other; {n_seeds} seeds x {n:,} draws pooled per point, distances divided "
        f"by the floor's median",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 1.1 / height, 1, 1 - 0.5 / height))
    return fig
