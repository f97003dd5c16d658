"""Head, colour loss and sampler are swapped by registry name from an in-test plugin."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from colocam_plugin import hookimpl
from colocam_plugin.api import build_registries
from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
from colocam_plugin.data.yto_v1 import load_yto_v1
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.plugins import get_plugin_manager
from colocam_plugin.train.stage2 import Stage2Config, train_localizer

CALLS: dict[str, int] = {}


class FPNHead(nn.Module):
    """smp's FPN decoder as a drop-in head (a plugin's alternative to the U-Net)."""

    def __init__(self, encoder_channels):
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.fpn.decoder import FPNDecoder

        self.decoder = FPNDecoder(
            list(encoder_channels), encoder_depth=5, pyramid_channels=32, segmentation_channels=32
        )
        self.seg = SegmentationHead(32, 2, kernel_size=1, upsampling=4)

    def forward(self, feats):
        CALLS["head"] = CALLS.get("head", 0) + 1
        return self.seg(self.decoder(feats))


class CountingColoc(nn.Module):
    def __init__(self, weight=1.0, sigma_rgb=15.0):
        super().__init__()
        self.weight = weight

    def forward(self, probs, images):
        CALLS["coloc"] = CALLS.get("coloc", 0) + 1
        assert probs.ndim == 5 and images.ndim == 5  # (B, n, K, H, W)
        return -self.weight * probs[:, :, 1].mean()


class FirstFrames:
    """Sequences of the first n frames of every shot, in shot order."""

    def __init__(self, shots, n_frames, **kw):
        self.shots, self.n = shots, n_frames

    def set_epoch(self, epoch):
        CALLS["sampler_epochs"] = CALLS.get("sampler_epochs", 0) + 1

    def __iter__(self):
        for i, s in enumerate(self.shots):
            yield i, tuple(min(j, len(s) - 1) for j in range(self.n))


@pytest.fixture
def plugin_registries(monkeypatch):
    mod = types.ModuleType("swap_plugin")

    @hookimpl
    def colocam_register_heads(registry):
        registry.add("fpn", lambda encoder_channels, **kw: FPNHead(encoder_channels))

    @hookimpl
    def colocam_register_losses(registry):
        registry.add("counting-coloc", CountingColoc)

    @hookimpl
    def colocam_register_samplers(registry):
        registry.add("first-frames", FirstFrames)

    mod.colocam_register_heads = colocam_register_heads
    mod.colocam_register_losses = colocam_register_losses
    mod.colocam_register_samplers = colocam_register_samplers
    pm = get_plugin_manager(autoload=False)
    pm.register(mod, name="swap_plugin")
    regs = build_registries(pm)
    monkeypatch.setattr("colocam_plugin.api._cache", regs)
    return regs


def test_components_swapped_by_name(plugin_registries, tmp_path):
    CALLS.clear()
    root = generate_synthyto(tmp_path / "d", SynthYTOConfig.tiny())
    shots = load_yto_v1(root, "train").shots
    n_frames = sum(len(s) for s in shots)
    clf = WGAPClassifier("resnet18", 10)
    cfg = Stage2Config(
        method="colocam",
        n_frames=2,
        epochs=1,
        batch_frames=4,
        image_size=64,
        resize=72,
        head="fpn",
        coloc_loss="counting-coloc",
        sampler="first-frames",
        use_crf=False,
    )
    ckpt = train_localizer(
        clf, shots, torch.rand(n_frames, 64, 64), tmp_path / "l.pt", config=cfg, progress=False
    )
    assert CALLS["head"] >= 1 and CALLS["coloc"] >= 1 and CALLS["sampler_epochs"] == 1
    assert ckpt["config"]["head"] == "fpn"
    assert any(k.startswith("head.decoder.") for k in ckpt["state_dict"])
    assert ckpt["history"][0]["steps"] == len(shots) * 2 // 4
