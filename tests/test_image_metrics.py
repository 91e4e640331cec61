"""Image metrics against known answers: Frechet distances in closed form, the classifier,
histograms, nearest-neighbour distances."""
from __future__ import annotations

import numpy as np
import pytest

from ddpm_lab.image_data import ImageDataConfig, load_split
from ddpm_lab.image_metrics import (ClassifierConfig, FeatureClassifier, class_summary, evaluate_samples,
                                    frechet_distance, frechet_distance_gaussians, memorisation, nearest_distances)


def test_identical_sets_have_distance_zero():
    f = np.random.default_rng(0).normal(size=(200, 16))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_shifted_set_gives_squared_shift():
    # Same samples moved by delta: equal covariances, so FD = ||delta||^2 exactly.
    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))  # correlated features
    delta = np.arange(8) / 4.0
    assert frechet_distance(f, f + delta) == pytest.approx(float(delta @ delta), rel=1e-8)


def test_gaussians_closed_form_diagonal():
    # Commuting (diagonal) covariances: FD = ||mu1 - mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    want = 1 + 4 + 0.25 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # = 5.25 + 4 + 1 + 0 = 10.25
    assert frechet_distance_gaussians(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(10.25)


def test_gaussians_closed_form_rotated():
    # FD is invariant to a common rotation R: FD(R c1 R^T, R c2 R^T) = FD(c1, c2) (diagonal case above).
    a, b = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    th = 0.7
    R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    fd = frechet_distance_gaussians(np.zeros(2), R @ np.diag(a) @ R.T, np.zeros(2), R @ np.diag(b) @ R.T)
    assert fd == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)  # (1-3)^2 + (2-1)^2 = 5


def test_frechet_distance_of_samples_converges_to_closed_form():
    # N(0, I) vs N(m, 4 I) in D = 4: FD = ||m||^2 + D (1 - 2)^2 = 1 + 4 = 5. With n = 20000 the
    # covariance estimates are within a few 1e-2, so 5% tolerance is ample.
    rng = np.random.default_rng(2)
    m = np.array([1.0, 0.0, 0.0, 0.0])
    fd = frechet_distance(rng.normal(size=(20000, 4)), m + 2.0 * rng.normal(size=(20000, 4)))
    assert fd == pytest.approx(5.0, rel=0.05)


def test_frechet_distance_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"expected \(N, D\) with equal D"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_class_summary():
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    s = class_summary(proba, 3)
    assert s == {"histogram": {"0": 2, "1": 1, "2": 0}, "classes_present": 2,
                 "mean_confidence": pytest.approx((0.9 + 0.8 + 0.6) / 3)}


def test_nearest_distances_and_memorisation():
    train = np.array([[0.0, 0.0], [10.0, 0.0]])
    np.testing.assert_allclose(nearest_distances(np.array([[3.0, 4.0], [10.0, 1.0]]), train), [5.0, 1.0])
    m = memorisation(generated=np.array([[0.0, 0.5], [5.0, 0.0]]), heldout=np.array([[0.0, 2.0], [10.0, 3.0]]),
                     train=train)
    assert m["generated_nn_min"] == 0.5 and m["heldout_nn_min"] == 2.0
    assert m["n_generated_closer_than_heldout_min"] == 1  # the copy-like sample at distance 0.5


@pytest.fixture(scope="module")
def digits():
    return load_split(ImageDataConfig(source="digits", n_heldout=360, seed=0))


def test_classifier_is_accurate_and_deterministic(digits):
    cfg = ClassifierConfig(hidden=[64], max_iter=200, seed=0)
    a = FeatureClassifier(cfg).fit(digits.x_train, digits.y_train)
    b = FeatureClassifier(cfg).fit(digits.x_train, digits.y_train)
    assert a.accuracy(digits.x_heldout, digits.y_heldout) > 0.93  # an MLP on 8x8 digits reaches ~0.97
    np.testing.assert_array_equal(a.features(digits.x_heldout), b.features(digits.x_heldout))
    assert a.features(digits.x_heldout).shape == (360, 64)


def test_evaluate_real_heldout_as_generated_sits_at_floor(digits):
    """Feeding real training images as 'generated' reproduces the floor's kind of number: the
    ratio is near 1, all digits appear, and the 'samples' are exact training copies (distance 0)."""
    cfg = ClassifierConfig(hidden=[64], max_iter=200, seed=0)
    fake = digits.x_train[-360:]
    m = evaluate_samples(fake, digits.x_train, digits.y_train, digits.x_heldout, digits.y_heldout, cfg,
                         rng=np.random.default_rng(0))
    assert 0.5 < m["frechet"]["ratio_to_floor"] < 2.0
    assert m["classes"]["generated"]["classes_present"] == 10
    assert m["memorisation"]["generated_nn_min"] == 0.0
    assert m["memorisation"]["n_generated_closer_than_heldout_min"] == 360
    noise = np.random.default_rng(1).uniform(-1, 1, size=(360, 1, 8, 8)).astype(np.float32)
    m_noise = evaluate_samples(noise, digits.x_train, digits.y_train, digits.x_heldout, digits.y_heldout, cfg,
                               rng=np.random.default_rng(0))
    assert m_noise["frechet"]["ratio_to_floor"] > 5.0  # noise is far from digits in feature space
