"""Extended log-barrier and the absolute size constraint."""

from __future__ import annotations

import math

import pytest
import torch

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses import SizeLoss, log_barrier, size_loss


@pytest.mark.parametrize("tau", [1.0, 2.5, 10.0])
def test_log_barrier_continuous_with_continuous_slope_at_switch(tau: float) -> None:
    z0 = -1.0 / tau**2
    eps = 1e-7
    z = torch.tensor([z0 - eps, z0, z0 + eps], dtype=torch.float64, requires_grad=True)
    v = log_barrier(z, tau)
    assert v[0].item() == pytest.approx(v[2].item(), abs=1e-5)
    assert v[1].item() == pytest.approx(-math.log(1 / tau**2) / tau)
    (g,) = torch.autograd.grad(v.sum(), z)
    torch.testing.assert_close(g, torch.full((3,), tau, dtype=torch.float64), rtol=1e-5, atol=0)


def test_log_barrier_branches_and_finite_gradient() -> None:
    z = torch.tensor([-5.0, -0.5, 0.0, 3.0], dtype=torch.float64, requires_grad=True)
    v = log_barrier(z, 1.0)
    torch.testing.assert_close(v, torch.tensor([-math.log(5), 0.5, 1.0, 4.0], dtype=torch.float64))
    (g,) = torch.autograd.grad(v.sum(), z)
    assert torch.isfinite(g).all()
    assert torch.autograd.gradcheck(lambda t: log_barrier(t, 2.0), (z,))


def test_size_loss_formula() -> None:
    probs = torch.rand(3, 2, 6, 5, dtype=torch.float64).softmax(1)
    tau = 1.7
    areas = probs.sum((2, 3))
    expected = 0.01 * 0.5 * sum(log_barrier(-areas[:, k], tau).mean() for k in range(2))
    torch.testing.assert_close(size_loss(probs, tau), expected)
    assert size_loss(probs, tau, weight=1.0).item() == pytest.approx(expected.item() * 100)


def test_empty_region_is_penalised() -> None:
    full = torch.zeros(1, 2, 8, 8)
    full[:, 1] = 1.0  # background empty
    half = torch.full((1, 2, 8, 8), 0.5)
    assert size_loss(full, 1.0) > size_loss(half, 1.0)


def test_module_schedule_buffer_and_functional() -> None:
    loss = SizeLoss()
    assert "tau" in dict(loss.named_buffers()) and loss.tau.item() == 1.0
    probs = torch.rand(2, 2, 8, 8).softmax(1)
    torch.testing.assert_close(loss(probs), size_loss(probs, 1.0))
    loss.step_epoch()
    assert loss.tau.item() == pytest.approx(1.01)
    for _ in range(500):
        loss.step_epoch()
    assert loss.tau.item() == 10.0
    state = loss.state_dict()
    fresh = SizeLoss()
    fresh.load_state_dict(state)
    assert fresh.tau.item() == 10.0


def test_errors() -> None:
    with pytest.raises(ShapeError, match=r"probs: expected \(B, K, H, W\), got \(2, 8, 8\)"):
        size_loss(torch.rand(2, 8, 8), 1.0)
    with pytest.raises(ValueError, match="tau, growth, tau_max: expected positive values"):
        SizeLoss(tau=0.0)
