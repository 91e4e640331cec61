"""Helpers shared by the test modules (which import this module and conftest's fixtures, never
each other): the repository root, tiny params of both branches, a copy of the repository in which
DVC really runs, stage runners with one-line-error checks, and the import closure of a module."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.io import load_params

ROOT = Path(__file__).resolve().parents[1]


def stages(*names: str):
    """The stage modules `stages.<name>`, run through their `main` (tests use stages as
    entry points, never as libraries)."""
    mods = [importlib.import_module(f"stages.{n}") for n in names]
    return mods[0] if len(mods) == 1 else mods


def repo_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a clean clone (plus work in progress) holds."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p and (ROOT / p).is_file()]


class DvcRepo:
    """A copy of the repository in tmp_path, with helpers to edit params and run commands."""

    def __init__(self, path: Path):
        self.path = path
        bin_dir = str(Path(sys.executable).parent)  # the venv's python and dvc come first on PATH
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.com",
        }

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def set_params(self, updates: dict[str, dict]) -> None:
        """Merge {section: {key: value}} into params.yaml."""
        params = self.params()
        for section, values in updates.items():
            params[section].update(values)
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(list(args), cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
            )
        return proc

    def dvc(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(Path(sys.executable).parent / "dvc"), *args, **kw)

    def stage(self, module: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", module, *args, **kw)


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


TINY_MODEL = {
    "base_channels": 8,
    "channel_mults": [1, 2],
    "num_res_blocks": 1,
    "attn_heads": 2,
    "groups": 4,
    "dropout": 0.0,
    "prediction": "eps",
    "learned_variance": False,
}


TINY_DIFFUSION = {"T": 20, "schedule": "linear", "beta_start": 0.001, "beta_end": 0.2, "variance": "beta"}


TINY_TRAIN = {
    "steps": 12,
    "batch_size": 8,
    "lr": 0.002,
    "warmup": 2,
    "ema_decay": 0.9,
    "log_every": 4,
    "checkpoint_every": 5,
    "device": "cpu",
    "threads": 1,
    "nproc": 1,
    "backend": "auto",
}


def venv_env() -> dict:
    """os.environ with this interpreter's folder first on PATH (a subprocess finds the venv's tools)."""
    return {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}


def _script(name: str):
    """A script of scripts/ imported from its file, as a module of its own name (registered first,
    as the importlib recipe does)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# The import closure of a module, as dvc.yaml's code deps are written from it (scripts/gen_deps.py):
# module_file(dotted name), imports(path) and closure(path), over this repository's ddpm_lab/ and stages/.
GEN_DEPS = _script("gen_deps")
module_file, imports, closure = GEN_DEPS.module_file, GEN_DEPS.imports, GEN_DEPS.closure


def import_closure(module: str) -> set[str]:
    """The ddpm_lab / stages modules `module` imports, transitively, itself included (dotted names)."""
    return {f.removesuffix(".py").replace("/", ".") for f in closure(module_file(module))}


DEFAULTS = load_params(ROOT / "params.yaml")


def defaults_with(changes: dict, base: dict | None = None) -> dict:
    """A copy of params.yaml's defaults (or of base) with {"section.key": value} changes (value None
    deletes the key)."""
    p = copy.deepcopy(DEFAULTS if base is None else base)
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        if value is None:
            del p[section][key]
        else:
            p[section][key] = value
    return p


def tiny_params(**changes) -> dict:
    """Default params, small enough to run in a second, with {"section.key": value} changes
    (value None deletes the key)."""
    p = copy.deepcopy(DEFAULTS)
    for section, values in TINY_GMM.items():
        p[section].update(values)
    return defaults_with(changes, p)


STAGE_OF = {
    "gmm": ("generate_gmm", []),
    "diffusion": ("train", ["--objective", "eq12"]),
    "train_eq12": ("train", ["--objective", "eq12"]),
    "train_eq3": ("train", ["--objective", "eq3"]),
    "model": ("train", ["--objective", "eq3"]),
    "sample": ("sample", []),
    "plot": ("plot", []),
    "compare_dist": ("compare_dist", []),
}


def run_gmm_stages(through_plot: bool = True) -> None:
    """Every GMM stage in order, in-process, on the params.yaml of the current directory."""
    run_stage(stages("generate_gmm").main, [])
    for obj in ("eq12", "eq3"):
        run_stage(stages("train").main, ["--objective", obj])
    run_stage(stages("sample").main, [])
    run_stage(stages("compare_dist").main, [])
    if through_plot:
        run_stage(stages("plot").main, [])


