"""`ddpm-lab sweep` on submitit's local executor: the same job function a Slurm job runs, as local
processes, with a bare git repository and a local DVC remote in a temporary folder, on the tiny
GMM pipeline cut to compare_dist. 2 variants x 2 replicates finish, are pushed and gathered;
compare sees the four runs as two variants (grouped over the param replicate, every run its own
seeds) and writes its HTML; a variant whose params are refused fails in one line without
stopping the others; a resubmitted sweep skips what the remote already holds."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import yaml

from ddpm_lab.tools import where_in_t
from ddpm_lab.tools.compare import collect, group
from ddpm_lab.tools.where_in_t import read_runs
from tests.helpers import DvcRepo, TINY_GMM

pytestmark = pytest.mark.slow

KEEP = ("generate_gmm", "train_eq12", "train_eq3", "sample", "compare_dist")


def sweep(repo: DvcRepo, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "ddpm_lab.tools.sweep", *args],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc


def test_sweep_runs_pushes_reports_and_gathers(dvc_repo, tmp_path):
    t0 = time.perf_counter()
    a = dvc_repo
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    a.set_params(TINY_GMM)
    # Every threads param at the jobs' cpus (2), so the committed baseline is the baseline variant's
    # replicate 0 and compare counts it once.
    params = a.params()
    for section in params.values():
        if isinstance(section, dict) and "threads" in section:
            section["threads"] = 2
    (a.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = yaml.safe_load((a.path / "dvc.yaml").read_text())
    pipeline = {"stages": {k: v for k, v in pipeline["stages"].items() if k in KEEP}}
    (a.path / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (a.path / "dvc.lock").unlink()
    a.dvc("remote", "add", "-d", "store", str(store))
    a.dvc("repro")
    a.run("git", "add", "-A")
    a.run("git", "commit", "-q", "-m", "tiny baseline")
    a.run("git", "remote", "add", "origin", str(origin))
    a.run("git", "push", "-q", "origin", "HEAD:refs/heads/main")
    spec = {
        "name": "t",
        "repo": str(origin),
        "rev": "main",
        "target": "compare_dist",
        "replicates": [0, 1],
        "variants": [{}, {"train_eq12.lr": 0.001}, {"train_eq12.lr": 5.0}],  # the last is refused
        "resources": {"cpus": 2, "time_min": 20, "mem_gb": 2},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    folder = ["--folder", str(tmp_path / "jobs")]
    out = sweep(a, str(tmp_path / "sweep.yaml"), "--executor", "local", "--wait", *folder).stdout
    assert "6 runs, 0 already on" in out and "4 of 6 jobs finished, 2 failed" in out, out
    assert out.count("train_eq12.lr = 5.0: expected a number <= 1") == 2, out

    status = sweep(a, str(tmp_path / "sweep.yaml"), "--status", *folder).stdout
    lines = [line.split(None, 2) for line in status.splitlines() if line.startswith("t-")]
    assert len(lines) == 6 and sorted(s for _, s, *_ in lines).count("FINISHED") == 4, status
    failed = [rest for _, s, *rest in lines if s == "FAILED"]
    assert len(failed) == 2 and all("train_eq12.lr = 5.0" in r[0] for r in failed), status

    # Resubmitting skips the four runs on the remote; only the refused ones run again.
    again = sweep(a, str(tmp_path / "sweep.yaml"), "--executor", "local", "--wait", *folder).stdout
    assert "6 runs, 4 already on" in again and "0 of 2 jobs finished, 2 failed" in again, again

    # Another machine: a fresh clone gathers the runs and compares them.
    b = DvcRepo(tmp_path / "b")
    subprocess.run(["git", "clone", "-q", "-b", "main", str(origin), str(b.path)], check=True, capture_output=True)
    gathered = sweep(b, str(tmp_path / "sweep.yaml"), "--gather", *folder).stdout
    assert "pulling 4 of 6 runs" in gathered, gathered
    assert "compare: 2 variants, 4 runs" in gathered, gathered
    assert "train_eq12.lr=0.001" in gathered, gathered
    assert b.dvc("exp", "list").stdout.count("t-") == 4

    # The gathered runs are ordinary DVC experiments: `dvc exp show` groups them into variants over the
    # param replicate, each replicate its own training and sampling seeds, and compare writes its HTML.
    variants = group(collect(json.loads(b.dvc("exp", "show", "--json").stdout)))
    assert [(v.name, sorted(r.replicate for r in v.runs)) for v in variants] == [
        ("baseline", [0, 1]),
        ("train_eq12.lr=0.001", [0, 1]),
    ]
    assert len({r.metrics["eq12.bound_gap"] for v in variants for r in v.runs}) == 4
    b.run(sys.executable, "-m", "ddpm_lab.tools.compare", "--out", "reports/compare.html")
    assert (b.path / "reports" / "compare.html").is_file()

    # Where in t (ddpm_lab.tools.where_in_t): each run's per-t table, read at its rev through
    # dvc.api, splits its exact bound gap into ranges of t that add up to the gap compare reads.
    T = a.params()["diffusion"]["T"]
    gaps = read_runs(variants, [0, T // 2, T], repo=str(b.path))
    for v in variants:
        for r in v.runs:
            assert sum(gaps[v.name][r.replicate].values()) == pytest.approx(r.metrics["eq12.bound_gap"], rel=1e-6)
    assert len(where_in_t.table(gaps)) == 2 * 2
    print(f"sweep on the local executor: {time.perf_counter() - t0:.0f} s")
