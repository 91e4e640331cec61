"""The run of train_images as a library call (ddpm_lab.images.train_run) and the rank protocol it
uses (ddpm_lab.runtime.distributed: launch_ranks, rank_run), in one process: the launcher and the
process group are stood in for; tests/slow/test_distributed.py runs real ranks."""

from __future__ import annotations

import io
import json

import pytest
import torch

from ddpm_lab.images import train_run
from ddpm_lab.images.train_run import run_training
from ddpm_lab.runtime import distributed
from ddpm_lab.runtime.distributed import (
    EXIT_PEER_LOST,
    EXIT_STOPPED,
    RankFailed,
    Stopped,
    World,
    launch_ranks,
    rank_run,
)
from ddpm_lab.runtime.params import ConfigError, DataError
from tests.helpers import TINY_DIFFUSION, tiny_unet_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MODULE = ("stages.train_images", ["--some", "argv"])


def _launch(tmp_path, monkeypatch, failure: RankFailed | None, device: str = "cpu", nproc: int = 2):
    """launch_ranks with `launch` replaced: it raises `failure` (None: the ranks succeed)."""
    calls = []

    def fake_launch(*args):
        calls.append(args)
        if failure is not None:
            raise failure

    monkeypatch.setattr(distributed, "launch", fake_launch)
    launch_ranks(nproc, *MODULE, torch.device(device), "gloo", "train_images", tmp_path / "resume.pt")
    return calls


def test_launch_ranks_runs_the_module_as_nproc_ranks(tmp_path, monkeypatch, capsys):
    assert _launch(tmp_path, monkeypatch, None) == [(2, *MODULE)]
    assert capsys.readouterr().err == "train_images: launching 2 processes (gloo, cpu)\n"


@pytest.mark.parametrize(
    "checkpoint,kept",
    [
        (False, "no checkpoint yet, a rerun starts from step 0"),
        (True, "the checkpoint {resume} is kept, a rerun resumes from it"),
    ],
)
def test_a_failed_rank_is_one_error_line_and_exit_1(tmp_path, monkeypatch, capsys, checkpoint, kept):
    if checkpoint:
        (tmp_path / "resume.pt").write_bytes(b"state")
    with pytest.raises(SystemExit) as e:
        _launch(tmp_path, monkeypatch, RankFailed("rank 1 of 2 was killed by SIGKILL", -9))
    assert e.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "train_images: launching 2 processes (gloo, cpu)",
        "error: train_images: rank 1 of 2 was killed by SIGKILL: no outputs written; "
        + kept.format(resume=tmp_path / "resume.pt"),
    ]


@pytest.mark.parametrize("code", [2, EXIT_STOPPED])
def test_a_rank_that_said_why_passes_its_status_on(tmp_path, monkeypatch, capsys, code):
    """Bad input and a requested stop: rank 0 printed the line, the launcher adds none."""
    with pytest.raises(SystemExit) as e:
        _launch(tmp_path, monkeypatch, RankFailed(f"rank 0 of 2 exited with status {code}", code))
    assert e.value.code == code
    assert "error" not in capsys.readouterr().err


def test_more_cuda_ranks_than_devices_is_a_config_error_before_any_launch(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"images_train\.nproc = 2: expected at most 1 \(the CUDA devices here"):
        _launch(tmp_path, monkeypatch, None, device="cuda")


@pytest.fixture
def group(monkeypatch):
    """join / leave of the process group recorded instead of done."""
    calls = []
    monkeypatch.setattr(distributed, "join", lambda world, backend: calls.append(("join", world.rank, backend)))
    monkeypatch.setattr(distributed, "leave", lambda: calls.append(("leave",)))
    return calls


