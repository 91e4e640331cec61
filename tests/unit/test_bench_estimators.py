"""benchmarks/bench_estimators.py end to end (--quick): its JSON rows, its figure, its commands."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks import harness

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_estimators.py"


def load_script(path: Path):
    """A script of the repository (not a package module) imported from its file, as a module of its own
    name (registered first, as the importlib recipe does: its dataclasses look their module up)."""
    if path.stem not in sys.modules:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    return sys.modules[path.stem]


def apply_sets(params: dict, command: str) -> dict:
    """params.yaml as `dvc exp run -S section.key=value ...` would leave it."""
    words = shlex.split(command)
    assert words[:3] == ["dvc", "exp", "run"], command
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in params.items()}
    for flag, value in zip(words[3:-1:2], words[4:-1:2]):
        assert flag == "-S", command
        key, _, raw = value.partition("=")
        section, name = key.split(".")
        out[section][name] = yaml.safe_load(raw)
    return out


def test_dvc_command_round_trips():
    updates = {
        "sample": {"seeds": [0, 1]},
        "train_eq3": {
            "estimator": "subsampled",
            "terms_per_trajectory": 8,
            "term": "log_ratio",
            "steps": 120,
            "batch_size": 64,
        },
    }
    cmd = harness.dvc_command(harness.dotted(updates), "train_eq3")
    assert cmd.endswith(" train_eq3") and "-S train_eq3.term=log_ratio" in cmd and "-S 'sample.seeds=[0,1]'" in cmd
    params = apply_sets(yaml.safe_load((ROOT / "params.yaml").read_text()), cmd)
    for section, values in updates.items():
        for k, v in values.items():
            assert params[section][k] == v


@pytest.mark.slow
def test_quick_benchmark_end_to_end(tmp_path):
    out = tmp_path / "benchmarks" / "results" / "estimators.json"
    work = tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--keep", str(work), "--write", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Target:" in proc.stdout and "dvc exp run" in proc.stdout

    bench = json.loads(out.read_text())
    assert bench["benchmark"].startswith("estimators")
    assert bench["rows"]
    for row in bench["rows"]:
        assert set(row) == {"what", "measured", "target", "met"}
        assert isinstance(row["what"], str) and isinstance(row["measured"], str) and isinstance(row["target"], str)
        assert row["met"] in (True, False, None)
    assert isinstance(bench["rows"][-1]["met"], bool)  # the target's verdict
    assert bench["W_s"] > 0 and bench["eq12"]["gap"] > 0

    # every run trained, was measured exactly, and its command gives the params it ran with
    base = yaml.safe_load((work / "params.yaml").read_text())
    repo = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert bench["runs"]
    for run in bench["runs"]:
        assert run["error"] is None and run["gap"] > 0 and run["wall_s"] > 0 and run["steps"] >= 1
        ran = yaml.safe_load(
            (
                work
                / "runs"
                / f"{run['estimator']}_K{run['K']}_{run['term'] or 'all'}_x{run['budget']:g}"
                / "params.yaml"
            ).read_text()
        )
        assert apply_sets(repo, run["command"]) == ran
        assert apply_sets(repo, bench["eq12"]["command"]) == base
    sampled = [run for run in bench["runs"] if run["sampled"]]
    assert sampled
    for run in sampled:
        ran = yaml.safe_load(
            (
                work
                / "runs"
                / f"{run['estimator']}_K{run['K']}_{run['term'] or 'all'}_x{run['budget']:g}"
                / "params_sample.yaml"
            ).read_text()
        )
        assert run["sample_command"].endswith(" compare_dist")
        params = apply_sets(repo, run["sample_command"])
        for section in ("gmm", "diffusion", "model", "sample", "compare_dist"):  # what sample and compare_dist read
            assert params[section] == ran[section], section

    figure = out.parent / "estimators_gap_vs_time.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the README's benchmark table renders these rows
    benchmark_section = load_script(ROOT / "scripts" / "readme_results.py").benchmark_section

    lines = benchmark_section(tmp_path)
    assert len(lines) == 2 + len(bench["rows"]) and all(line.startswith("| estimators") for line in lines[2:])
