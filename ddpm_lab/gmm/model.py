"""The noise-prediction network eps_theta(x_t, t) for vector data (B, D).

A residual MLP conditioned on a sinusoidal embedding of t. It knows nothing about
diffusion: it maps (x, t) to a vector of x's shape.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ddpm_lab.runtime.params import require
from ddpm_lab.core.nn import timestep_embedding

ROW_BLOCK_FLOATS = 65_536  # rows x width of one activation in a sampling block (256 KB: in L2 cache)


@dataclass(frozen=True)
class MLPConfig:
    """Section `model`. hidden: width; n_blocks: residual blocks; emb_dim: time-embedding
    size; data_dim: D (taken from the data, not from params)."""

    hidden: int = 64
    n_blocks: int = 2
    emb_dim: int = 32
    data_dim: int = 1

    def __post_init__(self):
        for name in ("hidden", "n_blocks", "emb_dim", "data_dim"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, v, "an integer >= 1")

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
    """eps_theta: x_t (B, D), t (B,) long -> (B, D)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        H = config.hidden
        self.time_mlp = nn.Sequential(nn.Linear(config.emb_dim, H), nn.SiLU(), nn.Linear(H, H))
        self.inp = nn.Linear(config.data_dim, H)
        self.blocks = nn.ModuleList(ResidualBlock(H) for _ in range(config.n_blocks))
        self.out = nn.Linear(H, config.data_dim)

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
            out = torch.empty_like(x)
            for xs, o in zip(x.split(block), out.split(block)):
                o.copy_(self._trunk(xs, temb))
            return out

        return eps
