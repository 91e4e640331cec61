"""The gradient variance of the bound's estimators, per network evaluation (stage estimator_variance).

The Eq. 3 objective (the variational bound on whole forward trajectories) and the Eq. 12 noise loss
estimate the same bound up to constants (Ho et al. 2020, Eq. 5 against Eq. 12), so their gradients
estimate the same gradient; what differs is the estimator's variance and its cost. For each estimator

- trajectory: Eq. 3's log-ratios on one sampled forward trajectory per row (T evaluations per row),
- trajectory_kl: the same trajectory, each term replaced by its closed-form KL given (x_t, x_0)
  (T evaluations per row; each term Rao-Blackwellised on its own, but the terms of one trajectory
  are correlated, so the sum need not have the smaller variance: this stage measures it),
- subsampled, K and term: K distinct timesteps of a trajectory scaled by T / K, with Eq. 3's
  log-ratio terms or Eq. 5's KL terms (K evaluations per row; each K of estimator_variance.terms,
  values above diffusion.T replaced by T),
- eq12: the Eq. 12 noise loss with t uniform on 1..T (one evaluation per row; its mean is the bound
  less constants),

and at three parameter points (the initial weights of training, EpsMLP.seeded with the model config
and the training seed of models/eq12.pt's checkpoint; the trained Eq. 3 model, models/eq3.pt; the
trained Eq. 12 model, models/eq12.pt), the stage draws estimator_variance.minibatches independent
minibatches of x_0 (rows drawn with replacement from data/gmm/train.npy, i.i.d.; numpy and torch
generators seeded with [seed, estimator, K, term, minibatch], the same draws at each point, independent
across estimators) and takes the gradient of each minibatch mean with respect to every network
parameter. From these M gradient vectors g_1..g_M it reports

- the mean gradient's norm ||mean g|| (with its jackknife standard error) beside the part of it that
  noise alone would give, sqrt(trace / M);
- trace: the trace of the gradient covariance of one minibatch, the sum over parameters of the
  variance across minibatches (ddof 1), with its jackknife standard error (leave one minibatch out);
- evaluations per minibatch: rows x network evaluations per row;
- cost = trace x evaluations per minibatch, the cost of one unit of gradient precision (the network
  evaluations needed for a minibatch gradient of variance trace 1; lower is cheaper). For i.i.d. rows
  the trace of a minibatch of r rows is (the trace of one row) / r and its evaluations are r x (the
  evaluations per row), so the product is the same for any row count: estimators run with different
  rows per minibatch compare directly;
- the check that each estimator estimates the gradient trajectory_kl estimates: the squared distance
  d^2 = ||mean g - mean g_kl||^2 divided by its expectation if both estimate the same gradient,
  trace / M + trace_kl / M_kl (the squared standard error of the difference of the means): about 1
  within noise, far above 1 if they differ. If they are equal the ratio is about chi^2_k / k with
  k = tr(C)^2 / tr(C^2) degrees of freedom (Satterthwaite; C the covariance of the difference of the
  means, tr(C^2) estimated without bias for Gaussian gradients, k at least 1): dist2_dof = k, the 5-95%
  range of the ratio if equal (dist2_p05, dist2_p95) and the p-value of the observed ratio (dist2_p,
  small when the means differ). k is small here (the noise lies in a few directions of parameter
  space), so the ratio scatters widely even when the gradients are equal. The estimated denominator
  and heavy tails make it approximate.
- the estimator's value, the minibatch mean of the loss, with its standard error (nats; eq12 is the
  bound less constants, so only the four bound estimators agree in value).

The figure: ddpm_lab.gmm.gradient_noise_figure. No wall-clock time is measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ddpm_lab.core.diffusion import DiffusionConfig, GaussianDiffusion
from ddpm_lab.core.estimators import TERMS
from ddpm_lab.core.targets import as_eps_model
from ddpm_lab.gmm.artifacts import load_eps_net
from ddpm_lab.gmm.model import EpsMLP, MLPConfig
from ddpm_lab.gmm.names import COLORS, EQ3, EQ12
from ddpm_lab.gmm.params import EstimatorVarianceConfig
from ddpm_lab.runtime.cli import progress
from ddpm_lab.runtime.io import load_checkpoint
from ddpm_lab.runtime.params import ConfigError, DataError
from ddpm_lab.runtime.stats import jackknife_se, mean_se, ratio_se

REFERENCE = "trajectory_kl"  # every estimator's mean gradient is compared with this one's
HEADLINE_POINT = "init"  # the headline's parameter point: where both objectives start training
POINTS = {  # parameter point -> its label in the figure
    "init": "initial weights (as train_eq12 starts)",
    EQ3: "trained Eq. 3 model (models/eq3.pt)",
    EQ12: "trained Eq. 12 model (models/eq12.pt)",
}
POINT_STYLE = {"init": ("tab:gray", "o"), EQ3: (COLORS[EQ3], "s"), EQ12: (COLORS[EQ12], "D")}  # (colour, marker)
FAMILIES = ("trajectory", "trajectory_kl", "subsampled", "eq12")  # seed codes: the index here


@dataclass(frozen=True)
class Estimator:
    """One estimator of the bound's gradient: family (FAMILIES), K and term (subsampled only), rows
    per minibatch."""

    family: str
    rows: int
    K: int = 0
    term: str = ""

    @property
    def name(self) -> str:
        return f"subsampled_{self.term}_K{self.K}" if self.family == "subsampled" else self.family

    def label(self) -> str:
        """Its name in the figure."""
        if self.family == "subsampled":
            return f"subsampled\n{'log-ratio' if self.term == 'log_ratio' else 'KL'}, K = {self.K}"
        return {
            "trajectory": "trajectory\n(Eq. 3 log-ratios)",
            "trajectory_kl": "trajectory KL\n(Eq. 5 KLs at its x_t)",
            "eq12": "Eq. 12\n(uniform t)",
        }[self.family]

    def evaluations(self, diffusion: GaussianDiffusion) -> int:
        """Network evaluations per row."""
        return 1 if self.family == "eq12" else diffusion.evaluations(self.family, self.K)

    def loss(self, diffusion: GaussianDiffusion, model, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The per-row estimates (B,) for a network `model` that predicts model.config.prediction
        (ddpm_lab.core.targets): Eq. 12 on that target's own error, the bound on its eps."""
        prediction = model.config.prediction
        if self.family == "eq12":
            return diffusion.loss_eq12(model, x0, g, weighting="eq12", prediction=prediction)
        eps_model = as_eps_model(model, prediction, diffusion.np["alphas_cumprod"])
        return diffusion.loss_bound(eps_model, x0, g, estimator=self.family, terms=self.K, term=self.term or "kl")

    def seed_key(self, seed: int) -> list[int]:
        """The part of the generators' seed that names this estimator (independent of the others)."""
        return [seed, FAMILIES.index(self.family), self.K, TERMS.index(self.term) if self.term else 0]


