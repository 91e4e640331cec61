"""The noise-prediction network eps_theta(x_t, t) for vector data (B, D).

A residual MLP conditioned on a sinusoidal embedding of t. It knows nothing about
diffusion: it maps (x, t) to a vector of x's shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import Annotated, Callable

import numpy as np
import torch
from torch import nn

from ddpm_lab.core.targets import PREDICTIONS
from ddpm_lab.runtime.params import F32, TRAIN_STATE, Count, doc, require, schema
from ddpm_lab.core.nn import timestep_embedding

ROW_BLOCK_FLOATS = 65_536  # rows x width of one activation in a sampling block (256 KB: in L2 cache)


@schema
class MLPConfig:
    """Section `model`: eps_theta, a residual MLP with a sinusoidal time embedding."""

    hidden: Annotated[Count, doc("width of the residual blocks")] = 64
    n_blocks: Annotated[Count, doc("residual blocks")] = 2
    emb_dim: Annotated[Count, doc("size of the sinusoidal time embedding")] = 32
    prediction: Annotated[
        str,
        doc(
            "what the network outputs: eps, x0 or v (Salimans & Ho 2022; ddpm_lab/core/targets.py); every "
            "reader (the samplers, the bound, the exact measures) converts it to eps",
            choices=PREDICTIONS,
        ),
    ] = "eps"
    learned_variance: Annotated[
        bool,
        doc(
            "the network also outputs v, a diagonal reverse variance Sigma = exp(v log beta_t + (1 - v) log beta~_t) "
            "(Nichol & Dhariwal 2021, Eq. 15), read by ddpm sampling and the bound instead of diffusion.variance; "
            "trained by train_eq12.weighting hybrid and by every Eq. 3 estimator (docs/variance.md)"
        ),
    ] = False
    data_dim: Annotated[Count, doc("D, the dimension of the data: taken from the data, not from params")] = 1

    def __post_init__(self):
        require(self.prediction in PREDICTIONS, "prediction", self.prediction, f"one of {', '.join(PREDICTIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(nn.functional.silu(self.fc1(nn.functional.silu(h + temb))))


class EpsMLP(nn.Module):
    """eps_theta: x_t (B, D), t (B,) long -> (B, D), or (B, 2 D) with config.learned_variance (the target, then v)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        H = config.hidden
        self.time_mlp = nn.Sequential(nn.Linear(config.emb_dim, H), nn.SiLU(), nn.Linear(H, H))
        self.inp = nn.Linear(config.data_dim, H)
        self.blocks = nn.ModuleList(ResidualBlock(H) for _ in range(config.n_blocks))
        # the target, then (learned_variance) v: ddpm_lab.core.targets.split_variance
        self.out = nn.Linear(H, config.data_dim * (2 if config.learned_variance else 1))

    @classmethod
    def seeded(cls, config: MLPConfig, seed: int) -> "EpsMLP":
        """A new network whose initial weights depend on seed only (the global RNG is untouched)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return cls(config)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # The time embedding is computed once per distinct t and gathered back:
        # sampling calls with one t for the whole batch, Eq. 3 with T distinct values.
        t_unique, inverse = torch.unique(t, return_inverse=True)
        temb = self.time_mlp(timestep_embedding(t_unique, self.config.emb_dim))  # (U, H)
        return self._trunk(x, temb if t_unique.numel() == 1 else temb[inverse])  # (1, H) broadcasts, else (B, H)

    def _trunk(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(nn.functional.silu(h))

    @torch.inference_mode()
    def sampling_eps(self, ts) -> Callable[[torch.Tensor, int], torch.Tensor]:
        """eps_theta(x, t) for a sampler that visits the timesteps ts, each for the whole batch:
        the time embeddings of all of ts computed once, and the rest of the network evaluated in
        row blocks small enough to stay in cache (about ROW_BLOCK_FLOATS floats per activation;
        2x faster here than one call on 10,000 rows). The same maths as forward, equal to it up
        to float rounding."""
        ts = torch.from_numpy(np.array(ts, dtype=np.int64))  # a copy: ts may be a reversed view
        table = self.time_mlp(timestep_embedding(ts, self.config.emb_dim))  # (S, H)
        row = {int(t): i for i, t in enumerate(ts)}
        block = max(64, ROW_BLOCK_FLOATS // self.config.hidden)

        def eps(x: torch.Tensor, t: int) -> torch.Tensor:
            temb = table[row[t]].unsqueeze(0)
            if x.shape[0] <= block:
                return self._trunk(x, temb)
            out = x.new_empty((x.shape[0], self.out.out_features))
            for xs, o in zip(x.split(block), out.split(block)):
                o.copy_(self._trunk(xs, temb))
            return out

        return eps


# -- Memory of the network, for the checks of params (ddpm_lab/gmm/params.py) ---------------------
def n_parameters(cfg: MLPConfig) -> float:
    """Parameters of EpsMLP(cfg), counted on torch's meta device (no memory is allocated); inf
    where a weight would have more than 2^63 entries. Every residual block has the same size, so
    deep networks are counted from one and two blocks (a deep module tree costs memory even on meta)."""
    if cfg.n_blocks > 2:
        one, two = (n_parameters(dataclasses.replace(cfg, n_blocks=k)) for k in (1, 2))
        return one + (cfg.n_blocks - 1) * (two - one)
    with torch.device("meta"):
        try:
            return sum(p.numel() for p in EpsMLP(cfg).parameters())
        except RuntimeError:  # "Storage size calculation overflowed"
            return float("inf")


def state_bytes(cfg: MLPConfig) -> int:
    """Training state of EpsMLP(cfg): float32 weights, gradients, two Adam moments and the EMA."""
    return F32 * TRAIN_STATE * n_parameters(cfg)


def row_bytes(cfg: MLPConfig, grad: bool) -> int:
    """Activations of EpsMLP per input row (float32). Training (grad): about six H-vectors per
    block kept for the backward pass, and as much again for their gradients; without gradients
    only a few H-vectors are alive at once. Plus the time embedding, the input and the output."""
    per = (
        (2 * cfg.hidden * (6 * cfg.n_blocks + 4) if grad else 4 * cfg.hidden)
        + cfg.emb_dim
        + 4 * cfg.data_dim * (2 if cfg.learned_variance else 1)
    )
    return F32 * per
