"""The names of the GMM study's eps-predictors, one definition for the stages, the library and the
figures: the two trained models, by the objective that trained them, and the exact eps* (the
oracle), with their labels and colours in the figures.

A model's name is also the stem of its files: models/<name>.pt, data/samples/<name>.npz,
metrics/dist_<name>.json, metrics/details/{train,eps_error,dist}_<name>.*.
"""

from __future__ import annotations

EQ12 = "eq12"  # the noise loss (Eq. 12, or Eq. 14 unweighted): stage train_eq12
EQ3 = "eq3"  # the variational bound on whole forward trajectories (Eq. 3): stage train_eq3
ORACLE = "oracle"  # the exact eps* of the mixture: no training, no file

MODELS = (EQ12, EQ3)  # the trained eps-models, by objective
ALL_MODELS = (*MODELS, ORACLE)  # every eps-predictor the study samples from and judges

LABELS = {EQ12: "Eq. 12 model", EQ3: "Eq. 3 model", ORACLE: "oracle eps*"}  # in the figures
COLORS = {EQ12: "tab:blue", EQ3: "tab:orange", ORACLE: "tab:green"}

# The hybrid-oracle diagnostic's two stitched eps-predictors (ddpm_lab/gmm/hybrid.py), switching at t0
MODEL_LOW = "model_low"  # the Eq. 12 model at t <= t0, the oracle above
MODEL_HIGH = "model_high"  # the Eq. 12 model at t > t0, the oracle at and below
HYBRIDS = (MODEL_LOW, MODEL_HIGH)
HYBRID_LABELS = {
    MODEL_LOW: "model at t <= t0, exact eps* above",
    MODEL_HIGH: "model at t > t0, exact eps* at and below",
}
HYBRID_COLORS = {MODEL_LOW: COLORS[EQ12], MODEL_HIGH: "tab:purple"}
