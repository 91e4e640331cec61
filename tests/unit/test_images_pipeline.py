"""The image branch: resumable training (library and stage), configs, and a tiny `dvc repro`
of its stages in a temporary copy of the repository."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml

from ddpm_lab.runtime.params import ConfigError, DataError, from_section
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.images.metrics import BOUND_KEYS, HEADLINE_KEYS
from ddpm_lab.images.sample import ImageSampleConfig, sample_images
from ddpm_lab.images.train import TRAINING_CODE, ImageTrainConfig, load_resume, resume_bytes, train_unet
from ddpm_lab.runtime.io import torch_bytes
from ddpm_lab.images.unet import UNet, UNetConfig
from tests.helpers import ROOT, TINY_DIFFUSION, TINY_MODEL, TINY_TRAIN, import_closure

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Interrupted(Exception):
    pass


def _tiny():
    x = np.random.default_rng(0).uniform(-1, 1, size=(32, 1, 8, 8)).astype(np.float32)
    return x, DiffusionConfig(**TINY_DIFFUSION).build(), UNetConfig(**TINY_MODEL), ImageTrainConfig(**TINY_TRAIN)


def test_interrupted_then_resumed_training_gives_identical_weights():
    torch.use_deterministic_algorithms(True)
    x, diffusion, mcfg, tcfg = _tiny()
    ema_full, hist_full = train_unet(x, diffusion, mcfg, tcfg, torch.device("cpu"))

    saved = []

    def interrupt_at_5(state):
        saved.append(torch_bytes(state))  # what the stage writes to its resumable checkpoint
        raise Interrupted

    with pytest.raises(Interrupted):
        train_unet(x, diffusion, mcfg, tcfg, torch.device("cpu"), on_checkpoint=interrupt_at_5)
    state = torch.load(io.BytesIO(saved[0]), weights_only=True)
    assert state["step"] == 5
    steps_seen = []
    ema_res, hist_res = train_unet(
        x,
        diffusion,
        mcfg,
        tcfg,
        torch.device("cpu"),
        resume=state,
        on_checkpoint=lambda s: steps_seen.append(s["step"]),
    )
    assert steps_seen == [10, 12]  # every 5 steps, and after the last
    np.testing.assert_array_equal(hist_res, hist_full)
    for (name, a), b in zip(ema_full.state_dict().items(), ema_res.state_dict().values()):
        assert torch.equal(a, b), name


def test_load_resume_matches_fingerprint():
    state = {"step": 3}
    raw = resume_bytes({"a": 1}, state)
    assert load_resume(raw, {"a": 1}, "ck.pt") == (state, "resuming from ck.pt at step 3")
    assert load_resume(raw, {"a": 2}, "ck.pt")[0] is None  # other params: start over
    assert load_resume(None, {"a": 1}, "ck.pt")[0] is None
    with pytest.raises(DataError, match=r"ck.pt: not a readable checkpoint .*delete it to train from step 0"):
        load_resume(b"garbage", {"a": 1}, "ck.pt")


def test_sampling_is_seeded_and_in_range():
    x, diffusion, mcfg, _ = _tiny()
    model = UNet.seeded(mcfg, 0)
    a = sample_images(diffusion, model, 4, (1, 8, 8), torch.Generator().manual_seed(1), torch.device("cpu"))
    b = sample_images(diffusion, model, 4, (1, 8, 8), torch.Generator().manual_seed(1), torch.device("cpu"))
    assert a.shape == (4, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


@pytest.mark.parametrize(
    "cls,raw,match",
    [
        (ImageTrainConfig, {"device": "gpu"}, r"images_train\.device = 'gpu': expected one of auto, cpu, cuda"),
        (ImageTrainConfig, {"threads": -1}, r"images_train\.threads = -1: expected an integer in \[0, 1024\]"),
        (ImageSampleConfig, {"n_samples": 10}, r"images_sample\.n_samples = 10: expected an integer >= 64"),
    ],
)
def test_bad_image_configs(cls, raw, match):
    base = {
        ImageTrainConfig: {
            **TINY_TRAIN,
            "grad_clip": 1.0,
            "seed": 0,
            "weighting": "eq14",
            "t_sampling": "uniform",
            "min_snr_gamma": 5.0,
            "target": "sampled",
            "hybrid_lambda": 0.001,
            "hybrid_vlb": "kl",
        },
        ImageSampleConfig: {
            "sampler": "ddpm",
            "steps": 0,
            "eta": 0.0,
            "n_samples": 64,
            "seed": 0,
            "device": "cpu",
            "threads": 1,
        },
    }[cls]
    section = "images_train" if cls is ImageTrainConfig else "images_sample"
    with pytest.raises(ConfigError, match=match):
        from_section(cls, {section: {**base, **raw}}, section)


def test_each_image_stage_imports_only_its_job():
    """train_images runs no sampling or figure code; sample_images no training code."""
    train, sample = import_closure("stages.train_images"), import_closure("stages.sample_images")
    assert not train & {"ddpm_lab.core.sampling", "ddpm_lab.images.sample", "ddpm_lab.images.figures"}
    assert not sample & {"ddpm_lab.core.training", "ddpm_lab.images.train"}
    assert {"ddpm_lab.runtime.torch_setup", "ddpm_lab.images.unet"} <= train & sample


def test_resume_fingerprint_covers_exactly_the_training_code():
    """TRAINING_CODE = the library modules train_images imports, less io (file reading and writing;
    the data's bytes are fingerprinted apart), cli (error lines, progress bars) and seeds (it only
    derives the seed, and the folded seed itself is in the fingerprint)."""
    train = {m for m in import_closure("stages.train_images") if m.startswith("ddpm_lab.")}
    assert len(set(TRAINING_CODE)) == len(TRAINING_CODE)
    assert set(TRAINING_CODE) == train - {"ddpm_lab.runtime.io", "ddpm_lab.runtime.cli", "ddpm_lab.runtime.seeds"}


def test_resume_fingerprint_holds_threads_not_device_or_checkpoint_every():
    """The thread count can change the bytes (the order of CPU float sums), so a checkpoint of
    another count is not resumed; the device param is recorded as the device actually used (by
    the stage), and checkpoint_every does not change the weights."""
    base = ImageTrainConfig(**TINY_TRAIN)
    assert base.fingerprint()["threads"] == 1
    assert replace(base, threads=2).fingerprint() != base.fingerprint()
    assert replace(base, device="auto", checkpoint_every=7).fingerprint() == base.fingerprint()


def test_dvc_yaml_branches_read_disjoint_params():
    """The image stages read only images_* sections (and the top-level `replicate`, shared by both
    branches by design) and no GMM stage reads an images_* one."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    image = {"prepare_images", "train_images", "sample_images", "evaluate_images"}
    assert image <= set(stages)
    for name, st in ((n, s.get("do", s)) for n, s in stages.items()):
        sections = {p if isinstance(p, str) else next(iter(p)) for p in st.get("params", [])}
        sections = {s.split(".")[0] for s in sections} - {"replicate"}
        if name in image:
            assert sections and all(s.startswith("images_") for s in sections), name
        else:
            assert not any(s.startswith("images_") for s in sections), name


