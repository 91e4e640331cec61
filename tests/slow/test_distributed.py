"""Data-parallel training of the image branch (images_train.nproc, torch.distributed).

The stage really launches itself as 2 gloo ranks (subprocesses, as `dvc repro` runs it) on a
tiny U-Net: 20 steps equal the single-process run with the same global batch (losses within
1e-5 relative, weights within 1e-4 relative); a rank killed with SIGKILL fails the stage with one
line and no half-written output, and a rerun resumes from the checkpoint written before.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import ConfigError
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.runtime.distributed import EXIT_STOPPED, World, resolve_backend
from ddpm_lab.images.train import ImageTrainConfig, train_unet
from ddpm_lab.images.unet import UNet, UNetConfig
from tests.helpers import ROOT, TINY_DIFFUSION, TINY_MODEL, TINY_TRAIN, venv_env

OUTPUTS = ("model.pt", "metrics.json", "loss.csv")


def _setup(tmp: Path, **train) -> Path:
    """params.yaml (tiny U-Net; 20 steps of a global batch of 16) and the data, in tmp."""
    tmp.mkdir(exist_ok=True)
    params = {
        "replicate": 0,
        "images_diffusion": TINY_DIFFUSION,
        "images_model": TINY_MODEL,
        "images_train": {
            **TINY_TRAIN,
            "steps": 20,
            "batch_size": 16,
            "log_every": 1,
            "checkpoint_every": 5,
            "grad_clip": 1.0,
            "seed": 0,
            "weighting": "eq14",
            "t_sampling": "uniform",
            "min_snr_gamma": 5.0,
            "target": "sampled",
            "hybrid_lambda": 0.001,
            "hybrid_vlb": "kl",
            **train,
        },
    }
    (tmp / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 1, 8, 8)).astype(np.float32)
    np.savez(tmp / "split.npz", x_train=x)
    return tmp


def _argv(tmp: Path) -> list[str]:
    return [
        "--params",
        str(tmp / "params.yaml"),
        "--data",
        str(tmp / "split.npz"),
        "--model-out",
        str(tmp / "model.pt"),
        "--resume",
        str(tmp / "resume.pt"),
        "--metrics-out",
        str(tmp / "metrics.json"),
        "--history-out",
        str(tmp / "loss.csv"),
    ]


def _main(argv: list[str]) -> None:
    """The stage run in-process, as `python -m stages.train_images` runs it (run_stage: one-line errors)."""
    run_stage(importlib.import_module("stages.train_images").main, argv)


def _stage(tmp: Path, *extra: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stages.train_images", *_argv(tmp), *extra],
        cwd=ROOT,
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _state(tmp: Path) -> dict:
    return torch.load(tmp / "resume.pt", weights_only=True)["state"]


def _rel(a: dict, b: dict) -> float:
    """Largest per-tensor max |a - b| / max |b| over the tensors of two state dicts."""
    return max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)).item() for k in b)


def _lines(stderr: str) -> list[str]:
    """The lines of stderr that are not progress bars (tqdm redraws with carriage returns)."""
    return [
        ln.strip()
        for ln in stderr.replace("\r", "\n").splitlines()
        if ln.strip() and "it/s" not in ln and "?it" not in ln
    ]


def test_a_shard_of_the_global_batch_is_the_global_batchs_rows():
    """Each rank draws t and eps for every row of the global batch and evaluates its shard: the
    shards' losses are the single-process losses, and the generators stay in step."""
    diffusion = DiffusionConfig(**TINY_DIFFUSION).build()
    net = UNet.seeded(UNetConfig(**TINY_MODEL, in_channels=1, image_size=8), 0)
    x0 = torch.rand((6, 1, 8, 8)) * 2 - 1
    full = diffusion.loss_eq12(net, x0, torch.Generator().manual_seed(3), "eq14")
    parts, states = [], []
    for world in (World(0, 3), World(1, 3), World(2, 3)):
        g = torch.Generator().manual_seed(3)
        parts.append(diffusion.loss_eq12(net, x0, g, "eq14", world.shard(6)))
        states.append(g.get_state())
    torch.testing.assert_close(torch.cat(parts), full, rtol=1e-6, atol=0)
    assert all(torch.equal(s, states[0]) for s in states)
    assert World().shard(6) == slice(0, 6) and World(1, 2).shard(16) == slice(8, 16)
    with pytest.raises(ValueError, match="16 rows does not split over 3"):
        World(0, 3).shard(16)