def private_copy(src: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of a module-scoped directory of tiny inputs, as the working directory."""
    root = tmp_path / "work"
    shutil.copytree(src, root)
    monkeypatch.chdir(root)
    return root


def write(params: dict, path: str = "params.yaml") -> None:
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))


def snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def expect_one_line_error(capsys, module, argv, pattern) -> None:
    """Running the stage (a module or its name) exits 2 with one line on stderr matching pattern."""
    module = stages(module) if isinstance(module, str) else module
    with pytest.raises(SystemExit) as exc:
        run_stage(module.main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert re.search(pattern, err), err


def ran(proc) -> list[str]:
    """The stages a `dvc repro` actually executed, in order."""
    return re.findall(r"Running stage '([^']+)'", proc.stdout)


# The README's screenshots and the committed files each one shows: tests/slow/test_browser.py
# (UPDATE_SCREENSHOTS=1) records their md5s in images/screenshots.json as it takes the pictures,
# and tests/unit/test_screenshots.py fails when a source has changed since, as a stale number does.
SCREENSHOT_SOURCES = {
    "report.png": [
        "params.yaml",
        "metrics/dist_eq12.json",
        "metrics/dist_eq3.json",
        "metrics/dist_oracle.json",
        "metrics/images.json",
        "metrics/loss_eq12.csv",
        "metrics/loss_eq3.csv",
        "metrics/images_loss.csv",
    ],
    "plots_offline.png": ["metrics/loss_eq12.csv", "metrics/loss_eq3.csv", "metrics/images_loss.csv"],
}
SCREENSHOT_RECORD = "images/screenshots.json"


def screenshot_sources(root: Path, name: str) -> dict[str, str]:
    """{source: md5} of the files screenshot `name` shows, under root: of a YAML file, the md5 of its
    values (sorted JSON), so that a comment edited in params.yaml leaves the picture current."""
    import hashlib
    import json

    import yaml

    def digest(path: Path) -> str:
        data = path.read_bytes()
        if path.suffix == ".yaml":
            data = json.dumps(yaml.safe_load(data), sort_keys=True).encode()
        return hashlib.md5(data).hexdigest()

    return {p: digest(root / p) for p in SCREENSHOT_SOURCES[name]}


def stale_screenshots(root: Path) -> list[str]:
    """One line per screenshot whose recorded sources differ from the files under root now."""
    import json

    record = json.loads((root / SCREENSHOT_RECORD).read_text())
    lines = []
    for name in SCREENSHOT_SOURCES:
        was, now = record.get(name, {}), screenshot_sources(root, name)
        changed = [p for p in now if was.get(p) != now[p]]
        if changed:
            lines.append(
                f"images/{name} is stale: {', '.join(changed)} changed since it was taken: rerun "
                f"UPDATE_SCREENSHOTS=1 pytest -m slow tests/slow/test_browser.py"
            )
    return lines


def tiny_unet_inputs(**train):
    """(x_train, DiffusionConfig, UNetConfig, ImageTrainConfig) of a tiny U-Net run on 32 seeded 8x8 images,
    with train's changes to the TINY_TRAIN section: the inputs of ddpm_lab.images.train_run.run_training."""
    import numpy as np

    from ddpm_lab.core.diffusion import DiffusionConfig
    from ddpm_lab.images.train import ImageTrainConfig
    from ddpm_lab.images.unet import UNetConfig

    x = np.random.default_rng(0).uniform(-1, 1, size=(32, 1, 8, 8)).astype(np.float32)
    return (
        x,
        DiffusionConfig(**TINY_DIFFUSION),
        UNetConfig(**TINY_MODEL, in_channels=1, image_size=8),
        ImageTrainConfig(**{**TINY_TRAIN, "grad_clip": 1.0, "seed": 0, "weighting": "eq14", **train}),
    )


def write_tiny_unet(path, seed: int = 0):
    """An untrained tiny U-Net checkpoint (TINY_MODEL, TINY_DIFFUSION, 1x8x8 images) at path, as
    train_images writes one: what stages that load the model (sample_images, evaluate_images) read."""
    import torch

    from ddpm_lab.core.diffusion import DiffusionConfig
    from ddpm_lab.images.unet import UNet, UNetConfig
    from ddpm_lab.runtime.io import save_checkpoint_bytes
    from ddpm_lab.runtime.params import to_dict

    torch.manual_seed(seed)
    ucfg = UNetConfig(**TINY_MODEL, in_channels=1, image_size=8)
    config = {
        "diffusion": to_dict(DiffusionConfig(**TINY_DIFFUSION)),
        "model": ucfg.to_dict(),
        "image_shape": [1, 8, 8],
    }
    Path(path).write_bytes(save_checkpoint_bytes(UNet(ucfg).state_dict(), config))
