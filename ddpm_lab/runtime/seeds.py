"""Replicates: the top-level param `replicate` folded into the seeds of training and sampling.

replicate 0 is the study itself (every seed as written in params.yaml, so the same bytes as
before replicates existed); replicate r > 0 derives a different, reproducible seed from each
(seed, r) pair. The data seeds (gmm.seed, images_data.seed) are never folded: replicates of a
variant share their data and differ only by the randomness of training and sampling.
"""

from __future__ import annotations

import numpy as np

from ddpm_lab.runtime.params import ConfigError

MAX_REPLICATE = 2**63 - 1


def fold_seed(seed: int, replicate: int) -> int:
    """The seed to use in replicate `replicate`: `seed` itself for replicate 0, else a 32-bit
    seed drawn from numpy's SeedSequence([seed, replicate])."""
    if replicate == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(replicate)]).generate_state(1)[0])


def read_replicate(params: dict, source: str = "params.yaml") -> int:
    """The top-level scalar `replicate` of params (an integer >= 0), or a one-line ConfigError."""
    if not isinstance(params, dict) or "replicate" not in params:
        raise ConfigError(f"{source}: replicate is missing: expected an integer >= 0 (0: the study's own seeds)")
    value = params["replicate"]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value <= MAX_REPLICATE:
        raise ConfigError(
            f"{source}: replicate = {value!r}: expected an integer in [0, 2^63 - 1] (0: the study's own seeds)"
        )
    return int(value)
