"""The README's results and benchmark tables are generated from metrics/ and benchmarks/results/."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_results.py"


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--check", "--root", str(root)], capture_output=True, text=True)


def test_readme_numbers_are_what_the_script_writes():
    proc = check(ROOT)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_a_changed_metric_makes_the_readme_stale(tmp_path):
    for rel in ("README.md", "params.yaml", "metrics", "benchmarks/results", "benchmarks/replicates"):
        src, dst = ROOT / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    assert check(tmp_path).returncode == 0
    path = tmp_path / "metrics" / "dist_eq12.json"
    m = json.loads(path.read_text())
    m["w1_ratio"] += 0.5
    path.write_text(json.dumps(m))
    proc = check(tmp_path)
    assert proc.returncode == 1 and "stale" in proc.stderr
    # Regenerating makes it current again.
    subprocess.run([sys.executable, str(SCRIPT), "--root", str(tmp_path)], check=True)
    assert check(tmp_path).returncode == 0
