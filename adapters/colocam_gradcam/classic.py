"""Classic CAM from the pooled linear head, in torch (grad-cam lacks it).

Zhou et al., "Learning Deep Features for Discriminative Localization",
CVPR 2016, https://arxiv.org/abs/1512.04150.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from colocam_gradcam.pipeline import CAMPipeline
from colocam_plugin.errors import ShapeError

__all__ = ["ClassicCAM"]


class ClassicCAM(CAMPipeline):
    """CAM, https://arxiv.org/abs/1512.04150: ``CAM_c = sum_k w_ck A_k``.

    ``A`` is the output of ``model.target_layer`` ``(B, K, h, w)`` and ``w``
    the weight ``(num_classes, K)`` of ``model.head`` (the ``nn.Linear``
    after global average pooling). No ReLU and no bias (a constant shift that
    the min-max normalisation removes). One forward pass, no backward; the
    maps are differentiable w.r.t. the input and the parameters when the
    caller's grad mode is on. Takes no options.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.features = nn.Conv2d(3, 4, 3, padding=1)
        ...         self.target_layer = nn.Identity()
        ...         self.head = nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         a = self.target_layer(self.features(x))
        ...         return self.head(a.mean(dim=(2, 3)))
        >>> out = ClassicCAM()(Net(), torch.rand(2, 3, 8, 8))
        >>> tuple(out.cams.shape), tuple(out.logits.shape)
        ((2, 8, 8), (2, 2))
    """

    name = "cam"

    def compute_raw(
        self,
        model: nn.Module,
        target_layer: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Linear):
            raise TypeError(
                f"cam: the model needs a `head` nn.Linear after global average pooling, "
                f"got {type(head).__name__}"
            )
        captured: list[torch.Tensor] = []

        def keep(_module: nn.Module, _args: Any, output: torch.Tensor) -> None:
            captured.append(output)

        handle = target_layer.register_forward_hook(keep)
        try:
            logits = model(images)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise RuntimeError(
                f"cam: model.target_layer ran {len(captured)} times in one forward pass; "
                "expected exactly once"
            )
        feats = captured[0]
        if feats.ndim != 4 or feats.shape[1] != head.in_features:
            raise ShapeError(
                f"cam: target_layer output must be (B, {head.in_features}, h, w) to match "
                f"head.in_features, got {tuple(feats.shape)}"
            )
        if targets is None:
            targets = logits.detach().argmax(dim=1).cpu()
        weights = head.weight[targets.to(head.weight.device)]  # (B, K)
        raw = torch.einsum("bk,bkhw->bhw", weights.to(feats.dtype), feats)
        return raw, logits
