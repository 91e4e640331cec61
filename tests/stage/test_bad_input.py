"""Bad params and bad files: one line naming the key or file, the value and what was
expected; exit status 2; no output written and nothing the user had lost."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.params import ConfigError, from_section
from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.gmm.mixture import GMMConfig
from tests.helpers import (
    expect_one_line_error,
    private_copy,
    run_gmm_stages,
    snapshot,
    STAGE_OF,
    stages,
    tiny_params,
    write,
)

compare_dist, generate_gmm, plot, prepare_images, sample, train = stages(
    "compare_dist", "generate_gmm", "plot", "prepare_images", "sample", "train"
)

ROOT = Path(__file__).resolve().parents[2]


BAD = [
    ("gmm.weights", [0.5, 0.6, 0.2], r"gmm\.weights = \[0\.5, 0\.6, 0\.2\]: expected weights summing to 1"),
    ("gmm.weights", [1.2, -0.2, 0.0], r"gmm\.weights = .*: expected non-negative weights"),
    ("gmm.stds", [0.5, 0.0, 0.4], r"gmm\.stds = \[0\.5, 0\.0, 0\.4\]: expected positive numbers"),
    ("gmm.means", [0.0, 1.0], r"gmm\.means = \[0\.0, 1\.0\]: expected 3 entries, one per weight"),
    ("gmm.n_train", "many", r"gmm\.n_train = 'many': expected an integer"),
    ("gmm.seed", None, r"gmm\.seed is missing: expected an integer"),
    ("diffusion.T", 0, r"diffusion\.T = 0: expected an integer >= 1"),
    ("diffusion.T", True, r"diffusion\.T = True: expected an integer"),
    ("diffusion.beta_end", 1.5, r"diffusion\.beta_end = 1\.5: expected a number in \(0, 1\)"),
    ("diffusion.beta_start", 0.0, r"diffusion\.beta_start = 0\.0: expected a number in \(0, 1\)"),
    ("diffusion.schedule", "quadratic", r"diffusion\.schedule = 'quadratic': expected one of linear, cosine"),
    ("diffusion.variance", "fixed", r"diffusion\.variance = 'fixed': expected one of beta, beta_tilde, optimal"),
    ("train_eq12.weighting", "eq13", r"train_eq12\.weighting = 'eq13': expected one of eq12, eq14"),
    ("train_eq12.lr", -0.1, r"train_eq12\.lr = -0\.1: expected a positive number"),
    ("train_eq3.stepz", 3, r"train_eq3\.stepz is not a known key: expected one of steps, "),
    ("model.hidden", 0, r"model\.hidden = 0: expected an integer >= 1"),
    ("sample.seeds", [1, 1], r"sample\.seeds = \[1, 1\]: expected distinct non-negative integers"),
    ("sample.n_trajectories", 0, r"sample\.n_trajectories = 0: expected an integer in \[1, n = 50\]"),
    ("plot.forward_times", [0, 10, 99], r"plot\.forward_times = \[0, 10, 99\]: expected fractions of T in \[0, 1\]"),
    # Sizes beyond the machine's memory, with the estimate and the machine's RAM.
    (
        "gmm.n_train",
        10**12,
        r"gmm\.n_train = 1000000000000: expected at most [\d,]+ rows \(the training draws "
        r"with their temporaries: about [\d.]+ TiB; this machine has [\d.]+ GiB\)",
    ),
    ("gmm.n_heldout", 10**12, r"gmm\.n_heldout = 1000000000000: expected at most [\d,]+ rows"),
    ("diffusion.T", 10**12, r"diffusion\.T = 1000000000000: expected at most [\d,]+ timesteps"),
    ("sample.n", 10**12, r"sample\.n = 1000000000000: expected at most [\d,]+ draws per seed"),
    (
        "train_eq3.batch_size",
        10**9,
        r"train_eq3\.batch_size = 1000000000: expected at most [\d,]+ trajectories per "
        r"step at diffusion\.T = 20",
    ),
    ("train_eq12.batch_size", 10**12, r"train_eq12\.batch_size = 1000000000000: expected at most [\d,]+ rows per step"),
    (  # the stable target (the default) needs batch_size^2 weights: 10^7 rows are about 1 PiB of them
        "train_eq12.batch_size",
        10**7,
        r"train_eq12\.batch_size = 10000000: expected at most [\d,]+ rows per step \(one training step with the "
        r"stable target's batch_size x batch_size weights: about [\d.]+ PiB",
    ),
    (
        "compare_dist.nll_batch",
        10**12,
        r"compare_dist\.nll_batch = 1000000000000: expected at most [\d,]+ held-out rows",
    ),
    (
        "plot.n_forward_paths",
        10**12,
        r"plot\.n_forward_paths = 1000000000000: expected an integer in \[1, gmm\.n_train = 300\]",
    ),
    ("model.hidden", 10**7, r"model\.hidden = 10000000: expected at most [\d,]+ \(the network's weights"),
    ("gmm.seed", 2**64, r"gmm\.seed = 18446744073709551616: expected an integer between -2\^63 and 2\^63 - 1"),
    # Schedules that ran silently.
    ("diffusion.beta_start", 0.05, r"diffusion\.beta_end = 0\.02: expected a number >= beta_start = 0\.05"),
    ("diffusion.schedule", "cosine", r"diffusion\.beta_start = 0\.0001: expected null with schedule cosine"),
    ("diffusion.beta_end", "null", r"diffusion\.beta_end = 'null': expected a number or null"),
    # Values that were silently changed or clipped.
    ("train_eq12.warmup", 4, r"train_eq12\.warmup = 4: expected an integer in \[0, steps = 3\]"),
    ("train_eq3.lr", 5.0, r"train_eq3\.lr = 5\.0: expected a number <= 1"),
    ("compare_dist.nll_n", 21, r"compare_dist\.nll_n = 21: expected an integer in \[0, gmm\.n_heldout = 20\]"),
    ("plot.n_forward_paths", 301, r"plot\.n_forward_paths = 301: expected an integer in \[1, gmm\.n_train = 300\]"),
    ("plot.bins", 10**6, r"plot\.bins = 1000000: expected an integer in \[2, 10000\]"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A directory with valid tiny data, models and samples, made once by running the stages."""
    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write(tiny_params())
        run_gmm_stages(through_plot=False)
    return root


