"""The localizer's inference path: one encoder pass, channels_last, autocast.

The reference is the plain two-pass computation on a float32, NCHW copy of
the same weights: the classifier's logits from ``classifier(x)`` and the CAM
from the head on a second ``classifier.features(x)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from colocam_plugin.cam.localizer import LocalizerCAM
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.models.localizer import Localizer
from colocam_plugin.train.stage2 import build_localizer

CLASSES = ["cat", "dog", "bird"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, Localizer]:
    """An untrained resnet18 CoLo-CAM checkpoint and the live model it was written from."""
    torch.manual_seed(0)
    model = build_localizer(WGAPClassifier("resnet18", len(CLASSES)), "unet").eval()
    with torch.no_grad():  # untrained, the map is ~0.48 everywhere: spread it to ~0.36..0.83
        model.head.segmentation_head[0].weight.mul_(100.0)
    path = tmp_path_factory.mktemp("loc") / "loc.pt"
    torch.save(
        {
            "kind": "localizer",
            "config": {"head": "unet", "method": "colocam", "image_size": 64},
            "classifier_config": {**model.classifier.config, "image_size": 64},
            "classes": CLASSES,
            "state_dict": model.state_dict(),
        },
        path,
    )
    return path, model


def _two_pass(model: Localizer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        logits = model.classifier(x)
        seg = model.head(model.classifier.features(x))
    return seg.softmax(1)[:, 1], logits


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255


def test_fast_path_float32_equals_two_pass(checkpoint, images):
    path, model = checkpoint
    ref_cams, ref_logits = _two_pass(model, images)
    cam = LocalizerCAM(path, amp="none", channels_last=True)
    with torch.inference_mode():
        out = cam(None, images)
    assert out.cams.dtype == out.logits.dtype == torch.float32
    assert out.cams.shape == (3, 64, 64)
    assert ref_cams.std() > 0.03  # a map with structure, not a constant
    torch.testing.assert_close(out.cams, ref_cams, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.logits, ref_logits, atol=1e-4, rtol=1e-4)
    conv = next(m for m in cam.localizer.classifier.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_encoder_runs_once_per_call(checkpoint, images):
    path, _ = checkpoint
    cam = LocalizerCAM(path, channels_last=True)
    calls = []
    cam.localizer.classifier.encoder.register_forward_hook(lambda *a: calls.append(1))
    cam(None, images)
    assert calls == [1]


def test_bf16_close_to_float32_and_float32_out(checkpoint, images):
    path, model = checkpoint
    ref_cams, ref_logits = _two_pass(model, images)
    out = LocalizerCAM(path, amp="bf16", channels_last=True)(None, images)
    assert out.cams.dtype == out.logits.dtype == torch.float32
    diff = (out.cams - ref_cams).abs()
    assert 0 < diff.max() < 0.03  # really ran in bf16, and close (0.003 measured)
    assert diff.mean() < 0.005
    torch.testing.assert_close(out.logits, ref_logits, atol=0.1, rtol=0.05)


def test_from_model_leaves_the_live_model_alone(checkpoint, images):
    _, model = checkpoint
    conv = next(m for m in model.classifier.modules() if isinstance(m, torch.nn.Conv2d))
    # the localizer keeps its frozen classifier in channels_last (faster convolutions)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    before = conv.weight.stride()
    ref_cams, _ = _two_pass(model, images)
    out = LocalizerCAM.from_model(model)(None, images)
    assert conv.weight.stride() == before and not model.training
    torch.testing.assert_close(out.cams, ref_cams)


def test_unknown_amp_mode(checkpoint):
    with pytest.raises(ValueError, match="amp: expected one of auto, bf16, none, got 'fp8'"):
        LocalizerCAM(checkpoint[0], amp="fp8")
