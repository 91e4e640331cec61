"""The GMM study's stage sections of params.yaml (`sample`, `compare_dist`, `plot`,
`sampler_tradeoff`, `estimator_variance`): one schema each, read by its stage through
`from_section`. The sections of the components (`gmm`, `model`, `diffusion`, `train_eq12`,
`train_eq3`) live beside them: ddpm_lab/gmm/mixture.py, ddpm_lab/gmm/model.py,
ddpm_lab/core/diffusion.py, ddpm_lab/core/training.py."""
from __future__ import annotations

from dataclasses import dataclass

from ddpm_lab.core.sampling import SAMPLERS, SamplerConfig
from ddpm_lab.runtime.params import require, require_threads


@dataclass(frozen=True, kw_only=True)
class SampleConfig(SamplerConfig):
    """Section `sample`: the sampler (SamplerConfig: sampler, steps, eta), n draws per seed, the
    seeds, and the trajectories kept for the figures (every trajectory_every-th step)."""

    n: int
    seeds: list[int]
    n_trajectories: int
    trajectory_every: int
    threads: int = 1

    def __post_init__(self):
        super().__post_init__()
        require(self.n >= 2, "n", self.n, "an integer >= 2")
        require(all(s >= 0 for s in self.seeds) and len(set(self.seeds)) == len(self.seeds), "seeds",
                self.seeds, "distinct non-negative integers")
        require(1 <= self.n_trajectories <= self.n, "n_trajectories", self.n_trajectories, f"an integer in [1, n = {self.n}]")
        require(self.trajectory_every >= 1, "trajectory_every", self.trajectory_every, "an integer >= 1")
        require_threads(self.threads)


@dataclass(frozen=True)
class CompareConfig:
    """Section `compare_dist`: floor_draws exact samples per floor band (and multinomial draws for
    the mode-error floor); directions random unit vectors of the sliced W1 (D > 1); nll_n
    held-out rows for the paired bound estimate (0: all); nll_batch rows per batched call of T
    evaluations each; seed."""

    floor_draws: int
    directions: int
    nll_n: int
    nll_batch: int
    seed: int
    threads: int = 1

    def __post_init__(self):
        require(self.floor_draws >= 20, "floor_draws", self.floor_draws,
                "an integer >= 20 (the 5-95% band of the floor needs at least 20 draws)")
        require(self.directions >= 1, "directions", self.directions, "an integer >= 1")
        require(self.nll_n >= 0, "nll_n", self.nll_n, "a non-negative integer (0: all held-out rows)")
        require(self.nll_batch >= 1, "nll_batch", self.nll_batch, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        require_threads(self.threads)


@dataclass(frozen=True)
class PlotConfig:
    """Section `plot`: histogram bins, moving-average window of the loss curves (rows), forward
    paths drawn for the diffusion figure and the times it shows, as fractions of T in [0, 1]
    (step round(f * T), so any T works; equal steps are shown once), figure dpi, seed.
    n_forward_paths is checked against gmm.n_train and the memory by config.check_plot."""

    bins: int
    smooth: int
    n_forward_paths: int
    forward_times: list[float]
    dpi: int
    seed: int

    BINS_MAX = 10_000  # more bins than a figure has pixels show nothing more
    PANELS_MAX = 12  # the diffusion figure is 3 inches wide per forward time

    def __post_init__(self):
        require(2 <= self.bins <= self.BINS_MAX, "bins", self.bins, f"an integer in [2, {self.BINS_MAX}]")
        require(self.smooth >= 1, "smooth", self.smooth, "an integer >= 1")
        require(self.n_forward_paths >= 1, "n_forward_paths", self.n_forward_paths, "an integer >= 1")
        require(all(0 <= f <= 1 for f in self.forward_times), "forward_times", self.forward_times,
                "fractions of T in [0, 1] (0: x_0, 1: x_T)")
        require(len(self.forward_times) <= self.PANELS_MAX, "forward_times", self.forward_times,
                f"at most {self.PANELS_MAX} times (one panel each)")
        require(20 <= self.dpi <= 600, "dpi", self.dpi, "an integer in [20, 600]")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")

    def forward_steps(self, T: int) -> list[int]:
        """forward_times as timesteps round(f * T) of a T-step process, duplicates dropped, in order."""
        return list(dict.fromkeys(round(f * T) for f in self.forward_times))


@dataclass(frozen=True)
class TradeoffConfig:
    """Section `sampler_tradeoff`: enabled; steps, the S values (>= 1; above diffusion.T: T);
    samplers (ddpm: respaced DDPM; ddim: DDIM with eta 0); n draws per seed and the seeds
    (pooled); floor_draws exact samples of the pooled n for the floor band; directions of the
    sliced W1 (D > 1); seed of the floor and the directions; torch threads."""

    enabled: bool
    steps: list[int]
    samplers: list[str]
    n: int
    seeds: list[int]
    floor_draws: int
    directions: int
    seed: int
    threads: int = 1

    def __post_init__(self):
        require(all(s >= 1 for s in self.steps) and len(set(self.steps)) == len(self.steps), "steps", self.steps,
                "distinct integers >= 1 (network evaluations per draw; values above diffusion.T are replaced by T)")
        require(all(s in SAMPLERS for s in self.samplers) and len(set(self.samplers)) == len(self.samplers),
                "samplers", self.samplers, f"distinct names among {', '.join(SAMPLERS)}")
        require(self.n >= 2, "n", self.n, "an integer >= 2")
        require(all(s >= 0 for s in self.seeds) and len(set(self.seeds)) == len(self.seeds), "seeds",
                self.seeds, "distinct non-negative integers")
        require(self.floor_draws >= 20, "floor_draws", self.floor_draws,
                "an integer >= 20 (the 5-95% band of the floor needs at least 20 draws)")
        require(self.directions >= 1, "directions", self.directions, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        require_threads(self.threads)

    def step_counts(self, T: int) -> list[int]:
        """The S values at diffusion.T = T: each min(S, T), duplicates dropped, ascending."""
        return sorted({min(s, T) for s in self.steps})


@dataclass(frozen=True)
class EstimatorVarianceConfig:
    """Section `estimator_variance`: minibatches, independent minibatches per estimate (>= 3: the
    jackknife error of a variance needs three); rows_trajectory, rows_subsampled, rows_eq12: x_0 rows
    per minibatch for the T-evaluation estimators (trajectory, trajectory_kl), the subsampled ones and
    Eq. 12; terms: the K values of the subsampled estimators (each with term log_ratio and kl; values
    above diffusion.T replaced by T, once); seed of the minibatches; torch threads."""

    minibatches: int
    rows_trajectory: int
    rows_subsampled: int
    terms: list[int]
    rows_eq12: int
    seed: int
    threads: int = 1

    def __post_init__(self):
        require(self.minibatches >= 3, "minibatches", self.minibatches,
                "an integer >= 3 (the jackknife error of a variance needs three minibatches)")
        for name in ("rows_trajectory", "rows_subsampled", "rows_eq12"):
            v = getattr(self, name)
            require(v >= 1, name, v, "an integer >= 1 (x_0 rows per minibatch)")
        require(all(k >= 1 for k in self.terms) and len(set(self.terms)) == len(self.terms), "terms", self.terms,
                "distinct integers >= 1 (timesteps per row of the subsampled estimator; values above diffusion.T "
                "are replaced by T)")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")
        require_threads(self.threads)

    def term_counts(self, T: int) -> list[int]:
        """The K values at diffusion.T = T: each min(K, T), duplicates dropped, ascending."""
        return sorted({min(k, T) for k in self.terms})