TINY_PARAMS = {
    "images_data": {"n_heldout": 100},
    "images_diffusion": TINY_DIFFUSION,
    "images_model": TINY_MODEL,
    "images_train": {**TINY_TRAIN, "steps": 10, "batch_size": 16, "checkpoint_every": 4},
    "images_sample": {"n_samples": 100},
    "images_eval": {"hidden": [32], "max_iter": 50, "floor_draws": 10, "bootstrap": 20},
}


@pytest.mark.slow
def test_dvc_repro_image_branch(dvc_repo):
    dvc_repo.set_params(TINY_PARAMS)
    out = dvc_repo.dvc("repro", "evaluate_images").stdout
    for stage in ("prepare_images", "train_images", "sample_images", "evaluate_images"):
        assert f"Running stage '{stage}'" in out
    assert not any(f"Running stage '{s}'" in out for s in ("generate_gmm", "train_eq12", "train_eq3"))
    for f in (
        "images/generated_images.png",
        "metrics/images.json",
        "metrics/images_loss.csv",
        "models/images_unet.pt",
        "data/images/samples.npz",
    ):
        assert (dvc_repo.path / f).is_file(), f
    # The resumable checkpoint is scratch, no output: removed once the stage's outputs are written.
    assert not (dvc_repo.path / ".cache").exists() and not (dvc_repo.path / "models/images_resume.pt").exists()
    headline = json.loads((dvc_repo.path / "metrics/images.json").read_text())
    assert sorted(headline) == sorted(HEADLINE_KEYS + BOUND_KEYS)  # Algorithm 2: no `steps` column
    details = json.loads((dvc_repo.path / "metrics/details/images.json").read_text())
    assert details["branch"] == "images" and details["n_generated"] == 100
    T = TINY_PARAMS["images_diffusion"]["T"]
    assert details["steps"] == T and details["sampler"] == "Algorithm 2 (all T steps)"
    assert (
        details["fd_floor"]["median"] > 0
        and len(details["fd_floor"]["draws"]) == TINY_PARAMS["images_eval"]["floor_draws"]
    )
    assert (dvc_repo.path / "images/generated_images.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A GMM param change reruns none of the image stages.
    dvc_repo.set_params({"gmm": {"seed": 123}})
    out = dvc_repo.dvc("repro", "evaluate_images").stdout
    assert "Running stage" not in out, out

    # The figure code is a dependency of sample_images alone: an edit of it reruns that stage and
    # nothing else. train_images is not rerun (no retraining), and the samples come out
    # byte-identical, so evaluate_images, whose deps are then unchanged, is skipped by DVC.
    before = {
        f: (dvc_repo.path / f).read_bytes()
        for f in ("models/images_unet.pt", "data/images/samples.npz", "metrics/details/images.json")
    }
    figures = dvc_repo.path / "ddpm_lab/images/figures.py"
    figures.write_text(figures.read_text() + "# an edit of the figure code alone\n")
    out = dvc_repo.dvc("repro", "evaluate_images").stdout
    assert re.findall(r"Running stage '(\w+)'", out) == ["sample_images"], out
    for stage in ("prepare_images", "train_images", "evaluate_images"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    assert {f: (dvc_repo.path / f).read_bytes() for f in before} == before
    assert "up to date" in dvc_repo.dvc("status", "--with-deps", "evaluate_images").stdout

    # Bad params: one line naming key, value and expectation; exit 2; outputs untouched.
    before = (dvc_repo.path / "models/images_unet.pt").read_bytes()
    dvc_repo.set_params({"images_train": {"lr": -1.0}})
    proc = dvc_repo.stage("stages.train_images", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: params.yaml: images_train.lr = -1.0: expected a positive number"
    )
    assert (dvc_repo.path / "models/images_unet.pt").read_bytes() == before

    # Two processes under dvc (images_train.nproc: 2; no resumable state is left of the finished
    # run, so it trains from step 0): train_images alone reruns, through the launcher, to the same
    # weights up to the order of float sums.
    one = torch.load(dvc_repo.path / "models/images_unet.pt", weights_only=True)["state_dict"]
    dvc_repo.set_params({"images_train": {"nproc": 2, "lr": TINY_TRAIN["lr"]}})
    proc = dvc_repo.dvc("repro", "train_images")
    assert re.findall(r"Running stage '(\w+)'", proc.stdout) == ["train_images"], proc.stdout
    said = proc.stdout + proc.stderr
    assert "launching 2 processes (gloo, cpu)" in said and "training from step 0" in said, said
    two = torch.load(dvc_repo.path / "models/images_unet.pt", weights_only=True)["state_dict"]
    assert max(((two[k] - one[k]).abs().max() / one[k].abs().max()).item() for k in one) <= 1e-4
    assert not (dvc_repo.path / ".cache").exists()  # rank 0 removed the scratch checkpoint
    assert json.loads((dvc_repo.path / "metrics/details/images_train.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_train_stage_resumes_to_the_same_bytes(dvc_repo):
    """Stopped after the checkpoint at step 4 (as an interruption would), then rerun: the model
    file equals that of an uninterrupted run, byte for byte."""
    dvc_repo.set_params(TINY_PARAMS)
    dvc_repo.stage("stages.prepare_images")
    full = dvc_repo.stage("stages.train_images", "--model-out", "full.pt", "--resume", "ck_full.pt")
    assert "training from step 0" in full.stderr
    stopped = dvc_repo.stage(
        "stages.train_images", "--model-out", "resumed.pt", "--resume", "ck.pt", "--stop-at", "4", check=False
    )
    assert stopped.returncode == 3 and not (dvc_repo.path / "resumed.pt").exists()
    resumed = dvc_repo.stage("stages.train_images", "--model-out", "resumed.pt", "--resume", "ck.pt")
    assert "resuming from ck.pt at step 4" in resumed.stderr
    assert (dvc_repo.path / "resumed.pt").read_bytes() == (dvc_repo.path / "full.pt").read_bytes()

    # Another thread count may give other bytes: its checkpoint is not resumed.
    dvc_repo.set_params({"images_train": {"threads": 2}})
    other = dvc_repo.stage(
        "stages.train_images", "--model-out", "other.pt", "--resume", "ck.pt", "--stop-at", "4", check=False
    )
    assert other.returncode == 3 and "ck.pt is from other params or data: training from step 0" in other.stderr


def test_resume_state_of_another_model_is_one_line_error():
    x, diffusion, mcfg, tcfg = _tiny()
    states = []
    train_unet(x, diffusion, mcfg, tcfg, torch.device("cpu"), on_checkpoint=lambda s: states.append(torch_bytes(s)))
    state = torch.load(io.BytesIO(states[0]), weights_only=True)
    wider = UNetConfig(**{**TINY_MODEL, "base_channels": 16})
    with pytest.raises(
        DataError, match=r"resumable checkpoint does not fit this model \(RuntimeError: .*\): delete it"
    ):
        train_unet(x, diffusion, wider, tcfg, torch.device("cpu"), resume=state)
    with pytest.raises(DataError, match=r"\(ValueError: training state lacks generator"):
        train_unet(
            x, diffusion, mcfg, tcfg, torch.device("cpu"), resume={k: v for k, v in state.items() if k != "generator"}
        )
