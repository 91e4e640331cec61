"""benchmarks/harness.py: the results files it writes are byte for byte today's, its params
overrides, its clean copy of the study, and the scripts of benchmarks/ all go through it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks import harness

ROOT = Path(__file__).resolve().parents[2]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_root_is_the_repository():
    assert harness.ROOT == ROOT and harness.RESULTS == ROOT / "benchmarks" / "results"
    assert harness.PARAMS == ROOT / "params.yaml"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_results_written_as_today(path, tmp_path):
    """Every results file, its rows rebuilt as Rows and written again at its own indent: the same bytes
    (the format scripts/readme_results.py reads: "benchmark" first, then the file's keys in order)."""
    text = path.read_text()
    doc = json.loads(text)
    indent = len(re.match(r"\{\n( *)", text).group(1))
    rows = [harness.Row(**r) for r in doc["rows"]]
    assert [r.as_dict() for r in rows] == doc["rows"]
    out = tmp_path / path.name
    harness.write_results(out, {**doc, "rows": rows}, indent=indent)
    assert out.read_text() == text
    assert not out.with_suffix(".tmp").exists()


def test_rows_print_and_keep_their_extras(capsys):
    rows = harness.Rows(widths=(10, 8))
    rows.add("a", "1 s")
    rows.add("b", "2 s", "<= 1 s", False)
    rows.add("c", "3 s", "<= 5 s", True, variant="v", seconds=3.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "  a          1 s      ",
        "  b          2 s      <= 1 s  MISSED",
        "  c          3 s      <= 5 s  ok",
    ]
    assert [r.as_dict() for r in rows][2] == {
        "what": "c",
        "measured": "3 s",
        "target": "<= 5 s",
        "met": True,
        "variant": "v",
        "seconds": 3.0,
    }
    assert harness.Row("x", "y", met=__import__("numpy").bool_(True)).as_dict()["met"] is True


def test_write_results_wants_benchmark_first_and_rows(tmp_path):
    with pytest.raises(ValueError, match="'benchmark' first"):
        harness.write_results(tmp_path / "x.json", {"rows": [], "benchmark": "x"})
    with pytest.raises(ValueError, match="'rows'"):
        harness.write_results(tmp_path / "x.json", {"benchmark": "x"})


def test_override_sets_dotted_keys_on_a_copy():
    params = {"train_eq12": {"lr": 0.002, "steps": 10}, "gmm": {"means": [[0.0], [1.0]]}, "replicate": 3}
    out = harness.override(params, {"train_eq12.lr": 0.003, "gmm.means": ((1.0,), (2.0,)), "replicate": 0})
    assert out == {"train_eq12": {"lr": 0.003, "steps": 10}, "gmm": {"means": [[1.0], [2.0]]}, "replicate": 0}
    assert params["train_eq12"]["lr"] == 0.002 and params["replicate"] == 3  # the original is untouched
    assert yaml.safe_load(yaml.safe_dump(out)) == out  # tuples come out as lists, which YAML writes
    assert list(harness.override(params, {"train_eq12.new": 1})["train_eq12"]) == ["lr", "steps", "new"]


def test_parse_overrides_and_dvc_command_round_trip():
    sets = harness.parse_overrides(["sample.seeds=[0, 1]", "train_eq12.lr= 0.003", "model.prediction=v"])
    assert sets == {"sample.seeds": [0, 1], "train_eq12.lr": 0.003, "model.prediction": "v"}
    assert harness.dotted({"sample": {"seeds": [0, 1]}, "model": {"prediction": "v"}}) == {
        "sample.seeds": [0, 1],
        "model.prediction": "v",
    }
    cmd = harness.dvc_command(sets, "train_eq12")
    assert cmd == "dvc exp run -S 'sample.seeds=[0,1]' -S train_eq12.lr=0.003 -S model.prediction=v train_eq12"
    # a section's flags together, as `dvc exp run` lists them for nested params
    assert harness.dvc_command({"sample.n": 3, "model.hidden": 8, "sample.threads": 1}, "sample") == (
        "dvc exp run -S sample.n=3 -S sample.threads=1 -S model.hidden=8 sample"
    )
    for bad in (["train_eq12.lr"], ["lr=3"]):
        with pytest.raises(ValueError, match="section.key=value"):
            harness.parse_overrides(bad)


def test_variant_params_of_bench_train_time():
    """A flattened Variant's params (top-level keys and all): its dotted keys set, lists restored, replicate 0."""
    from benchmarks.bench_train_time import variant_params

    base = {"model": {"hidden": 64}, "gmm": {"weights": [0.5, 0.5]}, "replicate": 2}
    flat = {"model.hidden": 128, "gmm.weights": (0.6, 0.4), "replicate": 4}
    assert variant_params(base, flat) == {"model": {"hidden": 128}, "gmm": {"weights": [0.6, 0.4]}, "replicate": 0}


def test_clean_copy_holds_the_study_without_its_outputs(tmp_path, capsys):
    with harness.study_copy(prefix="test_harness_") as study:
        work = study.path
        assert (work / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()
        assert (work / "dvc.yaml").is_file() and (work / "stages").is_dir() and (work / ".git").is_dir()
        assert not (work / "dvc.lock").exists() and not (work / "metrics").exists()
        assert not (work / "images").exists()
        params = study.set_params({"train_eq12.lr": 0.123})
        assert study.params == params and params["train_eq12"]["lr"] == 0.123
        assert list(params) == list(yaml.safe_load((ROOT / "params.yaml").read_text()))
        done = study.run("nonexistent_stage")
        assert not done.ok and done.seconds > 0 and "No module named stages.nonexistent_stage" in done.error()
    assert not work.exists()  # a temporary copy goes with the block
    keep = tmp_path / "kept"
    with harness.study_copy(keep) as study:
        pass
    assert (keep / "params.yaml").is_file()


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_share_the_harness(path):
    """One ROOT (the harness's), no sys.path edits, and every script imports the harness both ways it
    can be run: `python benchmarks/bench_x.py` (benchmarks/ is sys.path[0]) and
    `python -m benchmarks.bench_x` (a package import)."""
    text = path.read_text()
    if path.name != "harness.py":
        assert not re.search(r"^\s*ROOT\s*=", text, re.M) and "parents[1]" not in text, "one ROOT: harness.ROOT"
        siblings = {p.stem for p in SCRIPTS}
        plain = set(re.findall(r"^    (?:import|from) (\w+)", text, re.M)) & siblings  # python benchmarks/x.py
        package = re.findall(r"^    from (?:\.|benchmarks\b)", text, re.M)  # python -m benchmarks.x
        assert bool(plain) == bool(package), "a sibling imported one way only"
        assert "harness" in plain or not path.name.startswith("bench_"), "the harness, imported both ways"
    assert not re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+=]", text)
    if path.name.startswith("bench_"):
        assert len(text.splitlines()) <= 220, f"{path.name}: {len(text.splitlines())} lines"


@pytest.mark.parametrize("how", ["script", "module"])
def test_a_benchmark_runs_both_ways(how, tmp_path):
    """bench_estimators imports its sibling modules and the harness: `--help` either way, from the
    repository's root; run as a script, its harness is its sibling even with another checkout's
    benchmarks/ on PYTHONPATH."""
    other = tmp_path / "benchmarks"
    other.mkdir()
    (other / "harness.py").write_text("raise RuntimeError('the harness of another checkout')\n")
    script = [str(ROOT / "benchmarks" / "bench_estimators.py")]
    target, env = (
        (script, {"PYTHONPATH": str(tmp_path)}) if how == "script" else (["-m", "benchmarks.bench_estimators"], {})
    )
    proc = subprocess.run(
        [sys.executable, *target, "--help"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--quick" in proc.stdout
