"""Stage-2 localizer: frozen classifier + trainable head (F-CAM / CoLo-CAM).

The classifier's features are detached and its BatchNorm stays in eval mode
whatever ``train()`` is called with (METHOD.md, stage 2). The CAM of a frame
is ``softmax(logits)[:, 1]`` at input resolution.
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

    def __init__(self, classifier: WGAPClassifier, head: nn.Module) -> None:
        super().__init__()
        self.checkpoint_config = {}
        self.classifier = classifier
        self.head = head
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
            feats = self.classifier.features(images)
            class_logits = self.classifier.classify(feats)
        seg = self.head([f.detach() for f in feats])
        if seg.shape[-2:] != images.shape[-2:]:
            seg = nn.functional.interpolate(
                seg, size=images.shape[-2:], mode="bilinear", align_corners=False
            )
        return seg, class_logits

    def cams(self, images: torch.Tensor) -> torch.Tensor:
        """Foreground probability maps (B, H, W) in [0, 1]."""
        seg, _ = self(images)
        return seg.softmax(1)[:, 1]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.head.parameters() if p.requires_grad]
