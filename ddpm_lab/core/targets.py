"""What the network predicts, and the one conversion to the noise eps that everything else uses.

x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, Eq. 4). Write a_t = sqrt(abar_t),
s_t = sqrt(1 - abar_t). A network may predict

- "eps": the noise itself (Ho et al. 2020, Eq. 11-12);
- "x0": the clean sample; eps = (x_t - a_t x0) / s_t;
- "v": v = a_t eps - s_t x_0 (Salimans & Ho 2022, Sec. 4 and App. D); eps = a_t v + s_t x_t.

Every sampler, the bound and the exact measures read eps, so they stay defined for every target:
`EpsFromTarget` wraps a network of any target as an eps-model. For the squared errors,
||eps - eps_hat||^2 = scale_t ||target - target_hat||^2 with scale_t = 1 (eps), SNR_t =
abar_t / (1 - abar_t) (x0) or abar_t (v) (`eps_scale`): a target's own MSE times scale_t is the
eps-space MSE, so a weighting written in eps space (GaussianDiffusion.mse_weights) is the same
objective for every target, and only the parameterisation differs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

PREDICTIONS = ("eps", "x0", "v")


def check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction {prediction!r}: expected one of {', '.join(PREDICTIONS)}")


def target(prediction: str, x0: torch.Tensor, noise: torch.Tensor, a, s) -> torch.Tensor:
    """The regression target of `prediction` for x_t = a x0 + s noise (a, s broadcastable)."""
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    check_prediction(prediction)
    return a * noise - s * x0


def to_eps(prediction: str, out: torch.Tensor, x_t: torch.Tensor, a, s) -> torch.Tensor:
    """eps from a network output `out` of `prediction` at x_t (a = sqrt(abar_t), s = sqrt(1 - abar_t))."""
    if prediction == "eps":
        return out
    if prediction == "x0":
        return (x_t - a * out) / s
    check_prediction(prediction)
    return a * out + s * x_t


def from_eps(prediction: str, eps: torch.Tensor, x_t: torch.Tensor, a, s) -> torch.Tensor:
    """The inverse of to_eps: the output of `prediction` whose eps is `eps` at x_t."""
    if prediction == "eps":
        return eps
    if prediction == "x0":
        return (x_t - s * eps) / a
    check_prediction(prediction)
    return (eps - s * x_t) / a


def eps_scale(prediction: str, alphas_cumprod: np.ndarray) -> np.ndarray:
    """scale_t with ||eps - eps_hat||^2 = scale_t ||target - target_hat||^2, for each abar_t given."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    if prediction == "eps":
        return np.ones_like(abar)
    if prediction == "x0":
        return abar / (1.0 - abar)
    check_prediction(prediction)
    return abar.copy()


class EpsFromTarget:
    """An eps-model (x_t, t) -> eps from a network `net` that predicts `prediction`, for a diffusion
    with alphas_cumprod (T + 1,) indexed by t (abar_0 = 1). t is a (B,) long tensor or an int. Keeps
    the network's fast fixed-t path (`sampling_eps`, ddpm_lab.core.sampling.eps_caller) when it has one."""

    def __init__(self, net, prediction: str, alphas_cumprod: np.ndarray):
        check_prediction(prediction)
        self.net, self.prediction = net, prediction
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        self._a = torch.from_numpy(np.sqrt(abar))
        self._s = torch.from_numpy(np.sqrt(1.0 - abar))
        if hasattr(net, "sampling_eps"):
            self.sampling_eps = self._sampling_eps

    def _coef(self, t, like: torch.Tensor):
        if isinstance(t, int):
            return float(self._a[t]), float(self._s[t])
        shape = (-1, *([1] * (like.dim() - 1)))
        idx = t.long().cpu()
        return (
            self._a[idx].to(like).view(shape),
            self._s[idx].to(like).view(shape),
        )

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        out = self.net(x_t, t if not isinstance(t, int) else torch.full((x_t.shape[0],), t, dtype=torch.long))
        return to_eps(self.prediction, out, x_t, *self._coef(t, x_t))

    def _sampling_eps(self, ts) -> Callable[[torch.Tensor, int], torch.Tensor]:
        inner = self.net.sampling_eps(ts)

        def eps(x: torch.Tensor, t: int) -> torch.Tensor:
            return to_eps(self.prediction, inner(x, t), x, *self._coef(int(t), x))

        return eps

    def __getattr__(self, name):  # config, parameters(), eval(), ... of the network
        net = self.__dict__.get("net")
        if net is None:  # not yet built (copy, pickle)
            raise AttributeError(name)
        return getattr(net, name)


def as_eps_model(net, prediction: str, alphas_cumprod: np.ndarray):
    """net itself for "eps" (the same object, the same bytes), else EpsFromTarget."""
    check_prediction(prediction)
    return net if prediction == "eps" else EpsFromTarget(net, prediction, alphas_cumprod)
