"""Every CAM method of the grad-cam adapter plugin, on tiny known models."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from colocam_gradcam import plugin
from torch import nn

from colocam_plugin.cam.base import CAMMethod, CAMOutput
from colocam_plugin.registry import Registry


def _registry() -> Registry:
    reg = Registry("CAM method")
    plugin.colocam_register_cam_methods(reg)
    return reg


NAMES = _registry().names()
GRADIENT_FREE = {"eigencam", "scorecam"}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def create(name: str, **kwargs):
    return _registry().create(name, **kwargs)


class TinyNet(nn.Module):
    """Classifier protocol: conv stack -> target_layer -> GAP -> head."""

    def __init__(self, num_classes: int = 3, channels: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, channels, 3, padding=1),
        )
        self.target_layer = nn.Identity()
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(channels, num_classes)
        self.fail = False
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a = self.target_layer(self.features(x))
        if self.fail:
            raise RuntimeError("boom after the target layer")
        return self.head(self.dropout(a.mean(dim=(2, 3))))


class BlobNet(nn.Module):
    """Features = 4x4 average pool of the image; class 0 reads channel 0 only."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.AvgPool2d(4)
        self.target_layer = nn.Identity()
        self.head = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.target_layer(self.features(x)).mean(dim=(2, 3)))


def _net(device: str = "cpu") -> TinyNet:
    torch.manual_seed(0)
    net = TinyNet().to(device)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net.features[1].running_mean.uniform_(-0.5, 0.5)
        net.features[1].running_var.uniform_(0.5, 2.0)
    return net


def _images(device: str = "cpu", batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, 32, 32, generator=gen).to(device)


def _hooks(model: nn.Module) -> dict[str, int]:
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    return {
        f"{mod_name or 'model'}.{h}": len(getattr(mod, h))
        for mod_name, mod in model.named_modules()
        for h in names
        if len(getattr(mod, h))
    }


