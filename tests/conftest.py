"""Shared fixtures: a temporary copy of the repository in which `dvc repro` really runs."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The tiers (pytest.ini): `pytest` runs the unmarked unit tests, `pytest -m ""` every tier.
SLOW_MODULES = {"test_browser", "test_distributed", "test_pipeline", "test_remote_exchange"}  # whole modules
STAGE_MODULES = {"test_bad_input", "test_params_property", "test_stages_2d", "test_estimator_variance", "test_commands",
                 "test_sampler_tradeoff"}


def pytest_collection_modifyitems(items):
    """slow: every test of SLOW_MODULES and every test that copies the repository (`dvc_repo`);
    stage: every test of STAGE_MODULES and every test run in a stage's working copy (`workdir`)."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in SLOW_MODULES or "dvc_repo" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
        if module in STAGE_MODULES or "workdir" in item.fixturenames:
            item.add_marker(pytest.mark.stage)


def repo_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a clean clone (plus work in progress) holds."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


class DvcRepo:
    """A copy of the repository in tmp_path, with helpers to edit params and run commands."""

    def __init__(self, path: Path):
        self.path = path
        bin_dir = str(Path(sys.executable).parent)  # the venv's python and dvc come first on PATH
        self.env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
                    "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, updates: dict[str, dict]) -> None:
        """Merge {section: {key: value}} into params.yaml."""
        params = self.params()
        for section, values in updates.items():
            params[section].update(values)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=self.path, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr[-4000:]}")
        return proc

    def dvc(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, **kw)

    def stage(self, module: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", module, *args, **kw)


@pytest.fixture(autouse=True)
def restore_process_settings():
    """Stages run in-process set process-wide state at their entry (torch's deterministic
    algorithms and thread count, matplotlib's backend): put each back after every test."""
    import matplotlib
    import torch

    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.get_num_threads(), matplotlib.get_backend())
    yield
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
TINY_GMM = {
    "gmm": dict(n_train=300, n_heldout=20),
    "diffusion": dict(T=20),
    "model": dict(hidden=8, n_blocks=1, emb_dim=4),
    "train_eq12": dict(steps=3, batch_size=16, log_every=1, warmup=1),
    "train_eq3": dict(steps=2, batch_size=2, log_every=1, warmup=1),
    "sample": dict(n=50, seeds=[0, 1], n_trajectories=3, trajectory_every=5),
    "compare_dist": dict(floor_draws=20, directions=8),
    "plot": dict(forward_times=[0, 0.5, 1.0], n_forward_paths=30, dpi=30, bins=10),
}
