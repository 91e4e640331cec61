"""The verdicts of `ddpm-lab compare` as a terminal table, JSON and a self-contained HTML page.

Each prints the guarantee of the verdicts with its conditions (`conditions`): symmetric (the
t test's Gaussian model) paired differences, shared seeds per replicate, and the number of
replicates fixed before looking, or, under a sequential plan, prefix looks with N declared in
advance. The rows are `ddpm_lab.tools.verdicts.rows`.
"""

from __future__ import annotations

import html
import textwrap

from ddpm_lab.tools.runs import Variant
from ddpm_lab.tools.verdicts import ALPHA, LEVEL, POWER, rows

WIDTH = 120


def conditions(sequential: int | None = None) -> str:
    """The conditions under which the family-wise rate holds, printed with every guarantee (text,
    JSON and HTML); docs/variants.md measures what happens when one fails."""
    looks = (
        f"every look is a prefix of one fixed order, replicate ids 0..n-1 (a gap is refused), and N = {sequential} "
        "was declared before the first"
        if sequential
        else "the number of replicates was fixed before looking"
    )
    return (
        "Conditions: each metric's paired differences are symmetric about their mean (the t test's Gaussian "
        "model; equal means with differently skewed replicate distributions break the rate), replicate r of "
        f"every variant shares its seeds, and {looks}."
    )


def guarantee(
    table_rows: list[dict], alpha: float = ALPHA, primary: str | None = None, sequential: int | None = None
) -> str:
    """What the verdicts guarantee, in one paragraph."""
    m = sum(r["tested"] for r in table_rows)
    family = f"the {m} tests of {primary} (declared primary)" if primary else f"all {m} tests of this table"
    text = (
        f"Verdicts: Holm's step-down procedure over {family}; the chance that any 'differs' is false when no "
        f"variant differs is at most {100 * alpha:g}%. paired: the replicate-matched differences (one-sample t); "
        "Welch: unpaired (fewer than 2 matched replicates). p raw/adj: the test's p-value and Holm's adjusted one. "
    )
    if sequential:
        text += (
            f"Sequential plan, at most {sequential} pairs per variant declared in advance: the verdicts stay valid "
            f"however replicates are added and looked at, one at a time, up to {sequential}."
        )
    else:
        text += (
            "Valid for a number of replicates fixed before looking: to add replicates until a verdict appears, "
            "declare a maximum first and compare with --sequential N."
        )
    return (
        text + " 'not shown' is no evidence of equality; the intervals are raw, for reading. " + conditions(sequential)
    )


def _g(x: float) -> str:
    return f"{x:.4g}"


def _cells(r: dict) -> tuple[str, ...]:
    """A row of the terminal table."""
    mean = f"{_g(r['mean'])} +- {r['half']:.2g}" if r["half"] is not None else f"{_g(r['mean'])} (n=1, no CI)"
    if r["id"] == "v0":
        diff = "(baseline)"
    elif r["interval"] is None:
        diff = "(no test)"
    else:
        diff = f"{r['diff']:.3g} [{r['interval'][0]:.3g}, {r['interval'][1]:.3g}]"
    p = "" if r["p"] is None else f"{r['p']:.2g}/" + ("-" if r["p_adj"] is None else f"{r['p_adj']:.2g}")
    return r["metric"], r["id"], str(r["n"]), mean, diff, p, r["verdict"]


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def table(
    variants: list[Variant],
    level: float = LEVEL,
    width: int = WIDTH,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
) -> str:
    """The terminal table (every line at most `width` characters) and a legend of the variants."""
    pct = f"{100 * level:g}%"
    table_rows = rows(variants, level, alpha, primary, sequential)
    head = ("metric", "v", "n", f"mean +- {pct} CI", f"diff vs v0 [{pct} CI]")
    head += ("seq. p raw/adj", f"verdict (plan: <= {sequential} pairs)") if sequential else ("p raw/adj", "verdict")
    body = [head] + [_cells(r) for r in table_rows]
    widths = [max(len(line[c]) for line in body) for c in range(len(head))]
    lines = [
        _cut(
            "  ".join(c.rjust(w) if j == 2 else c.ljust(w) for j, (c, w) in enumerate(zip(line, widths))).rstrip(),
            width,
        )
        for line in body
    ]
    lines.insert(1, _cut("  ".join("-" * w for w in widths), width))
    legend = [guarantee(table_rows, alpha, primary, sequential)]
    legend += [
        f"{r['metric']}: {r['id']} vs v0: about {r['n_for_power']} "
        f"{'pairs' if r['method'] == 'paired' else 'replicates per side'} would detect a difference of this "
        f"size ({_g(r['diff'])}) with {100 * POWER:g}% power (prospective, from the observed SD; not a verdict)."
        for r in table_rows
        if r["n_for_power"]
    ]
    legend += [
        f"v{i}: {v.name} (replicates {', '.join(str(r.replicate) for r in v.runs)}; runs "
        f"{', '.join(r.name for r in v.runs)})"
        for i, v in enumerate(variants)
    ]
    wrapped = [w for text in legend for w in textwrap.wrap(text, width, subsequent_indent="    ")]
    return "\n".join(lines + [""] + wrapped)


