"""The image U-Net: shapes, dependence on t, seeded initialisation, config validation."""

from __future__ import annotations

import pytest
import torch

from ddpm_lab.runtime.params import ConfigError, from_section
from ddpm_lab.images.unet import UNet, UNetConfig
from ddpm_lab.runtime.torch_setup import resolve_device

TINY = UNetConfig(base_channels=8, channel_mults=[1, 2], num_res_blocks=1, attn_heads=2, groups=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _perturbed(cfg: UNetConfig, seed: int = 1) -> UNet:
    """A seeded U-Net whose zero-initialised output layers are randomised, so that its output
    is not identically 0 (as it is at initialisation) and can reveal what it depends on."""
    model = UNet.seeded(cfg, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize(
    "cfg,shape",
    [
        (TINY, (3, 1, 8, 8)),
        (UNetConfig(base_channels=8, channel_mults=[1, 2, 2], attn_heads=2, groups=4, image_size=28), (2, 1, 28, 28)),
        (
            UNetConfig(
                base_channels=8,
                channel_mults=[1],
                num_res_blocks=2,
                attn_heads=1,
                groups=2,
                in_channels=3,
                image_size=5,
            ),
            (2, 3, 5, 5),
        ),
    ],
)
def test_output_shape_matches_input(cfg, shape):
    model = _perturbed(cfg)
    out = model(torch.randn(shape, generator=torch.Generator().manual_seed(0)), torch.tensor([1, 500, 3][: shape[0]]))
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_output_is_zero_at_initialisation():
    # conv_out is zero-initialised (Ho et al. 2020's reference code does the same).
    out = UNet.seeded(TINY, 0)(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]))
    assert torch.equal(out, torch.zeros_like(out))


def test_output_depends_on_t():
    model = _perturbed(TINY)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)).repeat(3, 1, 1, 1)
    out = model(x, torch.tensor([1, 250, 1000]))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    assert not torch.allclose(out[1], out[2], atol=1e-4)
    # same (x, t) in another batch position gives the same output: rows do not interact
    again = model(x[:1], torch.tensor([250]))
    torch.testing.assert_close(again[0], out[1], rtol=1e-5, atol=1e-5)


def test_seeded_initialisation_is_reproducible_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = UNet.seeded(TINY, 3), UNet.seeded(TINY, 3), UNet.seeded(TINY, 4)
    assert torch.equal(state, torch.random.get_rng_state())
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


@pytest.mark.parametrize(
    "raw,match",
    [
        ({"base_channels": 0}, r"images_model\.base_channels = 0: expected an integer >= 1"),
        ({"channel_mults": []}, r"images_model\.channel_mults = \[\]: expected a non-empty list"),
        ({"groups": 5}, r"images_model\.groups = 5: expected a divisor of every level width \[16, 32\]"),
        ({"attn_heads": 3}, r"images_model\.attn_heads = 3: expected a divisor"),
        (
            {"channel_mults": [1, 1, 1, 1, 1]},
            r"images_model\.channel_mults = \[1, 1, 1, 1, 1\]: expected at most as many levels",
        ),
        ({"dropout": 1.5}, r"images_model\.dropout = 1\.5: expected a number in \[0, 1\)"),
        ({"colour": 1}, r"images_model\.colour is not a known key"),
    ],
)
def test_bad_config_is_one_line_naming_key(raw, match):
    section = {
        "base_channels": 16,
        "channel_mults": [1, 2],
        "num_res_blocks": 1,
        "attn_heads": 4,
        "groups": 8,
        "dropout": 0.0,
        "prediction": "eps",
        "learned_variance": False,
        **raw,
    }
    with pytest.raises(ConfigError, match=match):
        from_section(UNetConfig, {"images_model": section}, "images_model", in_channels=1, image_size=8)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu': expected one of auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="expected a machine with CUDA"):
            resolve_device("cuda")
