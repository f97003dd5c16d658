"""Stage-1 frame classifier: an smp encoder + WGAP head (pool -> Linear).

It follows the :class:`colocam_plugin.cam.base.Classifier` protocol:
``target_layer`` is an identity tap on the last feature map (gradient-based
CAM methods hook it) and ``head`` is the linear layer after global average
pooling (plain CAM reads its weights). Inputs are RGB frames in 0..255;
ImageNet normalisation happens inside (buffers), so losses and CAM methods
see the same pixel scale as METHOD.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from colocam_plugin.errors import ColocamError, ShapeError

__all__ = ["WGAPClassifier", "build_encoder"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def build_encoder(
    name: str, *, output_stride: int = 32, weights: str | Path | None = None, depth: int = 5
) -> nn.Module:
    """An smp encoder, randomly initialised or loaded from a LOCAL weights file.

    Args:
        name: smp encoder name (``"resnet18"``, ``"resnet50"``, ``"mobilenet_v2"``...).
        output_stride: 32 (default), 16 or 8 (the paper's setting: dilated
            last stages).
        weights: path to a ``state_dict`` of the encoder (a ``.pth``/``.pt``
            file). Nothing is ever downloaded.
    """
    from segmentation_models_pytorch.encoders import get_encoder, get_encoder_names

    if name not in get_encoder_names():
        raise ColocamError(
            f"unknown encoder {name!r}; smp knows e.g. resnet18, resnet50, mobilenet_v2 "
            "(segmentation_models_pytorch.encoders.get_encoder_names() lists all)"
        )
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    encoder = get_encoder(name, weights=None, depth=depth, output_stride=output_stride)
    if weights is not None:
        from colocam_plugin.models.pretrained import read_weights_file

        path = Path(weights)
        state = read_weights_file(path, "encoder weights file not found")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
        # nn.Module's own method: smp encoders override load_state_dict
        try:
            missing, unexpected = nn.Module.load_state_dict(encoder, state, strict=False)
        except RuntimeError as exc:  # shape mismatch
            first = str(exc).strip().splitlines()[-1].strip()
            raise ColocamError(f"{path}: weights do not fit encoder {name!r}: {first}") from None
        if missing:
            raise ColocamError(
                f"{path}: weights do not fit encoder {name!r}: missing {len(missing)} keys "
                f"(e.g. {missing[0]!r}); unexpected {len(unexpected)}"
            )
    return encoder


class WGAPClassifier(nn.Module):
    """Encoder -> last feature map -> global average pool -> Linear.

    Args:
        encoder_name: smp encoder name.
        num_classes: number of classes.
        output_stride: encoder output stride (8 in the paper).
        weights: optional local encoder weights file.
        pretrained: name of an offline pretrained backbone
            (:data:`colocam_plugin.models.pretrained.PRETRAINED`, e.g.
            ``"efficientnet-lite0"``): sets the encoder, its weights and the
            input normalisation those weights expect.
        input_mean, input_std: per-channel normalisation on 0..255
            (default ImageNet's).

    Shape:
        - Input: ``(B, 3, H, W)`` float RGB in 0..255, H and W divisible by 32.
        - Output: logits ``(B, num_classes)``.

    Examples:
        >>> model = WGAPClassifier("resnet18", num_classes=3)
        >>> model(torch.rand(2, 3, 64, 64) * 255).shape
        torch.Size([2, 3])
    """

    mean: torch.Tensor
    std: torch.Tensor
    #: an smp encoder (out_channels, get_stages(): not in nn.Module's type)
    encoder: Any
    #: class names and training config, set when loaded from a checkpoint
    classes: list[str]
    checkpoint_config: dict[str, Any]

    def __init__(
        self,
        encoder_name: str = "resnet18",
        num_classes: int = 10,
        *,
        output_stride: int = 32,
        weights: str | Path | None = None,
        pretrained: str | None = None,
        input_mean: tuple[float, float, float] | None = None,
        input_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        state = None
        if pretrained is not None:
            if weights is not None:
                raise ValueError("give either weights= (a file) or pretrained= (a name), not both")
            from colocam_plugin.models.pretrained import PRETRAINED, pretrained_encoder_state

            encoder_name, state = pretrained_encoder_state(pretrained)
            spec = PRETRAINED[pretrained]
            input_mean = input_mean or spec.input_mean
            input_std = input_std or spec.input_std
        mean = tuple(input_mean or (m * 255.0 for m in _MEAN))
        std = tuple(input_std or (s * 255.0 for s in _STD))
        self.config: dict[str, Any] = {
            "encoder_name": encoder_name,
            "num_classes": num_classes,
            "output_stride": output_stride,
            "input_mean": list(mean),
            "input_std": list(std),
        }
        self.classes = []
        self.checkpoint_config = {}
        self.encoder = build_encoder(encoder_name, output_stride=output_stride, weights=weights)
        if state is not None:
            nn.Module.load_state_dict(self.encoder, state, strict=True)
        self.target_layer = nn.Identity()
        self.head = nn.Linear(self.encoder.out_channels[-1], num_classes)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WGAPClassifier:
        """An untrained classifier of the architecture a checkpoint's ``config`` records."""
        return cls(
            config["encoder_name"],
            config["num_classes"],
            output_stride=config["output_stride"],
            input_mean=config.get("input_mean"),
            input_std=config.get("input_std"),
        )

    @property
    def encoder_channels(self) -> list[int]:
        """Channels of each feature map :meth:`features` returns."""
        return list(self.encoder.out_channels)

    def _check(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        for side, v in (("height", h), ("width", w)):
            if v % 32:
                fix = (v // 32 + 1) * 32
                raise ShapeError(f"images: {side} {v} not divisible by 32; resize or pad to {fix}")

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Multi-scale encoder features (the decoder's input); last one tapped."""
        self._check(images)
        feats = list(self.encoder((images - self.mean) / self.std))
        feats[-1] = self.target_layer(feats[-1])
        return feats

    def classify(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Logits from the features :meth:`features` returned."""
        return self.head(feats[-1].mean(dim=(2, 3)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(images))
