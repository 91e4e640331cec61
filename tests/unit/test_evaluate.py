"""What stage compare_dist does, as library calls on tiny inputs: the eps-predictors and the samples
it reads (ddpm_lab.gmm.artifacts.load_eps_predictors, read_samples), the exact expected bounds
(ddpm_lab.gmm.exact.expected_bounds) and the judgement of every sampler
(ddpm_lab.gmm.evaluate.judge_samplers). The stage end to end: tests/stage/test_bad_input.py,
tests/stage/test_stages_2d.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SamplerConfig
from ddpm_lab.gmm.artifacts import load_eps_predictors, read_sampler_config, read_samples, sampler_arrays
from ddpm_lab.gmm.distances import STATISTICS
from ddpm_lab.gmm.evaluate import judge_samplers
from ddpm_lab.gmm.exact import expected_bounds
from ddpm_lab.gmm.mixture import GaussianMixture, OracleEps
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.names import ALL_MODELS, MODELS, ORACLE
from ddpm_lab.gmm.params import CompareConfig
from ddpm_lab.runtime.io import npz_bytes, save_checkpoint_bytes, write_outputs
from ddpm_lab.runtime.params import DataError, to_dict
from ddpm_lab.runtime.stats import weighted_sum

T = 10
DCFG = DiffusionConfig(T=T, schedule="linear", beta_start=0.01, beta_end=0.5, variance="beta")
MIXTURE = GaussianMixture([0.4, 0.6], [-2.0, 1.5], [0.5, 0.7])
MCFG = MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=1)
EXACT = ("exact_kl", "exact_w1_ratio", "exact_ks_ratio", "exact_mode_err")  # the propagated output's headline


def eps_table(scale: float) -> pd.DataFrame:
    t = np.arange(1, T + 1)
    return pd.DataFrame(
        {"t": t, "mmse": 1.0 / t, "mmse_err": 1e-6 * t, "eps_error": scale / t, "eps_error_err": 1e-5 * scale * t}
    )


def test_expected_bounds_from_the_tables():
    diffusion = DCFG.build()
    tables = {"eq12": eps_table(0.01), "eq3": eps_table(0.2)}
    oracle, oracle_err, gaps = expected_bounds(diffusion, MIXTURE, tables)
    w = diffusion.mse_weights("bound")
    assert oracle == diffusion.expected_bound(1.0 / np.arange(1, T + 1), MIXTURE.second_moment(), 1)
    assert (
        oracle_err
        == weighted_sum(w, tables["eq12"]["mmse"].to_numpy(), tables["eq12"]["mmse_err"].to_numpy(), False)[1]
    )
    assert list(gaps) == ["eq12", "eq3"] and gaps["eq3"][0] == pytest.approx(20 * gaps["eq12"][0])
    assert gaps["eq12"][1] == pytest.approx(float(np.abs(w) @ (1e-7 * np.arange(1, T + 1))))  # bounds add up (1-D)
    two_d = GaussianMixture([0.5, 0.5], [[0.0, 1.0], [2.0, 0.0]], [[1.0, 0.5], [0.3, 0.3]])
    _, _, mc = expected_bounds(diffusion, two_d, tables)
    assert mc["eq12"][1] < gaps["eq12"][1]  # Monte-Carlo standard errors add in quadrature (D > 1)


def test_load_eps_predictors_and_read_samples(tmp_path):
    diffusion = DCFG.build()
    model = EpsMLP.seeded(MCFG, 0)
    config = {"diffusion": to_dict(DCFG), "model": MCFG.to_dict()}
    write_outputs({tmp_path / f"{name}.pt": save_checkpoint_bytes(model.state_dict(), config) for name in MODELS})
    models = load_eps_predictors(tmp_path, ALL_MODELS, DCFG, MIXTURE, diffusion.np["alphas_cumprod"])
    assert list(models) == ["eq12", "eq3", "oracle"]
    assert isinstance(models[ORACLE], OracleEps) and isinstance(models["eq3"], EpsMLP)
    assert list(load_eps_predictors(tmp_path, (ORACLE,), DCFG, MIXTURE, diffusion.np["alphas_cumprod"])) == [ORACLE]

    x = np.zeros((2, 5, 1))
    write_outputs({tmp_path / f"{name}.npz": npz_bytes(x0=x) for name in ALL_MODELS})
    samples = read_samples(tmp_path, ALL_MODELS, 1)
    assert list(samples) == list(ALL_MODELS) and all(s.shape == (2, 5, 1) for s in samples.values())
    write_outputs({tmp_path / "eq3.npz": npz_bytes(x0=np.zeros((2, 4, 1)))})
    with pytest.raises(
        DataError,
        match=r"sample arrays of shapes \[\(2, 5, 1\), \(2, 4, 1\), \(2, 5, 1\)\]: "
        r"expected \(S, n, 1\) with one S and n for all samplers",
    ):
        read_samples(tmp_path, ALL_MODELS, 1)
    with pytest.raises(DataError, match=r"expected \(S, n, 2\)"):
        read_samples(tmp_path, ("eq12",), 2)


def test_judge_samplers(capsys):
    diffusion = DCFG.build()
    models = {"eq12": EpsMLP.seeded(MCFG, 0).eval(), ORACLE: OracleEps(MIXTURE, diffusion.np["alphas_cumprod"])}
    rng = np.random.default_rng(0)
    samples = {name: MIXTURE.sample(60, rng).reshape(2, 30, 1) for name in models}
    heldout = MIXTURE.sample(12, rng)
    cfg = CompareConfig(floor_draws=20, directions=4, nll_n=8, nll_batch=3, seed=0, threads=1)
    judged = judge_samplers(models, samples, MIXTURE, diffusion, {"eq12": eps_table(0.01)}, heldout, 1.5, cfg)
    assert list(judged) == ["eq12", ORACLE]
    for name, (head, details, exact) in judged.items():
        ratios = {f"{st}_{k}" for st in STATISTICS if st != "sliced_w1" for k in ("ratio", "p95")}  # 1-D: no slices
        assert {"bound_gap", "gap_err", "mode_err", "mode_p95"} | ratios | set(EXACT) == set(head)
        # The propagated output distribution (1-D): its distances, the draws tested against it, and
        # the decoder's KL below E_q[L] - H(q) (here the table's gap and entropy 1.5 are made up, so only
        # that the check is reported, not its outcome).
        ex = details["exact_sampled"]
        assert (
            head["exact_w1_ratio"]
            == ex["output"]["w1_ratio"]
            == pytest.approx(ex["output"]["w1"] / details["w1"]["floor"]["median"])
        )
        assert ex["output"]["describes"].startswith("the sampler's output") and exact.F[-1] == pytest.approx(1.0)
        assert 0 <= ex["samples_vs_propagated"]["p_value"] <= 1 and ex["samples_vs_propagated"]["n"] == 60
        assert ex["decoder"]["describes"].startswith("the bound's p_theta") and "kl_within_upper" in ex["decoder"]
        assert details["model"] == name and details["n_per_seed"] == 30 and details["n_seeds"] == 2
        assert details["entropy"] == 1.5 and details["heldout_paired_estimate"]["n"] == 8  # the first nll_n rows
        bound = details["expected_bound"]
        assert bound["model"] == pytest.approx(bound["oracle"] + bound["gap_to_oracle"])
        assert bound["method"].startswith("Gauss-Kronrod")
        assert details["n_pooled"] == 60
    assert judged[ORACLE][0]["bound_gap"] == 0.0 and judged[ORACLE][1]["heldout_paired_estimate"]["gap_z"] is None
    assert capsys.readouterr().out.count("compare_dist: ") == 2
    # Seeded: the same judgement on a rerun.
    again = judge_samplers(models, samples, MIXTURE, diffusion, {"eq12": eps_table(0.01)}, heldout, 1.5, cfg)
    assert {k: v[:2] for k, v in again.items()} == {k: v[:2] for k, v in judged.items()}
    # Another sampler: its own propagation, and no decoder check (the bound's p_theta is Algorithm 2's).
    ddim = judge_samplers(
        models, samples, MIXTURE, diffusion, {"eq12": eps_table(0.01)}, heldout, 1.5, cfg, SamplerConfig("ddim", 5)
    )
    ex = ddim[ORACLE][1]["exact_sampled"]
    assert ex["sampler"].startswith("DDIM") and "decoder" not in ex and ex["output"]["kl"] > 0


def test_sampler_settings_round_trip(tmp_path):
    cfg = SamplerConfig("ddim", 7, 0.5)
    write_outputs({tmp_path / "s.npz": npz_bytes(x0=np.zeros((1, 2, 1)), **sampler_arrays(cfg))})
    assert read_sampler_config(tmp_path / "s.npz") == cfg
    write_outputs({tmp_path / "old.npz": npz_bytes(x0=np.zeros((1, 2, 1)))})
    with pytest.raises(DataError, match=r"old\.npz: has no array 'sampler_sampler': expected samples written by stage"):
        read_sampler_config(tmp_path / "old.npz")
    bad = {**sampler_arrays(cfg), "sampler_sampler": np.array("nope")}
    write_outputs({tmp_path / "bad.npz": npz_bytes(x0=np.zeros((1, 2, 1)), **bad)})
    with pytest.raises(DataError, match=r"bad\.npz: sampler settings .*sampler = 'nope'"):
        read_sampler_config(tmp_path / "bad.npz")
