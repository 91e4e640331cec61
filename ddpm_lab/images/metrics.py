"""Measuring generated images against real ones, each number beside its floor.

- Frechet distance (Heusel et al. 2017, the "FID" formula) between Gaussian fits of two
  feature sets: ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^1/2 C_2 C_1^1/2)^1/2).
- KID, the kernel inception distance (Binkowski et al. 2018): the unbiased estimate of the
  squared MMD between two feature sets under the kernel k(x, y) = (x.y / d + 1)^3.
- The floor of each: the same statistic between two disjoint sets of n real images that the
  classifier never saw, over `floor_draws` independent draws (median and 5-95% band), so a
  generated value can be told apart (or not) from what an exact generator would reach.
- The feature space: the last hidden layer of a small MLP classifier (scikit-learn) trained,
  seeded, on a share of the real training split (`feature_share`, stratified by label); its
  held-out accuracy says how much to trust it. See evaluate_samples for the three-way split
  (features / floor pool / held-out reference) and why the floor's band is calibrated.
- Its predicted-class histogram of a set of images, and its mean confidence (max probability).
- Memorisation: each image's Euclidean distance (in pixel space) to its nearest training image.
BLAS runs on one thread here: the same bytes on any machine, and no slowdown from threads
competing for a busy CPU. All inputs are arrays of images (N, ...) flattened to (N, D) here; no file I/O.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, field
from typing import Annotated

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_limits

from ddpm_lab.runtime.params import Count, Int, NonEmpty, Seed, doc, require, schema
from ddpm_lab.runtime.stats import band, in_band


def _psd_sqrt(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix, via eigh."""
    w, v = linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_gaussians(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(mu1, c1) and N(mu2, c2):
    ||mu1 - mu2||^2 + tr(c1) + tr(c2) - 2 tr((c1^1/2 c2 c1^1/2)^1/2). The inner matrix is symmetric
    PSD, so its trace root is the sum of the roots of its eigenvalues (no complex sqrtm)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    c1, c2 = np.atleast_2d(c1).astype(np.float64), np.atleast_2d(c2).astype(np.float64)
    if mu1.shape != mu2.shape or c1.shape != c2.shape or c1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes mu {mu1.shape}, {mu2.shape}, cov {c1.shape}, {c2.shape}: expected (D,) and (D, D)")
    s1 = _psd_sqrt(c1)
    inner = s1 @ c2 @ s1
    eig = linalg.eigvalsh((inner + inner.T) / 2)
    tr_cross = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    fd = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1) + np.trace(c2) - 2.0 * tr_cross)
    return max(fd, 0.0)  # rounding can leave -1e-12 for identical inputs


