"""ddpm_lab.core.sampling.sample_seeds: the per-seed sampling loop of stages sample and
sampler_tradeoff, against `sample` called seed by seed."""

from __future__ import annotations

import numpy as np
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SamplerConfig, sample, sample_seeds
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.runtime.seeds import fold_seed

DIFFUSION = DiffusionConfig(T=12, schedule="linear", beta_start=0.01, beta_end=0.5, variance="beta").build()
MODEL = EpsMLP.seeded(MLPConfig(hidden=8, n_blocks=1, emb_dim=4, data_dim=2), 0).eval()


def test_one_sample_per_seed_each_from_its_own_folded_seed():
    seeds, shape = [4, 0, 9], (7, 2)
    for replicate in (0, 3):
        for cfg in (None, SamplerConfig(sampler="ddim", steps=4)):
            x0s, (t, path) = sample_seeds(
                DIFFUSION, MODEL, shape, seeds, replicate, sampler=cfg, record=2, record_every=5
            )
            assert x0s.shape == (3, *shape) and x0s.dtype == np.float32
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(fold_seed(seed, replicate))
                x0, (t_i, path_i) = sample(
                    DIFFUSION, MODEL, shape, g, record=2 if i == 0 else 0, record_every=5, sampler=cfg
                )
                assert np.array_equal(x0s[i], x0.numpy())
                if i == 0:  # the trajectories are the first seed's
                    assert np.array_equal(t, t_i) and np.array_equal(path, path_i) and path.shape[1] == 2
    # Replicate 0 is the seeds themselves; another replicate draws other values.
    assert not np.array_equal(
        sample_seeds(DIFFUSION, MODEL, shape, seeds, 0)[0], sample_seeds(DIFFUSION, MODEL, shape, seeds, 1)[0]
    )


def test_no_trajectories_unless_asked(capsys):
    x0s, (t, path) = sample_seeds(DIFFUSION, MODEL, (5, 2), [1], desc="test")
    assert x0s.shape == (1, 5, 2) and t.size == 0 and path.size == 0
