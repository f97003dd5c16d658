"""Localization heads: decoders from the classifier's features to CAM logits.

The default is F-CAM's architecture: smp's ``UnetDecoder`` + a 2-channel
``SegmentationHead`` (imported, never vendored). Heads are registered through
``colocam_register_heads``, so a plugin can swap in another smp decoder (FPN,
...) without touching the core.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["UNetHead"]


class UNetHead(nn.Module):
    """smp ``UnetDecoder`` + ``SegmentationHead`` producing (B, 2, H, W) logits.

    Args:
        encoder_channels: channels of the encoder's feature list (smp's
            ``encoder.out_channels``, input image included).
        decoder_channels: channels of the five decoder blocks (smp default).
        classes: output channels (2: background, foreground).

    Examples:
        >>> head = UNetHead([3, 64, 64, 128, 256, 512], decoder_channels=(32, 16, 8, 8, 4))
        >>> feats = [torch.rand(1, c, 64 // 2**i, 64 // 2**i)
        ...          for i, c in enumerate([3, 64, 64, 128, 256, 512])]
        >>> head(feats).shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        *,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        classes: int = 2,
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.base import SegmentationHead
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder

        self.decoder = UnetDecoder(
            encoder_channels=list(encoder_channels),
            decoder_channels=list(decoder_channels),
            n_blocks=len(decoder_channels),
        )
        self.segmentation_head = SegmentationHead(decoder_channels[-1], classes, kernel_size=3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.segmentation_head(self.decoder(features))
