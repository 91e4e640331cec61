"""Measuring generated images against real ones, each number beside its floor.

- Frechet distance (Heusel et al. 2017, the "FID" formula) between Gaussian fits of two
  feature sets: ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^1/2 C_2 C_1^1/2)^1/2).
- The feature space: the last hidden layer of a small MLP classifier (scikit-learn) trained,
  seeded, on the real training split; its held-out accuracy says how much to trust it.
- Its predicted-class histogram of a set of images, and its mean confidence (max probability).
- Memorisation: each image's Euclidean distance (in pixel space) to its nearest training image.
BLAS runs on one thread here: the same bytes on any machine, and no slowdown from threads
competing for a busy CPU. All inputs are arrays of images (N, ...) flattened to (N, D) here; no file I/O.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import linalg
from threadpoolctl import threadpool_limits

from ddpm_lab.config import require


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
    f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"features of shapes {f1.shape}, {f2.shape}: expected (N, D) with equal D and N >= 2")
    return frechet_distance_gaussians(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


@dataclass(frozen=True)
class ClassifierConfig:
    """The feature classifier: an MLP with hidden layer widths `hidden` (the last one is the
    feature space), L2 penalty alpha, at most max_iter Adam epochs, seeded by seed."""

    hidden: list[int] = field(default_factory=lambda: [128, 64])
    alpha: float = 1e-3
    max_iter: int = 300
    seed: int = 0

    def __post_init__(self):
        require(len(self.hidden) >= 1 and all(isinstance(h, int) and h >= 1 for h in self.hidden),
                "hidden", self.hidden, "a non-empty list of integers >= 1")
        require(self.alpha >= 0, "alpha", self.alpha, "a non-negative number")
        require(self.max_iter >= 1, "max_iter", self.max_iter, "an integer >= 1")
        require(self.seed >= 0, "seed", self.seed, "a non-negative integer")


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # (N, ...) -> (N, D)


class FeatureClassifier:
    """A seeded scikit-learn MLPClassifier on flattened images; `features` are the ReLU
    activations of its last hidden layer, (N, hidden[-1])."""

    def __init__(self, cfg: ClassifierConfig):
        from sklearn.neural_network import MLPClassifier

        self.cfg = cfg
        self.mlp = MLPClassifier(hidden_layer_sizes=tuple(cfg.hidden), activation="relu", alpha=cfg.alpha,
                                 max_iter=cfg.max_iter, random_state=cfg.seed, tol=1e-5)

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
    return {"histogram": {str(k): int(c) for k, c in enumerate(hist)},
            "classes_present": int(np.sum(hist > 0)),
            "mean_confidence": float(np.mean(np.max(proba, axis=1)))}


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
    return {"generated_nn_min": float(d_gen.min()), "generated_nn_median": float(np.median(d_gen)),
            "heldout_nn_min": float(d_ho.min()), "heldout_nn_median": float(np.median(d_ho)),
            "n_generated_closer_than_heldout_min": int(np.sum(d_gen < d_ho.min()))}


def evaluate_samples(generated: np.ndarray, x_train: np.ndarray, y_train: np.ndarray,
                     x_heldout: np.ndarray, y_heldout: np.ndarray, cfg: ClassifierConfig,
                     rng: np.random.Generator, n_classes: int = 10) -> dict:
    """Every image metric, each beside its floor. The Frechet distances use n = min(#generated,
    #held-out) images on each side: generated vs held-out, and (the floor) n training images drawn
    with rng vs held-out, so both carry the same finite-sample bias."""
    with threadpool_limits(1):
        return _evaluate(generated, x_train, y_train, x_heldout, y_heldout, cfg, rng, n_classes)


def _evaluate(generated, x_train, y_train, x_heldout, y_heldout, cfg, rng, n_classes) -> dict:
    clf = FeatureClassifier(cfg).fit(x_train, y_train)
    n = min(len(generated), len(x_heldout))
    if n < 2:
        raise ValueError(f"{len(generated)} generated and {len(x_heldout)} held-out images: expected at least 2 of each")
    if len(x_train) < n:
        raise ValueError(f"{len(x_train)} training images: expected at least n = {n} for the Frechet floor")
    f_gen = clf.features(generated[:n])
    f_ho = clf.features(x_heldout[:n])
    f_tr = clf.features(x_train[rng.choice(len(x_train), size=n, replace=False)])
    fd, floor = frechet_distance(f_gen, f_ho), frechet_distance(f_tr, f_ho)
    gen_cls = class_summary(clf.predict_proba(generated), n_classes)
    ho_cls = class_summary(clf.predict_proba(x_heldout), n_classes)
    return {
        "n_generated": int(len(generated)), "n_heldout": int(len(x_heldout)), "n_frechet": int(n),
        "frechet": {"generated_vs_heldout": fd, "floor_train_vs_heldout": floor,
                    "ratio_to_floor": fd / floor if floor > 0 else None},
        "classifier": {"heldout_accuracy": clf.accuracy(x_heldout, y_heldout), "hidden": list(cfg.hidden),
                       "feature_dim": int(cfg.hidden[-1])},
        "classes": {"generated": gen_cls, "heldout": ho_cls},
        "memorisation": memorisation(generated, x_heldout, x_train),
    }
