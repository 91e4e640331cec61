"""diffusion.variance: optimal through the GMM stages: Analytic-DPM's per-t variance (Bao et al.
2022, Thm 1) computed from the mixture's exact noise error, the same for every model. A model's
checkpoint carries it, so that sampling a model alone reads the same numbers as sampling all;
compare_dist's exact oracle bound is ddpm_lab.gmm.variance's optimal_t bound; the image branch
refuses it in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SamplerConfig, step_coefficients
from ddpm_lab.gmm import variance as V
from ddpm_lab.gmm.artifacts import load_mixture
from ddpm_lab.runtime.cli import run_stage
from ddpm_lab.runtime.io import load_checkpoint
from ddpm_lab.runtime.params import from_section
from tests.helpers import expect_one_line_error, run_gmm_stages, stages, tiny_params, write


def test_gmm_stages_with_the_optimal_variance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tiny_params(**{"diffusion.variance": "optimal"})
    write(p)
    run_gmm_stages()
    dcfg = from_section(DiffusionConfig, p, "diffusion")
    mixture = load_mixture(tmp_path / "data/gmm/mixture.json")
    d = V.diffusion_for(dcfg, mixture)
    mmse, _ = mixture.eps_mmse(d.np["alphas_cumprod"][1:])
    np.testing.assert_allclose(d.np["sigma2"][1:], V.optimal_sigma2(d, mmse, mixture.dim), rtol=1e-12)
    for name in ("eq12", "eq3"):
        config, _ = load_checkpoint(tmp_path / "models" / f"{name}.pt")
        np.testing.assert_array_equal(config["noise_error"], d.np["noise_error"][1:])
    # a model sampled alone (its checkpoint's sigma_t^2) gives the bytes of the all-names run (the mixture's)
    run_stage(stages("sample").main, ["--name", "eq12", "--out", "alone"])
    assert (tmp_path / "alone/eq12.npz").read_bytes() == (tmp_path / "data/samples/eq12.npz").read_bytes()
    bound = json.loads((tmp_path / "metrics/details/dist_oracle.json").read_text())["expected_bound"]
    want = V.oracle_bounds(d, mixture, (mmse, np.zeros_like(mmse)))["optimal_t"]["bound"]
    assert bound["oracle"] == pytest.approx(want, rel=1e-9)  # compare_dist reads mmse_t from the CSV at 9 digits
    for name in ("eq12", "eq3", "oracle"):
        m = json.loads((tmp_path / "metrics" / f"dist_{name}.json").read_text())
        assert all(np.isfinite(v) for v in m.values())


@pytest.mark.parametrize("S", [3, 7])
def test_respaced_sampler_steps_use_the_respaced_optimum(S):
    """The ddpm sampler's sigma on S respaced steps is the optimal variance of the respaced process
    (beta~'_i + c'_i^2 m_t at the kept t), as variance.respaced builds it; the last step adds no noise."""
    dcfg = DiffusionConfig(T=20, schedule="linear", beta_start=1e-3, beta_end=0.2, variance="optimal")
    m = np.linspace(0.9, 0.01, 20)
    d = dcfg.build(m, 1)
    sigma = step_coefficients(d, SamplerConfig(sampler="ddpm", steps=S))["sigma"]
    r = V.respaced(d, S)
    np.testing.assert_allclose(sigma[:-1] ** 2, r.np["sigma2"][1:][::-1][:-1], rtol=1e-12)
    assert sigma[-1] == 0.0
    full = step_coefficients(d, SamplerConfig(sampler="ddpm", steps=20))["sigma"]
    np.testing.assert_allclose(full[:-1] ** 2, d.np["sigma2"][2:][::-1], rtol=1e-12)


def test_the_optimal_variance_needs_the_noise_error_and_the_gmm_branch(tmp_path, monkeypatch, capsys):
    dcfg = DiffusionConfig(T=5, schedule="linear", beta_start=1e-3, beta_end=0.2, variance="optimal")
    with pytest.raises(ValueError, match=r"variance optimal needs the noise error per t"):
        dcfg.build()
    monkeypatch.chdir(tmp_path)
    write(tiny_params(**{"images_diffusion.variance": "optimal"}))
    expect_one_line_error(
        capsys, "prepare_images", [], r"images_diffusion\.variance = 'optimal': expected beta or beta_tilde"
    )
