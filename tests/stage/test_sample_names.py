"""Stage sample, one eps-predictor at a time (dvc.yaml's foreach stages sample@eq12, sample@eq3,
sample@oracle): what each reads and writes."""

from __future__ import annotations

import importlib

from ddpm_lab.runtime.cli import run_stage
from tests.helpers import run_gmm_stages, tiny_params, write


def test_sample_one_name_is_that_part_of_sampling_all(tmp_path, monkeypatch):
    """`--name NAME` (one dvc stage per eps-predictor) writes NAME's draws alone, the same bytes as
    sampling all three; a model's stage needs no mixture file, the oracle's no checkpoint."""
    monkeypatch.chdir(tmp_path)
    write(tiny_params())
    run_gmm_stages(through_plot=False)
    every = {p.name: p.read_bytes() for p in (tmp_path / "data" / "samples").glob("*.npz")}
    assert sorted(every) == ["eq12.npz", "eq3.npz", "oracle.npz"]
    sample = importlib.import_module("stages.sample").main
    (tmp_path / "models" / "eq3.pt").unlink()  # the oracle and eq12 do not read it
    mixture = (tmp_path / "data" / "gmm" / "mixture.json").rename(tmp_path / "mixture.json")
    for name, out in (("eq12", "one"), ("oracle", "two")):
        if name == "oracle":
            mixture.rename(tmp_path / "data" / "gmm" / "mixture.json")
            (tmp_path / "models" / "eq12.pt").unlink()
        run_stage(sample, ["--name", name, "--out", out])
        assert {p.name: p.read_bytes() for p in (tmp_path / out).iterdir()} == {f"{name}.npz": every[f"{name}.npz"]}
