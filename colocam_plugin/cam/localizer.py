"""CAMs of a trained stage-2 localizer (CoLo-CAM, F-CAM, TCAM) as a CAM method.

So that every method shares one evaluation path, a stage-2 checkpoint is
wrapped in the same contract as the grad-cam baselines. The classifier the
harness passes in is ignored: the checkpoint holds its own frozen copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from colocam_plugin.cam.base import CAMOutput
from colocam_plugin.errors import ShapeError

if TYPE_CHECKING:
    from colocam_plugin.models.localizer import Localizer

__all__ = ["LocalizerCAM"]


class LocalizerCAM:
    """``softmax(head(features))[:, fg]`` of a trained localizer.

    Args:
        checkpoint: stage-2 checkpoint path.
        device: where the localizer runs.
        name: display name (default: the checkpoint's method, e.g. ``"colocam"``).
    """

    def __init__(
        self, checkpoint: str | Path, *, device: str | torch.device = "cpu", name: str | None = None
    ) -> None:
        from colocam_plugin.train.stage2 import load_localizer

        self.localizer = load_localizer(checkpoint, device=device)
        self.name = name or str(self.localizer.checkpoint_config["method"])
        #: the classes its frozen classifier was trained on ([] if not recorded)
        self.classes: list[str] = list(getattr(self.localizer, "classes", []))

    @classmethod
    def from_model(cls, localizer: Localizer, *, name: str = "localizer") -> LocalizerCAM:
        """Wrap a live localizer (e.g. one in training, for a validation curve)."""
        self = cls.__new__(cls)
        self.localizer = localizer
        self.name = name
        self.classes = []
        return self

    @torch.no_grad()
    def __call__(
        self, model: nn.Module | None, images: torch.Tensor, targets: torch.Tensor | None = None
    ) -> CAMOutput:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        seg, logits = self.localizer(images)
        return CAMOutput(seg.softmax(1)[:, 1], logits)
