"""The `ddpm-lab` command (pyproject.toml, installed editable by scripts/setup.sh)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "ddpm-lab"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(COMMAND), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_help_lists_every_subcommand():
    proc = run("--help")
    assert proc.returncode == 0 and all(name in proc.stdout for name in ("compare", "report", "preflight"))
    assert "--sequential N" in run("compare", "--help").stdout


def test_compare_from_anywhere_prints_json(tmp_path):
    proc = run(
        "compare",
        "--runs",
        str(ROOT / "benchmarks/replicates/eq12_vs_eq14.json"),
        "--out",
        str(tmp_path / "c.html"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert any(r["differs"] for r in rows) and (tmp_path / "c.html").is_file()
    assert proc.stderr.startswith("compare: 2 variants, 10 runs")


def test_preflight_from_anywhere_and_bad_commands_are_one_line(tmp_path):
    assert run("preflight", "--params", str(ROOT / "params.yaml"), cwd=tmp_path).returncode == 0
    for args, expected in (
        (["nope"], "error: ddpm-lab nope: expected one of compare, report, preflight"),
        (["compare", "--runs", str(tmp_path / "none.json")], "error: "),
    ):
        proc = run(*args, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [proc.stderr.strip()], proc.stderr
        assert proc.stderr.startswith(expected)
