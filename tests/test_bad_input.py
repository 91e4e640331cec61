"""Bad params and bad files: one line naming the key or file, the value and what was
expected; exit status 2; no output written and nothing the user had lost."""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from ddpm_lab.cli import run_stage
from ddpm_lab.config import ConfigError, DiffusionConfig, GMMConfig, from_section
from ddpm_lab.io import load_params
from stages import compare_dist, generate_gmm, plot, sample, train
from tests.conftest import TINY_GMM

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = load_params(ROOT / "params.yaml")


def tiny_params(**changes) -> dict:
    """Default params, small enough to run in a second, with {"section.key": value} changes
    (value None deletes the key)."""
    p = copy.deepcopy(DEFAULTS)
    for section, values in TINY_GMM.items():
        p[section].update(values)
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        if value is None:
            del p[section][key]
        else:
            p[section][key] = value
    return p


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
    ("diffusion.variance", "fixed", r"diffusion\.variance = 'fixed': expected one of beta, beta_tilde"),
    ("train_eq12.weighting", "eq13", r"train_eq12\.weighting = 'eq13': expected one of eq12, eq14"),
    ("train_eq12.lr", -0.1, r"train_eq12\.lr = -0\.1: expected a positive number"),
    ("train_eq3.stepz", 3, r"train_eq3\.stepz is not a known key: expected one of steps, "),
    ("model.hidden", 0, r"model\.hidden = 0: expected an integer >= 1"),
    ("sample.seeds", [1, 1], r"sample\.seeds = \[1, 1\]: expected distinct non-negative integers"),
    ("sample.n_trajectories", 0, r"sample\.n_trajectories = 0: expected an integer in \[1, n = 50\]"),
    ("plot.forward_times", [0, 10, 99], r"plot\.forward_times = \[0, 10, 99\]: expected timesteps in \[0, T = 20\]"),
]