@pytest.fixture
def workdir(template, tmp_path, monkeypatch) -> Path:
    """A private copy of the template, as the working directory."""
    return private_copy(template, tmp_path, monkeypatch)


@pytest.mark.parametrize("dotted,value,pattern", BAD, ids=[f"{d}={v!r}" for d, v, _ in BAD])
def test_bad_param_is_one_line_and_leaves_outputs_alone(workdir, capsys, dotted, value, pattern):
    write(tiny_params(**{dotted: value}))
    before = snapshot(workdir)
    module, argv = STAGE_OF[dotted.split(".")[0]]
    capsys.readouterr()
    expect_one_line_error(capsys, module, argv, pattern)
    after = snapshot(workdir)
    assert after == before  # nothing written, nothing lost, no temporary file left


@pytest.mark.parametrize(
    "content,pattern",
    [
        ("gmm: [1, 2", r"params\.yaml: not valid YAML at line \d+"),
        ("- just\n- a list\n", r"params\.yaml: top level is list: expected a mapping of sections"),
    ],
)
def test_unreadable_params_file(workdir, capsys, content, pattern):
    Path("params.yaml").write_text(content)
    expect_one_line_error(capsys, generate_gmm, [], pattern)


def test_missing_section(workdir, capsys):
    p = tiny_params()
    del p["sample"]
    write(p)
    expect_one_line_error(
        capsys,
        sample,
        [],
        r"params\.yaml: section 'sample' is missing: expected a mapping of sampler, steps, eta, n, seeds",
    )


@pytest.mark.parametrize(
    "victim,module,argv,pattern",
    [
        ("models/eq3.pt", sample, [], r"models/eq3\.pt: not a readable checkpoint"),
        ("models/eq12.pt", compare_dist, [], r"models/eq12\.pt: not a readable checkpoint"),
        ("data/gmm/train.npy", train, ["--objective", "eq12"], r"data/gmm/train\.npy: not a readable numpy file"),
        ("data/gmm/mixture.json", sample, [], r"data/gmm/mixture\.json: not valid JSON"),
        ("data/samples/eq12.npz", compare_dist, [], r"data/samples/eq12\.npz: not a readable numpy file"),
        ("metrics/loss_eq3.csv", plot, [], r"metrics/loss_eq3\.csv: columns .*: expected step,loss"),
    ],
)
def test_corrupt_input_file(workdir, capsys, victim, module, argv, pattern):
    Path(victim).write_bytes(b"\x00garbage\x01" * 3)
    before = snapshot(workdir)
    expect_one_line_error(capsys, module, argv, pattern)
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    "victim,module,argv",
    [
        ("models/eq12.pt", sample, []),
        ("data/gmm/heldout.npy", compare_dist, []),
        ("data/samples/oracle.npz", plot, []),
    ],
)
def test_missing_input_file(workdir, capsys, victim, module, argv):
    Path(victim).unlink()
    expect_one_line_error(capsys, module, argv, rf"{victim}: no such file: run the .*dvc repro")


