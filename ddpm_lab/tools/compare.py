"""Compare variants over their replicates: `python -m ddpm_lab.tools.compare [--json FILE] [--out HTML]`.

Reads `dvc exp show --json` (run here, or saved output with --json FILE): every committed
baseline and experiment, with its params (params.yaml) and headline metrics. Runs whose params
are equal except for the top-level `replicate` are one *variant*; a variant is named by the
params in which it differs from the baseline (the variant of the first committed baseline).
For each headline metric it reports
the mean over a variant's replicates with a 95% Student-t interval (none for n = 1), and the
difference of each variant from the baseline: paired by replicate where both have at least two
replicates in common, Welch otherwise (`ddpm_lab/tools/verdicts.py`). Verdicts keep a family-wise error
rate of 5% over every test of the call (Holm), or over the tests of one metric declared with
--primary; --sequential N makes them valid however replicates are added, up to N. Prints a table
(at most 120 characters wide; --format json: one object per metric x variant) and writes a
self-contained HTML table (--out, default reports/compare.html).

A metric counts for a run only if the run produced it: a stage whose recorded params in the
run's dvc.lock differ from the run's params.yaml (or that depends on such a stage's outputs)
was not rerun for it, so its metrics are the parent's and are left out (e.g. the image
metrics of an experiment run as `dvc exp run ... compare_dist`). The lock is read with
`git show REV:dvc.lock`; a run whose commit is not in this repository keeps all its metrics.

Runs with the very same params (replicate included) are one run, counted once: the pipeline is
reproducible, so a rerun gives the same bytes (DVC lists an experiment whose params equal its
baseline commit's next to it). The workspace row is left out (it repeats the last experiment
applied, or holds params not yet reproduced) unless --workspace. Rows of different commits with
equal params are pooled: compare experiments of one commit (dvc exp show's default, HEAD; or
--rev REV for the experiments of another commit).
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy import stats

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import DataError
from ddpm_lab.runtime.io import write_outputs
from ddpm_lab.tools.verdicts import ALPHA, LEVEL, POWER, SEQ_MAX, Test, difference, holm, replicates_for_power

PARAMS_FILE = "params.yaml"
REPLICATE = "replicate"
# metrics file -> (its label in the table, its headline keys)
HEADLINE = {
    "metrics/dist_eq12.json": ("eq12", ("bound_gap", "w1_ratio", "ks_ratio", "mode_err")),
    "metrics/dist_eq3.json": ("eq3", ("bound_gap",)),
    "metrics/images.json": ("images", ("fd_ratio", "kid")),
}
WIDTH = 120


@dataclass
class Run:
    """One row of dvc exp show: its name, flattened params ("section.key" -> value), headline metrics."""

    name: str
    rev: str
    params: dict
    metrics: dict
    committed: bool = False

    @property
    def replicate(self):
        return self.params.get(REPLICATE, 0)


@dataclass
class Variant:
    """Runs with equal params but for `replicate`."""

    name: str
    params: dict
    runs: list = field(default_factory=list)

    def values(self, metric: str) -> np.ndarray:
        return np.array([r.metrics[metric] for r in self.runs if metric in r.metrics], dtype=float)

    def by_replicate(self, metric: str) -> dict:
        """{replicate: value} of the runs that have `metric`, in replicate order."""
        return {r.replicate: r.metrics[metric] for r in self.runs if metric in r.metrics}


def flatten(d, prefix: str = "") -> dict:
    """{"section": {"key": v}} -> {"section.key": v}; lists become tuples (hashable, comparable)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = _frozen(v)
    return out


def _frozen(v):
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


def _run_of(row: dict, name: str, committed: bool) -> Run | None:
    data = row.get("data") or {}
    params = ((data.get("params") or {}).get(PARAMS_FILE) or {}).get("data")
    if row.get("error") or not isinstance(params, dict):
        return None
    metrics = {}
    for path, (label, keys) in HEADLINE.items():
        values = ((data.get("metrics") or {}).get(path) or {}).get("data") or {}
        for k in keys:
            v = values.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                metrics[f"{label}.{k}"] = float(v)
    return Run(name=name, rev=str(row.get("rev", "")), params=flatten(params), metrics=metrics, committed=committed)


