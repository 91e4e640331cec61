"""The report of benchmarks/bench_estimators.py: its table, the README's rows and the figure of
each Eq. 3 estimator's exact gap against the training stage's wall time."""

from __future__ import annotations

from pathlib import Path

if __package__:  # benchmarks.estimator_report, as python -m benchmarks.bench_estimators imports it
    from . import estimator_runs
    from . import harness
else:  # estimator_report, as python benchmarks/bench_estimators.py imports it (its folder first on the import path)
    import estimator_runs
    import harness


def print_table(runs: list[estimator_runs.Run], eq12: dict, W: float, dist12: dict | None) -> None:
    """Every run beside the Eq. 12 reference, each with the command that reproduces it."""
    head = f"{'estimator':<28} {'batch':>5} {'thr':>3} {'steps':>6} {'evals/step':>10} {'budget':>6} {'wall':>8}  exact gap (nats)"
    print(head)
    print("-" * len(head))
    print(
        f"{'Eq. 12 (reference)':<28} {eq12['batch']:>5} {eq12['threads']:>3} {eq12['steps']:>6} {eq12['batch']:>10,} "
        f"{'1x':>6} {W:>7.1f}s  {eq12['gap']:.5f} +- {eq12['gap_err']:.0e}"
    )
    print(f"    {eq12['command']}")
    for r in runs:
        print(
            f"{r.label:<28} {r.batch:>5} {r.threads:>3} {r.steps:>6} {r.evals_per_step:>10,} {f'{r.budget:g}x':>6} "
            f"{r.wall_s:>7.1f}s  {r.gap_text()}"
        )
        print(f"    {r.command}")
        if r.sampled:
            s = r.sampled
            print(
                f"    sampled: W1 / floor {s['w1_ratio']:.2f} (p95 {s['w1_p95']:.2f}), KS / floor {s['ks_ratio']:.2f} "
                f"(p95 {s['ks_p95']:.2f}), mode error {s['mode_err']:.4f}; Eq. 12: W1 / floor "
                f"{dist12['w1_ratio']:.2f}, KS / floor {dist12['ks_ratio']:.2f}"
            )
            print(f"    {r.sample_command}")


def rows(
    runs: list[estimator_runs.Run], eq12: dict, W: float, W_plan: float, W_after: float | None, dist12: dict | None
) -> list[harness.Row]:
    """The README's rows: W, the Eq. 12 gap, each configuration's gaps at its budgets, the sampled
    runs (the target's row, last, is the caller's)."""
    out = [
        harness.Row(
            "train_eq12 stage (default params): wall time W",
            f"{W:.1f} s" + (f" (mean of {W_plan:.1f} s before, {W_after:.1f} s after)" if W_after else ""),
        ),
        harness.Row("Eq. 12 model: exact expected-bound gap to the oracle", f"{eq12['gap']:.5f} nats"),
    ]
    for label in dict.fromkeys(r.label for r in runs):
        rs = [r for r in runs if r.label == label]
        r0 = rs[0]
        gaps = " / ".join(f"{r.gap:.4f}" if r.gap is not None else "failed" for r in rs)
        walls = " / ".join(f"{r.wall_s:.0f}" for r in rs)
        out.append(
            harness.Row(
                f"{label} (batch {r0.batch}, {r0.evals_per_step:,} evals/step): gap at "
                f"{' / '.join(f'{r.budget:g}x' for r in rs)} W",
                f"{gaps} nats ({walls} s)",
            )
        )
    for r in runs:
        if r.sampled:
            s = r.sampled
            out.append(
                harness.Row(
                    f"{r.label}, {r.budget:g}x W: sampled W1 / KS over the exact-sample floor's median",
                    f"{s['w1_ratio']:.2f} / {s['ks_ratio']:.2f} (Eq. 12: {dist12['w1_ratio']:.2f} / "
                    f"{dist12['ks_ratio']:.2f}; floor p95 {s['w1_p95']:.2f} / {s['ks_p95']:.2f})",
                )
            )
    return out


def plot(
    runs: list[estimator_runs.Run],
    W: float,
    eq12: dict,
    budgets,
    overhead: float,
    target: tuple,
    path: Path,
    title: str,
) -> None:
    """Each configuration's exact gap against its stage's wall time, Eq. 12 as the reference;
    target: (gap in nats, budget in W)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ddpm_lab.runtime.io import png_writer

    target_gap, target_budget = target
    fig, ax = plt.subplots(figsize=(8.4, 6.6))
    markers = "osD^v<>p"
    for i, label in enumerate(dict.fromkeys(r.label for r in runs)):
        rs = sorted((r for r in runs if r.label == label and r.gap is not None), key=lambda r: r.steps)
        if not rs:
            continue
        r0 = rs[0]
        desc = (
            f"{label}: batch {r0.batch}, {r0.evals_per_step:,} evals/step, {'/'.join(str(r.steps) for r in rs)} steps"
        )
        ax.plot([r.wall_s for r in rs], [max(r.gap, 1e-6) for r in rs], marker=markers[i % len(markers)], label=desc)
    ax.plot(
        [W],
        [eq12["gap"]],
        marker="*",
        markersize=16,
        color="black",
        linestyle="none",
        label=f"Eq. 12 (train_eq12 default: {eq12['steps']} steps x {eq12['batch']}), the reference",
    )
    ax.axhline(target_gap, color="red", linestyle="--", linewidth=1, label=f"target: gap {target_gap} nats")
    for k in budgets:
        ax.axvline(k * W, color="grey", linestyle=":", linewidth=1)
        ax.text(k * W, 0.99, f" {k:g}x W", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="grey")
    ax.axvspan(
        0,
        target_budget * W,
        color="green",
        alpha=0.06,
        label=f"the target's budget: within {target_budget}x W = {target_budget * W:.0f} s",
    )
    ax.axvspan(
        0,
        overhead,
        color="grey",
        alpha=0.12,
        label=f"fixed cost of a train stage, ~{overhead:.0f} s (imports, data, exact measurement)",
    )
    ax.set_xlim(0, None)
    ax.set_yscale("log")
    ax.set_xlabel(f"wall time of the training stage (s); W = {W:.1f} s, the default train_eq12 stage")
    ax.set_ylabel("exact expected-bound gap to the oracle eps* (nats)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, frameon=False)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    png_writer(fig, 110)(path)
    plt.close(fig)
