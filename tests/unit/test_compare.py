"""Replicates and `python -m ddpm_lab.tools.compare`: variants grouped over the param `replicate`,
means with Student-t intervals, differences paired by replicate (or Welch), Holm-adjusted
verdicts, the table, the JSON and the HTML. The statistics themselves: tests/unit/test_verdicts.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from ddpm_lab.tools import compare
from ddpm_lab.tools.compare import Run, collect, group, mean_ci, rows, table
from ddpm_lab.runtime.params import ConfigError
from ddpm_lab.runtime.seeds import fold_seed, read_replicate

FIXTURE = (
    Path(__file__).resolve().parents[1] / "data" / "exp_show.json"
)  # real `dvc exp show --json` (DVC 3.67), deps/outs cut
REPLICATES = Path(__file__).resolve().parents[2] / "benchmarks" / "replicates" / "eq12_vs_eq14.json"  # 5 + 5 saved runs


def run(name, replicate, metrics, committed=False, **params):
    return Run(
        name=name,
        rev=name,
        params={"replicate": replicate, "train_eq12.weighting": "eq12", **params},
        metrics=metrics,
        committed=committed,
    )


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
    assert set(runs[0].metrics) >= {
        "eq12.bound_gap",
        "eq12.w1_ratio",
        "eq12.ks_ratio",
        "eq12.mode_err",
        "eq3.bound_gap",
    }


def test_grouping_ignores_replicate_only():
    runs = [
        run("base", 0, {"eq12.bound_gap": 1.0}, committed=True),
        run("a", 1, {"eq12.bound_gap": 1.1}),
        run("b", 0, {"eq12.bound_gap": 2.0}, **{"train_eq12.weighting": "eq14"}),
        run("c", 2, {"eq12.bound_gap": 2.1}, **{"train_eq12.weighting": "eq14"}),
        run("d", 0, {"eq12.bound_gap": 3.0}, **{"model.hidden": 32}),
    ]
    variants = group(runs)
    assert [(v.name, [r.name for r in v.runs]) for v in variants] == [
        ("baseline", ["base", "a"]),
        ("train_eq12.weighting=eq14", ["b", "c"]),
        ("model.hidden=32", ["d"]),
    ]


def test_a_commit_not_yet_reproduced_names_the_baseline_but_is_no_replicate():
    rows_ = [
        {
            "rev": "abc",
            "data": {"params": {"params.yaml": {"data": {"replicate": 0, "a": {"x": 1}}}}, "metrics": {}},
            "experiments": [
                {
                    "name": "e1",
                    "revs": [
                        {
                            "rev": "e1",
                            "data": {
                                "params": {"params.yaml": {"data": {"replicate": 1, "a": {"x": 2}}}},
                                "metrics": {"metrics/dist_eq3.json": {"data": {"bound_gap": 0.5}}},
                            },
                        }
                    ],
                }
            ],
        }
    ]
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
    out = table(
        group(
            [
                run("base", 0, {"eq3.bound_gap": 1.0}, committed=True),
                run("v", 0, {"eq3.bound_gap": 2.0}, **{"model.hidden": 4}),
            ]
        )
    )
    body = out.split("\n\n")[0]
    assert "n=1, no CI" in body and "(no test)" in body and "n<2: not tested" in body and "differs" not in body


def _runs(base_values, variants: dict, metric="eq3.bound_gap"):
    out = [run(f"b{i}", i, {metric: v}, committed=i == 0) for i, v in enumerate(base_values)]
    for hidden, values in variants.items():
        out += [run(f"h{hidden}-{i}", i, {metric: v}, **{"model.hidden": hidden}) for i, v in enumerate(values)]
    return out


def test_a_difference_differs_only_when_holm_rejects():
    runs = _runs([1.0, 1.1, 0.9], {1: (3.0, 3.1, 2.9), 2: (0.8, 1.3, 1.1)})
    verdicts = {r["variant"]: r for r in rows(group(runs)) if r["id"] != "v0"}
    far, near = verdicts["model.hidden=1"], verdicts["model.hidden=2"]
    assert far["method"] == near["method"] == "paired" and far["pairs"] == 3
    assert far["differs"] and far["interval"][0] > 0 and far["verdict"] == "differs (Holm 5%, paired)"
    lo, hi = near["interval"]
    assert not near["differs"] and lo < 0 < hi and near["verdict"] == "not shown (Holm 5%, paired)"
    # the adjusted p-values are Holm's over the family of both tests
    assert far["p_adj"] == pytest.approx(min(1.0, 2 * far["p"])) and near["p_adj"] >= near["p"]


def test_pairing_removes_the_shared_replicate_effect():
    """Replicate r shares its seeds across variants: a constant shift on top of a large shared
    per-replicate effect is found by the paired test and missed by Welch."""
    shared = [0.0, 5.0, -3.0, 8.0, 1.0]
    runs = _runs(shared, {1: [s + 0.5 + 0.01 * (-1) ** i for i, s in enumerate(shared)]})
    r = [r for r in rows(group(runs)) if r["id"] == "v1"][0]
    assert r["method"] == "paired" and r["differs"]
    assert stats.ttest_ind(r["diff"] + np.array(shared), shared, equal_var=False).pvalue > 0.5


def test_unmatched_replicates_fall_back_to_welch_and_say_so():
    runs = [
        run("b0", 0, {"eq3.bound_gap": 1.0}, committed=True),
        run("b1", 1, {"eq3.bound_gap": 1.2}),
        run("v5", 5, {"eq3.bound_gap": 3.0}, **{"model.hidden": 1}),
        run("v6", 6, {"eq3.bound_gap": 3.1}, **{"model.hidden": 1}),
    ]
    r = [r for r in rows(group(runs)) if r["id"] == "v1"][0]
    assert r["method"] == "welch" and r["pairs"] is None and r["verdict"].endswith("Welch)")


def test_primary_gets_the_whole_alpha_and_the_rest_is_not_tested():
    runs = [
        run(f"b{i}", i, {"eq12.bound_gap": 1.0 + 0.1 * i, "eq3.bound_gap": 2.0 + 0.1 * i}, committed=i == 0)
        for i in range(4)
    ]
    runs += [
        run(
            f"v{i}",
            i,
            {"eq12.bound_gap": 1.5 + 0.1 * i + 0.01 * (-1) ** i, "eq3.bound_gap": 2.5 + 0.1 * i},
            **{"model.hidden": 1},
        )
        for i in range(4)
    ]
    got = {r["metric"]: r for r in rows(group(runs), primary="eq12.bound_gap") if r["id"] == "v1"}
    assert got["eq12.bound_gap"]["tested"] and got["eq12.bound_gap"]["p_adj"] == got["eq12.bound_gap"]["p"]
    assert not got["eq3.bound_gap"]["tested"] and got["eq3.bound_gap"]["verdict"].startswith("not tested (secondary")


def test_table_is_at_most_120_characters_wide():
    long = {f"images_model.a_very_long_parameter_name_{i}": i for i in range(8)}
    runs = [
        run("base", r, {"eq12.bound_gap": 1.0 + r / 7, "images.kid": 1e-7 * (r + 1)}, committed=r == 0)
        for r in range(3)
    ]
    runs += [run(f"v{r}", r, {"eq12.bound_gap": 123456.789 + r, "images.kid": -1e-9 * r}, **long) for r in range(3)]
    out = table(group(runs))
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "a_very_long_parameter_name_7=7" in out  # the legend gives the full name, wrapped


def test_cli_prints_the_table_and_writes_html(tmp_path, capsys):
    out = tmp_path / "reports" / "compare.html"
    compare.main(["--json", str(FIXTURE), "--out", str(out)])
    printed = capsys.readouterr().out
    table_lines = printed.splitlines()[:-1]  # the last line names the output file (any length)
    assert "train_eq12.weighting=eq14" in printed and max(map(len, table_lines)) <= 120
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


def test_json_format_is_one_object_per_metric_and_variant(tmp_path, capsys):
    compare.main(["--runs", str(REPLICATES), "--out", str(tmp_path / "c.html"), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert {(o["metric"], o["variant_id"]) for o in out} == {
        (m, v) for m in compare.headline_names() for v in ("v0", "v1")
    }
    gap = next(o for o in out if o["metric"] == "eq12.bound_gap" and o["variant_id"] == "v1")
    assert gap["method"] == "paired" and gap["pairs"] == 5 and gap["differs"] is True and gap["family_size"] == 5
    assert gap["diff_interval"][0] < gap["diff"] < gap["diff_interval"][1] and gap["p"] <= gap["p_adjusted"]
    assert all(isinstance(o["differs"], bool) for o in out)


@pytest.mark.parametrize("sequential", [None, 8])
def test_every_format_names_the_conditions_of_its_guarantee(tmp_path, capsys, sequential):
    """The family-wise rate holds under stated conditions: text, JSON and HTML each name them."""
    args = ["--runs", str(REPLICATES)] + (["--sequential", str(sequential)] if sequential else [])
    printed = {}
    for fmt in ("text", "json"):
        compare.main(args + ["--out", str(tmp_path / f"{fmt}.html"), "--format", fmt])
        printed[fmt] = capsys.readouterr().out
    conditions = {o["conditions"] for o in json.loads(printed["json"])}
    assert len(conditions) == 1
    looks = ("prefix", f"N = {sequential} was declared before the first") if sequential else ("fixed before looking",)
    for text in (printed["text"], conditions.pop(), (tmp_path / "text.html").read_text()):
        flat = " ".join(text.split())  # the terminal legend is wrapped
        assert all(c in flat for c in ("paired differences are symmetric", "Gaussian", "shares its seeds") + looks)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--primary", "eq12.nope"], "--primary eq12.nope: expected one of eq12.bound_gap, "),
        (["--sequential", "2"], "--sequential 2: expected a maximum number of pairs in [3, 30]"),
        (
            ["--sequential", "4"],
            "--sequential 4: eq12.bound_gap of v1 (train_eq12.weighting=eq14): 5 matched "
            "replicates: expected at most 4",
        ),
    ],
)
def test_bad_verdict_options_are_one_line_errors(tmp_path, capsys, args, message):
    out = tmp_path / "c.html"
    with pytest.raises(SystemExit) as e:
        compare.run_stage(compare.main, ["--runs", str(REPLICATES), "--out", str(out)] + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert not out.exists()


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


LOCK = {
    "schema": "2.0",
    "stages": {
        "train_eq12": {
            "params": {"params.yaml": {"replicate": 0, "train_eq12": {"weighting": "eq12"}}},
            "outs": [{"path": "models/eq12.pt"}],
        },
        "compare_dist": {
            "deps": [{"path": "models/eq12.pt"}],
            "params": {"params.yaml": {"compare_dist.seed": 0}},
            "outs": [{"path": "metrics/dist_eq12.json"}],
        },
        "train_images": {"params": {"params.yaml": {"replicate": 0}}, "outs": [{"path": "models/images"}]},
        "evaluate_images": {"deps": [{"path": "models/images/ema.pt"}], "outs": [{"path": "metrics/images.json"}]},
    },
}


def test_metrics_of_stages_not_rerun_for_a_run_are_dropped():
    """An experiment run as `dvc exp run -S replicate=1 compare_dist` leaves the image stages
    as its parent ran them: their recorded params say replicate 0, so the image metrics are not
    this run's, and they do not count as a replicate (downstream stages follow through deps)."""
    metrics = {"eq12.bound_gap": 0.01, "images.fd_ratio": 1.7, "images.kid": 2.0}
    params = {"replicate": 1, "train_eq12.weighting": "eq12", "compare_dist.seed": 0}
    assert compare.stale_outputs(LOCK, params) == {
        "models/eq12.pt",
        "metrics/dist_eq12.json",
        "models/images",
        "metrics/images.json",
    }
    assert compare.stale_outputs(LOCK, {**params, "replicate": 0}) == set()
    lock = json.loads(json.dumps(LOCK))
    lock["stages"]["train_eq12"]["params"]["params.yaml"]["replicate"] = 1  # the GMM branch was rerun
    kept = compare.drop_stale(Run("e", "e", params, metrics), lock).metrics
    assert kept == {"eq12.bound_gap": 0.01}
    assert compare.drop_stale(Run("e", "e", params, metrics), None).metrics == metrics  # no lock: kept