STAGE_OF = {"gmm": (generate_gmm, []), "diffusion": (train, ["--objective", "eq12"]),
            "train_eq12": (train, ["--objective", "eq12"]), "train_eq3": (train, ["--objective", "eq3"]),
            "model": (train, ["--objective", "eq3"]), "sample": (sample, []), "plot": (plot, [])}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A directory with valid tiny data, models and samples, made once by running the stages."""
    root = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write(tiny_params())
        run_stage(generate_gmm.main, [])
        for obj in ("eq12", "eq3"):
            run_stage(train.main, ["--objective", obj])
        run_stage(sample.main, [])
        run_stage(compare_dist.main, [])
    return root


@pytest.fixture
def workdir(template, tmp_path, monkeypatch) -> Path:
    """A private copy of the template, as the working directory."""
    root = tmp_path / "work"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    return root


def write(params: dict, path: str = "params.yaml") -> None:
    Path(path).write_text(yaml.safe_dump(params, sort_keys=False))


def snapshot(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def expect_one_line_error(capsys, module, argv, pattern) -> None:
    with pytest.raises(SystemExit) as exc:
        run_stage(module.main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert re.search(pattern, err), err


@pytest.mark.parametrize("dotted,value,pattern", BAD, ids=[f"{d}={v!r}" for d, v, _ in BAD])
def test_bad_param_is_one_line_and_leaves_outputs_alone(workdir, capsys, dotted, value, pattern):
    write(tiny_params(**{dotted: value}))
    before = snapshot(workdir)
    module, argv = STAGE_OF[dotted.split(".")[0]]
    capsys.readouterr()
    expect_one_line_error(capsys, module, argv, pattern)
    after = snapshot(workdir)
    assert after == before  # nothing written, nothing lost, no temporary file left


@pytest.mark.parametrize("content,pattern", [
    ("gmm: [1, 2", r"params\.yaml: not valid YAML at line \d+"),
    ("- just\n- a list\n", r"params\.yaml: top level is list: expected a mapping of sections"),
])
def test_unreadable_params_file(workdir, capsys, content, pattern):
    Path("params.yaml").write_text(content)
    expect_one_line_error(capsys, generate_gmm, [], pattern)


def test_missing_section(workdir, capsys):
    p = tiny_params()
    del p["sample"]
    write(p)
    expect_one_line_error(capsys, sample, [], r"params\.yaml: section 'sample' is missing: expected a mapping of n, seeds")


@pytest.mark.parametrize("victim,module,argv,pattern", [
    ("models/eq3.pt", sample, [], r"models/eq3\.pt: not a readable checkpoint"),
    ("models/eq12.pt", compare_dist, [], r"models/eq12\.pt: not a readable checkpoint"),
    ("data/gmm/train.npy", train, ["--objective", "eq12"], r"data/gmm/train\.npy: not a readable numpy file"),
    ("data/gmm/mixture.json", sample, [], r"data/gmm/mixture\.json: not valid JSON"),
    ("data/samples/eq12.npz", compare_dist, [], r"data/samples/eq12\.npz: not a readable numpy file"),
    ("metrics/loss_eq3.csv", plot, [], r"metrics/loss_eq3\.csv: columns .*: expected step,loss"),
])
def test_corrupt_input_file(workdir, capsys, victim, module, argv, pattern):
    Path(victim).write_bytes(b"\x00garbage\x01" * 3)
    before = snapshot(workdir)
    expect_one_line_error(capsys, module, argv, pattern)
    assert snapshot(workdir) == before


@pytest.mark.parametrize("victim,module,argv", [
    ("models/eq12.pt", sample, []),
    ("data/gmm/heldout.npy", compare_dist, []),
    ("data/samples/oracle.npz", plot, []),
])
def test_missing_input_file(workdir, capsys, victim, module, argv):
    Path(victim).unlink()
    expect_one_line_error(capsys, module, argv, rf"{victim}: no such file: run the .*dvc repro")


def test_checkpoint_from_other_diffusion_params(workdir, capsys):
    write(tiny_params(**{"diffusion.T": 21}))
    expect_one_line_error(capsys, sample, [], r"diffusion = .* but models/eq12\.pt was trained with .*expected equal")


def test_from_section_accepts_2d_mixture_and_rejects_ragged():
    p = {"gmm": dict(weights=[0.5, 0.5], means=[[0.0, 1.0], [2.0, 3.0]], stds=[[1.0, 1.0], [0.5, 0.5]],
                     n_train=10, n_heldout=10, seed=0)}
    assert from_section(GMMConfig, p, "gmm").means == [[0.0, 1.0], [2.0, 3.0]]
    p["gmm"]["means"] = [[0.0, 1.0], [2.0]]
    with pytest.raises(ConfigError, match=r"gmm\.means = .*: expected all entries numbers \(1-D\) or all non-empty lists"):
        from_section(GMMConfig, p, "gmm")


def test_diffusion_config_builds_the_schedule():
    d = from_section(DiffusionConfig, {"diffusion": dict(T=5, schedule="cosine", beta_start=0.1, beta_end=0.2,
                                                         variance="beta_tilde")}, "diffusion").build()
    assert d.T == 5 and d.variance == "beta_tilde" and np.all(d.np["betas"][1:] > 0)


@pytest.mark.parametrize("key,value,expected", [
    ("means", "abc", "expected a non-empty list whose items are each a number or list of numbers"),
    ("weights", [], "expected a non-empty list of numbers"),
    ("weights", [0.5, "half"], "expected a non-empty list of numbers"),
    ("n_train", 10.5, "expected an integer"),
])
def test_type_errors_name_the_expected_type(key, value, expected):
    p = {"gmm": dict(weights=[0.5, 0.5], means=[0.0, 1.0], stds=[1.0, 1.0], n_train=10, n_heldout=10, seed=0)}
    p["gmm"][key] = value
    with pytest.raises(ConfigError, match=re.escape(f"params.yaml: gmm.{key} = {value!r}: {expected}")):
        from_section(GMMConfig, p, "gmm")


def test_training_data_of_other_dimension(workdir, capsys):
    np.save("data/gmm/train.npy", np.zeros((10, 2)))
    expect_one_line_error(capsys, train, ["--objective", "eq12"],
                          r"data/gmm/train\.npy: D = 2: expected D = 1 as in data/gmm/mixture\.json")


def test_csv_with_text_in_a_number_column_is_one_line(tmp_path):
    # Right columns, wrong content: a DataError naming the file, not a ValueError traceback.
    from ddpm_lab.config import DataError
    from ddpm_lab.io import read_csv

    path = tmp_path / "loss.csv"
    path.write_text("step,loss\n1,0.5\n2,oops\n")
    with pytest.raises(DataError, match=r"loss\.csv: columns \['step', 'loss'\], 2 rows: expected step,loss"):
        read_csv(path, ["step", "loss"])
