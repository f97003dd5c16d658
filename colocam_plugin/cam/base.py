"""The CAM-method contract of the shared harness.

A CAM method is created by name (``create_cam_method("layercam")``) and then
called on a classifier and a batch of frames::

    out = method(model, images, targets)      # CAMOutput
    out.cams    # (B, H, W) float in [0, 1], on images.device, H, W of images
    out.logits  # (B, num_classes) class logits of the classifier

``targets`` is ``(B,)`` long class indices; ``None`` means the top-1 class.

The classifier follows the :class:`Classifier` protocol: a module whose
``forward`` returns logits, with ``target_layer`` (the module whose output is
the last feature map, for gradient-based methods) and ``head`` (the
``nn.Linear`` after global average pooling, for plain CAM).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["CAMMethod", "CAMOutput", "Classifier"]


class CAMOutput(NamedTuple):
    """CAMs ``(B, H, W)`` in ``[0, 1]`` and logits ``(B, num_classes)``."""

    cams: torch.Tensor
    logits: torch.Tensor


@runtime_checkable
class Classifier(Protocol):
    """What the harness needs from a frame classifier."""

    target_layer: nn.Module
    head: nn.Linear

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class CAMMethod(Protocol):
    """Callable that turns frames into CAMs; see the module docstring."""

    name: str

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> CAMOutput: ...
