"""What the benchmark scripts share: the repository's root, a clean copy of the study to run stages
in, params overrides, stage runs and their timing, and the rows the README's table is made of.

Every script of benchmarks/ writes its rows with write_results: a JSON object whose first key is
"benchmark" (the table's first column) and which holds "rows", each {what, measured, target, met}
(and, for some, named extras: Row); scripts/readme_results.py reads benchmarks/results/*.json in
that form. The scripts run as `python benchmarks/bench_x.py` (docs/benchmarks.md) or as
`python -m benchmarks.bench_x` from the repository's root; each imports this module both ways.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARAMS = ROOT / "params.yaml"
OUTPUTS = ("metrics/", "images/", "dvc.lock")  # tracked outputs of the pipeline (folders end in /): not copied


# -- rows and results --------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    """One row of the README's benchmark table: what was measured, the figure, the target (or "")
    and whether it was met (None: no target). variant and seconds: bench_train_time's extras (the
    docs' wall-time sentence reads them); a row without them writes the four keys only."""

    what: str
    measured: str
    target: str = ""
    met: bool | None = None
    variant: str | None = None
    seconds: float | None = None

    def as_dict(self) -> dict:
        met = None if self.met is None else bool(self.met)  # a numpy bool too
        out = {"what": self.what, "measured": self.measured, "target": self.target, "met": met}
        out.update({k: getattr(self, k) for k in ("variant", "seconds") if getattr(self, k) is not None})
        return out

    def line(self, what_width: int = 52, measured_width: int = 40) -> str:
        """The row as the scripts print it: what, measured, target, then ok / MISSED when judged."""
        mark = "" if self.met is None else ("  ok" if self.met else "  MISSED")
        return f"  {self.what:<{what_width}} {self.measured:<{measured_width}} {self.target}{mark}"


class Rows(list):
    """Rows in the order they are added, each printed (Row.line at widths) as it is."""

    def __init__(self, widths: tuple[int, int] = (52, 40), echo: bool = True):
        super().__init__()
        self.widths, self.echo = widths, echo

    def add(self, what: str, measured: str, target: str = "", met: bool | None = None, **extra) -> Row:
        row = Row(what, measured, target, met, **extra)
        self.append(row)
        if self.echo:
            print(row.line(*self.widths), flush=True)
        return row


def write_results(path: Path, doc: dict, indent: int = 2) -> None:
    """Write doc ({"benchmark": name, ..., "rows": [Row or dict], ...}, in the order given) as JSON,
    whole or not at all (a temporary file renamed over path)."""
    if next(iter(doc), None) != "benchmark" or "rows" not in doc:
        raise ValueError(f"results {list(doc)}: expected 'benchmark' first and 'rows'")
    text = json.dumps({**doc, "rows": [r.as_dict() if isinstance(r, Row) else r for r in doc["rows"]]}, indent=indent)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


# -- params ------------------------------------------------------------------------------------
def read_params(path: Path = PARAMS) -> dict:
    """A params.yaml as loaded (the study's by default)."""
    return yaml.safe_load(Path(path).read_text())


