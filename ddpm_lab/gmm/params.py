"""The GMM branch's params: the schemas of its stage sections (`sample`, `compare_dist`, `plot`,
`sampler_tradeoff`, `estimator_variance`), and what every GMM section needs of the machine and
of the other sections (memory estimates, coupled keys). The schemas of the components live
beside them: `gmm` (ddpm_lab/gmm/mixture.py), `model` (ddpm_lab/gmm/model.py), `diffusion`
(ddpm_lab/core/diffusion.py), `train_eq12` and `train_eq3` (ddpm_lab/core/training.py).

A stage reads a section with `read(params, section, source)` (the signature of the image
branch's read; the schema comes from SECTIONS); the first stage of the branch, generate_gmm,
checks every section with `check_all` before any work.
"""

from __future__ import annotations

from typing import Annotated

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.sampling import SAMPLERS, SamplerConfig
from ddpm_lab.core.training import Eq3TrainConfig, Eq12TrainConfig
from ddpm_lab.gmm.mixture import GMMConfig
from ddpm_lab.gmm.model import MLPConfig, n_parameters, row_bytes, state_bytes
from ddpm_lab.runtime.params import (
    F32,
    F64,
    I64,
    Count,
    FloorDraws,
    Int,
    NonEmpty,
    Seed,
    Threads,
    doc,
    fits,
    from_section,
    other,
    require,
    require_memory,
    schema,
)

# compare_dist and sampler_tradeoff: the directions of the sliced W1 (ddpm_lab.gmm.distances).
Directions = Annotated[Count, doc("random unit directions of the sliced W1 (D > 1 only)")]


@schema(kw_only=True)
class SampleConfig(SamplerConfig):
    """Section `sample`: reverse sampling of eq12, eq3 and the oracle eps* with the sampler of
    SamplerConfig, the same seeds for each, and the trajectories kept for the figures."""

    n: Annotated[Int, doc("draws per seed and model, >= 2")]
    seeds: Annotated[
        NonEmpty[Int],
        doc("distinct non-negative seeds, n draws each (pooled by compare_dist), each folded with `replicate`"),
    ]
    n_trajectories: Annotated[Int, doc("reverse trajectories kept for the figures (first seed), in [1, n]")]
    trajectory_every: Annotated[Count, doc("keep every trajectory_every-th timestep of those trajectories")]
    threads: Threads = 1

    def __post_init__(self):
        super().__post_init__()
        require(self.n >= 2, "n", self.n, "an integer >= 2")
        require(
            all(s >= 0 for s in self.seeds) and len(set(self.seeds)) == len(self.seeds),
            "seeds",
            self.seeds,
            "distinct non-negative integers",
        )
        require(
            1 <= self.n_trajectories <= self.n,
            "n_trajectories",
            self.n_trajectories,
            f"an integer in [1, n = {self.n}]",
        )


@schema
class CompareConfig:
    """Section `compare_dist`: the samples of `sample` against the truth, with the floors of the
    exact samples, and the bound on held-out data (ddpm_lab/gmm/evaluate.py)."""

    floor_draws: Annotated[
        FloorDraws,
        doc(
            "exact samples (of the pooled n of `sample`) per floor: its median and 5-95% band; also the "
            "multinomial draws of the mode-error floor"
        ),
    ]
    directions: Directions
    nll_n: Annotated[Int, doc("held-out rows for the paired bound estimate, in [0, gmm.n_heldout] (0: all)")]
    nll_batch: Annotated[Count, doc("held-out rows per batched call (each row is diffusion.T network evaluations)")]
    seed: Annotated[Seed, doc("seed of the bound's (x_t, eps) draws, the floors and the directions")]
    threads: Threads = 1

    def __post_init__(self):
        require(self.nll_n >= 0, "nll_n", self.nll_n, "a non-negative integer (0: all held-out rows)")