def test_two_gloo_ranks_train_as_one_process(tmp_path):
    """The target: 2 gloo processes vs 1, the same 20 global batches of 16: per-step losses
    within 1e-5 relative, weights (and EMA weights) within 1e-4 relative; rank 0 alone writes."""
    one, two = _setup(tmp_path / "one", nproc=1), _setup(tmp_path / "two", nproc=2, backend="gloo")
    for d in (one, two):
        proc = _stage(d)
        assert proc.returncode == 0, proc.stderr[-3000:]
    s1, s2 = _state(one), _state(two)
    assert s1["step"] == s2["step"] == 20
    h1, h2 = np.array(s1["history"]), np.array(s2["history"])  # full-precision (step, loss) rows
    assert np.array_equal(h1[:, 0], np.arange(1, 21)) and np.array_equal(h2[:, 0], h1[:, 0])
    assert np.max(np.abs(h2[:, 1] / h1[:, 1] - 1)) <= 1e-5
    assert _rel(s2["model"], s1["model"]) <= 1e-4 and _rel(s2["ema"], s1["ema"]) <= 1e-4
    m1 = torch.load(one / "model.pt", weights_only=True)["state_dict"]
    m2 = torch.load(two / "model.pt", weights_only=True)["state_dict"]
    assert _rel(m2, m1) <= 1e-4
    assert yaml.safe_load((two / "metrics.json").read_text())["processes"] == 2
    assert "launching 2 processes (gloo, cpu)" in _stage(two).stderr  # resumes at step 20: nothing left to train
    assert sorted(p.name for p in two.iterdir()) == sorted(["params.yaml", "split.npz", "resume.pt", *OUTPUTS])


