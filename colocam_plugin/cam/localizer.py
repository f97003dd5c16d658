"""CAMs of a trained stage-2 localizer (CoLo-CAM, F-CAM, TCAM) as a CAM method.

So that every method shares one evaluation path, a stage-2 checkpoint is
wrapped in the same contract as the grad-cam baselines. The classifier the
harness passes in is ignored: the checkpoint holds its own frozen copy, and
one pass of its encoder feeds both the classifier head (the logits) and the
decoder (the CAM) (:meth:`~colocam_plugin.models.localizer.Localizer.forward`).

For inference (``colocam localize``) the wrapper can run the whole network in
``channels_last`` memory format and under autocast (``amp``: bf16 where the
device has fast bf16 kernels); the CAM and the logits come back in float32
either way. The defaults (``amp="none"``, ``channels_last=False``) keep the
evaluation path exactly as trained.
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

__all__ = ["AMP_MODES", "LocalizerCAM"]

#: values of ``amp``: see :func:`colocam_plugin.train.precision.amp_dtype`
AMP_MODES: tuple[str, ...] = ("auto", "bf16", "none")


class LocalizerCAM:
    """``softmax(head(features))[:, fg]`` of a trained localizer.

    Args:
        checkpoint: stage-2 checkpoint path.
        device: where the localizer runs.
        name: display name (default: the checkpoint's method, e.g. ``"colocam"``).
        amp: ``"none"`` (float32, default), ``"bf16"`` or ``"auto"`` (bf16 on
            CUDA with bf16 and on CPUs with AVX-512-bf16/AMX kernels): the
            autocast dtype of the encoder and decoder. The softmax, the CAM
            and the logits are float32.
        channels_last: convert the whole localizer (encoder included) and its
            input to ``channels_last`` (faster oneDNN/cuDNN convolutions;
            results equal to float tolerance).

    Raises:
        ValueError: an unknown ``amp`` mode.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str | torch.device = "cpu",
        name: str | None = None,
        amp: str = "none",
        channels_last: bool = False,
    ) -> None:
        from colocam_plugin.train.stage2 import load_localizer

        if amp not in AMP_MODES:
            raise ValueError(f"amp: expected one of {', '.join(AMP_MODES)}, got {amp!r}")
        self.localizer = load_localizer(checkpoint, device=device)
        #: the file it was read from (None for a live model)
        self.checkpoint: Path | None = Path(checkpoint)
        self.name = name or str(self.localizer.checkpoint_config["method"])
        #: the classes its frozen classifier was trained on ([] if not recorded)
        self.classes: list[str] = list(getattr(self.localizer, "classes", []))
        self.amp = amp
        self.channels_last = channels_last
        if channels_last:
            self.localizer.to(memory_format=torch.channels_last)

    @classmethod
    def from_model(cls, localizer: Localizer, *, name: str = "localizer") -> LocalizerCAM:
        """Wrap a live localizer (e.g. one in training, for a validation curve); never mutated."""
        self = cls.__new__(cls)
        self.localizer = localizer
        self.checkpoint = None
        self.name = name
        self.classes = []
        self.amp = "none"
        self.channels_last = False
        return self

    @torch.no_grad()
    def __call__(
        self, model: nn.Module | None, images: torch.Tensor, targets: torch.Tensor | None = None
    ) -> CAMOutput:
        """CAMs ``(B, H, W)`` float32 in [0, 1] and logits ``(B, C)`` float32 of ``images``.

        ``model`` and ``targets`` are ignored: the CAM is the localizer's
        foreground map whatever the class, the logits its frozen classifier's.
        """
        from colocam_plugin.train.precision import autocast

        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.amp, images.device):
            seg, logits = self.localizer(images)
        return CAMOutput(seg.float().softmax(1)[:, 1], logits.float())
