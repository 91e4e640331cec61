"""Which outputs a run did not produce, from the dvc.lock of its revision (`ddpm-lab compare`).

A stage whose params recorded in the run's dvc.lock differ from the run's params.yaml was not
rerun for it (e.g. the image stages of `dvc exp run -S replicate=1 compare_dist`), so its outputs
are the parent's; so are those of every stage that depends on them. The lock is read with
`git show REV:dvc.lock`. DVC keeps the entry of a stage since removed from dvc.yaml in dvc.lock;
such entries are left out.

Why not ask DVC: `dvc exp show --json` gives a run's deps and outs as one flat {path: hash} map,
with neither the stage nor the params recorded for it; `dvc status` compares the workspace only,
and in DVC's Python API a stage's status at another revision takes the repository's lock and
reads DVC-tracked outputs that are not in that commit's tree; a changed param marks only its own
stage, not those downstream. What DVC records per revision is the lock read here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

PARAMS_FILE = "params.yaml"


def flatten(d, prefix: str = "") -> dict:
    """{"section": {"key": v}} -> {"section.key": v}; lists become tuples (hashable, comparable)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = frozen(v)
    return out


def frozen(v):
    return tuple(frozen(x) for x in v) if isinstance(v, list) else v


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
    return isinstance(spec, dict) and bool(at) == ("foreach" in spec or "matrix" in spec)


def _paths(entries) -> list[str]:
    return [str(e.get("path", "")).rstrip("/") for e in entries or [] if isinstance(e, dict)]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def stale_outputs(lock: dict, params: dict) -> set[str]:
    """The output paths of the stages in `lock` that were not run with `params` (flattened):
    a recorded param differs, or a dependency lies in (or holds) a stale stage's output."""
    stages = {n: s for n, s in lock["stages"].items() if isinstance(s, dict)}
    stale = {
        n
        for n, st in stages.items()
        if any(params.get(k, v) != v for k, v in flatten((st.get("params") or {}).get(PARAMS_FILE) or {}).items())
    }
    while True:
        bad = [o for n in stale for o in _paths(stages[n].get("outs"))]
        new = {
            n
            for n, st in stages.items()
            if n not in stale and any(_overlaps(d, o) for d in _paths(st.get("deps")) for o in bad)
        }
        if not new:
            return {o for n in stale for o in _paths(stages[n].get("outs"))}
        stale |= new
