"""The params schemas (pydantic, ddpm_lab/runtime/params.py): strict types, one-line errors,
one schema per section, network sizes counted from the real networks."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import yaml

from ddpm_lab.gmm import params as gmm_params
from ddpm_lab.gmm.model import EpsMLP, MLPConfig, n_parameters
from ddpm_lab.images import sections as images_params
from ddpm_lab.images.unet import UNet, UNetConfig, config_parameters
from ddpm_lab.runtime.params import ConfigError, from_section

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(dotted: str, value) -> dict:
    p = copy.deepcopy(PARAMS)
    section, key = dotted.split(".")
    p[section][key] = value
    return p


def test_every_section_has_one_schema_in_one_branch():
    gmm, images = set(gmm_params.SECTIONS), set(images_params.SECTIONS)
    assert not gmm & images
    assert gmm | images | {"replicate"} == set(PARAMS)


def test_both_branches_accept_the_default_params():
    assert set(gmm_params.check_all(PARAMS)) == set(gmm_params.SECTIONS)
    assert set(images_params.check_all(PARAMS)) == set(images_params.SECTIONS)


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("train_eq12.steps", "3000", "train_eq12.steps = '3000': expected an integer"),
        ("train_eq12.steps", True, "train_eq12.steps = True: expected an integer"),
        ("train_eq12.steps", 3000.0, "train_eq12.steps = 3000.0: expected an integer"),
        ("train_eq12.lr", math.nan, "train_eq12.lr = nan: expected a finite number"),
        ("train_eq12.lr", -math.inf, "train_eq12.lr = -inf: expected a finite number"),
        ("sample.seeds", [0, -1], "sample.seeds = [0, -1]: expected distinct non-negative integers"),
        ("sample.seeds", [], "sample.seeds = []: expected a non-empty list of integers"),
        ("sample.threads", 4096, "sample.threads = 4096: expected an integer in [0, 1024] (0: torch's default)"),
        ("compare_dist.floor_draws", 19, "compare_dist.floor_draws = 19: expected an integer >= 20"),
        ("gmm.seed", 2**63, "gmm.seed = 9223372036854775808: expected an integer between -2^63 and 2^63 - 1"),
        ("sampler_tradeoff.enabled", "yes", "sampler_tradeoff.enabled = 'yes': expected true or false"),
        ("images_eval.hidden", [64, 0], "images_eval.hidden = [64, 0]: expected a non-empty list of integers >= 1"),
    ],
)
def test_strict_types_give_one_line_naming_key_value_and_expectation(dotted, value, message):
    section = dotted.split(".")[0]
    branch = gmm_params if section in gmm_params.SECTIONS else images_params
    with pytest.raises(ConfigError) as err:
        branch.check_all(with_value(dotted, value))
    assert str(err.value).startswith(f"params.yaml: {message.split(': expected')[0]}: expected")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_missing_and_fixed_keys():
    p = copy.deepcopy(PARAMS)
    p["model"]["width"] = 3
    with pytest.raises(
        ConfigError,
        match=r"^params\.yaml: model\.width is not a known key: expected one of "
        r"hidden, n_blocks, emb_dim, prediction, learned_variance$",
    ):
        gmm_params.read(p, "model", data_dim=1)
    p = copy.deepcopy(PARAMS)
    p["model"]["data_dim"] = 3  # a fact of the data, not a setting
    with pytest.raises(ConfigError, match=r"model\.data_dim is not a known key"):
        gmm_params.read(p, "model", data_dim=1)
    p = copy.deepcopy(PARAMS)
    del p["sample"]["threads"]  # a default for library use, required in params all the same
    with pytest.raises(ConfigError, match=r"^params\.yaml: sample\.threads is missing: expected an integer$"):
        gmm_params.read(p, "sample")


def test_schemas_are_frozen_and_revalidate_on_replace():
    import dataclasses

    cfg = from_section(MLPConfig, PARAMS, "model", data_dim=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.hidden = 3
    with pytest.raises(ValueError):
        dataclasses.replace(cfg, hidden=0)


@pytest.mark.parametrize(
    "sizes", [dict(hidden=64, n_blocks=2, emb_dim=32, data_dim=1), dict(hidden=7, n_blocks=3, emb_dim=5, data_dim=4)]
)
def test_mlp_parameters_on_the_meta_device_are_the_real_networks(sizes):
    cfg = MLPConfig(**sizes)
    assert n_parameters(cfg) == sum(p.numel() for p in EpsMLP(cfg).parameters())
    assert all(p.device.type == "cpu" for p in EpsMLP(cfg).parameters())  # the meta device did not leak


@pytest.mark.parametrize(
    "sizes",
    [
        dict(base_channels=24, channel_mults=[1, 2], num_res_blocks=1, attn_heads=4),
        dict(base_channels=8, channel_mults=[1, 2, 2], num_res_blocks=2, attn_heads=2, image_size=28),
    ],
)
def test_unet_parameters_on_the_meta_device_are_the_real_networks(sizes):
    cfg = UNetConfig(**sizes)
    assert config_parameters(cfg) == sum(p.numel() for p in UNet(cfg).parameters())
    assert torch.empty(1).device.type == "cpu"


def test_both_branches_read_a_section_with_one_signature():
    import inspect

    from ddpm_lab.images import params as images_read
    from ddpm_lab.images.metrics import EvalConfig

    assert inspect.signature(gmm_params.read) == inspect.signature(images_read.read)
    assert gmm_params.read(PARAMS, "compare_dist", cls=gmm_params.CompareConfig) == gmm_params.read(
        PARAMS, "compare_dist"
    )
    assert images_read.read(PARAMS, "images_eval", cls=EvalConfig).floor_draws == PARAMS["images_eval"]["floor_draws"]
    with pytest.raises(TypeError, match="compare_dist has schema CompareConfig, not PlotConfig"):
        gmm_params.read(PARAMS, "compare_dist", cls=gmm_params.PlotConfig)
    with pytest.raises(TypeError, match="needs cls="):
        images_read.read(PARAMS, "images_eval")