def test_a_removed_stage_left_in_dvc_lock_does_not_make_a_run_stale(tmp_path, monkeypatch):
    """DVC keeps a removed stage's entry in dvc.lock (here `sample`, since split into the foreach
    stage sample@eq12): its params are those of its last run, not this run's, so read_lock drops
    the entries of stages the commit's dvc.yaml does not define, at a commit and in the workspace."""
    import subprocess

    import yaml

    pipeline = {
        "stages": {
            "train_eq12": {"cmd": "x"},
            "sample": {"foreach": ["eq12"], "do": {"cmd": "x"}},
            "compare_dist": {"cmd": "x"},
        }
    }
    old = {"params": {"params.yaml": {"replicate": 0}}, "outs": [{"path": "data/samples"}]}
    lock = {
        "schema": "2.0",
        "stages": {
            "train_eq12": {"params": {"params.yaml": {"replicate": 1}}, "outs": [{"path": "models/eq12.pt"}]},
            "sample": old,  # removed from dvc.yaml, still in dvc.lock
            "sample@eq12": {
                "params": {"params.yaml": {"replicate": 1}},
                "deps": [{"path": "models/eq12.pt"}],
                "outs": [{"path": "data/samples/eq12.npz"}],
            },
            "compare_dist": {
                "params": {"params.yaml": {"replicate": 1}},
                "deps": [{"path": "data/samples"}],
                "outs": [{"path": "metrics/dist_eq12.json"}],
            },
        },
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    monkeypatch.chdir(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "lock"]):
        subprocess.run(git + cmd, check=True)
    params = {"replicate": 1}
    assert compare.stale_outputs(lock, params) == {"data/samples", "metrics/dist_eq12.json"}  # the raw lock
    for rev in ("HEAD", "workspace"):
        read = compare.read_lock(rev)
        assert sorted(read["stages"]) == ["compare_dist", "sample@eq12", "train_eq12"]
        assert compare.stale_outputs(read, params) == set()