@schema
class PlotConfig:
    """Section `plot`: the figures of the GMM branch. n_forward_paths is checked against
    gmm.n_train and the memory by check_plot."""

    bins: Annotated[Int, doc(f"histogram bins, in [2, {BINS_MAX}]")]
    smooth: Annotated[Count, doc("rows of the loss history in the moving average of the loss curves")]
    n_forward_paths: Annotated[
        Count, doc("forward paths drawn for the diffusion figure, at most gmm.n_train (they start at training draws)")
    ]
    forward_times: Annotated[
        NonEmpty[float],
        doc(
            "times the diffusion figure shows, as fractions of diffusion.T in [0, 1] (step round(f * T), so any T "
            f"works; equal steps are shown once; 0: x_0, 1: x_T); at most {PANELS_MAX} (one panel each)"
        ),
    ]
    dpi: Annotated[Int, doc("resolution of the figures, in [20, 600]")]
    seed: Annotated[Seed, doc("seed of the forward paths")]

    BINS_MAX = 10_000  # more bins than a figure has pixels show nothing more
    PANELS_MAX = 12  # the diffusion figure is 3 inches wide per forward time

    def __post_init__(self):
        require(2 <= self.bins <= self.BINS_MAX, "bins", self.bins, f"an integer in [2, {self.BINS_MAX}]")
        require(
            all(0 <= f <= 1 for f in self.forward_times),
            "forward_times",
            self.forward_times,
            "fractions of T in [0, 1] (0: x_0, 1: x_T)",
        )
        require(
            len(self.forward_times) <= self.PANELS_MAX,
            "forward_times",
            self.forward_times,
            f"at most {self.PANELS_MAX} times (one panel each)",
        )
        require(20 <= self.dpi <= 600, "dpi", self.dpi, "an integer in [20, 600]")

    def forward_steps(self, T: int) -> list[int]:
        """forward_times as timesteps round(f * T) of a T-step process, duplicates dropped, in order."""
        return list(dict.fromkeys(round(f * T) for f in self.forward_times))


@schema
class TradeoffConfig:
    """Section `sampler_tradeoff`: sample quality against sampling steps S, for the eq12 model and
    the oracle eps*, each sampler at each S (docs/samplers.md)."""

    enabled: Annotated[
        bool,
        doc(
            "run the stage; off in the default study (`dvc exp run -S sampler_tradeoff.enabled=true`); the "
            "section is checked either way"
        ),
    ]
    steps: Annotated[
        NonEmpty[Int],
        doc(
            "the S values, network calls per draw: distinct integers >= 1; values above diffusion.T are "
            "replaced by T (once)"
        ),
    ]
    samplers: Annotated[
        NonEmpty[str],
        doc(
            "distinct samplers, each run at every S: ddpm is respaced DDPM (Algorithm 2 at S = T), ddim has eta "
            "0, the ODE samplers are those of docs/samplers.md (euler = ddim up to rounding; heun: 2 S - 1 "
            "evaluations)",
            choices=SAMPLERS,
        ),
    ]
    n: Annotated[Int, doc("draws per seed, for every sampler, S and model, >= 2")]
    seeds: Annotated[
        NonEmpty[Int],
        doc(
            "distinct non-negative seeds, pooled as in compare_dist, each folded with `replicate`; the same for "
            "every sampler, S and model"
        ),
    ]
    floor_draws: Annotated[FloorDraws, doc("exact samples (of the pooled n) for the floor: its median and 5-95% band")]
    directions: Directions
    seed: Annotated[Seed, doc("seed of the floor and the directions")]
    hybrid_t0: Annotated[
        list[Int],
        doc(
            "switch points t0 of the hybrid-oracle diagnostic (ddpm_lab/gmm/hybrid.py: Algorithm 2 with the "
            "model on one side of t0 and eps* on the other): distinct integers >= 0, values above diffusion.T "
            "replaced by T; [] skips it"
        ),
    ]
    threads: Threads = 1

    def __post_init__(self):
        require(
            all(t >= 0 for t in self.hybrid_t0) and len(set(self.hybrid_t0)) == len(self.hybrid_t0),
            "hybrid_t0",
            self.hybrid_t0,
            "distinct integers >= 0 (switch points of the hybrid-oracle diagnostic; values above diffusion.T "
            "are replaced by T; [] skips it)",
        )
        require(
            all(s >= 1 for s in self.steps) and len(set(self.steps)) == len(self.steps),
            "steps",
            self.steps,
            "distinct integers >= 1 (sampling steps; values above diffusion.T are replaced by T)",
        )
        require(
            all(s in SAMPLERS for s in self.samplers) and len(set(self.samplers)) == len(self.samplers),
            "samplers",
            self.samplers,
            f"distinct names among {', '.join(SAMPLERS)}",
        )
        require(self.n >= 2, "n", self.n, "an integer >= 2")
        require(
            all(s >= 0 for s in self.seeds) and len(set(self.seeds)) == len(self.seeds),
            "seeds",
            self.seeds,
            "distinct non-negative integers",
        )

    def step_counts(self, T: int) -> list[int]:
        """The S values at diffusion.T = T: each min(S, T), duplicates dropped, ascending."""
        return sorted({min(s, T) for s in self.steps})


