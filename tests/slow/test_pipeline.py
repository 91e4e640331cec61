"""End to end: the real `dvc repro` of the GMM branch on tiny params in a temporary copy."""

from __future__ import annotations

import json

import pytest
from tests.helpers import TINY_GMM, ran

from ddpm_lab.gmm.distances import STATISTICS


pytestmark = pytest.mark.slow

SAMPLE = ["sample@eq12", "sample@eq3", "sample@oracle"]  # one foreach stage per eps-predictor
GMM_STAGES = ["generate_gmm", "train_eq12", "train_eq3", *SAMPLE, "compare_dist", "plot"]


def in_graph_order(stages: list[str]) -> list[str]:
    """The stages run, with the independent trainings and samplings in a fixed order (DVC may run
    them in another)."""
    return sorted(stages, key=lambda s: GMM_STAGES.index(s) if s in GMM_STAGES else len(GMM_STAGES))


FIGURES = [
    "diffusion_process",
    "gmm_dist",
    "reverse_sampling_eq12",
    "reverse_sampling_eq3",
    "dist_comp_eq12",
    "dist_comp_eq3",
    "eq12_loss_curve",
    "eq3_loss_curve",
    "eps_error_by_t",
]


# Every registered statistic but the sliced W1 (D = 1), as a ratio and its floor's p95 (ddpm_lab/gmm/distances.py)
RATIOS = [f"{s}_{k}" for s in STATISTICS if s != "sliced_w1" for k in ("ratio", "p95")]
HEADLINE = ["bound_gap", "gap_err", *RATIOS, "mode_err", "mode_p95"]
EXACT = ["exact_kl", "exact_w1_ratio", "exact_ks_ratio", "exact_mode_err"]  # the propagated output (1-D)


def test_gmm_branch_end_to_end(dvc_repo):
    dvc_repo.set_params(TINY_GMM)
    first = dvc_repo.dvc("repro", "plot")
    assert (
        in_graph_order(ran(first)) == GMM_STAGES
        and ran(first)[0] == "generate_gmm"
        and ran(first)[-3:] == GMM_STAGES[-3:]
    )
    for name in FIGURES:
        png = dvc_repo.path / "images" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("eq12", "eq3", "oracle"):
        m = json.loads((dvc_repo.path / "metrics" / f"dist_{name}.json").read_text())
        assert sorted(m) == sorted(HEADLINE + EXACT)
        d = json.loads((dvc_repo.path / "metrics" / "details" / f"dist_{name}.json").read_text())
        assert d["n_per_seed"] == 50 and d["n_seeds"] == 2 and d["n_pooled"] == 100
        # The headline is what the details say: a ratio to the floor's median, its p95 beside it.
        for stat in ("w1", "ks"):
            floor = d[stat]["floor"]
            assert m[f"{stat}_ratio"] == pytest.approx(d[stat]["value"] / floor["median"])
            assert m[f"{stat}_p95"] == pytest.approx(floor["p95"] / floor["median"]) and floor["p05"] <= floor["p95"]
        assert m["bound_gap"] == d["expected_bound"]["gap_to_oracle"]
        # A T = 20 chain with a 3-step model is far from eps*: a clearly positive gap; the oracle's is 0.
        assert (m["bound_gap"] > 1e-3) if name != "oracle" else (m["bound_gap"] == 0.0)
        # The propagated output distribution: the draws agree with it (KS test at n = 100: p below 1e-3
        # one run in a thousand when both are right), and the bound's chain rule holds for the
        # decoder's KL (the oracle's variational gap plus the model's gap).
        ex = d["exact_sampled"]
        assert ex["samples_vs_propagated"]["p_value"] > 1e-3 and ex["samples_vs_propagated"]["n"] == 100
        assert ex["decoder"]["kl_within_upper"], ex["decoder"]
        assert 0 < ex["decoder"]["kl"] <= ex["decoder"]["kl_upper"] + ex["decoder"]["kl_upper_err"]
        assert m["exact_w1_ratio"] == pytest.approx(ex["output"]["w1"] / d["w1"]["floor"]["median"])
    # Headline numbers only: the metrics table lists no details file and stays within 320 columns
    # (each registered statistic adds two, about 25 characters: docs/index.md; the image bound two).
    shown = dvc_repo.dvc("metrics", "show").stdout
    assert "metrics/dist_eq12.json" in shown and "details" not in shown and "train_eq12" not in shown
    assert max(map(len, shown.splitlines())) <= 320, shown

    # Nothing to do on a second run.
    assert ran(dvc_repo.dvc("repro", "plot")) == []

    # Same params, same machine: byte-identical data, models, metrics and figures.
    lock = (dvc_repo.path / "dvc.lock").read_bytes()
    assert in_graph_order(ran(dvc_repo.dvc("repro", "-f", "plot"))) == GMM_STAGES
    assert (dvc_repo.path / "dvc.lock").read_bytes() == lock

    # An eq3-only param reruns train_eq3 and what follows it, nothing else: eq12 and the oracle
    # are not resampled.
    dvc_repo.set_params({"train_eq3": {"lr": 0.001}})
    assert ran(dvc_repo.dvc("repro", "plot")) == ["train_eq3", "sample@eq3", "compare_dist", "plot"]

    # A plot-only param reruns only plot.
    dvc_repo.set_params({"plot": {"bins": 12}})
    assert ran(dvc_repo.dvc("repro", "plot")) == ["plot"]

    # The params diff names exactly what changed.
    diff = dvc_repo.dvc("params", "diff").stdout
    assert "train_eq3.lr" in diff and "plot.bins" in diff and "train_eq12.lr" not in diff

    # A variant as a DVC experiment: only the affected stage runs; exp show lists it.
    dvc_repo.run("git", "add", "-A")
    dvc_repo.run("git", "commit", "-q", "-m", "tiny run")
    exp = dvc_repo.dvc("exp", "run", "-S", "plot.dpi=31", "plot")
    assert ran(exp) == ["plot"]
    shown = json.loads(dvc_repo.dvc("exp", "show", "--json").stdout)
    dpis = [
        e["data"]["params"]["params.yaml"]["data"]["plot"]["dpi"]
        for rev in shown
        for e in (rev.get("experiments") or [])
        for e in e["revs"]
    ]
    assert 31 in dpis


def test_failed_stage_leaves_committed_outputs(dvc_repo):
    # A bad param makes the first stage fail before writing; dvc exits non-zero with the one line.
    dvc_repo.set_params({"gmm": {"weights": [0.5, 0.5, 0.5]}})
    proc = dvc_repo.dvc("repro", "generate_gmm", check=False)
    assert proc.returncode != 0
    assert (
        "error: params.yaml: gmm.weights = [0.5, 0.5, 0.5]: expected weights summing to 1" in proc.stderr + proc.stdout
    )
    assert not (dvc_repo.path / "data" / "gmm" / "train.npy").exists()
