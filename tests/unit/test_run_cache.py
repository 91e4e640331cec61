"""Every stage of dvc.yaml can be restored from DVC's run-cache: a rerun of params (and code and
data) that ran before, `dvc exp run` going back to an earlier variant say, checks out the outputs
that run made instead of running it again.

What turns the run-cache off for a stage, as DVC (3.x) applies it:
- an out with `persist: true`: the stage is never saved to or restored from the run-cache
  (dvc/stage/cache.py, `_can_hash`);
- an out with `cache: false` that is neither a metric nor a plot: the run is not saved to the
  run-cache ("If an output of a stage has cache: false, the run cache will be deactivated for that
  stage", DVC's user guide, Pipelines > Run Cache; dvc/stage/__init__.py, `Stage.run`, leaves the
  metrics and plots out of that rule);
- `always_changed: true`, or a stage without deps or without outs (`_can_hash` again).
tests/slow/test_run_cache.py shows the installed DVC doing exactly this, and train_images restored.

The stages in PENDING write small files that git tracks (committed so that a clone shows them,
docs/index.md), declared as plain outs with `cache: false`: DVC refuses to cache a file git
tracks, and as metrics they would widen `dvc metrics show` (docs/pipeline.md), so which way they
go is a decision of its own. Their tests are strict xfails: each fails once its stage is fixed,
until it leaves PENDING.
"""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import ROOT, tiny_unet_inputs

STAGES = {n: s.get("do", s) for n, s in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}

PENDING = {  # stage -> its plain outs with `cache: false` (git-tracked files)
    "train_eq12": ["metrics/details/train_eq12.json", "metrics/details/eps_error_eq12.csv"],
    "train_eq3": ["metrics/details/train_eq3.json", "metrics/details/eps_error_eq3.csv"],
    "compare_dist": [
        "metrics/details/dist_eq12.json",
        "metrics/details/dist_eq3.json",
        "metrics/details/dist_oracle.json",
        "metrics/details/exact_dist_eq12.csv",
        "metrics/details/exact_dist_eq3.csv",
        "metrics/details/exact_dist_oracle.csv",
    ],
    "sampler_tradeoff": ["metrics/details/sampler_tradeoff.csv", "metrics/details/hybrid_oracle.csv"],
    "estimator_variance": ["metrics/estimator_variance.json", "metrics/details/estimator_variance.csv"],
    "report": ["reports/index.html"],
    "evaluate_images": ["metrics/details/images.json"],
}


def entries(spec: dict, kind: str) -> list[tuple[str, dict]]:
    """(path, flags) of each entry of a stage's `outs`, `metrics` or `plots` list."""
    out = []
    for item in spec.get(kind) or []:
        if isinstance(item, str):
            out.append((item, {}))
        else:
            (path, flags), *_ = item.items()
            out.append((path, flags or {}))
    return out


def run_cache_blockers(spec: dict) -> list[str]:
    """Why DVC would not restore this stage from its run-cache, one entry per reason (none: it can)."""
    why = []
    if spec.get("always_changed"):
        why.append("always_changed: true")
    if not spec.get("deps"):
        why.append("no deps")
    kinds = {kind: entries(spec, kind) for kind in ("outs", "metrics", "plots")}
    if not any(kinds.values()):
        why.append("no outs")
    why += [f"{path}: persist: true" for items in kinds.values() for path, flags in items if flags.get("persist")]
    why += [
        f"{path}: cache: false (an out, not a metric or plot)" for path, f in kinds["outs"] if f.get("cache") is False
    ]
    return why


def test_the_rule_reads_each_kind_of_entry():
    spec = {
        "deps": ["a"],
        "outs": ["o", {"p": {"persist": True}}, {"q": {"cache": False}}],
        "metrics": [{"m.json": {"cache": False}}],
        "plots": [{"l.csv": {"cache": False, "x": "step"}}, {"img.png": {"cache": False}}],
    }
    assert run_cache_blockers(spec) == ["p: persist: true", "q: cache: false (an out, not a metric or plot)"]
    assert run_cache_blockers({"deps": ["a"], "outs": ["o"], "always_changed": True}) == ["always_changed: true"]
    assert run_cache_blockers({"cmd": "x"}) == ["no deps", "no outs"]
    assert run_cache_blockers({"deps": ["a"], "metrics": [{"m.json": {"cache": False}}]}) == []


def test_pending_lists_only_stages_of_dvc_yaml():
    assert set(PENDING) <= set(STAGES)


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param(
            s,
            marks=pytest.mark.xfail(
                strict=True, reason=f"plain outs with cache: false, tracked by git: {', '.join(PENDING[s])}"
            ),
        )
        if s in PENDING
        else s
        for s in sorted(STAGES)
    ],
)
def test_stage_can_be_restored_from_the_run_cache(stage):
    assert run_cache_blockers(STAGES[stage]) == [], f"{stage}: DVC's run-cache is off for it"


@pytest.mark.parametrize("stage", sorted(PENDING))
def test_a_pending_stage_is_held_back_by_exactly_its_listed_outs(stage):
    """The xfails above fail for the listed reason, and no other."""
    want = [f"{p}: cache: false (an out, not a metric or plot)" for p in PENDING[stage]]
    assert run_cache_blockers(STAGES[stage]) == want


def test_no_stage_persists_an_out():
    """`persist: true` turns the run-cache off for good (saving and restoring): train_images keeps
    its resumable state in a scratch file instead (ddpm_lab/images/train_run.py)."""
    persisted = {
        s: why for s, spec in STAGES.items() if (why := [w for w in run_cache_blockers(spec) if "persist" in w])
    }
    assert persisted == {}


@pytest.mark.usefixtures("one_torch_thread")
def test_the_resumable_state_is_a_scratch_file_per_variant_removed_when_done(tmp_path, monkeypatch, capsys):
    """Without a named file, train_images checkpoints to .cache/ddpm_lab/resume/<digest>.pt under the
    working directory: an interrupted run resumes from it to the bytes of an uninterrupted one,
    another variant's run neither finds nor touches it, and the finished run removes it (and the
    folders it leaves empty)."""
    from ddpm_lab.images.train_run import RESUME_DIR, run_training
    from ddpm_lab.runtime.distributed import EXIT_STOPPED

    module = ("stages.train_images", [])
    full = run_training(*tiny_unet_inputs(), tmp_path / "full.pt", relaunch=module)
    assert full.scratch is None  # a named file is the caller's: kept
    full.drop_scratch()
    assert (tmp_path / "full.pt").is_file()

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        run_training(*tiny_unet_inputs(), None, relaunch=module, stop_at=5)
    assert e.value.code == EXIT_STOPPED
    (scratch,) = RESUME_DIR.glob("*.pt")
    assert "training from step 0" in capsys.readouterr().err

    other = run_training(*tiny_unet_inputs(lr=0.003), None, relaunch=module)  # another variant: its own file
    assert other.scratch != scratch and other.scratch.is_file() and scratch.is_file()
    assert f"no checkpoint at {other.scratch}: training from step 0" in capsys.readouterr().err
    other.drop_scratch()
    assert not other.scratch.exists() and scratch.is_file()

    resumed = run_training(*tiny_unet_inputs(), None, relaunch=module)
    assert resumed.scratch == scratch
    assert f"train_images: resuming from {scratch} at step 5" in capsys.readouterr().err
    assert (resumed.model, resumed.metrics, resumed.history) == (full.model, full.metrics, full.history)
    resumed.drop_scratch()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.pt"]  # no .cache/ left behind