@schema
class EstimatorVarianceConfig:
    """Section `estimator_variance`: the gradient noise of the bound's estimators per network
    evaluation (docs/estimators.md)."""

    enabled: Annotated[
        bool,
        doc(
            "run the stage; off in the default study (`dvc exp run -S estimator_variance.enabled=true`); the "
            "section is checked either way"
        ),
    ]
    minibatches: Annotated[
        Int,
        doc(
            "independent minibatches per estimate: the variance across them and its jackknife error, >= 3 "
            "(the jackknife error of a variance needs three)"
        ),
    ]
    rows_trajectory: Annotated[
        Int,
        doc("x_0 rows per minibatch of trajectory and trajectory_kl (each row: diffusion.T evaluations), >= 1"),
    ]
    rows_subsampled: Annotated[
        Int, doc("x_0 rows per minibatch of the subsampled estimators (each row: K evaluations), >= 1")
    ]
    terms: Annotated[
        NonEmpty[Int],
        doc(
            "the K values, timesteps per row of the subsampled estimators, each with term log_ratio and kl: "
            "distinct integers >= 1; values above diffusion.T are replaced by T (once)"
        ),
    ]
    rows_eq12: Annotated[Int, doc("x_0 rows per minibatch of Eq. 12 (each row: one evaluation, t uniform), >= 1")]
    seed: Annotated[Seed, doc("seed of the minibatches (rows, trajectories, timesteps, noise)")]
    threads: Threads = 1

    def __post_init__(self):
        require(
            self.minibatches >= 3,
            "minibatches",
            self.minibatches,
            "an integer >= 3 (the jackknife error of a variance needs three minibatches)",
        )
        for name in ("rows_trajectory", "rows_subsampled", "rows_eq12"):
            v = getattr(self, name)
            require(v >= 1, name, v, "an integer >= 1 (x_0 rows per minibatch)")
        require(
            all(k >= 1 for k in self.terms) and len(set(self.terms)) == len(self.terms),
            "terms",
            self.terms,
            "distinct integers >= 1 (timesteps per row of the subsampled estimator; values above diffusion.T "
            "are replaced by T)",
        )

    def term_counts(self, T: int) -> list[int]:
        """The K values at diffusion.T = T: each min(K, T), duplicates dropped, ascending."""
        return sorted({min(k, T) for k in self.terms})


# -- Needs of each section: memory estimates and constraints across sections ---------------------
# A check gets the section's config, the whole params dict and the file name; it raises
# ValueError('key = value: expected ...') for a key of its section. Another section that is
# missing or invalid is skipped (its own stage, and check_all, refuse it).
def _gmm_and_model(params: dict, source: str):
    """(GMMConfig or None, MLPConfig or None): the model only if it fits in memory (else section
    `model` is refused by its own check)."""
    gmm = other(GMMConfig, params, "gmm", source)
    m = other(MLPConfig, params, "model", source, data_dim=gmm.dim if gmm else 1)
    return gmm, m if m is not None and fits(state_bytes(m)) else None


def _oracle_row_bytes(gmm: GMMConfig) -> int:
    """eps* of the mixture per row: about five float64 (K, D) arrays and three (K,) ones."""
    K, D = len(gmm.weights), gmm.dim
    return F64 * (5 * K * D + 3 * K + 2 * D)


def check_model(m: MLPConfig, params: dict, source: str) -> None:
    sizes = dict(hidden=m.hidden, n_blocks=m.n_blocks, emb_dim=m.emb_dim)
    key = max(sizes, key=sizes.get)  # the largest size is the one to blame
    need = lambda v: state_bytes(MLPConfig(**{**sizes, key: max(v, 1)}, data_dim=m.data_dim))  # noqa: E731
    require_memory(key, sizes[key], need, "the network's weights, gradients, Adam moments and EMA")


