"""Shared fixtures: a temporary copy of the repository in which `dvc repro` really runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.helpers import ROOT, DvcRepo, repo_files


# The tiers (pytest.ini): `pytest` runs the unit tier (tests/unit), `pytest -m ""` every tier.
TIER_OF_FOLDER = {"stage": "stage", "slow": "slow"}  # tests/stage, tests/slow


def pytest_collection_modifyitems(items):
    """slow: every test in tests/slow and every test that copies the repository (`dvc_repo`);
    stage: every test in tests/stage and every test run in a stage's working copy (`workdir`)."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if TIER_OF_FOLDER.get(folder) == "slow" or "dvc_repo" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
        if TIER_OF_FOLDER.get(folder) == "stage" or "workdir" in item.fixturenames:
            item.add_marker(pytest.mark.stage)


@pytest.fixture(autouse=True)
def restore_process_settings():
    """Stages run in-process set process-wide state at their entry (torch's deterministic
    algorithms and thread count, matplotlib's backend): put each back after every test, and close
    the figures a test left open (pyplot keeps them, and a stage that opens its 21st figure warns,
    an error here: pytest.ini)."""
    import matplotlib
    import torch

    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_num_threads(),
        matplotlib.get_backend(),
    )
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
    torch.set_num_threads(saved[2])
    matplotlib.use(saved[3])


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the image stages use by default: threads competing for a busy
    2-core CPU make small convolutions orders of magnitude slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def dvc_repo(tmp_path) -> DvcRepo:
    """A fresh copy of the repo (code, dvc.yaml, params.yaml; no data, models or outputs of
    the pipeline), as its own git repository with one commit."""
    dest = tmp_path / "repo"
    for rel in repo_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    repo = DvcRepo(dest)
    repo.run("git", "init", "-q")
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "copy")
    return repo


# Params small enough for the whole GMM branch to run in seconds: {section: {key: value}}.