def test_checkpoint_from_other_diffusion_params(workdir, capsys):
    write(tiny_params(**{"diffusion.T": 21}))
    expect_one_line_error(capsys, sample, [], r"diffusion = .* but models/eq12\.pt was trained with .*expected equal")


def test_from_section_accepts_2d_mixture_and_rejects_ragged():
    p = {
        "gmm": dict(
            weights=[0.5, 0.5],
            means=[[0.0, 1.0], [2.0, 3.0]],
            stds=[[1.0, 1.0], [0.5, 0.5]],
            n_train=10,
            n_heldout=10,
            seed=0,
        )
    }
    assert from_section(GMMConfig, p, "gmm").means == [[0.0, 1.0], [2.0, 3.0]]
    p["gmm"]["means"] = [[0.0, 1.0], [2.0]]
    with pytest.raises(
        ConfigError, match=r"gmm\.means = .*: expected all entries numbers \(1-D\) or all non-empty lists"
    ):
        from_section(GMMConfig, p, "gmm")


def test_diffusion_config_builds_the_schedule():
    d = from_section(
        DiffusionConfig,
        {"diffusion": dict(T=5, schedule="cosine", beta_start=None, beta_end=None, variance="beta_tilde")},
        "diffusion",
    ).build()
    assert d.T == 5 and d.variance == "beta_tilde" and np.all(d.np["betas"][1:] > 0)


@pytest.mark.parametrize("section", ["diffusion", "images_diffusion"])
@pytest.mark.parametrize(
    "changes,pattern",
    [
        # beta_start / beta_end belong to the linear schedule: numbers there, null with cosine (not ignored).
        (
            dict(schedule="linear", beta_start=None),
            r"beta_start = None: expected a number in \(0, 1\) \(schedule linear\)",
        ),
        (
            dict(schedule="cosine", beta_start=None, beta_end=0.02),
            r"beta_end = 0\.02: expected null with schedule cosine",
        ),
        # A decreasing linear schedule is refused, naming both keys.
        (dict(beta_start=0.02, beta_end=0.0001), r"beta_end = 0\.0001: expected a number >= beta_start = 0\.02"),
    ],
)
def test_schedule_betas_are_checked_in_both_diffusion_sections(section, changes, pattern):
    p = tiny_params()
    p[section].update(changes)
    with pytest.raises(ConfigError, match=rf"^params\.yaml: {section}\.{pattern}"):
        from_section(DiffusionConfig, p, section)