def write_params(path: Path, params: dict) -> Path:
    """params as a params.yaml (its key order kept) at path; returns path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _plain(value):
    """Tuples (a flattened Variant's lists) as lists, which YAML writes."""
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def override(params: dict, overrides: Mapping[str, object]) -> dict:
    """A copy of params with each "section.key" of overrides set (a key without a dot: top level)."""
    out = copy.deepcopy(params)
    for flat, value in overrides.items():
        section, dot, key = flat.partition(".")
        if dot:
            out[section][key] = _plain(value)
        else:
            out[flat] = _plain(value)
    return out


def parse_overrides(items: Iterable[str]) -> dict:
    """["section.key=value", ...] from a command line -> {"section.key": value}, each value as YAML
    reads it (numbers, booleans, lists, strings); ValueError on an item of another form."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise ValueError(f"{item!r}: expected section.key=value")
        out[key.strip()] = yaml.safe_load(value.strip())
    return out


def dotted(sections: Mapping[str, Mapping]) -> dict:
    """{"section": {"key": v}} -> {"section.key": v}."""
    return {f"{s}.{k}": v for s, values in sections.items() for k, v in values.items()}


def dvc_command(overrides: Mapping[str, object], stage: str) -> str:
    """The `dvc exp run -S section.key=value ... stage` that runs stage with these overrides, the flags
    of a section together (the sections in the order they first appear)."""
    by_section: dict[str, list] = {}
    for k, v in overrides.items():
        by_section.setdefault(k.partition(".")[0], []).append((k, v))
    sets = [
        "-S " + shlex.quote(f"{k}={json.dumps(v, separators=(',', ':')).strip(chr(34))}")
        for section in by_section.values()
        for k, v in section
    ]
    return " ".join(["dvc exp run", *sets, stage])


# -- stage runs and timing ---------------------------------------------------------------------
class Stopwatch:
    """with Stopwatch() as w: ...; then w.seconds (wall time)."""

    seconds = float("nan")

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def load_avg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


@dataclasses.dataclass
class StageRun:
    """A finished stage: its wall time and process (returncode None: killed at its timeout)."""

    seconds: float
    proc: subprocess.CompletedProcess

    @property
    def ok(self) -> bool:
        return self.proc.returncode == 0

    def error(self, limit: int = 200) -> str:
        """The last line of its stderr (its one-line error), or its exit status."""
        lines = (self.proc.stderr or "").strip().splitlines()
        return (lines or [f"exit {self.proc.returncode}"])[-1][:limit]


def run_stage(
    stage: str,
    *args: str,
    params: Path | None = None,
    cwd: Path = ROOT,
    env: dict | None = None,
    timeout: float | None = None,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
) -> StageRun:
    """`python -m stages.<stage> *args [--params params]` in cwd, timed; stdout and stderr as
    subprocess.run takes them (text when piped)."""
    cmd = [sys.executable, "-m", f"stages.{stage}", *args] + (["--params", str(params)] if params else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(cmd, None, e.stdout, f"timed out after {timeout:.0f} s")
    return StageRun(time.perf_counter() - t0, proc)


# -- a clean copy of the study -----------------------------------------------------------------
def clean_copy(dest: Path) -> Path:
    """The repository's tracked files, but the pipeline's outputs, copied to dest (a git repository
    of its own, as dvc wants): the study before its first `dvc repro`."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for rel in filter(None, files.split("\0")):
        if any(rel.startswith(out) if out.endswith("/") else rel == out for out in OUTPUTS):
            continue  # the copy starts without them, like a fresh run
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


class Study:
    """A clean copy of the study at path, its stages run there (this interpreter's venv on PATH)."""

    def __init__(self, path: Path):
        self.path = path
        self.bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": self.bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "DVC_NO_ANALYTICS": "1",
            "PYTHONPATH": str(path),
        }

    @property
    def params(self) -> dict:
        return read_params(self.path / "params.yaml")

    def set_params(self, overrides: Mapping[str, object]) -> dict:
        """Write overrides ("section.key": value) into the copy's params.yaml; returns the params."""
        params = override(self.params, overrides)
        write_params(self.path / "params.yaml", params)
        return params

    def run(self, stage: str, *args: str, params: Path | None = None, timeout: float | None = None) -> StageRun:
        """`python -m stages.<stage>` in the copy, its output captured."""
        return run_stage(stage, *args, params=params, cwd=self.path, env=self.env, timeout=timeout)

    def check(self, stage: str, *args: str, params: Path | None = None) -> float:
        """run, and stop the benchmark if the stage fails; its wall time."""
        done = self.run(stage, *args, params=params)
        if not done.ok:
            raise SystemExit(
                f"stages.{stage} {' '.join(args)} exited {done.proc.returncode}:\n{done.proc.stderr[-3000:]}"
            )
        return done.seconds

    def repro(self, *targets: str) -> float:
        """`dvc repro *targets` in the copy (it must succeed); its wall time."""
        t0 = time.perf_counter()
        subprocess.run(
            [f"{self.bin_dir}/dvc", "repro", *targets],
            cwd=self.path,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - t0


@contextmanager
def study_copy(keep: Path | None = None, prefix: str = "bench_") -> Iterator[Study]:
    """A clean copy of the study in keep (kept) or in a temporary folder (removed afterwards)."""
    path = keep or Path(tempfile.mkdtemp(prefix=prefix))
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield Study(clean_copy(path))
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