def _state(model: nn.Module):
    modes = {n: m.training for n, m in model.named_modules()}
    grads = {
        n: (p.grad, None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()
    }
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return modes, grads, flags, buffers


def _assert_state(model: nn.Module, before) -> None:
    modes, grads, flags, buffers = before
    assert {n: m.training for n, m in model.named_modules()} == modes
    for n, p in model.named_parameters():
        obj, value = grads[n]
        assert p.grad is obj, f"{n}.grad replaced"
        if value is not None:
            torch.testing.assert_close(p.grad, value, rtol=0, atol=0)
        assert p.requires_grad == flags[n], n
    for n, b in model.named_buffers():
        torch.testing.assert_close(b, buffers[n], rtol=0, atol=0, msg=f"buffer {n} changed")
    assert _hooks(model) == {}


def _set_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = torch.randn_like(p)


def test_registers_expected_methods():
    assert NAMES == sorted(
        ["cam", "gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam"]
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_output_contract(name, device):
    model, x = _net(device), _images(device)
    method = create(name)
    assert isinstance(method, CAMMethod) and method.name == name
    out = method(model, x)
    assert isinstance(out, CAMOutput)
    out = CAMOutput(out.cams.detach(), out.logits)
    assert out.cams.shape == (2, 32, 32)
    assert out.cams.dtype == torch.float32
    assert out.cams.device == x.device and out.logits.device == x.device
    assert float(out.cams.min()) >= 0.0 and float(out.cams.max()) <= 1.0
    for frame in out.cams:  # min-max normalised: exactly 0 and 1 reached, or all zeros
        assert float(frame.min()) == 0.0 and float(frame.max()) in (0.0, 1.0)
    assert float(out.cams.max()) == 1.0
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        torch.testing.assert_close(out.logits, reference(x))
    assert not out.logits.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_top1_default_and_target_forms(name):
    model, x = _net(), _images()
    method = create(name)
    top1 = method(model, x).logits.argmax(dim=1)
    expected = method(model, x).cams
    torch.testing.assert_close(method(model, x, top1).cams, expected)
    torch.testing.assert_close(method(model, x, top1.tolist()).cams, expected)


@pytest.mark.parametrize("name", sorted(set(NAMES) - GRADIENT_FREE))
def test_targets_change_class_specific_maps(name):
    model, x = _net(), _images(batch=1)
    maps = [create(name)(model, x, torch.tensor([c])).cams for c in range(3)]
    assert not all(torch.equal(maps[0], m) for m in maps[1:])


@pytest.mark.parametrize("name", NAMES)
def test_state_restored_in_train_mode(name):
    model, x = _net(), _images()
    model.train()
    _set_grads(model)
    before = _state(model)
    create(name)(model, x)
    _assert_state(model, before)


@pytest.mark.parametrize("name", NAMES)
def test_state_restored_with_mixed_modes(name):
    model, x = _net(), _images()
    model.train()
    model.features[1].eval()
    model.target_layer.eval()
    model.dropout.eval()
    _set_grads(model)
    model.head.bias.grad = None
    model.features[0].weight.requires_grad_(False)
    before = _state(model)
    create(name)(model, x)
    _assert_state(model, before)
    assert model.training and not model.features[1].training and model.features[0].training


@pytest.mark.parametrize("name", NAMES)
def test_hooks_and_state_released_after_exception(name):
    model, x = _net(), _images()
    model.train()
    _set_grads(model)
    before = _state(model)
    model.fail = True
    with pytest.raises(RuntimeError, match="boom") as excinfo:
        create(name)(model, x)
    # excinfo keeps the failing frames (and any grad-cam object in them) alive,
    # so the hooks must have been removed explicitly, not by garbage collection
    assert excinfo.tb is not None
    _assert_state(model, before)
    model.fail = False
    assert create(name)(model, x).cams.shape == (2, 32, 32)  # still usable


@pytest.mark.parametrize("name", NAMES)
def test_bad_targets_raise_clear_errors(name):
    model, x = _net(), _images()
    model.train()
    before = _state(model)
    method = create(name)
    with pytest.raises(ValueError, match=r"targets: expected \(2,\) class indices.*got \(3,\)"):
        method(model, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"targets: class indices must be in \[0, 3\)"):
        method(model, x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="integer class indices"):
        method(model, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"images: expected \(B, C, H, W\)"):
        method(model, x[0])
    _assert_state(model, before)


@pytest.mark.parametrize("name", NAMES)
def test_model_without_target_layer_is_refused(name):
    with pytest.raises(TypeError, match=f"{name}: the model needs a `target_layer`"):
        create(name)(nn.Sequential(nn.Conv2d(3, 2, 1)), _images())


@pytest.mark.parametrize("name", NAMES)
def test_no_grad_caller_frozen_model_input_without_grad(name):
    model, x = _net(), _images()
    model.requires_grad_(False)
    with torch.no_grad():
        out = create(name)(model, x)
    assert float(out.cams.max()) == 1.0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_input_grad_untouched(name):
    model = _net()
    x = _images().requires_grad_(True)
    create(name)(model, x)
    assert x.grad is None


@pytest.mark.parametrize("name", NAMES)
def test_constant_maps_become_zeros(name):
    out = create(name)(BlobNet(), torch.full((2, 3, 32, 32), 0.5))
    torch.testing.assert_close(out.cams, torch.zeros(2, 32, 32), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_names_the_method(name):
    with pytest.raises(TypeError, match=f"CAM method '{name}' got unknown keyword.*bogus"):
        create(name, bogus=1)


def test_cam_equals_hand_computed():
    model, x = _net(), _images()
    model.train()
    targets = torch.tensor([2, 0])
    out = create("cam")(model, x, targets)
    model.eval()
    with torch.no_grad():
        feats = model.features(x)  # (2, 4, 16, 16)
        raw = torch.einsum("bk,bkhw->bhw", model.head.weight[targets], feats)
        up = F.interpolate(raw[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
        low = up.amin(dim=(1, 2), keepdim=True)
        high = up.amax(dim=(1, 2), keepdim=True)
        expected = (up - low) / (high - low)
    torch.testing.assert_close(out.cams, expected)


def test_cam_is_differentiable_wrt_input():
    model = _net()
    x = _images().requires_grad_(True)
    out = create("cam")(model, x)
    assert out.cams.requires_grad
    weights = torch.rand(out.cams.shape, generator=torch.Generator().manual_seed(3))
    (out.cams * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _blob_image() -> torch.Tensor:
    gen = torch.Generator().manual_seed(4)
    x = 0.05 * torch.rand(1, 3, 32, 32, generator=gen)
    x[0, 0] = 0.0
    x[0, 0, 4:12, 20:28] = 1.0  # the blob, aligned with the 4x4 pooling grid
    return x


@pytest.mark.parametrize(
    "name", ["cam", "gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "scorecam"]
)
def test_class_specific_methods_peak_at_the_blob(name):
    out = create(name)(BlobNet(), _blob_image(), torch.tensor([0]))
    cam = out.cams[0].detach()
    blob = torch.zeros(32, 32, dtype=torch.bool)
    blob[4:12, 20:28] = True
    far = torch.ones(32, 32, dtype=torch.bool)  # 4+ pixels away from the blob
    far[0:16, 16:32] = False
    row, col = divmod(int(cam.argmax()), 32)
    assert blob[row, col], (row, col)
    assert float(cam[6:10, 22:26].min()) > 0.8  # blob core (bilinear softens its rim)
    assert float(cam[far].max()) < 0.1


def test_scorecam_batch_size_is_forwarded():
    x = _images(batch=1)  # 4 channels -> 4 masked images per frame
    calls = {}
    for batch_size in (1, 8):
        model = _net()
        create("scorecam", batch_size=batch_size)(model, x)
        calls[batch_size] = model.calls
    assert calls == {1: 1 + 4, 8: 1 + 1}


def test_scorecam_progress_bars_are_silenced(capsys):
    import pytorch_grad_cam.score_cam as score_cam
    import tqdm

    model, x = _net(), _images(batch=1)
    create("scorecam")(model, x)
    assert "it/s" not in capsys.readouterr().err
    assert score_cam.tqdm is tqdm
    create("scorecam", progress=True)(model, x)
    assert "it/s" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["gradcam", "layercam", "scorecam", "eigencam"])
def test_aug_and_eigen_smooth_are_forwarded(name):
    model, x = _net(), _images()
    plain = create(name)(model, x)
    smooth = create(name, aug_smooth=True, eigen_smooth=True)
    assert smooth.aug_smooth and smooth.eigen_smooth
    out = smooth(model, x)
    assert out.cams.shape == (2, 32, 32) and float(out.cams.max()) <= 1.0
    torch.testing.assert_close(out.logits, plain.logits)
    assert _hooks(model) == {}


def test_bad_option_values():
    with pytest.raises(ValueError, match="scorecam: batch_size must be a positive int"):
        create("scorecam", batch_size=0)
    with pytest.raises(TypeError, match="gradcam: aug_smooth must be a bool"):
        create("gradcam", aug_smooth="yes")
