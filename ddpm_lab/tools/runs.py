"""The runs `ddpm-lab compare` compares, and their variants.

A run is one row of `dvc exp show --json` (a committed baseline or the last revision of an
experiment): its name, revision, flattened params (params.yaml) and the headline metrics it
produced (`ddpm_lab/tools/dvc_lock.py` leaves out those of stages not rerun for it). Runs with
the same params, replicate included, are one run. Runs whose params are equal but for the
top-level `replicate` are one variant, named by the params in which it differs from the baseline
(the variant of the first committed run). `--save` writes the runs as JSON, `--runs` reads them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ddpm_lab.runtime.params import DataError
from ddpm_lab.tools.dvc_lock import PARAMS_FILE, flatten, frozen, read_lock, stale_outputs

REPLICATE = "replicate"
# metrics file -> (its label in the table, its headline keys)
HEADLINE = {
    "metrics/dist_eq12.json": ("eq12", ("bound_gap", "w1_ratio", "ks_ratio", "mode_err")),
    "metrics/dist_eq3.json": ("eq3", ("bound_gap",)),
    "metrics/images.json": ("images", ("fd_ratio", "kid")),
}
SAVED = "runs saved by python -m ddpm_lab.tools.compare --save"


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


def headline_names() -> list[str]:
    return [f"{label}.{k}" for label, keys in HEADLINE.values() for k in keys]


def metric_names(variants: list[Variant]) -> list[str]:
    present = {m for v in variants for r in v.runs for m in r.metrics}
    return [m for m in headline_names() if m in present]


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
    for top in (t for t in exp_show if isinstance(t, dict)):
        rev = str(top.get("rev", ""))
        if rev == "workspace":
            runs += [_run_of(top, "workspace", False)] if workspace else []
            continue
        runs.append(_run_of(top, top.get("name") or rev[:7], True))
        for exp in top.get("experiments") or []:
            if revs := exp.get("revs") or []:
                name = exp.get("name") or revs[0].get("name") or str(revs[0].get("rev"))[:7]
                runs.append(_run_of(revs[0], name, False))
    kept: dict[str, int] = {}  # params key -> index in out
    out: list[Run] = []
    for run in filter(None, runs):
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
    for run in [first] + [r for r in runs if r is not first]:
        params = {p: v for p, v in run.params.items() if p != REPLICATE}
        variant = keyed.setdefault(json.dumps(sorted(params.items()), default=repr), Variant("", params))
        if run.metrics:  # a row without headline metrics (not reproduced) names the baseline but is no replicate
            variant.runs.append(run)
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


def read_exp_show(json_file: Path | None, rev: str | None = None) -> list:
    """The rows of `dvc exp show --json` (of `rev`'s experiments), run here or saved in json_file."""
    if json_file is not None:
        try:
            return json.loads(Path(json_file).read_text())
        except FileNotFoundError:
            raise DataError(f"{json_file}: no such file: expected the output of dvc exp show --json") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{json_file}: not JSON ({e.msg} at line {e.lineno})") from None
    try:
        cmd = ["dvc", "exp", "show", "--json"] + (["--rev", rev] if rev else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
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
    """The runs `save_runs` wrote to path."""
    try:
        return [
            Run(
                name=r["name"],
                rev=r["rev"],
                params={k: frozen(v) for k, v in r["params"].items()},
                metrics={k: float(v) for k, v in r["metrics"].items()},
                committed=bool(r["committed"]),
            )
            for r in json.loads(Path(path).read_text())
        ]
    except FileNotFoundError:
        raise DataError(f"{path}: no such file: expected {SAVED}") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path}: not {SAVED} ({type(e).__name__}: {e})") from None
