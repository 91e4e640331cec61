"""The stable target field of the noise loss (GaussianDiffusion.loss_eq12 with target="stable",
Xu et al. 2023): the posterior mean over the reference rows is the mixture posterior of their
empirical distribution, the logged value is the sampled target's loss, the gradient is the stable
target's, and its variance at large t is far below the sampled target's."""

from __future__ import annotations

import math

import pytest
import torch

from ddpm_lab.core.diffusion import DiffusionConfig
from ddpm_lab.core.training import Eq12TrainConfig

D = DiffusionConfig(T=100, schedule="linear", beta_start=1e-3, beta_end=0.2, variance="beta").build()


def test_reference_posterior_mean_is_the_empirical_posterior_in_two_dimensions():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(7, 2, generator=g, dtype=torch.float64)
    x_t = torch.randn(5, 2, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 10, 40, 70, 100])
    got = D.reference_posterior_mean(x_t, t, ref)
    for i in range(5):
        abar = float(D.np["alphas_cumprod"][t[i]])
        logw = torch.tensor(
            [-((x_t[i] - math.sqrt(abar) * r) ** 2).sum().item() / (2 * (1 - abar)) for r in ref], dtype=torch.float64
        )
        want = torch.softmax(logw, 0) @ ref
        torch.testing.assert_close(got[i], want, rtol=1e-10, atol=1e-12)
    # variance=True: the same mean, and the posterior's own spread per coordinate
    mean, var = D.reference_posterior_mean(x_t, t, ref, variance=True)
    torch.testing.assert_close(mean, got, rtol=1e-12, atol=1e-14)
    for i in range(5):
        abar = float(D.np["alphas_cumprod"][t[i]])
        w = torch.softmax(-((x_t[i] - math.sqrt(abar) * ref) ** 2).sum(1) / (2 * (1 - abar)), 0)
        torch.testing.assert_close(var[i], w @ (ref - got[i]) ** 2, rtol=1e-9, atol=1e-12)
    # one reference row: the posterior mean is that row, whatever x_t
    torch.testing.assert_close(D.reference_posterior_mean(x_t, t, ref[:1]), ref[:1].expand(5, 2))


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_stable_target_logs_the_sampled_loss_and_descends_the_stable_one(prediction):
    # float64 throughout, a fixed network: stable + (sampled - stable) is the sampled loss to rounding
    x0 = torch.cat([torch.full((40, 1), -2.0), torch.full((24, 1), 1.0)]).double()
    net = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        net.weight.fill_(0.3)
        net.bias.fill_(-0.1)

    def model(x, t):
        return net(x.double() * (1 + t.double()[:, None] / D.T)).to(x.dtype)

    losses = {}
    grads = {}
    for target in ("sampled", "stable"):
        net.zero_grad()
        loss = D.loss_eq12(model, x0, torch.Generator().manual_seed(3), prediction=prediction, target=target)
        loss.mean().backward()
        losses[target], grads[target] = loss.detach(), net.weight.grad.clone()
    torch.testing.assert_close(losses["stable"], losses["sampled"], rtol=1e-10, atol=1e-12)
    assert not torch.allclose(grads["stable"], grads["sampled"])


def test_stable_target_is_closer_to_the_population_eps_star():
    """The noise in a gradient is the target's deviation from the population's E[eps | x_t] (eps*).
    With the network at eps* of a three-point population, the mean squared deviation of the target
    the loss regresses on (read off d loss / d output) is the population's eps MMSE for the sampled
    target, and far below it for the stable target over a minibatch of 256 draws."""
    points = torch.tensor([[-4.0], [0.0], [3.0]], dtype=torch.float64)
    population = points.repeat_interleave(torch.tensor([300, 500, 200]), dim=0)  # weights 0.3, 0.5, 0.2
    g = torch.Generator().manual_seed(0)
    x0 = population[torch.randint(0, len(population), (256,), generator=g)]
    deviation = {}
    for target in ("sampled", "stable"):
        held = {}

        def eps_star(x, t):
            a = torch.from_numpy(D.np["sqrt_alphas_cumprod"])[t][:, None]
            s = torch.from_numpy(D.np["sqrt_one_minus_alphas_cumprod"])[t][:, None]
            held["out"] = ((x - a * D.reference_posterior_mean(x, t, population)) / s).requires_grad_()
            return held["out"]

        D.loss_eq12(eps_star, x0, torch.Generator().manual_seed(1), "eq14", target=target).sum().backward()
        deviation[target] = (held["out"].grad / 2).pow(2).mean().item()  # d/d out ||target - out||^2
    assert deviation["stable"] < 0.05 * deviation["sampled"], deviation


def test_unknown_target_is_one_clear_error():
    with pytest.raises(ValueError, match="target = 'noise': expected one of sampled, stable"):
        Eq12TrainConfig(target="noise")
    with pytest.raises(ValueError, match="unknown target 'noise'"):
        D.loss_eq12(lambda x, t: x, torch.zeros(4, 1), torch.Generator(), target="noise")


def test_shards_of_the_stable_loss_use_the_whole_minibatch_as_reference():
    """Data-parallel ranks (rows=) each evaluate their shard, against the same reference: the shards'
    losses and gradients put together are the whole batch's."""
    x0 = torch.linspace(-3, 3, 24, dtype=torch.float64)[:, None]
    net = torch.nn.Linear(1, 1).double()

    def run(rows):
        net.zero_grad()
        loss = D.loss_eq12(lambda x, t: net(x), x0, torch.Generator().manual_seed(5), rows=rows, target="stable")
        loss.sum().backward()
        return loss.detach(), net.weight.grad.clone()

    whole, grad = run(None)
    parts = [run(slice(i, i + 8)) for i in (0, 8, 16)]
    torch.testing.assert_close(torch.cat([p[0] for p in parts]), whole)
    torch.testing.assert_close(sum(p[1] for p in parts), grad)


def test_the_softmax_flush_of_subnormals_is_switched_off_after():
    """reference_posterior_mean flushes subnormal floats to 0 inside its softmax only: afterwards a
    subnormal float survives arithmetic again."""
    D.reference_posterior_mean(torch.randn(8, 1), torch.full((8,), 1), torch.randn(8, 1))
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    assert (tiny * 1.0).item() > 0
