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


def split_variance(out: torch.Tensor, learned_variance: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A network output split into (target, v) along dim 1 when it also outputs the variance's
    interpolation v (improved-diffusion's learned Sigma, Nichol & Dhariwal 2021, Eq. 15: twice the
    channels, the target first), else (out, None)."""
    if not learned_variance:
        return out, None
    target_part, v = out.chunk(2, dim=1)
    return target_part, v


class EpsFromTarget:
    """An eps-model (x_t, t) -> eps from a network `net` that predicts `prediction`, for a diffusion
    with alphas_cumprod (T + 1,) indexed by t (abar_0 = 1). t is a (B,) long tensor or an int. Keeps
    the network's fast fixed-t path (`sampling_eps`, ddpm_lab.core.sampling.eps_caller) when it has one.

    learned_variance: the network also outputs v (split_variance); calling the model still gives
    eps, and `eps_v(x_t, t)` / `sampling_eps_v(ts)` give (eps, v), from which
    GaussianDiffusion.learned_sigma2 makes Sigma_theta (the samplers and the bound read it)."""

    def __init__(self, net, prediction: str, alphas_cumprod: np.ndarray, learned_variance: bool = False):
        check_prediction(prediction)
        self.net, self.prediction, self.learned_variance = net, prediction, learned_variance
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        self._a = torch.from_numpy(np.sqrt(abar))
        self._s = torch.from_numpy(np.sqrt(1.0 - abar))
        if hasattr(net, "sampling_eps"):
            self.sampling_eps = self._sampling_eps
            if learned_variance:
                self.sampling_eps_v = self._sampling_eps_v

    def _coef(self, t, like: torch.Tensor):
        if isinstance(t, int):
            return float(self._a[t]), float(self._s[t])
        shape = (-1, *([1] * (like.dim() - 1)))
        idx = t.long().cpu()
        return (
            self._a[idx].to(like).view(shape),
            self._s[idx].to(like).view(shape),
        )

    def eps_v(self, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(eps, v) at x_t (v None without a learned variance)."""
        out = self.net(x_t, t if not isinstance(t, int) else torch.full((x_t.shape[0],), t, dtype=torch.long))
        out, v = split_variance(out, self.learned_variance)
        return to_eps(self.prediction, out, x_t, *self._coef(t, x_t)), v

    def __call__(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.eps_v(x_t, t)[0]

    def _sampling_eps_v(self, ts) -> Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor | None]]:
        inner = self.net.sampling_eps(ts)

        def eps_v(x: torch.Tensor, t: int):
            out, v = split_variance(inner(x, t), self.learned_variance)
            return to_eps(self.prediction, out, x, *self._coef(int(t), x)), v

        return eps_v

    def _sampling_eps(self, ts) -> Callable[[torch.Tensor, int], torch.Tensor]:
        inner = self._sampling_eps_v(ts)
        return lambda x, t: inner(x, t)[0]

    def __getattr__(self, name):  # config, parameters(), eval(), ... of the network
        net = self.__dict__.get("net")
        if net is None:  # not yet built (copy, pickle)
            raise AttributeError(name)
        return getattr(net, name)


def as_eps_model(net, prediction: str, alphas_cumprod: np.ndarray, learned_variance: bool | None = None):
    """net itself for "eps" without a learned variance (the same object, the same bytes), else
    EpsFromTarget. learned_variance None: the network config's `learned_variance` (False if it has none)."""
    check_prediction(prediction)
    if learned_variance is None:
        learned_variance = bool(getattr(getattr(net, "config", None), "learned_variance", False))
    if prediction == "eps" and not learned_variance:
        return net
    return EpsFromTarget(net, prediction, alphas_cumprod, learned_variance)


def eps_and_v(eps_model, x_t: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(eps, v) of any eps-model: v None unless it has a learned variance (EpsFromTarget.eps_v)."""
    if getattr(eps_model, "learned_variance", False):
        return eps_model.eps_v(x_t, t)
    return eps_model(x_t, t), None
