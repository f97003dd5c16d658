"""The pipeline pieces of the grad-cam adapter: normalisation, resize, guard, factory."""

from __future__ import annotations

import pytest
import torch
from colocam_gradcam import ClassicCAM, GradCAM, ScoreCAM, preserved_model_state
from colocam_gradcam.pipeline import method_factory, normalize_per_frame, upsample_maps
from torch import nn

from colocam_plugin.errors import ShapeError


def test_normalize_per_frame_ranges_and_degenerate_frames():
    maps = torch.stack(
        [
            torch.arange(16.0).view(4, 4) - 3.0,  # ordinary
            torch.full((4, 4), 7.0),  # constant
            torch.full((4, 4), 1e6) + torch.arange(16.0).view(4, 4) * 1e-11,  # rounding noise
            torch.where(torch.eye(4, dtype=torch.bool), float("nan"), 1.0),  # NaN
            torch.where(torch.eye(4, dtype=torch.bool), float("inf"), 1.0),  # inf
            torch.arange(16.0).view(4, 4) * 1e-20,  # tiny but real range
        ]
    )
    out = normalize_per_frame(maps)
    torch.testing.assert_close(out[0], torch.arange(16.0).view(4, 4) / 15.0)
    torch.testing.assert_close(out[5], torch.arange(16.0).view(4, 4) / 15.0)
    assert torch.count_nonzero(out[1:5]) == 0
    assert out.dtype == maps.dtype


def test_normalize_per_frame_is_differentiable():
    maps = torch.rand(2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(normalize_per_frame, (maps,))


def test_normalize_and_upsample_check_shapes():
    with pytest.raises(ShapeError, match=r"expected \(B, H, W\), got \(4, 4\)"):
        normalize_per_frame(torch.zeros(4, 4))
    with pytest.raises(ShapeError, match=r"expected \(B, h, w\), got \(1, 1, 4, 4\)"):
        upsample_maps(torch.zeros(1, 1, 4, 4), (8, 8))


def test_upsample_is_identity_at_same_size_and_bilinear_otherwise():
    maps = torch.rand(2, 6, 6)
    assert upsample_maps(maps, (6, 6)) is maps
    up = upsample_maps(torch.tensor([[[0.0, 1.0]]]), (1, 4))
    torch.testing.assert_close(up, torch.tensor([[[0.0, 0.25, 0.75, 1.0]]]))


def test_guard_restores_after_exception_and_detaches_caller_grads():
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.Linear(2, 1))
    net[1].eval()
    grad = torch.ones(2, 2)
    net[0].weight.grad = grad
    with pytest.raises(RuntimeError, match="inside"), preserved_model_state(net):
        assert net[0].weight.grad is None  # caller's tensor is out of reach
        net.eval()
        net[0].weight.requires_grad_(False)
        net(torch.ones(1, 2)).sum()
        raise RuntimeError("inside")
    assert net.training and not net[1].training and net[2].training
    assert net[0].weight.grad is grad and torch.equal(grad, torch.ones(2, 2))
    assert net[0].weight.requires_grad and net[2].weight.grad is None


def test_method_factory_forwards_and_rejects_options():
    factory = method_factory("scorecam", ScoreCAM)
    method = factory(batch_size=3, progress=True)
    assert (method.batch_size, method.progress) == (3, True)
    with pytest.raises(TypeError, match=r"'scorecam' got unknown keyword argument.*eigen_smoth"):
        factory(eigen_smoth=True)
    with pytest.raises(TypeError, match=r"'cam' got unknown.*batch_size; accepted: \(none\)"):
        method_factory("cam", ClassicCAM)(batch_size=2)


def test_repr_lists_options():
    assert repr(GradCAM(aug_smooth=True)) == "GradCAM(eigen_smooth=False, aug_smooth=True)"
    assert repr(ClassicCAM()) == "ClassicCAM()"


def test_cam_needs_a_linear_head():
    class NoHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.target_layer = nn.Conv2d(3, 2, 1)
            self.head = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.target_layer(x).mean(dim=(2, 3))

    with pytest.raises(TypeError, match=r"cam: the model needs a `head` nn\.Linear"):
        ClassicCAM()(NoHead(), torch.rand(1, 3, 8, 8))


def test_images_must_be_a_float_tensor():
    net = nn.Sequential()
    net.target_layer = nn.Identity()
    with pytest.raises(ShapeError, match=r"floating-point tensor, got torch\.uint8"):
        GradCAM()(net, torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"images: expected a torch\.Tensor, got list"):
        GradCAM()(net, [[0.0]])
