"""Replicates and `python -m ddpm_lab.compare` (issue 8, items 1-2): variants grouped over the
param `replicate`, means with Student-t intervals, differences with Welch intervals."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ddpm_lab import compare
from ddpm_lab.compare import Run, collect, group, is_real, mean_ci, rows, table, welch_diff
from ddpm_lab.config import ConfigError
from ddpm_lab.seeds import fold_seed, read_replicate
from tests.conftest import TINY_GMM

FIXTURE = Path(__file__).parent / "data" / "exp_show.json"  # real `dvc exp show --json` (DVC 3.67), deps/outs cut


def run(name, replicate, metrics, committed=False, **params):
    return Run(name=name, rev=name, params={"replicate": replicate, "train_eq12.weighting": "eq12", **params},
               metrics=metrics, committed=committed)


# --- replicates -------------------------------------------------------------------------------

def test_replicate_zero_keeps_the_seed_and_others_differ():
    assert [fold_seed(s, 0) for s in (0, 1, 7)] == [0, 1, 7]
    folded = {fold_seed(s, r) for s in (0, 1, 2) for r in (1, 2, 3)}
    assert len(folded) == 9 and not folded & {0, 1, 2}
    assert fold_seed(0, 1) == fold_seed(0, 1) == int(np.random.SeedSequence([0, 1]).generate_state(1)[0])


@pytest.mark.parametrize("value", [-1, 1.5, "one", None, True, [1], 2**63])
def test_bad_replicate_is_one_line_naming_it(value):
    with pytest.raises(ConfigError, match=r"^params\.yaml: replicate = .*: expected an integer") as e:
        read_replicate({"replicate": value})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"replicate is missing"):
        read_replicate({})
    assert read_replicate({"replicate": 3}) == 3


# --- grouping ---------------------------------------------------------------------------------

def test_real_exp_show_groups_replicates_into_variants():
    runs = collect(json.loads(FIXTURE.read_text()))
    # the workspace row is left out; two experiments with equal params (replicate included) count once
    assert len(runs) == 4 and all(r.name != "workspace" for r in runs)
    variants = group(runs)
    assert [v.name for v in variants] == ["baseline", "train_eq12.weighting=eq14"]
    assert [[r.replicate for r in v.runs] for v in variants] == [[0, 1], [0, 1]]
    assert variants[0].runs[0].committed  # the baseline is the commit's variant
    assert set(runs[0].metrics) >= {"eq12.bound_gap", "eq12.w1_ratio", "eq12.ks_ratio", "eq12.mode_err",
                                    "eq3.bound_gap"}


def test_grouping_ignores_replicate_only():
    runs = [run("base", 0, {"eq12.bound_gap": 1.0}, committed=True), run("a", 1, {"eq12.bound_gap": 1.1}),
            run("b", 0, {"eq12.bound_gap": 2.0}, **{"train_eq12.weighting": "eq14"}),
            run("c", 2, {"eq12.bound_gap": 2.1}, **{"train_eq12.weighting": "eq14"}),
            run("d", 0, {"eq12.bound_gap": 3.0}, **{"model.hidden": 32})]
    variants = group(runs)
    assert [(v.name, [r.name for r in v.runs]) for v in variants] == [
        ("baseline", ["base", "a"]), ("train_eq12.weighting=eq14", ["b", "c"]), ("model.hidden=32", ["d"])]


def test_a_commit_not_yet_reproduced_names_the_baseline_but_is_no_replicate():
    rows_ = [{"rev": "abc", "data": {"params": {"params.yaml": {"data": {"replicate": 0, "a": {"x": 1}}}},
                                     "metrics": {}},
              "experiments": [{"name": "e1", "revs": [{"rev": "e1", "data": {
                  "params": {"params.yaml": {"data": {"replicate": 1, "a": {"x": 2}}}},
                  "metrics": {"metrics/dist_eq3.json": {"data": {"bound_gap": 0.5}}}}}]}]}]
    variants = group(collect(rows_))
    assert [v.name for v in variants] == ["baseline", "a.x=2"]
    assert variants[0].runs == [] and [r.name for r in variants[1].runs] == ["e1"]


# --- the statistics ---------------------------------------------------------------------------

@pytest.mark.parametrize("x", [[1.0, 2.0], [0.3, 0.31, 0.29, 0.35, 0.2], list(np.linspace(-1, 4, 9))])
def test_mean_ci_is_the_student_t_interval(x):
    m, half = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert m == pytest.approx(np.mean(x)) and m - half == pytest.approx(lo) and m + half == pytest.approx(hi)


def test_one_replicate_gives_no_interval():
    assert mean_ci([2.5]) == (2.5, None)
    assert welch_diff([2.5], [1.0, 1.2]) == (pytest.approx(1.4), None)
    out = table(group([run("base", 0, {"eq3.bound_gap": 1.0}, committed=True),
                       run("v", 0, {"eq3.bound_gap": 2.0}, **{"model.hidden": 4})]))
    assert "n=1, no CI" in out and "(no CI)" in out and "real" not in out.split("\n\n")[0]


@pytest.mark.parametrize("a,b", [([1.0, 1.3, 0.9], [2.0, 2.5, 2.2, 1.9]), ([5.0, 5.1], [4.0, 7.0, 6.5]),
                                 (list(np.arange(6.0)), [0.5, 1.5])])
def test_welch_interval_matches_scipy(a, b):
    d, (lo, hi) = welch_diff(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d == pytest.approx(np.mean(a) - np.mean(b))
    assert (lo, hi) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_a_difference_is_real_only_when_its_interval_excludes_zero():
    assert is_real((0.1, 0.5)) and is_real((-0.5, -0.01))
    assert not is_real((-0.1, 0.5)) and not is_real((0.0, 0.5)) and not is_real(None)
    base = [run("b0", 0, {"eq3.bound_gap": 1.0}, committed=True), run("b1", 1, {"eq3.bound_gap": 1.1}),
            run("b2", 2, {"eq3.bound_gap": 0.9})]
    far = [run(f"f{i}", i, {"eq3.bound_gap": v}, **{"model.hidden": 1}) for i, v in enumerate((3.0, 3.1, 2.9))]
    near = [run(f"n{i}", i, {"eq3.bound_gap": v}, **{"model.hidden": 2}) for i, v in enumerate((0.8, 1.3, 1.1))]
    verdicts = {r["variant"]: (r["verdict"], r["interval"]) for r in rows(group(base + far + near))}
    assert verdicts["model.hidden=1"][0] == "real" and verdicts["model.hidden=1"][1][0] > 0
    lo, hi = verdicts["model.hidden=2"][1]
    assert verdicts["model.hidden=2"][0] == "noise" and lo < 0 < hi


def test_table_is_at_most_120_characters_wide():
    long = {f"images_model.a_very_long_parameter_name_{i}": i for i in range(8)}
    runs = [run("base", r, {"eq12.bound_gap": 1.0 + r / 7, "images.kid": 1e-7 * (r + 1)}, committed=r == 0)
            for r in range(3)]
    runs += [run(f"v{r}", r, {"eq12.bound_gap": 123456.789 + r, "images.kid": -1e-9 * r}, **long) for r in range(3)]
    out = table(group(runs))
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "a_very_long_parameter_name_7=7" in out  # the legend gives the full name, wrapped


def test_cli_prints_the_table_and_writes_html(tmp_path, capsys):
    out = tmp_path / "reports" / "compare.html"
    compare.main(["--json", str(FIXTURE), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "train_eq12.weighting=eq14" in printed and max(map(len, printed.splitlines())) <= 120
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "<script" not in page
    assert "eq12.bound_gap" in page and "&plusmn;" in page


def test_unreadable_json_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        compare.run_stage(compare.main, ["--json", str(bad), "--out", str(tmp_path / "c.html")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}: not JSON")
    assert not (tmp_path / "c.html").exists()


def test_replicates_to_separate_is_where_the_interval_leaves_zero_for_good():
    base = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    far = base + 1.0
    assert compare.replicates_to_separate(far, base) == 2  # apart from the first two on
    assert compare.replicates_to_separate(base + 0.01, base) is None  # never
    # real at k = 3 by chance, not at k = 4, real again at k = 5: the answer is 5, not 3
    a, b = np.array([1.7, 1.1, 1.4, 0.0, 0.0]), np.array([-0.8, -0.5, -2.3, 1.1, -1.2])
    real = [compare.is_real(compare.welch_diff(a[:k], b[:k])[1]) for k in range(2, 6)]
    assert real == [False, True, False, True]
    assert compare.replicates_to_separate(a, b) == 5


def test_saved_runs_compare_like_the_original(tmp_path):
    runs = collect(json.loads(FIXTURE.read_text()))
    path = tmp_path / "runs.json"
    path.write_bytes(compare.save_runs(runs))
    back = compare.load_runs(path)
    assert back == runs
    assert table(group(back)) == table(group(runs))
    path.write_text("[{}]")
    with pytest.raises(compare.DataError, match="not runs saved by"):
        compare.load_runs(path)


LOCK = {"schema": "2.0", "stages": {
    "train_eq12": {"params": {"params.yaml": {"replicate": 0, "train_eq12": {"weighting": "eq12"}}},
                   "outs": [{"path": "models/eq12.pt"}]},
    "compare_dist": {"deps": [{"path": "models/eq12.pt"}], "params": {"params.yaml": {"compare_dist.seed": 0}},
                     "outs": [{"path": "metrics/dist_eq12.json"}]},
    "train_images": {"params": {"params.yaml": {"replicate": 0}}, "outs": [{"path": "models/images"}]},
    "evaluate_images": {"deps": [{"path": "models/images/ema.pt"}], "outs": [{"path": "metrics/images.json"}]},
}}


def test_metrics_of_stages_not_rerun_for_a_run_are_dropped():
    """An experiment run as `dvc exp run -S replicate=1 compare_dist` leaves the image stages
    as its parent ran them: their recorded params say replicate 0, so the image metrics are not
    this run's, and they do not count as a replicate (downstream stages follow through deps)."""
    metrics = {"eq12.bound_gap": 0.01, "images.fd_ratio": 1.7, "images.kid": 2.0}
    params = {"replicate": 1, "train_eq12.weighting": "eq12", "compare_dist.seed": 0}
    assert compare.stale_outputs(LOCK, params) == {"models/eq12.pt", "metrics/dist_eq12.json", "models/images",
                                                   "metrics/images.json"}
    assert compare.stale_outputs(LOCK, {**params, "replicate": 0}) == set()
    lock = json.loads(json.dumps(LOCK))
    lock["stages"]["train_eq12"]["params"]["params.yaml"]["replicate"] = 1  # the GMM branch was rerun
    kept = compare.drop_stale(Run("e", "e", params, metrics), lock).metrics
    assert kept == {"eq12.bound_gap": 0.01}
    assert compare.drop_stale(Run("e", "e", params, metrics), None).metrics == metrics  # no lock: kept


