"""Property-style test: every key of params.yaml, given invalid values, is refused.

For every key of every section (list entries included) a seeded numpy Generator draws invalid
values of each kind: wrong types (strings, lists, nulls, booleans, fractions for integers,
non-finite numbers), out-of-range numbers (negative, zero, huge) and unknown strings for choice
keys. Each is written into params.yaml in a directory that holds the tiny pipeline's inputs
and outputs, and the stage that reads the section runs (in-process through run_stage, as
`python -m stages.<stage>` would; a few cases also as real subprocesses). Every time: exit
status 2; exactly one line of stderr, starting `error:` and naming the key as section.key;
no traceback; every file in the directory byte-identical before and after.

Values that are valid are not drawn, by design (VALID_KINDS below says which and why): a zero
seed, a negative mean, a huge step count (valid, it would only run for a very long time: for
such keys only integers beyond 2^63, refused by type, are drawn as "huge").
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddpm_lab.runtime.cli import run_stage
from tests.helpers import DEFAULTS, run_gmm_stages, snapshot, stages, tiny_params, write

NAMES = (
    "compare_dist",
    "estimator_variance",
    "evaluate_images",
    "generate_gmm",
    "plot",
    "prepare_images",
    "sample",
    "sample_images",
    "sampler_tradeoff",
    "train",
    "train_images",
)
(
    compare_dist,
    estimator_variance,
    evaluate_images,
    generate_gmm,
    plot,
    prepare_images,
    sample,
    sample_images,
    sampler_tradeoff,
    train,
    train_images,
) = stages(*NAMES)

ROOT = Path(__file__).resolve().parents[2]

STAGES = {  # section -> (stage module, argv): the first stage that reads the section
    "gmm": (generate_gmm, []),
    "diffusion": (train, ["--objective", "eq12"]),
    "model": (train, ["--objective", "eq12"]),
    "train_eq12": (train, ["--objective", "eq12"]),
    "train_eq3": (train, ["--objective", "eq3"]),
    "sample": (sample, []),
    "compare_dist": (compare_dist, []),
    "plot": (plot, []),
    "sampler_tradeoff": (sampler_tradeoff, []),
    "estimator_variance": (estimator_variance, []),
    "images_data": (prepare_images, []),
    "images_diffusion": (train_images, []),
    "images_model": (train_images, []),
    "images_train": (train_images, []),
    "images_sample": (sample_images, []),
    "images_eval": (evaluate_images, []),
    "replicate": (train, ["--objective", "eq12"]),  # a top-level scalar, not a section
}

CHOICE_KEYS = {
    "diffusion.schedule",
    "diffusion.variance",
    "train_eq12.weighting",
    "images_data.source",
    "images_diffusion.schedule",
    "images_diffusion.variance",
    "images_train.weighting",
    "images_train.device",
    "images_train.backend",
    "images_sample.device",
}

# (key, kind) pairs that are valid values, so never drawn. A key ending in [] is any list entry.
VALID_KINDS = {
    **{
        (k, "zero"): "0 is a valid seed"
        for k in (
            "gmm.seed",
            "train_eq12.seed",
            "train_eq3.seed",
            "compare_dist.seed",
            "plot.seed",
            "sampler_tradeoff.seed",
            "estimator_variance.seed",
            "images_data.seed",
            "images_train.seed",
            "images_sample.seed",
            "images_eval.seed",
        )
    },
    ("sample.seeds[]", "zero"): "0 is a valid seed (refused only as a duplicate)",
    ("sampler_tradeoff.seeds[]", "zero"): "0 is a valid seed (refused only as a duplicate)",
    ("sampler_tradeoff.hybrid_t0", "empty"): "[]: no hybrid-oracle diagnostic",
    ("sampler_tradeoff.hybrid_t0[]", "zero"): "t0 = 0: the model throughout (or the oracle throughout)",
    ("gmm.means[]", "zero"): "any mean in [-1e6, 1e6] is valid",
    ("gmm.means[]", "negative"): "any mean in [-1e6, 1e6] is valid",
    ("train_eq12.warmup", "zero"): "no warmup",
    ("train_eq3.warmup", "zero"): "no warmup",
    ("images_train.warmup", "zero"): "no warmup",
    ("train_eq12.ema_decay", "zero"): "EMA = the last weights",
    ("train_eq3.ema_decay", "zero"): "EMA = the last weights",
    ("images_train.ema_decay", "zero"): "EMA = the last weights",
    ("compare_dist.nll_n", "zero"): "0: all held-out rows",
    ("plot.forward_times[]", "zero"): "0: x_0",
    ("images_data.max_train", "zero"): "0: every training image",
    ("images_model.dropout", "zero"): "no dropout",
    **{
        (f"{k}.threads", "zero"): "0: torch's default"
        for k in (
            "train_eq12",
            "train_eq3",
            "sample",
            "compare_dist",
            "sampler_tradeoff",
            "estimator_variance",
            "images_train",
            "images_sample",
        )
    },
    ("images_train.checkpoint_every", "zero"): "0: no checkpoints",
    ("images_eval.alpha", "zero"): "no L2 penalty",
    ("images_eval.alpha", "huge"): "any non-negative penalty is accepted (not bounded above)",
    ("train_eq12.grad_clip", "huge"): "a huge clip norm means no clipping",
    ("train_eq12.min_snr_gamma", "huge"): "a huge gamma is L_simple's weights",
    ("train_eq12.hybrid_lambda", "zero"): "0: L_simple alone (weighting hybrid)",
    ("images_train.hybrid_lambda", "zero"): "0: L_simple alone (weighting hybrid)",
    ("train_eq12.hybrid_lambda", "huge"): "any lambda >= 0 is accepted (not bounded above)",
    ("images_train.hybrid_lambda", "huge"): "any lambda >= 0 is accepted (not bounded above)",
    ("images_train.min_snr_gamma", "huge"): "a huge gamma is L_simple's weights",
    ("train_eq3.grad_clip", "huge"): "a huge clip norm means no clipping",
    ("images_train.grad_clip", "huge"): "a huge clip norm means no clipping",
    ("images_data.path", "string"): "any folder name is a string (checked only for IDX sources)",
    ("images_data.mirror", "string"): "any mirror is a string (used only when downloading)",
    ("images_data.path", "null"): "null: no folder (digits)",
    ("images_data.mirror", "null"): "null: the default",
    ("images_data.download", "bool"): "true / false are the values",
    ("replicate", "zero"): "replicate 0 is the study itself",
    ("train_eq3.terms_per_trajectory", "zero"): "0: the whole-trajectory estimators' (the default)",
    ("sample.steps", "zero"): "0: every timestep",
    ("images_sample.steps", "zero"): "0: every timestep",
    ("sample.eta", "zero"): "deterministic DDIM",
    ("images_sample.eta", "zero"): "deterministic DDIM",
}
# Keys for which any integer up to 2^63 is valid (counts that only cost time, seeds, clip
# limits): "huge" draws an integer beyond 2^63 for them, refused as out of the int64 range.
HUGE_ONLY_BEYOND_INT64 = {
    "gmm.seed",
    "train_eq12.steps",
    "train_eq12.log_every",
    "train_eq12.seed",
    "train_eq3.steps",
    "train_eq3.log_every",
    "train_eq3.seed",
    "sample.seeds[]",
    "sample.trajectory_every",
    "compare_dist.floor_draws",
    "compare_dist.directions",
    "compare_dist.seed",
    "plot.smooth",
    "plot.seed",
    "images_data.max_train",
    "images_data.seed",
    "images_train.steps",
    "images_train.log_every",
    "images_train.seed",
    "images_train.checkpoint_every",
    "images_sample.seed",
    "images_eval.max_iter",
    "images_eval.seed",
    "images_eval.floor_draws",
    "images_eval.bootstrap",
    "replicate",
    # sampling steps at or above T mean every step
    "sample.steps",
    "images_sample.steps",
    # a step count above diffusion.T is replaced by T; seeds, floor draws and directions only cost time
    "sampler_tradeoff.steps[]",
    "sampler_tradeoff.hybrid_t0[]",
    "sampler_tradeoff.seeds[]",
    "sampler_tradeoff.floor_draws",
    "sampler_tradeoff.directions",
    "sampler_tradeoff.seed",
    # a K above diffusion.T is replaced by T; the seed of the minibatches
    "estimator_variance.terms[]",
    "estimator_variance.seed",
}

FLOAT_KEYS = {"plot.forward_times[]"}  # numbers whose default may be written as an integer (0)

RNG_SEED = 20240607


def _word(rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz_"), size=int(rng.integers(3, 10))))


def invalid_values(key: str, default, rng: np.random.Generator) -> list[tuple[str, object]]:
    """(kind, value) pairs of invalid values for a key whose valid default is `default`."""
    out: list[tuple[str, object]] = []
    is_bool = isinstance(default, bool)
    is_int = isinstance(default, int) and not is_bool and key not in FLOAT_KEYS
    is_num = isinstance(default, (int, float)) and not is_bool
    if isinstance(default, str) or default is None:  # choice keys and optional strings
        out.append(("string", f"not_{_word(rng)}"))
    else:
        out.append(("string", _word(rng)))
    out.append(("list", [_word(rng)] if isinstance(default, list) else [default, default]))
    out.append(("null", None))
    if not is_bool:
        out.append(("bool", bool(rng.integers(2))))
    if isinstance(default, list):
        out.append(("empty", []))
    # numbers: out of range, or type errors where a list, string or boolean is expected
    magnitude = float(rng.uniform(1, 1000))
    if is_int:
        out.append(("negative", -int(rng.integers(1, 1000))))
        out.append(("zero", 0))
        out.append(("fraction", default + 0.5))
        if key in HUGE_ONLY_BEYOND_INT64:
            out.append(("huge", 2**63 + int(rng.integers(0, 2**40))))
        else:
            out.append(("huge", 10 ** int(rng.integers(13, 18))))
    elif is_num:
        out.append(("negative", -magnitude))
        out.append(("zero", 0.0))
        out.append(("huge", float(10.0 ** rng.integers(12, 300))))
        out.append(("nonfinite", [math.inf, -math.inf, math.nan][int(rng.integers(3))]))
    else:
        out.append(("negative", -magnitude))
        out.append(("zero", 0))
        out.append(("huge", 10 ** int(rng.integers(13, 18))))
    return [(kind, v) for kind, v in out if (key, kind) not in VALID_KINDS]


def cases() -> list[tuple[str, str, int | None, str, object]]:
    """(section, key, list index or None, kind, value) for every key of params.yaml."""
    rng = np.random.default_rng(RNG_SEED)
    out = []
    for section, values in tiny_params().items():  # params.yaml's keys, with the tiny sizes the stages run
        if not isinstance(values, dict):  # a top-level scalar (replicate): key None
            out.extend((section, None, None, kind, v) for kind, v in invalid_values(section, values, rng))
            continue
        for key, default in values.items():
            for kind, v in invalid_values(f"{section}.{key}", default, rng):
                out.append((section, key, None, kind, v))
            if isinstance(default, list):
                for i, item in enumerate(default):
                    for kind, v in invalid_values(f"{section}.{key}[]", item, rng):
                        out.append((section, key, i, kind, v))
    return out


CASES = cases()
KEYS = sorted(
    {(s, k) for s, k, *_ in CASES}, key=lambda sk: (list(DEFAULTS).index(sk[0]), sk[1] or "")
)  # one order in every process


def dotted(section: str, key: str | None) -> str:
    return section if key is None else f"{section}.{key}"


def params_with(section: str, key: str, index: int | None, value) -> dict:
    p = tiny_params()
    if key is None:
        p[section] = value
    elif index is None:
        p[section][key] = value
    else:
        p[section][key] = copy.deepcopy(p[section][key])
        p[section][key][index] = value
    return p


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Valid tiny data, models, samples, metrics, figures and the image split, made once."""
    root = tmp_path_factory.mktemp("property")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write(tiny_params())
        run_gmm_stages()
        run_stage(prepare_images.main, [])
    return root