def _shard_rank(rank: int, tmp: str) -> None:
    """One of 2 ranks of train_unet in a gloo group (torch.multiprocessing.spawn): records the rows
    each U-Net call saw and the trained weights."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=2)
    seen = []
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 1, 8, 8)).astype(np.float32)
    mcfg = UNetConfig(**TINY_MODEL, in_channels=1, image_size=8)
    tcfg = ImageTrainConfig(
        **{
            **TINY_TRAIN,
            "steps": 3,
            "batch_size": 16,
            "nproc": 2,
            "grad_clip": 1.0,
            "seed": 0,
            "weighting": "eq14",
            "t_sampling": "uniform",
        }
    )
    orig = UNet.forward

    def counting(self, x_t, t):
        seen.append((x_t.shape[0], float(x_t.double().sum())))
        return orig(self, x_t, t)

    UNet.forward = counting
    try:
        ema, _ = train_unet(
            x, DiffusionConfig(**TINY_DIFFUSION).build(), mcfg, tcfg, torch.device("cpu"), world=World(rank, 2)
        )
    finally:
        UNet.forward = orig
        torch.distributed.destroy_process_group()
    torch.save({"seen": seen, "ema": ema.state_dict()}, f"{tmp}/rank{rank}.pt")


def test_each_rank_evaluates_only_its_shard(tmp_path):
    """Equal weights alone would not show that work is split (every rank evaluating the whole
    batch gives the same average gradient): each of 2 ranks calls the U-Net on 8 of the 16
    rows of every step, different rows, and the ranks end with the same EMA weights."""
    torch.multiprocessing.spawn(_shard_rank, args=(str(tmp_path),), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert [n for n, _ in r0["seen"]] == [n for n, _ in r1["seen"]] == [8, 8, 8]
    assert all(a != b for (_, a), (_, b) in zip(r0["seen"], r1["seen"]))
    assert all(torch.equal(r0["ema"][k], r1["ema"][k]) for k in r0["ema"])


def _rank_pids(launcher: int) -> dict[int, int]:
    """{rank: pid} of the ranks a launcher started (their RANK, from /proc)."""
    out = {}
    for child in Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split():
        env = dict(
            kv.split("=", 1) for kv in Path(f"/proc/{child}/environ").read_bytes().decode().split("\0") if "=" in kv
        )
        if "RANK" in env:
            out[int(env["RANK"])] = int(child)
    return out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the ranks through Linux's /proc")
def test_a_killed_rank_fails_the_stage_in_one_line_and_a_rerun_resumes(tmp_path):
    d = _setup(tmp_path, nproc=2, backend="gloo", steps=5000, log_every=10, checkpoint_every=20)
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train_images", *_argv(d)],
        cwd=ROOT,
        env=venv_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (d / "resume.pt").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.1)
        ranks = _rank_pids(proc.pid)
        assert sorted(ranks) == [0, 1]
        os.kill(ranks[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    errors = [ln for ln in _lines(err) if ln.startswith("error")]
    assert errors == [
        f"error: train_images: rank 1 of 2 was killed by SIGKILL: no outputs written; "
        f"the checkpoint {d / 'resume.pt'} is kept, a rerun resumes from it"
    ], err[-3000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in d.iterdir()) == ["params.yaml", "resume.pt", "split.npz"]  # no output, no temp file
    step = _state(d)["step"]
    assert step >= 20 and step % 20 == 0
    # a rerun (one process this time: any nproc resumes) continues from that step
    with open(d / "params.yaml") as f:
        params = yaml.safe_load(f)
    params["images_train"]["nproc"] = 1
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rerun = _stage(d, "--stop-at", str(step + 20))
    assert rerun.returncode == EXIT_STOPPED, rerun.stderr[-3000:]
    assert f"resuming from {d / 'resume.pt'} at step {step}" in rerun.stderr
    assert _state(d)["step"] == step + 20


@pytest.mark.parametrize(
    "train,match",
    [
        ({"nproc": 3}, r"images_train\.nproc = 3: expected a divisor of batch_size = 16"),
        ({"nproc": 0}, r"images_train\.nproc = 0: expected an integer in \[1, 256\]"),
        ({"backend": "mpi"}, r"images_train\.backend = 'mpi': expected one of auto, gloo, nccl"),
        ({"nproc": 2, "backend": "nccl"}, r"images_train\.backend = 'nccl': expected a CUDA device \(running on cpu\)"),
    ],
)
def test_bad_parallel_params_are_one_line_before_any_launch(tmp_path, capsys, train, match):
    d = _setup(tmp_path, **train)
    with pytest.raises(SystemExit) as e:
        _main(_argv(d))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(match, err[0]), err
    assert sorted(p.name for p in d.iterdir()) == ["params.yaml", "split.npz"]


def test_a_launcher_world_size_other_than_nproc_is_one_line(tmp_path, capsys, monkeypatch):
    d = _setup(tmp_path, nproc=1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit):
        _main(_argv(d))
    assert "images_train.nproc = 1: expected the launcher's WORLD_SIZE = 2" in capsys.readouterr().err


def test_backend_resolution():
    assert resolve_backend("auto", torch.device("cpu")) == "gloo"
    assert resolve_backend("auto", torch.device("cuda")) == "nccl"
    assert resolve_backend("gloo", torch.device("cuda")) == "gloo"
    with pytest.raises(ConfigError):
        resolve_backend("nccl", torch.device("cpu"))
    assert ImageTrainConfig(**{**TINY_TRAIN, "nproc": 2}).fingerprint() == ImageTrainConfig(**TINY_TRAIN).fingerprint()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU path is tested above)")
def test_cuda_path_end_to_end(tmp_path):
    """With two or more GPUs: 2 nccl ranks against 1 process, as the gloo test. With one: the
    single-GPU training path end to end, against the CPU run of the same params."""
    nproc = 2 if torch.cuda.device_count() >= 2 else 1
    gpu = _setup(tmp_path / "gpu", device="cuda", nproc=nproc, backend="auto")
    cpu = _setup(tmp_path / "cpu", device="cpu", nproc=1)
    for d in (gpu, cpu):
        proc = _stage(d)
        assert proc.returncode == 0, proc.stderr[-3000:]
    h_gpu, h_cpu = np.array(_state(gpu)["history"]), np.array(_state(cpu)["history"])
    # other kernels (cuDNN convolutions may use TF32): the same training, not the same bytes
    assert np.max(np.abs(h_gpu[:, 1] / h_cpu[:, 1] - 1)) <= 1e-2
    assert yaml.safe_load((gpu / "metrics.json").read_text())["processes"] == nproc


@pytest.mark.slow
def test_bench_ddp_runs_and_writes_its_rows(tmp_path):
    """benchmarks/bench_ddp.py end to end at tiny size (its figures are not judged here)."""
    d = _setup(tmp_path / "in")
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_ddp.py",
            "--params",
            str(d / "params.yaml"),
            "--data",
            str(d / "split.npz"),
            "--short",
            "2",
            "--long",
            "6",
            "--repeats",
            "1",
            "--write",
            str(tmp_path / "ddp.json"),
        ],
        cwd=ROOT,
        env=venv_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes (gloo), 1 thread each" in proc.stdout and "steps/s" in proc.stdout
    rows = yaml.safe_load((tmp_path / "ddp.json").read_text())["rows"]
    assert len(rows) == 5 and rows[-1]["met"] is True  # 6 steps of the tiny U-Net: weights within 1e-4
