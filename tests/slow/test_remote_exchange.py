"""Experiments across machines: a git remote and a DVC remote, both local
folders here (S3 / GCS / SSH in real use). Machine A runs an experiment and pushes it; machine B,
a fresh clone, pulls it, lists it, applies it and restores its model without recomputing; a fresh
clone with the remote gets the baseline by `dvc pull` and `dvc repro` has nothing to do."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
import yaml

from ddpm_lab.tools.compare import collect
from tests.helpers import DvcRepo, TINY_GMM


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_an_experiment_travels_between_two_clones(dvc_repo, tmp_path):
    t0 = time.perf_counter()
    a = dvc_repo
    origin, store = tmp_path / "origin.git", tmp_path / "dvc-store"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    a.set_params(TINY_GMM)
    a.dvc("remote", "add", "-d", "store", str(store))
    # The pipeline cut to generate_gmm -> train_eq12 (seconds at tiny params): `dvc exp apply` and a
    # plain `dvc pull` / `dvc repro` then cover the whole pipeline, as in a project whose every
    # output went to the remote. The copy's lock (of the full study, no cache here) goes too.
    pipeline = yaml.safe_load((a.path / "dvc.yaml").read_text())
    pipeline = {"stages": {k: pipeline["stages"][k] for k in ("generate_gmm", "train_eq12")}}
    (a.path / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (a.path / "dvc.lock").unlink()
    a.dvc("repro")
    a.run("git", "add", "-A")
    a.run("git", "commit", "-q", "-m", "baseline: tiny params, a DVC remote")
    a.dvc("push")  # the baseline's data and model, for any clone
    baseline_model = digest(a.path / "models/eq12.pt")
    a.run("git", "remote", "add", "origin", str(origin))
    a.run("git", "push", "-q", "origin", "HEAD:refs/heads/main")

    a.dvc("exp", "run", "-n", "lr-half", "-S", "train_eq12.lr=0.001", "train_eq12")
    exp_model = digest(a.path / "models/eq12.pt")
    assert exp_model != baseline_model
    a.dvc("exp", "push", "origin", "lr-half")  # the experiment's git ref, and its outputs to the DVC remote

    # Machine B: a fresh clone. The baseline comes from the remote: nothing to recompute.
    b = DvcRepo(tmp_path / "b")
    subprocess.run(["git", "clone", "-q", "-b", "main", str(origin), str(b.path)], check=True, capture_output=True)
    b.dvc("pull")
    assert digest(b.path / "models/eq12.pt") == baseline_model
    out = b.dvc("repro").stdout
    assert "Running stage" not in out, out

    b.dvc("exp", "pull", "origin", "lr-half")
    assert "lr-half" in b.dvc("exp", "list", "--name-only").stdout
    runs = {r.name: r for r in collect(json.loads(b.dvc("exp", "show", "--json").stdout))}
    assert runs["lr-half"].params["train_eq12.lr"] == 0.001  # dvc exp show on B lists A's experiment
    b.dvc("exp", "apply", "lr-half")
    assert digest(b.path / "models/eq12.pt") == exp_model  # restored from the cache, not retrained
    assert "Running stage" not in b.dvc("repro").stdout
    assert "up to date" in b.dvc("status").stdout
    print(f"two-clone exchange: {time.perf_counter() - t0:.0f} s")
