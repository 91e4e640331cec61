"""The outputs of an opt-in study that was not run: a figure and a details CSV that say so, why,
and the command that runs it (stages sampler_tradeoff and estimator_variance, off by default)."""

from __future__ import annotations


def not_run_figure(title: str, reason: str, how: str):
    """A figure saying that a study was not run, why, and the command that runs it."""
    from matplotlib.figure import Figure  # not pyplot: its import would add half a second, and nothing to close

    fig = Figure(figsize=(8, 2.6))
    fig.text(0.5, 0.74, f"{title}: not run", ha="center", va="center", fontsize=13, weight="bold")
    fig.text(
        0.5,
        0.36,
        "\n".join([reason, "To run it:", how]),
        ha="center",
        va="center",
        fontsize=10,
        family="monospace",
        linespacing=1.6,
    )
    return fig


def not_run_details(how: str, flag: str = "enabled") -> bytes:
    """The details CSV of a disabled study: one row, `<flag>` false and the command that runs it."""
    return f"{flag},how_to_{'enable' if flag == 'enabled' else 'run'}\nfalse,{how}\n".encode()
