from __future__ import annotations

import pytest
import torch

from colocam_plugin.cam.base import Classifier
from colocam_plugin.errors import ColocamError, ShapeError
from colocam_plugin.models.classifier import WGAPClassifier, build_encoder
from colocam_plugin.models.heads import UNetHead
from colocam_plugin.models.localizer import Localizer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return WGAPClassifier("resnet18", num_classes=3)


def test_follows_classifier_protocol(model):
    assert isinstance(model, Classifier)
    assert model.head.out_features == 3
    assert model.encoder_channels == [3, 64, 64, 128, 256, 512]


def test_logits_equal_pooled_linear_of_tapped_features(model):
    x = torch.rand(2, 3, 64, 96) * 255
    model.eval()
    feats = model.features(x)
    expected = feats[-1].mean((2, 3)) @ model.head.weight.T + model.head.bias
    torch.testing.assert_close(model(x), expected)


def test_target_layer_sees_last_feature_map(model):
    seen = []
    handle = model.target_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    model(torch.rand(1, 3, 64, 64) * 255)
    handle.remove()
    assert seen == [torch.Size([1, 512, 2, 2])]


@pytest.mark.parametrize(
    ("shape", "msg"),
    [
        ((2, 1, 64, 64), r"images: expected \(B, 3, H, W\), got \(2, 1, 64, 64\)"),
        ((1, 3, 65, 64), "height 65 not divisible by 32; resize or pad to 96"),
        ((1, 3, 64, 100), "width 100 not divisible by 32; resize or pad to 128"),
    ],
)
def test_bad_shapes(model, shape, msg):
    with pytest.raises(ShapeError, match=msg):
        model(torch.zeros(shape))


def test_output_stride_8_keeps_resolution():
    enc = build_encoder("resnet18", output_stride=8)
    feats = enc(torch.rand(1, 3, 64, 64))
    assert feats[-1].shape[-2:] == (8, 8)


def test_unknown_encoder_message():
    with pytest.raises(ColocamError, match="unknown encoder 'resnet7'"):
        build_encoder("resnet7")


def test_local_weights_file_roundtrip(tmp_path):
    src = build_encoder("resnet18")
    path = tmp_path / "enc.pth"
    torch.save(src.state_dict(), path)
    loaded = build_encoder("resnet18", weights=path)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)


def test_local_weights_errors(tmp_path):
    with pytest.raises(ColocamError, match="weights file not found"):
        build_encoder("resnet18", weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ColocamError, match=r"bad\.pth: not a readable torch state_dict"):
        build_encoder("resnet18", weights=bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ColocamError, match="weights do not fit encoder 'resnet18'"):
        build_encoder("resnet18", weights=wrong)


def test_localizer_freezes_classifier_and_outputs_full_resolution(model):
    loc = Localizer(model, UNetHead(model.encoder_channels, decoder_channels=(16, 8, 8, 4, 4)))
    loc.train()
    assert not loc.classifier.training  # BatchNorm stays in eval mode
    assert all(not p.requires_grad for p in loc.classifier.parameters())
    running = model.encoder.bn1.running_mean.clone()
    seg, logits = loc(torch.rand(2, 3, 64, 64) * 255)
    assert seg.shape == (2, 2, 64, 64) and logits.shape == (2, 3)
    seg.sum().backward()
    torch.testing.assert_close(model.encoder.bn1.running_mean, running)
    assert all(p.grad is None for p in loc.classifier.parameters())
    assert any(p.grad is not None for p in loc.trainable_parameters())
    cams = loc.cams(torch.rand(1, 3, 64, 64) * 255)
    assert cams.shape == (1, 64, 64) and 0 <= cams.min() and cams.max() <= 1