# --- end to end -------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_variants_by_two_replicates_with_dvc_exp_run(dvc_repo):
    t0 = time.perf_counter()
    dvc_repo.set_params(TINY_GMM)
    dvc_repo.dvc("repro", "compare_dist")  # the baseline: replicate 0, committed
    dvc_repo.run("git", "add", "-A")
    dvc_repo.run("git", "commit", "-q", "-m", "baseline")
    # every run names its replicate: `dvc exp run -S` leaves the last applied params in the workspace
    for overrides in (["replicate=1"], ["replicate=0", "train_eq12.weighting=eq14"],
                      ["replicate=1", "train_eq12.weighting=eq14"]):
        dvc_repo.dvc("exp", "run", *[a for o in overrides for a in ("-S", o)], "compare_dist")
    proc = dvc_repo.run(sys.executable, "-m", "ddpm_lab.compare", "--out", "reports/compare.html")
    assert "compare: 2 variants, 4 runs" in proc.stdout, proc.stdout
    variants = group(collect(json.loads(dvc_repo.dvc("exp", "show", "--json").stdout)))
    assert [(v.name, sorted(r.replicate for r in v.runs)) for v in variants] == [
        ("baseline", [0, 1]), ("train_eq12.weighting=eq14", [0, 1])]
    # replicates differ (their training and sampling seeds do), and so do the variants
    gaps = [r.metrics["eq12.bound_gap"] for v in variants for r in v.runs]
    assert len(set(gaps)) == 4
    assert (dvc_repo.path / "reports" / "compare.html").is_file()
    print(f"slow compare test: {time.perf_counter() - t0:.0f} s")
