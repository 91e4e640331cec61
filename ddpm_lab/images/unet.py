"""The noise-prediction network eps_theta(x_t, t) for images (B, C, H, W): a small U-Net.

The architecture of Ho et al. 2020 (arXiv:2006.11239, Appendix B), a PixelCNN++-style
U-Net, scaled down for 8x8 digits: a sinusoidal time embedding fed to every ResNet block,
group normalisation, self-attention at the lowest resolution, skip connections from each
down level to its up level. It knows nothing about diffusion: it maps (x, t) to a tensor
of x's shape (twice its channels with a learned variance: the target, then v). The device it
runs on is resolved by ddpm_lab.runtime.torch_setup.resolve_device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, field
from typing import Annotated

import torch
from torch import nn
from torch.nn import functional as F

from ddpm_lab.core.targets import PREDICTIONS
from ddpm_lab.runtime.params import F32, TRAIN_STATE, Count, NonEmpty, doc, require, schema
from ddpm_lab.core.nn import timestep_embedding


@schema
class UNetConfig:
    """Section `images_model`: the U-Net (sinusoidal time embedding, ResNet blocks, attention at the
    lowest resolution, GroupNorm). in_channels and image_size are taken from the data."""

    base_channels: Annotated[Count, doc("width of the first level")] = 32
    channel_mults: Annotated[
        NonEmpty[Count],
        doc(
            "one width multiplier per resolution level (each level after the first halves H and W; as many "
            "levels as image_size can be halved)"
        ),
    ] = field(default_factory=lambda: [1, 2])
    num_res_blocks: Annotated[Count, doc("ResNet blocks per level")] = 1
    attn_heads: Annotated[
        Count, doc("heads of the self-attention at the lowest resolution (a divisor of its width)")
    ] = 4
    groups: Annotated[Count, doc("GroupNorm groups (a divisor of every level's width)")] = 8
    dropout: Annotated[float, doc("dropout in each ResNet block, in [0, 1)")] = 0.0
    prediction: Annotated[
        str, doc("what the network outputs (ddpm_lab/core/targets.py), as model.prediction", choices=PREDICTIONS)
    ] = "eps"
    learned_variance: Annotated[
        bool,
        doc(
            "the network also outputs v beside its target (twice in_channels channels, the target first), a "
            "diagonal reverse variance Sigma = exp(v log beta_t + (1 - v) log beta~_t) (Nichol & Dhariwal 2021, "
            "Eq. 15), read by images_sample.sampler ddpm and the bound in bits/dim instead of "
            "images_diffusion.variance; trained by images_train.weighting hybrid"
        ),
    ] = False
    in_channels: Annotated[Count, doc("image channels: taken from the data, not from params")] = 1
    image_size: Annotated[Count, doc("image side in pixels: taken from the data, not from params")] = 8

    def __post_init__(self):
        mults = self.channel_mults
        require(0 <= self.dropout < 1, "dropout", self.dropout, "a number in [0, 1)")
        require(self.prediction in PREDICTIONS, "prediction", self.prediction, f"one of {', '.join(PREDICTIONS)}")
        widths = [self.base_channels * m for m in mults]
        require(
            all(w % self.groups == 0 for w in widths), "groups", self.groups, f"a divisor of every level width {widths}"
        )
        require(
            widths[-1] % self.attn_heads == 0,
            "attn_heads",
            self.attn_heads,
            f"a divisor of the lowest-resolution width {widths[-1]}",
        )
        down = 2 ** (len(mults) - 1)
        require(
            self.image_size % down == 0,
            "channel_mults",
            mults,
            f"at most as many levels as image_size = {self.image_size} can be halved "
            f"({len(mults) - 1} halvings need a multiple of {down})",
        )

    @property
    def out_channels(self) -> int:
        """Channels of the output: the target, then (learned_variance) v (ddpm_lab.core.targets.split_variance)."""
        return self.in_channels * (2 if self.learned_variance else 1)

    @property
    def emb_dim(self) -> int:
        """Width of the time embedding after its MLP (4 x base, as in Ho et al. 2020)."""
        return 4 * self.base_channels

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3, plus the projected time embedding, then GroupNorm -> SiLU ->
    dropout -> conv3x3 (zero-initialised, so each block starts as the identity); 1x1 skip when
    the width changes. h: (B, C_in, H, W), temb: (B, E) -> (B, C_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.silu(self.norm1(h)))
        out = out + self.temb(F.silu(temb))[:, :, None, None]  # (B, C_out) -> (B, C_out, 1, 1)
        out = self.conv2(self.dropout(F.silu(self.norm2(out))))
        return self.skip(h) + out


class AttnBlock(nn.Module):
    """Multi-head self-attention over the H*W positions, pre-GroupNorm, residual.
    h: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, C, H, W = h.shape
        qkv = self.qkv(self.norm(h)).reshape(B, 3, self.heads, C // self.heads, H * W)
        q, k, v = (qkv[:, i].transpose(-1, -2) for i in range(3))  # each (B, heads, HW, C/heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        out = out.transpose(-1, -2).reshape(B, C, H, W)
        return h + self.proj(out)


class UNet(nn.Module):
    """eps_theta: x (B, C, H, W) float, t (B,) long -> (B, C, H, W), or (B, 2 C, H, W) with
    config.learned_variance (the target, then v).

    Levels l = 0..L-1 at resolution image_size / 2^l with width base_channels * channel_mults[l];
    the lowest level's blocks, and the middle (ResBlock, attention, ResBlock), attend."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        base, E, G, p = cfg.base_channels, cfg.emb_dim, cfg.groups, cfg.dropout
        n_levels = len(cfg.channel_mults)
        self.time_mlp = nn.Sequential(nn.Linear(base, E), nn.SiLU(), nn.Linear(E, E))
        self.conv_in = nn.Conv2d(cfg.in_channels, base, 3, padding=1)

        self.down = nn.ModuleList()
        skips = [base]  # widths of the tensors kept for the skip connections
        ch = base
        for level, mult in enumerate(cfg.channel_mults):
            lowest = level == n_levels - 1
            for _ in range(cfg.num_res_blocks):
                self.down.append(self._block(ch, base * mult, lowest))
                ch = base * mult
                skips.append(ch)
            if not lowest:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # halve H, W
                skips.append(ch)

        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, E, G, p), AttnBlock(ch, cfg.attn_heads, G), ResBlock(ch, ch, E, G, p)]
        )

        self.up = nn.ModuleList()
        for level in reversed(range(n_levels)):
            lowest = level == n_levels - 1
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(self._block(ch + skips.pop(), base * cfg.channel_mults[level], lowest))
                ch = base * cfg.channel_mults[level]
            if level > 0:
                self.up.append(
                    nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1))
                )  # double H, W
        self.norm_out = nn.GroupNorm(G, ch)
        self.conv_out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _block(self, c_in: int, c_out: int, attend: bool) -> nn.Module:
        cfg = self.config
        res = ResBlock(c_in, c_out, cfg.emb_dim, cfg.groups, cfg.dropout)
        return nn.ModuleList([res, AttnBlock(c_out, cfg.attn_heads, cfg.groups)]) if attend else nn.ModuleList([res])

    @classmethod
    def seeded(cls, config: UNetConfig, seed: int) -> "UNet":
        """A new network whose initial weights depend on seed only (the global RNG is untouched)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return cls(config)

    @staticmethod
    def _run(layer: nn.Module, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, nn.ModuleList):  # ResBlock, optionally followed by attention
            h = layer[0](h, temb)
            return layer[1](h) if len(layer) > 1 else h
        return layer(h)  # down- or up-sampling

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.config.base_channels).to(x.dtype))  # (B, E)
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = self._run(layer, h, temb)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = torch.cat([h, hs.pop()], dim=1)  # (B, C + C_skip, H, W)
            h = self._run(layer, h, temb)
        return self.conv_out(F.silu(self.norm_out(h)))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- Memory of the network, for the checks of params (ddpm_lab/images/params.py) -----------------