def json_rows(
    variants: list[Variant],
    level: float = LEVEL,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
) -> list[dict]:
    """The table as JSON-ready objects, one per metric x variant (what `--format json` prints)."""
    table_rows = rows(variants, level, alpha, primary, sequential)
    m = sum(r["tested"] for r in table_rows)
    return [
        {
            "metric": r["metric"],
            "variant_id": r["id"],
            "variant": r["variant"],
            "n": r["n"],
            "mean": r["mean"],
            "mean_interval": None if r["half"] is None else [r["mean"] - r["half"], r["mean"] + r["half"]],
            "diff": r["diff"],
            "diff_interval": None if r["interval"] is None else list(r["interval"]),
            "method": r["method"],
            "pairs": r["pairs"],
            "p": r["p"],
            "p_adjusted": r["p_adj"],
            "tested": r["tested"],
            "differs": r["differs"],
            "verdict": r["verdict"],
            "procedure": "holm",
            "alpha": alpha,
            "family_size": m,
            "level": level,
            "primary": primary,
            "sequential_max": sequential,
            "conditions": conditions(sequential),
            "replicates_for_power": r["n_for_power"],
        }
        for r in table_rows
    ]


def _html_row(r: dict) -> str:
    e = html.escape
    mean = f"{_g(r['mean'])} " + ("(n = 1: no interval)" if r["half"] is None else f"&plusmn; {_g(r['half'])}")
    if r["id"] == "v0":
        interval = "baseline"
    elif r["interval"] is None:
        interval = "no test"
    else:
        interval = f"[{_g(r['interval'][0])}, {_g(r['interval'][1])}]"
    cells = [
        e(r["metric"]),
        f"{e(r['id'])}: {e(r['variant'])}",
        r["n"],
        mean,
        "" if r["diff"] is None else _g(r["diff"]),
    ]
    cells += [interval, "" if r["p"] is None else f"{r['p']:.3g}", "" if r["p_adj"] is None else f"{r['p_adj']:.3g}"]
    cls = ' class="differs"' if r["differs"] else ""
    return f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells + [e(r["verdict"])]) + "</tr>"


def html_report(
    variants: list[Variant],
    level: float = LEVEL,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
) -> str:
    """The table as a self-contained HTML page (no scripts), with the guarantee and the variants."""
    pct = f"{100 * level:g}%"
    e = html.escape
    table_rows = rows(variants, level, alpha, primary, sequential)
    heads = ("metric", "variant", "n", f"mean &plusmn; {pct} CI", "difference vs v0", f"raw {pct} interval")
    cells = "".join(f"<th>{h}</th>" for h in heads + ("p raw", "p adjusted (Holm)", "verdict"))
    legend = "".join(
        f"<li><b>v{i}</b>: {e(v.name)} &mdash; replicates {e(', '.join(str(r.replicate) for r in v.runs))}"
        f" (runs {e(', '.join(r.name for r in v.runs))})</li>"
        for i, v in enumerate(variants)
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Variants compared over replicates</title>\n'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}tr.differs td{background:#e6f4ea}</style>"
        "</head><body>\n<h1>Variants compared over replicates</h1>\n"
        f"<p>Mean of each headline metric over a variant's replicates with its {pct} Student-t interval; "
        f"the difference from the baseline (v0) with its raw {pct} interval.</p>\n"
        f"<p>{e(guarantee(table_rows, alpha, primary, sequential))}</p>\n"
        f"<table>\n<tr>{cells}</tr>\n"
        + "\n".join(map(_html_row, table_rows))
        + f"\n</table>\n<ul>{legend}</ul>\n</body></html>\n"
    )