def estimators(cfg: EstimatorVarianceConfig, T: int) -> list[Estimator]:
    """Every estimator, in the order of the table and the figure."""
    out = [Estimator("trajectory", cfg.rows_trajectory), Estimator("trajectory_kl", cfg.rows_trajectory)]
    out += [Estimator("subsampled", cfg.rows_subsampled, K, term) for term in TERMS for K in cfg.term_counts(T)]
    return out + [Estimator("eq12", cfg.rows_eq12)]


def minibatch_gradients(
    est: Estimator,
    diffusion: GaussianDiffusion,
    model: torch.nn.Module,
    data: torch.Tensor,
    minibatches: int,
    seed: int,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(M, P) float64 gradients of the minibatch mean of est's loss w.r.t. every parameter of model,
    and the (M,) minibatch means, for M independent minibatches (rows drawn with replacement)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = np.empty((minibatches, sum(p.numel() for p in params)))
    values = np.empty(minibatches)
    for m in progress(desc)(range(minibatches)):
        rng = np.random.default_rng([*est.seed_key(seed), m])
        x0 = data[torch.from_numpy(rng.integers(0, data.shape[0], est.rows))]
        g = torch.Generator().manual_seed(int(rng.integers(2**63)))
        loss = est.loss(diffusion, model, x0, g).mean()
        grads[m] = torch.cat([q.flatten() for q in torch.autograd.grad(loss, params)]).double().numpy()
        values[m] = loss.item()
    return grads, values


def _products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b.T for (M, P) float64 rows, through torch: its thread count (estimator_variance.threads)
    rather than numpy's BLAS pool, which competes for a busy CPU (several times slower here)."""
    return (torch.from_numpy(a) @ torch.from_numpy(b).T).numpy()


@dataclass
class GradientSummary:
    """What M minibatch gradients say: their mean, centred rows, trace of their covariance (with
    its jackknife SE), the unbiased estimate of tr(Sigma^2) (under normality)."""

    M: int
    mean: np.ndarray
    centred: np.ndarray
    trace: float
    trace_se: float
    norm: float
    norm_se: float
    trace_sq: float

    @classmethod
    def of(cls, grads: np.ndarray) -> "GradientSummary":
        M = grads.shape[0]
        mean = grads.mean(0)
        c = grads - mean
        gram = _products(c, c)  # (M, M)
        sq = np.diag(gram).copy()
        S = float(sq.sum())
        trace = S / (M - 1)
        # Leave minibatch i out: its centred sum of squares is S - sq_i M / (M - 1) over M - 2 dof.
        trace_loo = (S - sq * M / (M - 1)) / (M - 2)
        norm2 = float(mean @ mean)
        norm_loo = np.sqrt(np.maximum(norm2 - 2 * (c @ mean) / (M - 1) + sq / (M - 1) ** 2, 0.0))
        # tr(Sigma^2) without bias for Gaussian rows (Bai & Saranadasa 1996), n = M - 1 dof
        n = M - 1
        tr_s2 = float(np.sum(gram**2)) / n**2
        trace_sq = n**2 / ((n - 1) * (n + 2)) * (tr_s2 - trace**2 / n) if n >= 2 else tr_s2
        return cls(
            M, mean, c, trace, jackknife_se(trace_loo), math.sqrt(norm2), jackknife_se(norm_loo), max(trace_sq, 0.0)
        )


DIST2_COLUMNS = ("dist2", "dist2_expected", "dist2_ratio", "dist2_dof", "dist2_p05", "dist2_p95", "dist2_p")


def distance_check(a: GradientSummary, ref: GradientSummary) -> dict:
    """||mean_a - mean_ref||^2 over its expectation if both estimate the same gradient, and the
    distribution of that ratio under this hypothesis: chi^2_k / k with Satterthwaite's k degrees of
    freedom (its 5-95% range and the p-value of the observed ratio)."""
    d2 = float(np.sum((a.mean - ref.mean) ** 2))
    expected = a.trace / a.M + ref.trace / ref.M
    cross = float(np.sum(_products(a.centred, ref.centred) ** 2)) / ((a.M - 1) * (ref.M - 1))  # tr(S_a S_ref)
    tr_c2 = a.trace_sq / a.M**2 + 2 * cross / (a.M * ref.M) + ref.trace_sq / ref.M**2
    k = max(1.0, expected**2 / tr_c2) if tr_c2 > 0 else 1.0
    ratio = d2 / expected
    p05, p95 = stats.chi2.ppf([0.05, 0.95], k) / k
    return dict(
        zip(DIST2_COLUMNS, (d2, expected, ratio, k, float(p05), float(p95), float(stats.chi2.sf(ratio * k, k))))
    )


def measure_point(
    point: str,
    model: torch.nn.Module,
    diffusion: GaussianDiffusion,
    data: torch.Tensor,
    ests: list[Estimator],
    cfg: EstimatorVarianceConfig,
) -> list[dict]:
    """One row per estimator at one parameter point (the reference estimator measured first)."""
    model.requires_grad_(True)
    order = sorted(ests, key=lambda e: e.name != REFERENCE)
    rows, ref = {}, None
    for est in order:
        grads, values = minibatch_gradients(
            est, diffusion, model, data, cfg.minibatches, cfg.seed, f"{point}: {est.name}"
        )
        s = GradientSummary.of(grads)
        del grads
        loss_mean, loss_se = mean_se(values)
        ref = s if est.name == REFERENCE else ref
        evals_row = est.evaluations(diffusion)
        evals = est.rows * evals_row
        row = {
            "point": point,
            "estimator": est.name,
            "family": est.family,
            "term": est.term or "",
            "K": est.K,
            "rows": est.rows,
            "evals_per_row": evals_row,
            "evals_per_minibatch": evals,
            "minibatches": cfg.minibatches,
            "loss_mean": loss_mean,
            "loss_se": loss_se,
            "grad_norm": s.norm,
            "grad_norm_se": s.norm_se,
            "grad_norm_noise": math.sqrt(s.trace / s.M),
            "trace": s.trace,
            "trace_se": s.trace_se,
            "cost": s.trace * evals,
            "cost_se": s.trace_se * evals,
        }
        row.update(distance_check(s, ref) if est.name != REFERENCE else dict.fromkeys(DIST2_COLUMNS, float("nan")))
        rows[est.name] = row
        print(
            f"estimator_variance: {point}, {est.name}: trace {s.trace:.4g} +- {s.trace_se:.2g} x {evals:,} "
            f"evaluations = cost {row['cost']:.4g} +- {row['cost_se']:.2g}; |mean grad| {s.norm:.4g} "
            f"(noise alone {row['grad_norm_noise']:.2g})"
            + (
                ""
                if est.name == REFERENCE
                else f"; d^2 to {REFERENCE} x{row['dist2_ratio']:.2f} of its "
                f"expectation (5-95% if equal: {row['dist2_p05']:.2f}-"
                f"{row['dist2_p95']:.2f}, p {row['dist2_p']:.2f})"
            )
        )
    return [rows[e.name] for e in ests]


def measure(
    points: dict[str, torch.nn.Module], diffusion: GaussianDiffusion, data: np.ndarray, cfg: EstimatorVarianceConfig
) -> tuple[pd.DataFrame, list[Estimator]]:
    """The details table, one row per parameter point of points ({point: model}, in that order) and
    estimator (in the order of `estimators`), minibatches drawn from data (N, D); and the estimators."""
    T = diffusion.T
    ests = estimators(cfg, T)
    if cfg.term_counts(T) != cfg.terms:
        print(
            f"estimator_variance: terms {cfg.terms} at diffusion.T = {T}: {cfg.term_counts(T)} "
            f"(values above T replaced by T, duplicates dropped, ascending)"
        )
    x = torch.as_tensor(data, dtype=torch.float32)
    rows = [r for point, model in points.items() for r in measure_point(point, model, diffusion, x, ests, cfg)]
    return pd.DataFrame(rows), ests


def headline(table: pd.DataFrame) -> dict:
    """The trajectory estimator's cost as a multiple of Eq. 12's at HEADLINE_POINT, with its SE
    (the two costs are independent estimates: relative errors added in quadrature)."""
    at = table[table["point"] == HEADLINE_POINT].set_index("estimator")
    a, b = at.loc["trajectory"], at.loc["eq12"]
    ratio, se = ratio_se(a["cost"], a["cost_se"], b["cost"], b["cost_se"])
    return {"eq3_cost_x": float(f"{ratio:.4g}"), "eq3_cost_x_se": float(f"{se:.2g}")}


def load_points(models: Path, dcfg: DiffusionConfig, mcfg: MLPConfig, source: str) -> dict[str, torch.nn.Module]:
    """The three parameter points: the initial weights of train_eq12 (EpsMLP.seeded with the model
    config and the training seed recorded in models/eq12.pt), the trained Eq. 3 and Eq. 12 models.
    Each checkpoint's model config must equal params `model` (else ConfigError)."""
    points = {}
    for name in (EQ3, EQ12):  # the order of POINTS
        path = models / f"{name}.pt"
        config, _ = load_checkpoint(path)
        if config.get("model") != mcfg.to_dict():
            raise ConfigError(
                f"{source}: model = {mcfg.to_dict()} but {path} was trained with "
                f"{config.get('model')}: expected equal (rerun with dvc repro)"
            )
        train = config.get("train")
        if name == EQ12:
            seed = train.get("seed") if isinstance(train, dict) else None
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise DataError(
                    f"{path}: checkpoint config has no training seed: expected a file written by the "
                    f"training stage (rerun with dvc repro)"
                )
            points["init"] = EpsMLP.seeded(mcfg, seed)
        points[name] = load_eps_net(path, dcfg)
    return {p: points[p].requires_grad_(True) for p in POINTS}