def test_every_section_and_key_is_covered():
    assert {s for s, _ in KEYS} == set(DEFAULTS) == set(STAGES)
    assert len(KEYS) == sum(
        len(v) if isinstance(v, dict) else 1 for v in DEFAULTS.values()
    )  # no key without an invalid value
    assert len(CASES) > 400


@pytest.mark.parametrize("section,key", KEYS, ids=[dotted(s, k) for s, k in KEYS])
def test_invalid_values_are_refused_in_one_line(workdir, capsys, monkeypatch, section, key):
    monkeypatch.chdir(workdir)
    module, argv = STAGES[section]
    failures = []
    for s, k, index, kind, value in CASES:
        if (s, k) != (section, key):
            continue
        write(params_with(section, key, index, value))
        before = snapshot(workdir)
        capsys.readouterr()
        where = f"{dotted(section, key)}{'' if index is None else f'[{index}]'} = {value!r} ({kind})"
        try:
            run_stage(module.main, argv)
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException as e:  # noqa: BLE001 - a traceback is exactly what this test looks for
            failures.append(f"{where}: raised {type(e).__name__}: {e}")
            continue
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        if code != 2 or len(errors) != 1 or len(lines) != 1 or "Traceback" in err:
            failures.append(f"{where}: exit {code}, stderr {err!r}")
        elif dotted(section, key) not in errors[0]:
            failures.append(f"{where}: the error does not name {dotted(section, key)}: {errors[0]}")
        if snapshot(workdir) != before:
            failures.append(f"{where}: files changed")
            break  # the directory is no longer the template: later cases would mislead
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "stage,section,key,value",
    [
        ("generate_gmm", "gmm", "n_train", 10**12),
        ("sample", "sample", "n", 10**12),
        ("train_images", "images_model", "base_channels", 10**13),
    ],
)
def test_as_a_subprocess(workdir, tmp_path, stage, section, key, value):
    # The same contract end to end: `python -m stages.<stage>` exits 2 with one line, no traceback.
    write(params_with(section, key, None, value), str(workdir / "params.yaml"))
    before = snapshot(workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}"], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: params.yaml: {section}.{key} = {value}: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(workdir) == before
    write(tiny_params(), str(workdir / "params.yaml"))
