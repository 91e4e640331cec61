"""DVC's run-cache, really run: which outs turn it off (the rule tests/unit/test_run_cache.py applies
to dvc.yaml), and train_images restored from it when `dvc exp run` goes back to an image variant
it trained before, its resumable state being a scratch file and no out."""

from __future__ import annotations


import pytest
import yaml

from tests.helpers import TINY_DIFFUSION, TINY_MODEL, TINY_TRAIN, DvcRepo

pytestmark = pytest.mark.slow

CACHED = "Stage '{}' is cached - skipping run, checking out outputs"

# One stage per kind of out, each copying its input to its out; the last word of each name says
# whether DVC saves its runs to the run-cache.
KINDS = {
    "out_saved": {"outs": ["out_saved.txt"]},
    "out_nocache_off": {"outs": [{"out_nocache_off.txt": {"cache": False}}]},
    "metric_nocache_saved": {"metrics": [{"metric_nocache_saved.json": {"cache": False}}]},
    "plot_nocache_saved": {"plots": [{"plot_nocache_saved.csv": {"cache": False}}]},
    "out_persist_off": {"outs": [{"out_persist_off.txt": {"persist": True}}]},
}


def test_dvc_turns_the_run_cache_off_for_persisted_outs_and_uncached_plain_outs(tmp_path):
    """The installed DVC saves a run of each stage to .dvc/cache/runs unless an out has `persist:
    true` or is a plain out (not a metric or plot) with `cache: false`; a saved run is restored
    when its input comes back, an unsaved one runs again."""
    repo = DvcRepo(tmp_path)
    repo.run("git", "init", "-q")
    repo.dvc("init", "-q")
    stages = {}
    for name, outs in KINDS.items():
        path = next(iter(outs.values()))[0]
        path = path if isinstance(path, str) else next(iter(path))
        stages[name] = {"cmd": f"cp input.txt {path}", "deps": ["input.txt"], **outs}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (tmp_path / "input.txt").write_text("a\n")
    repo.dvc("repro")
    runs = tmp_path / ".dvc/cache/runs"
    saved = {yaml.safe_load(f.read_text())["cmd"].split()[-1] for f in runs.rglob("*") if f.is_file()}
    assert {s.split(".")[0] for s in saved} == {name for name in KINDS if name.endswith("_saved")}

    (tmp_path / "input.txt").write_text("b\n")
    repo.dvc("repro")
    (tmp_path / "input.txt").write_text("a\n")  # back to the first input
    said = repo.dvc("repro").stdout
    for name in KINDS:
        restored, ran = CACHED.format(name) in said, f"Running stage '{name}'" in said
        assert (restored, ran) == ((True, False) if name.endswith("_saved") else (False, True)), (name, said)


TINY_IMAGES = {
    "images_data": {"n_heldout": 100},
    "images_diffusion": TINY_DIFFUSION,
    "images_model": TINY_MODEL,
    "images_train": {**TINY_TRAIN, "steps": 10, "batch_size": 16, "checkpoint_every": 4},
}


def test_dvc_exp_run_back_to_an_image_variant_restores_train_images_from_the_run_cache(dvc_repo):
    """Variant A (images_train.lr 0.002), variant B (0.003), then A again through `dvc exp run`:
    the third run checks train_images' outputs out of the run-cache, trains nothing, and they are
    A's bytes. No resumable state is left behind by any run."""
    repo = dvc_repo
    repo.set_params(TINY_IMAGES)
    repo.run("git", "add", "-A")
    repo.run("git", "commit", "-q", "-m", "tiny image params")

    outs = ("models/images_unet.pt", "metrics/details/images_train.json", "metrics/images_loss.csv")

    def exp_run(lr: float) -> str:
        proc = repo.dvc("exp", "run", "train_images", "-S", f"images_train.lr={lr}", timeout=900)
        assert not (repo.path / ".cache").exists(), "the scratch checkpoint outlived its run"
        return proc.stdout + proc.stderr

    first = exp_run(0.002)
    assert "Running stage 'train_images'" in first and "training from step 0" in first, first
    a = {f: (repo.path / f).read_bytes() for f in outs}
    second = exp_run(0.003)
    assert "Running stage 'train_images'" in second and "training from step 0" in second, second
    assert (repo.path / outs[0]).read_bytes() != a[outs[0]]
    third = exp_run(0.002)
    assert CACHED.format("train_images") in third, third
    assert "Running stage 'train_images'" not in third and "train_images: " not in third, third
    assert {f: (repo.path / f).read_bytes() for f in outs} == a