def _read_at(rev: str, path: str) -> dict | None:
    """A YAML file of a commit (`git show REV:path`), of the workspace for "workspace"; None when
    it cannot be read (a commit of another repository, no git) or is no mapping."""
    try:
        if rev == "workspace":
            text = Path(path).read_text()
        else:
            proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
            if proc.returncode != 0:
                return None
            text = proc.stdout
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def read_lock(rev: str) -> dict | None:
    """The dvc.lock of a commit, of the workspace for "workspace" (None when it cannot be read),
    without the entries of stages that commit's dvc.yaml no longer defines: DVC keeps a removed
    stage's entry (its params as last run) in dvc.lock, and it says nothing of this run."""
    lock = _read_at(rev, "dvc.lock")
    if lock is None or not isinstance(lock.get("stages"), dict):
        return None
    defined = (_read_at(rev, "dvc.yaml") or {}).get("stages")
    if isinstance(defined, dict):
        lock["stages"] = {n: st for n, st in lock["stages"].items() if _defines(defined, n)}
    return lock


def _defines(stages: dict, name: str) -> bool:
    """Whether dvc.yaml's stages define the lock entry `name`: a plain stage by its name, a
    foreach or matrix stage NAME only as NAME@key (a plain NAME entry is its plain predecessor's)."""
    base, at, _ = name.partition("@")
    spec = stages.get(base)
    if not isinstance(spec, dict):
        return False
    return bool(at) == ("foreach" in spec or "matrix" in spec)