def test_weights_within_the_tolerance_are_accepted_and_renormalised(workdir, capsys):
    # One tolerance (config.WEIGHT_SUM_TOL) for GMMConfig and GaussianMixture: what the config
    # accepts, the mixture accepts (renormalised), instead of a traceback from the mixture.
    from ddpm_lab.gmm.mixture import WEIGHT_SUM_TOL
    from ddpm_lab.gmm.mixture import GaussianMixture

    weights = [0.3, 0.5, 0.2 - 5e-7]  # sums to 1 - 5e-7
    write(tiny_params(**{"gmm.weights": weights}))
    run_stage(generate_gmm.main, [])
    saved = json.loads(Path("data/gmm/mixture.json").read_text())["weights"]
    assert abs(sum(saved) - 1.0) < 1e-12 and saved[0] > 0.3
    assert np.allclose(GaussianMixture(weights, [0.0, 1.0, 2.0], [1.0, 1.0, 1.0]).weights.sum(), 1.0, atol=1e-15)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture([0.3, 0.5, 0.2 - 2 * WEIGHT_SUM_TOL], [0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    write(tiny_params(**{"gmm.weights": [0.3, 0.5, 0.2 - 2 * WEIGHT_SUM_TOL]}))
    capsys.readouterr()
    expect_one_line_error(
        capsys,
        generate_gmm,
        [],
        r"gmm\.weights = .*: expected weights summing to 1 "
        r"\(they sum to 0\.999998\)",
    )


def test_first_stage_of_each_branch_checks_all_its_sections(workdir, capsys):
    # generate_gmm checks every GMM section, prepare_images every image section, each with what
    # it needs (memory, other sections), before any work; neither reads the other branch's.
    cases = [
        (
            generate_gmm,
            "compare_dist.nll_n",
            21,
            r"compare_dist\.nll_n = 21: expected an integer in \[0, gmm\.n_heldout = 20\]",
        ),
        (
            generate_gmm,
            "plot.n_forward_paths",
            301,
            r"plot\.n_forward_paths = 301: expected an integer in \[1, gmm\.n_train = 300\]",
        ),
        (generate_gmm, "sample.n", 10**12, r"sample\.n = 1000000000000: expected at most [\d,]+ draws per seed"),
        (generate_gmm, "plot.bins", 1, r"plot\.bins = 1: expected an integer in \[2, 10000\]"),
        (
            prepare_images,
            "images_train.batch_size",
            10**12,
            r"images_train\.batch_size = 1000000000000: expected at most [\d,]+ images",
        ),
        (
            prepare_images,
            "images_diffusion.beta_start",
            0.5,
            r"images_diffusion\.beta_end = 0\.04: expected a number >= beta_start",
        ),
    ]
    for stage, dotted, value, pattern in cases:
        write(tiny_params(**{dotted: value}))
        before = snapshot(workdir)
        expect_one_line_error(capsys, stage, [], pattern)
        assert snapshot(workdir) == before
    write(tiny_params(**{"images_train.batch_size": 10**12}))
    run_stage(generate_gmm.main, [])  # the GMM branch runs whatever the image sections hold


def test_preflight_checks_the_whole_file(workdir, capsys):
    # python -m ddpm_lab.tools.preflight: every section built and checked, nothing run or written.
    from ddpm_lab.tools import preflight

    write(tiny_params())
    run_stage(preflight.main, [])
    assert "replicate and all 16 sections valid" in capsys.readouterr().out
    write(tiny_params(**{"images_train.warmup": 10**6}))
    before = snapshot(workdir)
    expect_one_line_error(
        capsys, preflight, [], r"images_train\.warmup = 1000000: expected an integer in \[0, steps = 3000\]"
    )
    assert snapshot(workdir) == before


def test_forward_times_are_fractions_of_any_T():
    from ddpm_lab.gmm.params import PlotConfig

    cfg = from_section(PlotConfig, tiny_params(**{"plot.forward_times": [0, 0.05, 0.15, 0.4, 1.0]}), "plot")
    assert cfg.forward_steps(1000) == [0, 50, 150, 400, 1000]
    assert cfg.forward_steps(100) == [0, 5, 15, 40, 100]
    assert cfg.forward_steps(3) == [0, 1, 3]  # round(0.05 * 3) = round(0.15 * 3) = 0: shown once


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("means", "abc", "expected a non-empty list whose items are each a number or list of numbers"),
        ("weights", [], "expected a non-empty list of numbers"),
        ("weights", [0.5, "half"], "expected a non-empty list of numbers"),
        ("n_train", 10.5, "expected an integer"),
    ],
)
def test_type_errors_name_the_expected_type(key, value, expected):
    p = {"gmm": dict(weights=[0.5, 0.5], means=[0.0, 1.0], stds=[1.0, 1.0], n_train=10, n_heldout=10, seed=0)}
    p["gmm"][key] = value
    with pytest.raises(ConfigError, match=re.escape(f"params.yaml: gmm.{key} = {value!r}: {expected}")):
        from_section(GMMConfig, p, "gmm")


def test_training_data_of_other_dimension(workdir, capsys):
    np.save("data/gmm/train.npy", np.zeros((10, 2)))
    expect_one_line_error(
        capsys,
        train,
        ["--objective", "eq12"],
        r"data/gmm/train\.npy: D = 2: expected D = 1 as in data/gmm/mixture\.json",
    )


def test_csv_with_text_in_a_number_column_is_one_line(tmp_path):
    # Right columns, wrong content: a DataError naming the file, not a ValueError traceback.
    from ddpm_lab.runtime.params import DataError
    from ddpm_lab.runtime.io import read_csv

    path = tmp_path / "loss.csv"
    path.write_text("step,loss\n1,0.5\n2,oops\n")
    with pytest.raises(DataError, match=r"loss\.csv: columns \['step', 'loss'\], 2 rows: expected step,loss"):
        read_csv(path, ["step", "loss"])


def test_diverged_training_is_a_one_line_error(capsys):
    # A non-finite loss (too large a learning rate, say) ends the stage with one line, not a traceback.
    import torch

    from ddpm_lab.core.training import TrainConfig, TrainingDiverged, train

    model = torch.nn.Linear(1, 1)
    cfg = TrainConfig(steps=3, batch_size=2, lr=1.0, warmup=0, log_every=1)
    with pytest.raises(
        TrainingDiverged,
        match=r"training diverged at step 1 of 3: loss = inf: expected a finite "
        r"loss \(lr = 1, grad_clip = 1: try a smaller lr\)",
    ):
        train(model, lambda m, x0, g: torch.full((x0.shape[0],), float("inf")), torch.zeros(4, 1), cfg)

    def main(argv):
        train(model, lambda m, x0, g: torch.full((x0.shape[0],), float("nan")), torch.zeros(4, 1), cfg)

    with pytest.raises(SystemExit) as exc:
        run_stage(main, [])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: training diverged at step 1 of 3: loss = nan")