def check_train_eq12(cfg: Eq12TrainConfig, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    if m is None:
        return
    cfg.check_learned_variance(m.learned_variance, "model")
    row = row_bytes(m, grad=True) + 2 * I64 + 3 * F32 * m.data_dim
    # The stable target's (batch_size, batch_size) logits and weights (reference_posterior_mean; with a
    # learned variance also the weights in float64): its cost grows with the square of the batch.
    pair = 3 * F32 + (F64 if m.learned_variance else 0)
    what = "one training step with the stable target's batch_size x batch_size weights"
    if cfg.target != "stable":
        pair, what = 0, "one training step"
    require_memory(
        "batch_size", cfg.batch_size, lambda b: state_bytes(m) + b * row + pair * b * b, what, " rows per step"
    )


def check_train_eq3(cfg: Eq3TrainConfig, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    d = other(DiffusionConfig, params, "diffusion", source)
    if d is not None and cfg.estimator == "subsampled":
        require(
            cfg.terms_per_trajectory <= d.T,
            "terms_per_trajectory",
            cfg.terms_per_trajectory,
            f"an integer in [1, diffusion.T = {d.T}] (K of the T terms of a trajectory)",
        )
    if m is None or d is None:
        return
    # Each trajectory is T rows: network activations plus about twelve float64 (D,) arrays
    # (the trajectory, its noise, x_{t-1}, x_t, means, variances, log-densities).
    row = row_bytes(m, grad=True) + I64 + 12 * F64 * m.data_dim
    require_memory(
        "batch_size",
        cfg.batch_size,
        lambda b: state_bytes(m) + b * d.T * row,
        f"one training step of batch_size x diffusion.T = {d.T} network rows",
        f" trajectories per step at diffusion.T = {d.T}",
    )


def check_sample(cfg: SampleConfig, params: dict, source: str) -> None:
    d = other(DiffusionConfig, params, "diffusion", source)
    gmm, m = _gmm_and_model(params, source)
    if m is not None:
        require(
            cfg.sampler == "ddpm" or not m.learned_variance,
            "sampler",
            cfg.sampler,
            "ddpm with model.learned_variance true (only ddpm reads the learned variance: ddim's is set by eta, "
            "the ODE samplers add no noise)",
        )
    if gmm is None:
        return
    D, S = gmm.dim, len(cfg.seeds)
    work = max(_oracle_row_bytes(gmm), row_bytes(m, grad=False) if m else 0) + 3 * F32 * D
    kept = 3 * S * D * F32 * 2  # x0 of three samplers for every seed, stacked (a copy) into the .npz
    require_memory("n", cfg.n, lambda n: n * (work + kept), f"{S} seeds x 3 samplers of n draws", " draws per seed")
    if d is not None:
        kept_steps = d.T // cfg.trajectory_every + 2
        require_memory(
            "n_trajectories",
            cfg.n_trajectories,
            lambda r: r * kept_steps * D * F32 * 3 * 2,
            f"the kept trajectories ({kept_steps} steps each at diffusion.T = {d.T}, "
            f"trajectory_every = {cfg.trajectory_every}, 3 samplers)",
            " trajectories",
        )


def check_compare_dist(cfg: CompareConfig, params: dict, source: str) -> None:
    gmm, m = _gmm_and_model(params, source)
    if gmm is None:
        return
    require(
        cfg.nll_n <= gmm.n_heldout,
        "nll_n",
        cfg.nll_n,
        f"an integer in [0, gmm.n_heldout = {gmm.n_heldout}] (0: all held-out rows)",
    )
    d = other(DiffusionConfig, params, "diffusion", source)
    if d is not None:
        row = F64 * (5 * gmm.dim + 3) + max(_oracle_row_bytes(gmm), row_bytes(m, grad=False) if m else 0)
        require_memory(
            "nll_batch",
            cfg.nll_batch,
            lambda b: b * d.T * row,
            f"one batched call of nll_batch x diffusion.T = {d.T} rows",
            f" held-out rows per call at diffusion.T = {d.T}",
        )
    s = other(SampleConfig, params, "sample", source)
    if s is not None and gmm.dim > 1:
        pooled = len(s.seeds) * s.n
        require_memory(
            "directions",
            cfg.directions,
            lambda L: pooled * L * F64 * 3,
            f"the sliced W1 of {pooled} pooled draws",
            " directions",
        )


def check_sampler_tradeoff(cfg: TradeoffConfig, params: dict, source: str) -> None:
    """Checked whether or not the section is enabled: a file that is valid only while disabled
    would fail later, at `dvc exp run -S sampler_tradeoff.enabled=true`."""
    gmm, m = _gmm_and_model(params, source)
    if gmm is None:
        return
    D, S = gmm.dim, len(cfg.seeds)
    L = cfg.directions if D > 1 else 0
    work = max(_oracle_row_bytes(gmm), row_bytes(m, grad=False) if m else 0) + 3 * F32 * D
    # One (sampler, steps, model) at a time: its S seeds' draws, stacked (a copy), and the pooled
    # statistics: about three float64 copies of the D coordinates and L projections, sorted.
    pooled = S * (2 * F32 * D + 3 * F64 * (D + L))
    require_memory(
        "n",
        cfg.n,
        lambda n: n * (work + pooled),
        f"{S} seeds x n draws pooled, with their statistics",
        " draws per seed",
    )
    if D > 1:
        require_memory(
            "directions",
            cfg.directions,
            lambda k: S * cfg.n * (work + 2 * F32 * D + 3 * F64 * (D + k)),
            f"the sliced W1 of {S * cfg.n} pooled draws",
            " directions",
        )


def check_plot(cfg: PlotConfig, params: dict, source: str) -> None:
    gmm = other(GMMConfig, params, "gmm", source)
    if gmm is None:
        return
    require(
        cfg.n_forward_paths <= gmm.n_train,
        "n_forward_paths",
        cfg.n_forward_paths,
        f"an integer in [1, gmm.n_train = {gmm.n_train}] (the paths start at training draws)",
    )
    d = other(DiffusionConfig, params, "diffusion", source)
    if d is not None:
        # q_trajectory: noise, random walk, x_t and the concatenated path, float64, T + 1 steps each.
        require_memory(
            "n_forward_paths",
            cfg.n_forward_paths,
            lambda p: p * (d.T + 1) * gmm.dim * F64 * 4,
            f"the forward paths of diffusion.T = {d.T} steps",
            " paths",
        )


def check_estimator_variance(cfg: EstimatorVarianceConfig, params: dict, source: str) -> None:
    """One minibatch's gradient (rows x evaluations per row network rows, with the backward pass)
    and the minibatch gradients kept (two (minibatches, parameters) float64 matrices, the
    estimator's and the reference's, and their Gram matrices)."""
    gmm, m = _gmm_and_model(params, source)
    d = other(DiffusionConfig, params, "diffusion", source)
    if m is None or d is None:
        return
    # As in train_eq3: network activations plus about twelve float64 (D,) arrays per row.
    row = row_bytes(m, grad=True) + I64 + 12 * F64 * m.data_dim
    base = state_bytes(m)
    require_memory(
        "rows_trajectory",
        cfg.rows_trajectory,
        lambda r: base + r * d.T * row,
        f"one minibatch of rows_trajectory x diffusion.T = {d.T} network rows",
        " rows",
    )
    # The subsampled estimators draw a random permutation of 1..T per row (float32 keys, int64 order)
    # and evaluate up to T of its timesteps, each with a (x_{t-1}, x_t) pair.
    require_memory(
        "rows_subsampled",
        cfg.rows_subsampled,
        lambda r: base + r * d.T * (row + F32 + 2 * I64 + 2 * F64 * m.data_dim),
        f"one minibatch of rows_subsampled x up to diffusion.T = {d.T} network rows",
        " rows",
    )
    require_memory("rows_eq12", cfg.rows_eq12, lambda r: base + r * (row + 2 * I64), "one Eq. 12 minibatch", " rows")
    n_params = n_parameters(m)
    require_memory(
        "minibatches",
        cfg.minibatches,
        lambda k: F64 * (4 * k * n_params + 3 * k * k),
        f"the minibatch gradients of two estimators ({n_params:,} parameters each)",
        " minibatches",
    )


# section -> (its schema, its needs)
SECTIONS = {
    "gmm": (GMMConfig, None),
    "diffusion": (DiffusionConfig, None),
    "model": (MLPConfig, check_model),
    "train_eq12": (Eq12TrainConfig, check_train_eq12),
    "train_eq3": (Eq3TrainConfig, check_train_eq3),
    "sample": (SampleConfig, check_sample),
    "compare_dist": (CompareConfig, check_compare_dist),
    "plot": (PlotConfig, check_plot),
    "sampler_tradeoff": (TradeoffConfig, check_sampler_tradeoff),
    "estimator_variance": (EstimatorVarianceConfig, check_estimator_variance),
}


def read(params: dict, section: str, source: str = "params.yaml", *, cls: type | None = None, **fixed):
    """Section `section` of the GMM branch, validated with its needs, or ConfigError (one line).
    cls: the section's schema, SECTIONS' by default (given, it must be that one); fixed: facts of
    the data (model: data_dim). The same signature as ddpm_lab/images/params.py's read."""
    schema_cls, needs = SECTIONS[section]
    if cls is not None and cls is not schema_cls:
        raise TypeError(f"section {section} has schema {schema_cls.__name__}, not {cls.__name__}")
    return from_section(schema_cls, params, section, source, needs=needs, **fixed)


def check_all(params: dict, source: str = "params.yaml") -> dict:
    """Every section of the GMM branch with its needs, before any work: {section: config}, or
    the first failure as a ConfigError."""
    gmm = read(params, "gmm", source)
    return {
        section: read(params, section, source, **({"data_dim": gmm.dim} if section == "model" else {}))
        for section in SECTIONS
    }