@pytest.mark.parametrize(
    "rank,error,code,says",
    [
        (
            0,
            Stopped("train_images: stopped after the checkpoint at step 4 -> ck.pt"),
            EXIT_STOPPED,
            "train_images: stopped after the checkpoint at step 4 -> ck.pt\n",
        ),
        (1, Stopped("train_images: stopped after the checkpoint at step 4 -> ck.pt"), EXIT_STOPPED, ""),
        (1, ConfigError("bad"), 2, ""),
        (1, DataError("bad"), 2, ""),
        (0, RuntimeError("[gloo] Connection closed by peer"), EXIT_PEER_LOST, ""),
        (1, KeyboardInterrupt(), 130, ""),
    ],
)
def test_a_rank_ends_with_the_status_the_launcher_reads(group, capsys, rank, error, code, says):
    with pytest.raises(SystemExit) as e, rank_run(World(rank, 2), "gloo"):
        raise error
    assert e.value.code == code
    assert capsys.readouterr().err == says
    assert group == [("join", rank, "gloo"), ("leave",)]


@pytest.mark.parametrize(
    "world,error",
    [
        (World(0, 2), ConfigError("bad")),  # rank 0 says it: run_stage prints the line
        (World(0, 2), ValueError("a bug")),  # not a lost peer: a traceback
        (World(), RuntimeError("Connection closed by peer")),  # one process has no peers
        (World(), KeyboardInterrupt()),
    ],
)
def test_other_failures_are_raised_as_they_are(group, world, error):
    with pytest.raises(type(error)), rank_run(world, "gloo"):
        raise error
    assert group == ([("join", 0, "gloo")] if world.size > 1 else []) + [("leave",)]


def test_run_training_returns_the_outputs_and_writes_the_checkpoint(tmp_path, capsys):
    resume = tmp_path / "resume.pt"
    run = run_training(*tiny_unet_inputs(), resume, relaunch=MODULE)
    assert f"train_images: no checkpoint at {resume}: training from step 0" in capsys.readouterr().err
    assert torch.load(resume, weights_only=True)["state"]["step"] == 12
    metrics = json.loads(run.metrics)
    assert metrics["processes"] == 1 and metrics["steps"] == 12 and metrics["branch"] == "images"
    assert run.history.decode().splitlines()[0] == "step,loss" and len(run.history.decode().splitlines()) == 4
    ckpt = torch.load(io.BytesIO(run.model), weights_only=True)
    assert ckpt["config"]["image_shape"] == [1, 8, 8] and ckpt["config"]["diffusion"] == TINY_DIFFUSION
    assert run.line("m.pt").startswith("train_images: 12 steps on cpu in ")
    assert run.line("m.pt").endswith(
        f"final loss {metrics['final_loss']:.4f}, {metrics['parameters']} parameters -> m.pt"
    )


def test_run_training_stops_after_a_checkpoint_and_resumes_to_the_same_bytes(tmp_path, capsys):
    full = run_training(*tiny_unet_inputs(), tmp_path / "full.pt", relaunch=MODULE)
    resume = tmp_path / "resume.pt"
    with pytest.raises(SystemExit) as e:
        run_training(*tiny_unet_inputs(), resume, relaunch=MODULE, stop_at=5)
    assert e.value.code == EXIT_STOPPED
    assert f"train_images: stopped after the checkpoint at step 5 -> {resume}" in capsys.readouterr().err
    resumed = run_training(*tiny_unet_inputs(), resume, relaunch=MODULE)
    assert f"train_images: resuming from {resume} at step 5" in capsys.readouterr().err
    assert (resumed.model, resumed.metrics, resumed.history) == (full.model, full.metrics, full.history)


def test_run_training_with_nproc_launches_the_stage_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    calls = []
    monkeypatch.setattr(train_run, "launch_ranks", lambda *args: calls.append(args))
    assert run_training(*tiny_unet_inputs(nproc=2, backend="gloo"), tmp_path / "resume.pt", relaunch=MODULE) is None
    assert calls == [(2, *MODULE, torch.device("cpu"), "gloo", "train_images", tmp_path / "resume.pt")]
    assert not (tmp_path / "resume.pt").exists()


def test_run_training_under_a_launcher_of_another_size_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="images_train.nproc = 1: expected the launcher's WORLD_SIZE = 2"):
        run_training(*tiny_unet_inputs(), tmp_path / "resume.pt", relaunch=MODULE)