def frechet_distance(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between Gaussian fits (mean, unbiased covariance) of features f1: (N1, D)
    and f2: (N2, D). Identical sets give 0."""
    f1, f2 = _check_features(f1, f2)
    return frechet_distance_gaussians(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def _check_features(f1: np.ndarray, f2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"features of shapes {f1.shape}, {f2.shape}: expected (N, D) with equal D and N >= 2")
    return f1, f2


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """KID's kernel k(x, y) = (x.y / d + 1)^3 between the rows of a (N, d) and b (M, d). (N, M)"""
    g = a @ b.T / a.shape[1] + 1.0
    return g * g * g  # several times faster than g ** 3


def _within(k: np.ndarray, w: np.ndarray | None) -> float:
    """Mean of k over pairs of distinct points: (sum_{i != j} k_ij) / (n (n - 1)). With resampling
    counts w (point i drawn w_i times), over pairs of draws that are not copies of one point:
    (w'k w - sum_i w_i^2 k_ii) / (sum(w)^2 - sum_i w_i^2); w = 1 gives the plain U-statistic."""
    if w is None:
        n = len(k)
        return float((k.sum() - np.trace(k)) / (n * (n - 1)))
    w2 = w * w
    return float((w @ k @ w - w2 @ np.diag(k)) / (w.sum() ** 2 - w2.sum()))


def _kid_from_kernels(
    kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray, wx: np.ndarray | None = None, wy: np.ndarray | None = None
) -> float:
    """Unbiased MMD^2 from the kernel matrices, optionally with resampling counts wx, wy."""
    if wx is None:
        cross = float(kxy.mean())
    else:
        cross = float(wx @ kxy @ wy / (wx.sum() * wy.sum()))
    return _within(kxx, wx) + _within(kyy, wy) - 2.0 * cross


def kid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Kernel inception distance of features f1: (N1, d) and f2: (N2, d): the unbiased
    U-statistic estimate of MMD^2 with k(x, y) = (x.y / d + 1)^3,
        1/(N1 (N1-1)) sum_{i != j} k(x_i, x_j) + 1/(N2 (N2-1)) sum_{i != j} k(y_i, y_j)
        - 2/(N1 N2) sum_{i, j} k(x_i, y_j).
    Unbiased, so its expectation is 0 for equal distributions and a single value can be
    negative. Symmetric in its arguments."""
    f1, f2 = _check_features(f1, f2)
    return _kid_from_kernels(polynomial_kernel(f1, f1), polynomial_kernel(f2, f2), polynomial_kernel(f1, f2))


def _draws_band(values) -> dict:
    """Every value, beside their median and 5-95% band (ddpm_lab.runtime.stats.band)."""
    return {"draws": [float(x) for x in values], **band(values)}


# The fields of the feature classifier, in ClassifierConfig and in section images_eval (EvalConfig).
Hidden = Annotated[NonEmpty[Count], doc("hidden layer widths of the feature classifier; the last is the feature space")]
Alpha = Annotated[float, doc("L2 penalty of the feature classifier, >= 0")]
MaxIter = Annotated[Count, doc("at most this many Adam epochs of the feature classifier")]
ClassifierSeed = Annotated[Seed, doc("seed of the feature classifier")]


@schema
class ClassifierConfig:
    """The feature classifier: a scikit-learn MLP on flattened images."""

    hidden: Hidden = field(default_factory=lambda: [128, 64])
    alpha: Alpha = 1e-3
    max_iter: MaxIter = 300
    seed: ClassifierSeed = 0

    def __post_init__(self):
        require(self.alpha >= 0, "alpha", self.alpha, "a non-negative number")


@schema
class EvalConfig:
    """Section `images_eval`: the feature classifier of the metrics (ClassifierConfig) and the
    draws of their floors and bands (evaluate_samples)."""

    hidden: Hidden = field(default_factory=lambda: [128, 64])
    alpha: Alpha = 1e-3
    max_iter: MaxIter = 300
    seed: ClassifierSeed = 0
    feature_share: Annotated[
        float,
        doc(
            "share of the training images that fit the classifier, strictly between 0 and 1 (stratified by "
            "label); the rest are the floor pool, never seen by it"
        ),
    ] = 0.5
    floor_draws: Annotated[
        Int,
        doc(
            "pairs of disjoint n-sets of unseen real images (floor pool and held-out) for the floors of the "
            "Frechet distance and KID: median and 5-95% band; >= 2, >= 100 advised (a value exchangeable with "
            "m draws exceeds their interpolated 95th percentile with probability about 9.3% for m = 20, 5.5% "
            "for m = 200)"
        ),
    ] = 200
    bootstrap: Annotated[
        Int,
        doc(
            "resamples of the generated and held-out features: the bands of the generated values and the "
            "standard error of KID; >= 2, >= 100 advised"
        ),
    ] = 200

    def __post_init__(self):
        _ = self.classifier  # validates the classifier fields (one-line errors, as ClassifierConfig)
        require(
            math.isfinite(self.feature_share) and 0 < self.feature_share < 1,
            "feature_share",
            self.feature_share,
            "a number strictly between 0 and 1 (the classifier's share of the training images)",
        )
        require(self.floor_draws >= 2, "floor_draws", self.floor_draws, "an integer >= 2 (>= 100 advised)")
        require(self.bootstrap >= 2, "bootstrap", self.bootstrap, "an integer >= 2 (>= 100 advised)")

    @property
    def classifier(self) -> ClassifierConfig:
        return ClassifierConfig(hidden=list(self.hidden), alpha=self.alpha, max_iter=self.max_iter, seed=self.seed)


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # (N, ...) -> (N, D)


class FeatureClassifier:
    """A seeded scikit-learn MLPClassifier on flattened images; `features` are the ReLU
    activations of its last hidden layer, (N, hidden[-1])."""

    def __init__(self, cfg: ClassifierConfig):
        from sklearn.neural_network import MLPClassifier

        self.cfg = cfg
        self.mlp = MLPClassifier(
            hidden_layer_sizes=tuple(cfg.hidden),
            activation="relu",
            alpha=cfg.alpha,
            max_iter=cfg.max_iter,
            random_state=cfg.seed,
            tol=1e-5,
        )

    def fit(self, x: np.ndarray, y: np.ndarray) -> "FeatureClassifier":
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is a setting, not an error
            self.mlp.fit(_flat(x), np.asarray(y))
        return self

    def features(self, x: np.ndarray) -> np.ndarray:
        """Last-hidden-layer activations: h_{l+1} = relu(h_l W_l + b_l). Returns (N, hidden[-1])."""
        h = _flat(x)
        for w, b in zip(self.mlp.coefs_[:-1], self.mlp.intercepts_[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.mlp.predict_proba(_flat(x))

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.mlp.predict(_flat(x)) == np.asarray(y)))


def class_summary(proba: np.ndarray, n_classes: int) -> dict:
    """Predicted-class histogram of probabilities proba: (N, K), how many classes appear at
    least once, and the mean confidence (mean over images of the max probability)."""
    pred = np.argmax(proba, axis=1)
    hist = np.bincount(pred, minlength=n_classes)
    return {
        "histogram": {str(k): int(c) for k, c in enumerate(hist)},
        "classes_present": int(np.sum(hist > 0)),
        "mean_confidence": float(np.mean(np.max(proba, axis=1))),
    }


def nearest_distances(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance from each row of x (N, ...) to its nearest row of reference (M, ...). (N,)"""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(_flat(reference))
    dist, _ = nn.kneighbors(_flat(x))
    return dist[:, 0]


def memorisation(generated: np.ndarray, heldout: np.ndarray, train: np.ndarray) -> dict:
    """Nearest-training-image distances of the generated images against the same for real
    held-out images (the floor: how close unseen real data comes to the training set). A
    generated image closer than the closest held-out one is a candidate copy."""
    d_gen = nearest_distances(generated, train)
    d_ho = nearest_distances(heldout, train)
    return {
        "generated_nn_min": float(d_gen.min()),
        "generated_nn_median": float(np.median(d_gen)),
        "heldout_nn_min": float(d_ho.min()),
        "heldout_nn_median": float(np.median(d_ho)),
        "n_generated_closer_than_heldout_min": int(np.sum(d_gen < d_ho.min())),
    }


HEADLINE_KEYS = ("fd_ratio", "fd_p95", "kid", "kid_se", "kid_p95", "classes_present", "confidence")
# What evaluate_images adds beside them: the model's bound on the held-out images in bits/dim, with its
# standard error (ddpm_lab.images.likelihood; "bpd" as in improved-diffusion).
BOUND_KEYS = ("bpd", "bpd_se")


def floor_split(y_train: np.ndarray, feature_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation's split of the training images: (features, pool), sorted indices into
    y_train (N,) that together cover 0..N-1 once. Stratified by label: of each class's images,
    in a seeded random order, the first floor(feature_share * count + 1/2) fit the feature
    classifier and the rest are the floor pool (so a class reaches the classifier whenever
    feature_share * count >= 1/2)."""
    y = np.asarray(y_train)
    order = rng.permutation(len(y))
    to_features = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = order[y[order] == c]
        to_features[members[: int(math.floor(feature_share * len(members) + 0.5))]] = True
    return np.flatnonzero(to_features), np.flatnonzero(~to_features)


def floor_draws(f_unseen: np.ndarray, n: int, draws: int, rng: np.random.Generator) -> tuple[list, list]:
    """The floor: (FD values, KID values) between two disjoint sets of n rows of f_unseen (M, D),
    the features of real images the classifier never saw, drawn anew (without replacement) for each
    of `draws` values."""
    fd, kid_values = [], []
    for _ in range(draws):
        ab = rng.choice(len(f_unseen), size=2 * n, replace=False)
        a, b = f_unseen[ab[:n]], f_unseen[ab[n:]]
        fd.append(frechet_distance(a, b))
        kid_values.append(_kid_from_kernels(polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)))
    return fd, kid_values


def evaluate_samples(
    generated: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_heldout: np.ndarray,
    y_heldout: np.ndarray,
    cfg: EvalConfig,
    rng: np.random.Generator,
    n_classes: int | None = None,
) -> tuple[dict, dict]:
    """Every image metric, each beside its floor: (headline, details).

    The split. The real images play three disjoint parts: the feature classifier is fit on
    cfg.feature_share of the training images (floor_split: stratified, seeded); the other
    training images are the floor pool; the held-out images are the reference. The generator
    may have trained on every training image: only the evaluation divides them.

    The statistics. Both compare n = min(#generated, #held-out) images per side: the first n
    generated vs the first n held-out (the reference). The floor of each is the same statistic
    between two disjoint sets of n real images drawn (without replacement) from the floor pool
    and the held-out images together, over cfg.floor_draws independent draws (median and 5-95%
    band). Each floor draw is thus what an exact generator's n images would give against n
    held-out ones: equal n, so equal finite-sample bias.

    Why the band is calibrated (an exact generator lands above its p95 about 5% of the time):
    1. The floor's images, the reference and a generated set are all unseen by the classifier,
       so their features are exchangeable. A classifier fit on the floor's own images maps them
       apart from unseen ones.
    2. Each draw takes both of its sets at random, so it varies as an exact generator's value
       does, by the chance of the compared set and of the reference alike, and the finite
       pool's own offset from the population cancels, both sets coming from it. Draws of n pool
       images against the fixed reference instead all share that offset, which narrows the band
       the more, the closer the pool's size is to n; drawing them with replacement fixes the
       width but lifts the FD floor by the pool's offset.
    3. cfg.floor_draws >= 100 (see EvalConfig): a 95th percentile of 20 draws is exceeded about
       9% of the time even by values exchangeable with them.
    Measured on the digits (1,077 training images split 541 / 536, 360 held-out, 360 unseen real
    images as the generated set; params.yaml's images_eval): above the p95 in 12 / 200 random
    splits for FD and 11 / 200 for KID (tests/unit/test_image_floor.py runs 40). The floor this
    replaced (the classifier fit on all 1,077, 20 draws of n of them against the reference):
    27 / 200 and 26 / 200 on the same splits. Over 100 other splits, with a classifier fit on
    540 of the 1,077: n of the other 537 against the reference, 20% and 13%; the same drawn with
    replacement, 1% and 3%.

    Bands of the generated values come from cfg.bootstrap resamples (with replacement, of the
    generated and of the held-out features independently); the same resamples give both the
    Frechet band and the KID band, and the standard error of KID is the standard deviation
    (ddof 1) of its bootstrap replicates. A KID replicate excludes pairs of copies of one point
    (see _within), so the replicates centre on the value (keeping them would inflate KID by
    about the within-set diagonal / n). The Frechet replicates are biased upward by resampling
    (duplicated rows make the covariance fits noisier), so their band can sit wholly above the
    value: read its width, and its shift from the value in fd.bootstrap_mean.

    headline (HEADLINE_KEYS): fd_ratio = FD / median floor FD; fd_p95 = p95 floor FD / median
    floor FD (the ratio an exact generator reaches at its 95th percentile: fd_ratio <= fd_p95
    means inside the floor band); kid, kid_se; kid_p95 = p95 of the floor KIDs; classes_present =
    classes present among the generated images; confidence = mean classifier confidence on them.
    details: the rest (draws, bands, classifier, histograms, memorisation (against every
    training image), sizes, the split's sizes, config). rng draws the floor sets, the bootstrap
    resamples and the split (three independent child streams)."""
    with threadpool_limits(1):
        n_classes = n_classes or int(max(y_train.max(), y_heldout.max())) + 1  # labels 0..K-1: K from the data
        return _evaluate(generated, x_train, y_train, x_heldout, y_heldout, cfg, rng, n_classes)


def _evaluate(generated, x_train, y_train, x_heldout, y_heldout, cfg, rng, n_classes) -> tuple[dict, dict]:
    n = min(len(generated), len(x_heldout))
    if n < 2:
        raise ValueError(
            f"{len(generated)} generated and {len(x_heldout)} held-out images: expected at least 2 of each"
        )
    floor_rng, boot_rng, split_rng = rng.spawn(3)
    feat, pool = floor_split(y_train, cfg.feature_share, split_rng)
    if len(feat) < 2 or len(pool) + len(x_heldout) < 2 * n:
        raise ValueError(
            f"{len(x_train)} training images split {len(feat)} (classifier, feature_share = "
            f"{cfg.feature_share}) / {len(pool)} (floor pool): expected at least 2 for the classifier "
            f"and floor pool + {len(x_heldout)} held-out >= 2 n = {2 * n} for the floors"
        )
    clf = FeatureClassifier(cfg.classifier).fit(x_train[feat], y_train[feat])
    f_gen, f_ref = clf.features(generated[:n]), clf.features(x_heldout)
    f_floor = np.concatenate([clf.features(x_train[pool]), f_ref])  # every real image the classifier never saw
    f_ho = f_ref[:n]

    k_gen, k_ho, k_cross = (
        polynomial_kernel(f_gen, f_gen),
        polynomial_kernel(f_ho, f_ho),
        polynomial_kernel(f_gen, f_ho),
    )
    fd, kid_value = frechet_distance(f_gen, f_ho), _kid_from_kernels(k_gen, k_ho, k_cross)

    fd_boot, kid_boot = [], []
    for _ in range(cfg.bootstrap):
        i, j = boot_rng.integers(n, size=n), boot_rng.integers(n, size=n)
        fd_boot.append(frechet_distance(f_gen[i], f_ho[j]))
        kid_boot.append(
            _kid_from_kernels(
                k_gen,
                k_ho,
                k_cross,
                np.bincount(i, minlength=n).astype(np.float64),
                np.bincount(j, minlength=n).astype(np.float64),
            )
        )
    fd_floor, kid_floor = floor_draws(f_floor, n, cfg.floor_draws, floor_rng)
    fd_band, kid_band = _draws_band(fd_floor), _draws_band(kid_floor)
    fd_p05_b, fd_p95_b = np.percentile(fd_boot, [5, 95])
    kid_p05_b, kid_p95_b = np.percentile(kid_boot, [5, 95])
    kid_se = float(np.std(kid_boot, ddof=1))

    gen_cls = class_summary(clf.predict_proba(generated), n_classes)
    ho_cls = class_summary(clf.predict_proba(x_heldout), n_classes)
    med = fd_band["median"]
    headline = {
        "fd_ratio": fd / med if med > 0 else None,
        "fd_p95": fd_band["p95"] / med if med > 0 else None,
        "kid": kid_value,
        "kid_se": kid_se,
        "kid_p95": kid_band["p95"],
        "classes_present": gen_cls["classes_present"],
        "confidence": gen_cls["mean_confidence"],
    }
    details = {
        "branch": "images",
        "n_generated": int(len(generated)),
        "n_heldout": int(len(x_heldout)),
        "n_train": int(len(x_train)),
        "n_compared": int(n),
        "split": {"features": int(len(feat)), "floor_pool": int(len(pool)), "reference": int(len(x_heldout))},
        "fd": {
            "value": fd,
            "bootstrap_p05": float(fd_p05_b),
            "bootstrap_p95": float(fd_p95_b),
            "bootstrap_mean": float(np.mean(fd_boot)),
        },
        "fd_floor": fd_band,
        "kid": {
            "value": kid_value,
            "se": kid_se,
            "bootstrap_p05": float(kid_p05_b),
            "bootstrap_p95": float(kid_p95_b),
            "bootstrap_mean": float(np.mean(kid_boot)),
        },
        "kid_floor": kid_band,
        "fd_inside_floor_band": in_band(fd_band, fd),
        "kid_inside_floor_band": in_band(kid_band, kid_value),
        "classifier": {
            "heldout_accuracy": clf.accuracy(x_heldout, y_heldout),
            "hidden": list(cfg.hidden),
            "feature_dim": int(cfg.hidden[-1]),
            "n_fit": int(len(feat)),
        },
        "classes": {"n_classes": n_classes, "generated": gen_cls, "heldout": ho_cls},
        "memorisation": memorisation(generated, x_heldout, x_train),
        "config": asdict(cfg),
    }
    return headline, details
