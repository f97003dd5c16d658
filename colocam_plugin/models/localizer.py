"""Stage-2 localizer: frozen classifier + trainable head (F-CAM / CoLo-CAM).

The classifier's features are detached and its BatchNorm stays in eval mode
whatever ``train()`` is called with (METHOD.md, stage 2). The CAM of a frame
is ``softmax(logits)[:, 1]`` at input resolution.

The head and the frozen classifier run in ``channels_last`` memory format:
oneDNN's CPU convolutions (and cuDNN's under AMP) are faster in it. On 2 CPU
cores the U-Net head's forward + backward on 32 frames at 128 px took 3.5 s
instead of 5.0 s; the frozen EfficientNet-Lite0 at output stride 8 (the
largest part of a 16x16-CAM step) 1.68 s instead of 2.13 s under bf16, 2.23 s
instead of 3.21 s in float32 (interleaved medians, loaded machine;
``benchmarks/bench_step.py`` times the whole step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from colocam_plugin.models.classifier import WGAPClassifier

__all__ = ["Localizer"]


class Localizer(nn.Module):
    """Frozen ``classifier`` + trainable ``head`` (any registered head).

    Args:
        classifier: trained stage-1 classifier; frozen here.
        head: module mapping the classifier's feature list to (B, 2, H, W) logits.
    """

    #: training config, set when loaded from a checkpoint
    checkpoint_config: dict[str, Any]
    #: class names of the frozen classifier, set when loaded from a checkpoint
    classes: list[str]

    def __init__(self, classifier: WGAPClassifier, head: nn.Module) -> None:
        super().__init__()
        self.checkpoint_config = {}
        self.classes = list(getattr(classifier, "classes", []))
        self.classifier = classifier.to(memory_format=torch.channels_last)
        self.head = head.to(memory_format=torch.channels_last)
        for p in self.classifier.parameters():
            p.requires_grad_(False)
        self.classifier.eval()

    def train(self, mode: bool = True) -> Localizer:
        super().train(mode)
        self.classifier.eval()  # frozen: BatchNorm statistics never move
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(seg_logits (B, 2, H, W), class_logits (B, C))``."""
        with torch.no_grad():
            feats = self.classifier.features(images.contiguous(memory_format=torch.channels_last))
            class_logits = self.classifier.classify(feats)
        return self.decode(feats, images.shape[-2:]), class_logits

    def decode(self, feats: list[torch.Tensor], size: torch.Size | tuple[int, int]) -> torch.Tensor:
        """The head's (B, 2, H, W) logits at ``size`` from the classifier's features."""
        seg = self.head([f.detach().contiguous(memory_format=torch.channels_last) for f in feats])
        if seg.shape[-2:] != tuple(size):
            seg = nn.functional.interpolate(seg, size=size, mode="bilinear", align_corners=False)
        return seg.contiguous()

    def cams(self, images: torch.Tensor) -> torch.Tensor:
        """Foreground probability maps (B, H, W) in [0, 1]."""
        seg, _ = self(images)
        return seg.softmax(1)[:, 1]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.head.parameters() if p.requires_grad]