def stale_outputs(lock: dict, params: dict) -> set[str]:
    """The output paths of the stages in `lock` that were not run with `params` (flattened):
    a recorded param differs, or a dependency lies in (or holds) a stale stage's output."""
    stages = {n: s for n, s in lock["stages"].items() if isinstance(s, dict)}

    def paths(entries) -> list[str]:
        return [str(e.get("path", "")).rstrip("/") for e in entries or [] if isinstance(e, dict)]

    def overlaps(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    stale: set[str] = set()
    for name, st in stages.items():
        recorded = flatten(((st.get("params") or {}).get(PARAMS_FILE)) or {})
        if any(params.get(k, v) != v for k, v in recorded.items()):
            stale.add(name)
    grown = True
    while grown:
        bad = [o for n in stale for o in paths(stages[n].get("outs"))]
        new = {
            n
            for n, st in stages.items()
            if n not in stale and any(overlaps(d, o) for d in paths(st.get("deps")) for o in bad)
        }
        stale |= new
        grown = bool(new)
    return {o for n in stale for o in paths(stages[n].get("outs"))}


def drop_stale(run: Run, lock: dict | None) -> Run:
    """The run without the headline metrics its own dvc.lock shows it did not produce."""
    if lock is None:
        return run
    stale = stale_outputs(lock, run.params)
    labels = {label for path, (label, _) in HEADLINE.items() if path in stale}
    return dataclasses.replace(run, metrics={m: v for m, v in run.metrics.items() if m.split(".")[0] not in labels})


def collect(exp_show: list, workspace: bool = False) -> list[Run]:
    """The runs of dvc exp show's JSON: each commit row, then its experiments (the last
    revision of each); the workspace row only if asked. Runs whose params (replicate
    included) equal an earlier run's are dropped."""
    if not isinstance(exp_show, list):
        raise DataError("dvc exp show --json: expected a list of rows")
    runs = []
    for top in exp_show:
        if not isinstance(top, dict):
            continue
        rev = str(top.get("rev", ""))
        if rev == "workspace":
            if workspace:
                runs.append(_run_of(top, "workspace", False))
            continue
        runs.append(_run_of(top, top.get("name") or rev[:7], True))
        for exp in top.get("experiments") or []:
            revs = exp.get("revs") or []
            if revs:
                runs.append(
                    _run_of(revs[0], exp.get("name") or revs[0].get("name") or str(revs[0].get("rev"))[:7], False)
                )
    kept: dict[str, int] = {}  # params key -> index in out
    out: list[Run] = []
    for run in runs:
        if run is None:
            continue
        run = drop_stale(run, read_lock(run.rev if run.name != "workspace" else "workspace"))
        key = json.dumps(sorted(run.params.items()), default=repr)
        if key not in kept:
            kept[key] = len(out)
            out.append(run)
        elif run.metrics and not out[kept[key]].metrics:  # a commit not yet reproduced: its experiment counts
            out[kept[key]] = dataclasses.replace(run, committed=out[kept[key]].committed)
    return out


def _fmt_value(v) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return "null" if v is None else str(v)


def group(runs: list[Run]) -> list[Variant]:
    """Variants (runs grouped by params but for replicate), the baseline's first: the variant
    of the first committed run (or of the first run). Each is named by the params that differ
    from the baseline's ("baseline" for the baseline itself)."""
    if not runs:
        return []
    first = next((r for r in runs if r.committed), runs[0])
    keyed: dict[str, Variant] = {}

    def key_of(run: Run) -> str:
        return json.dumps(sorted((k, v) for k, v in run.params.items() if k != REPLICATE), default=repr)

    for run in [first] + [r for r in runs if r is not first]:
        k = key_of(run)
        if k not in keyed:
            keyed[k] = Variant(name="", params={p: v for p, v in run.params.items() if p != REPLICATE})
        if run.metrics:  # a row without headline metrics (not reproduced) names the baseline but is no replicate
            keyed[k].runs.append(run)
    variants = [v for i, v in enumerate(keyed.values()) if i == 0 or v.runs]
    base = variants[0].params
    for v in variants:
        diffs = [
            f"{p}={_fmt_value(v.params.get(p))}"
            for p in sorted(set(v.params) | set(base))
            if v.params.get(p) != base.get(p)
        ]
        v.name = ", ".join(diffs) if diffs else "baseline"
        v.runs.sort(key=lambda r: (r.replicate if isinstance(r.replicate, int) else 0))
    return variants


def mean_ci(values, level: float = LEVEL) -> tuple[float, float | None]:
    """The mean and the half-width of its Student-t interval (None for n < 2)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, None
    m = float(x.mean())
    if x.size < 2:
        return m, None
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, half


def metric_names(variants: list[Variant]) -> list[str]:
    present = {m for v in variants for r in v.runs for m in r.metrics}
    return [f"{label}.{k}" for label, keys in HEADLINE.values() for k in keys if f"{label}.{k}" in present]


def headline_names() -> list[str]:
    return [f"{label}.{k}" for label, keys in HEADLINE.values() for k in keys]


def _procedure(family_size: int, alpha: float) -> str:
    pct = f"{100 * alpha:g}%"
    return f"Holm {pct}" if family_size > 1 else pct


def rows(
    variants: list[Variant],
    level: float = LEVEL,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
    prospective: bool = True,
) -> list[dict]:
    """One row per (metric, variant): n, mean and its CI half-width; for a variant, its difference
    from the baseline (paired or Welch: `ddpm_lab.tools.verdicts.difference`) with the raw interval and
    p-value, the Holm-adjusted p-value over the family, and the verdict.

    The family is every test made (all headline metrics x variants), or the tests of `primary`
    alone; `differs` is True where Holm rejects at family-wise level alpha. With `sequential` = N
    the p-values are group-sequential under a declared maximum of N pairs (only paired tests).
    `prospective`: also estimate, for each difference not shown, the replicates that would show
    it (`n_for_power`; no part of the verdicts, and the slow part of this function)."""
    out = []
    if not variants:
        return out
    base = variants[0]
    for metric in metric_names(variants):
        for i, v in enumerate(variants):
            x = v.values(metric)
            if x.size == 0:
                continue
            m, half = mean_ci(x, level)
            row = {
                "metric": metric,
                "id": f"v{i}",
                "variant": v.name,
                "n": int(x.size),
                "mean": m,
                "half": half,
                "diff": None,
                "interval": None,
                "method": None,
                "pairs": None,
                "sd": None,
                "p": None,
                "p_adj": None,
                "tested": False,
                "differs": False,
                "verdict": "",
                "n_for_power": None,
            }
            if i > 0:
                try:
                    test = difference(v.by_replicate(metric), base.by_replicate(metric), level, sequential)
                except ValueError as e:
                    raise DataError(f"--sequential {sequential}: {metric} of v{i} ({v.name}): {e}") from None
                if test is not None:
                    row.update(
                        diff=test.diff,
                        interval=test.interval,
                        method=test.method,
                        sd=test.sd,
                        p=test.p,
                        pairs=test.n if test.method == "paired" else None,
                    )
            out.append(row)
    family = [r for r in out if r["p"] is not None and (primary is None or r["metric"] == primary)]
    reject, adjusted = holm([r["p"] for r in family], alpha)
    proc = _procedure(len(family), alpha)
    for r, rej, adj in zip(family, reject, adjusted):
        r.update(tested=True, differs=bool(rej), p_adj=float(adj))
    for r in out:
        if r["id"] == "v0":
            continue
        method = {"paired": "paired", "welch": "Welch", None: ""}[r["method"]]
        if r["tested"]:
            r["verdict"] = f"{'differs' if r['differs'] else 'not shown'} ({proc}, {method})"
            if prospective and not r["differs"] and not sequential:
                test = Test(r["method"], 0, r["diff"], r["interval"], r["p"], r["sd"])
                r["n_for_power"] = replicates_for_power(test, alpha / len(family))
        elif r["p"] is not None:
            r["verdict"] = f"not tested (secondary; {method})"
        else:
            r["verdict"] = "no pairs: not tested" if sequential and r["n"] >= 2 else "n<2: not tested"
    return out


def _g(x: float) -> str:
    return f"{x:.4g}"


def _p_text(r: dict) -> str:
    if r["p"] is None:
        return ""
    return f"{r['p']:.2g}/{r['p_adj']:.2g}" if r["p_adj"] is not None else f"{r['p']:.2g}/-"


def _mean_text(r: dict) -> str:
    return f"{_g(r['mean'])} +- {r['half']:.2g}" if r["half"] is not None else f"{_g(r['mean'])} (n=1, no CI)"


def _diff_text(r: dict) -> str:
    if r["id"] == "v0":
        return "(baseline)"
    if r["interval"] is None:
        return "(no test)"
    lo, hi = r["interval"]
    return f"{r['diff']:.3g} [{lo:.3g}, {hi:.3g}]"


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def guarantee(
    table_rows: list[dict], alpha: float = ALPHA, primary: str | None = None, sequential: int | None = None
) -> str:
    """What the verdicts guarantee, in one paragraph."""
    m = sum(r["tested"] for r in table_rows)
    pct = f"{100 * alpha:g}%"
    family = f"the {m} tests of {primary} (declared primary)" if primary else f"all {m} tests of this table"
    text = (
        f"Verdicts: Holm's step-down procedure over {family}; the chance that any 'differs' is false when no "
        f"variant differs is at most {pct}. paired: the replicate-matched differences (one-sample t); Welch: "
        f"unpaired (fewer than 2 matched replicates). p raw/adj: the test's p-value and Holm's adjusted one. "
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
    head = (
        "metric",
        "v",
        "n",
        f"mean +- {pct} CI",
        f"diff vs v0 [{pct} CI]",
        "seq. p raw/adj" if sequential else "p raw/adj",
        f"verdict (plan: <= {sequential} pairs)" if sequential else "verdict",
    )
    body = [
        (r["metric"], r["id"], str(r["n"]), _mean_text(r), _diff_text(r), _p_text(r), r["verdict"]) for r in table_rows
    ]
    widths = [max(len(line[c]) for line in [head] + body) for c in range(len(head))]
    lines = []
    for i, line in enumerate([head] + body):
        cells = [c.ljust(w) if j != 2 else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths))]
        lines.append(_cut("  ".join(cells).rstrip(), width))
        if i == 0:
            lines.append(_cut("  ".join("-" * w for w in widths), width))
    legend = [guarantee(table_rows, alpha, primary, sequential)]
    legend += [
        f"{r['metric']}: {r['id']} vs v0: about {r['n_for_power']} "
        f"{'pairs' if r['method'] == 'paired' else 'replicates per side'} would detect a difference of this "
        f"size ({_g(r['diff'])}) with {100 * POWER:g}% power (prospective, from the observed SD; not a verdict)."
        for r in table_rows
        if r["n_for_power"]
    ]
    for i, v in enumerate(variants):
        reps = ", ".join(str(r.replicate) for r in v.runs)
        legend.append(f"v{i}: {v.name} (replicates {reps}; runs {', '.join(r.name for r in v.runs)})")
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
    out = []
    for r in table_rows:
        half = r["half"]
        out.append(
            {
                "metric": r["metric"],
                "variant_id": r["id"],
                "variant": r["variant"],
                "n": r["n"],
                "mean": r["mean"],
                "mean_interval": None if half is None else [r["mean"] - half, r["mean"] + half],
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
        )
    return out


def html_report(
    variants: list[Variant],
    level: float = LEVEL,
    alpha: float = ALPHA,
    primary: str | None = None,
    sequential: int | None = None,
) -> str:
    pct = f"{100 * level:g}%"
    e = html.escape
    table_rows = rows(variants, level, alpha, primary, sequential)
    heads = (
        "metric",
        "variant",
        "n",
        f"mean &plusmn; {pct} CI",
        "difference vs v0",
        f"raw {pct} interval",
        "p raw",
        "p adjusted (Holm)",
        "verdict",
    )
    cells = "".join(f"<th>{h}</th>" for h in heads)
    trs = []
    for r in table_rows:
        mean = (
            f"{_g(r['mean'])} &plusmn; {_g(r['half'])}"
            if r["half"] is not None
            else f"{_g(r['mean'])} (n = 1: no interval)"
        )
        diff = "" if r["diff"] is None else _g(r["diff"])
        interval = (
            "baseline"
            if r["id"] == "v0"
            else "no test"
            if r["interval"] is None
            else f"[{_g(r['interval'][0])}, {_g(r['interval'][1])}]"
        )
        p = "" if r["p"] is None else f"{r['p']:.3g}"
        p_adj = "" if r["p_adj"] is None else f"{r['p_adj']:.3g}"
        cls = ' class="differs"' if r["differs"] else ""
        trs.append(
            f"<tr{cls}><td>{e(r['metric'])}</td><td>{e(r['id'])}: {e(r['variant'])}</td><td>{r['n']}</td>"
            f"<td>{mean}</td><td>{diff}</td><td>{interval}</td><td>{p}</td><td>{p_adj}</td>"
            f"<td>{e(r['verdict'])}</td></tr>"
        )
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
        f"<table>\n<tr>{cells}</tr>\n" + "\n".join(trs) + f"\n</table>\n<ul>{legend}</ul>\n</body></html>\n"
    )


def read_exp_show(json_file: Path | None, rev: str | None = None) -> list:
    if json_file is not None:
        try:
            return json.loads(Path(json_file).read_text())
        except FileNotFoundError:
            raise DataError(f"{json_file}: no such file: expected the output of dvc exp show --json") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{json_file}: not JSON ({e.msg} at line {e.lineno})") from None
    try:
        proc = subprocess.run(
            ["dvc", "exp", "show", "--json"] + (["--rev", rev] if rev else []), capture_output=True, text=True
        )
    except FileNotFoundError:
        raise DataError("dvc: command not found: expected DVC on PATH (or pass --json FILE)") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DataError(f"dvc exp show --json exited {proc.returncode}: {last}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise DataError(f"dvc exp show --json: not JSON ({e.msg})") from None


def save_runs(runs: list[Run]) -> bytes:
    """The runs as JSON (after their stale metrics were dropped, which needs this repository's
    commits): what --runs reads back, in a clone without those experiments."""
    rows = [
        {**dataclasses.asdict(r), "params": {k: list(v) if isinstance(v, tuple) else v for k, v in r.params.items()}}
        for r in runs
    ]
    return (json.dumps(rows, indent=1, sort_keys=True) + "\n").encode()


def load_runs(path: Path) -> list[Run]:
    try:
        rows = json.loads(Path(path).read_text())
        return [
            Run(
                name=r["name"],
                rev=r["rev"],
                params={k: _frozen(v) for k, v in r["params"].items()},
                metrics={k: float(v) for k, v in r["metrics"].items()},
                committed=bool(r["committed"]),
            )
            for r in rows
        ]
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such file: expected runs saved by python -m ddpm_lab.tools.compare --save"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(
            f"{path}: not runs saved by python -m ddpm_lab.tools.compare --save ({type(e).__name__}: {e})"
        ) from None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="saved output of `dvc exp show --json` (default: run it)")
    ap.add_argument("--rev", help="compare the experiments of this commit (default: HEAD's)")
    ap.add_argument("--out", type=Path, default=Path("reports/compare.html"), help="the HTML table")
    ap.add_argument("--workspace", action="store_true", help="include the workspace row")
    ap.add_argument("--save", type=Path, help="also write the runs compared (params, metrics) as JSON")
    ap.add_argument("--runs", type=Path, help="compare runs saved with --save instead of dvc exp show")
    ap.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="print the table as text (default) or as JSON, one object per metric x variant",
    )
    ap.add_argument(
        "--primary",
        metavar="METRIC",
        help=f"the one pre-declared metric whose tests get the whole {100 * ALPHA:g}%% "
        f"(default: all headline metrics share it); one of {', '.join(headline_names())}",
    )
    ap.add_argument(
        "--sequential",
        type=int,
        metavar="N",
        help="replicates are added as you go, at most N pairs per variant, declared before the first "
        f"look ({SEQ_MAX[0]} to {SEQ_MAX[1]}): group-sequential verdicts valid at every look",
    )
    args = ap.parse_args(argv)
    if args.primary is not None and args.primary not in headline_names():
        raise DataError(f"--primary {args.primary}: expected one of {', '.join(headline_names())}")
    if args.sequential is not None and not SEQ_MAX[0] <= args.sequential <= SEQ_MAX[1]:
        raise DataError(
            f"--sequential {args.sequential}: expected a maximum number of pairs in "
            f"[{SEQ_MAX[0]}, {SEQ_MAX[1]}], declared before the first look"
        )
    if args.runs is not None:
        runs = load_runs(args.runs)
    else:
        runs = collect(read_exp_show(args.json, args.rev), workspace=args.workspace)
    if not runs:
        raise DataError("dvc exp show: no baseline or experiment with params and metrics: run the pipeline first")
    variants = group(runs)
    if args.primary is not None and args.primary not in metric_names(variants):
        raise DataError(
            f"--primary {args.primary}: no run has this metric (present: {', '.join(metric_names(variants)) or 'none'})"
        )
    how = {"alpha": ALPHA, "primary": args.primary, "sequential": args.sequential}
    text = json.dumps(json_rows(variants, **how), indent=1) if args.format == "json" else table(variants, **how)
    write_outputs(
        {args.out: html_report(variants, **how).encode(), **({args.save: save_runs(runs)} if args.save else {})}
    )
    print(text)
    print(
        f"compare: {len(variants)} variants, {len(runs)} runs -> {args.out}",
        file=sys.stderr if args.format == "json" else sys.stdout,
    )


if __name__ == "__main__":
    run_stage(main)