def config_parameters(cfg: UNetConfig) -> float:
    """Parameters of UNet(cfg), counted on torch's meta device (no memory is allocated); inf
    where a weight would have more than 2^63 entries. The count is linear in num_res_blocks (the
    same blocks at each level), so deep networks are counted from one and two blocks per level (a
    deep module tree costs memory even on meta)."""
    if cfg.num_res_blocks > 2:
        one, two = (config_parameters(dataclasses.replace(cfg, num_res_blocks=k)) for k in (1, 2))
        return one + (cfg.num_res_blocks - 1) * (two - one)
    with torch.device("meta"):
        try:
            return n_parameters(UNet(cfg))
        except RuntimeError:  # "Storage size calculation overflowed"
            return float("inf")


def state_bytes(cfg: UNetConfig) -> int:
    """Training state of UNet(cfg): float32 weights, gradients, two Adam moments and the EMA."""
    return F32 * TRAIN_STATE * config_parameters(cfg)


def activations(cfg: UNetConfig) -> int:
    """float32 activations per image in one forward pass, roughly: about 8 tensors of each
    ResBlock's width at each level's resolution, the attention maps at the lowest one, and the
    v output of a learned variance (none without one)."""
    L, R = len(cfg.channel_mults), cfg.num_res_blocks
    side_low = max(1, cfg.image_size // 2 ** (L - 1))
    acts = sum(
        8 * (2 * R + 1) * cfg.base_channels * mult * max(1, cfg.image_size // 2**lvl) ** 2
        for lvl, mult in enumerate(cfg.channel_mults)
    )
    v_out = (cfg.out_channels - cfg.in_channels) * cfg.image_size**2
    return acts + (2 * R + 2) * cfg.attn_heads * side_low**4 + v_out
