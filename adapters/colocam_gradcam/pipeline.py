"""Template-method base of every CAM method of this plugin.

:meth:`CAMPipeline.__call__` runs the same steps for every method::

    check inputs -> (model in eval mode, state preserved) compute_raw
    -> upsample (bilinear) to the input's H, W -> per-frame min-max
    -> CAMOutput(float32 cams on images.device, detached logits)

A method overrides :meth:`CAMPipeline.compute_raw` only (the grad-cam family
overrides one smaller step of its own, see :mod:`colocam_gradcam.gradcam`).
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from colocam_gradcam.guard import preserved_model_state
from colocam_plugin.cam.base import CAMOutput
from colocam_plugin.errors import ShapeError

__all__ = ["CAMPipeline", "method_factory", "normalize_per_frame", "upsample_maps"]


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, h, w)`` maps to ``(B, *size)``.

    ``align_corners=False`` (pixel centres), differentiable; a no-op when the
    maps already have ``size``.

    Examples:
        >>> upsample_maps(torch.ones(2, 4, 4), (8, 8)).shape
        torch.Size([2, 8, 8])
    """
    if maps.ndim != 3:
        raise ShapeError(f"maps: expected (B, h, w), got {tuple(maps.shape)}")
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def normalize_per_frame(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each frame of ``(B, H, W)`` maps to ``[0, 1]``.

    A frame that is constant (range below 4 float eps of its magnitude) or
    holds a NaN/inf becomes all zeros. Differentiable where the range is
    non-zero.

    Examples:
        >>> m = torch.tensor([[[1.0, 3.0]], [[2.0, 2.0]], [[0.0, float("nan")]]])
        >>> normalize_per_frame(m).tolist()
        [[[0.0, 1.0]], [[0.0, 0.0]], [[0.0, 0.0]]]
    """
    if maps.ndim != 3:
        raise ShapeError(f"maps: expected (B, H, W), got {tuple(maps.shape)}")
    flat = maps.flatten(1)
    finite = torch.isfinite(flat).all(dim=1, keepdim=True)
    flat = torch.where(finite, flat, torch.zeros_like(flat))
    low = flat.amin(dim=1, keepdim=True)
    high = flat.amax(dim=1, keepdim=True)
    span = high - low
    scale = torch.maximum(low.abs(), high.abs())
    eps = torch.finfo(flat.dtype).eps if flat.is_floating_point() else 0.0
    ok = finite & (span > 0) & (span > 4 * eps * scale)
    out = (flat - low) / torch.where(ok, span, torch.ones_like(span))
    out = torch.where(ok, out, torch.zeros_like(out)).clamp(0.0, 1.0)
    return out.view_as(maps)


def _check_images(images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images: expected a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[0] == 0 or min(images.shape[-2:]) == 0:
        raise ShapeError(
            f"images: expected (B, C, H, W) with B, H, W > 0, got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ShapeError(f"images: expected a floating-point tensor, got {images.dtype}")
    return images


def _check_targets(
    targets: torch.Tensor | Sequence[int] | None, batch: int, num_classes: int | None
) -> torch.Tensor | None:
    if targets is None:
        return None
    t = torch.as_tensor(targets)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ShapeError(f"targets: expected integer class indices, got dtype {t.dtype}")
    if t.shape != (batch,):
        raise ShapeError(
            f"targets: expected ({batch},) class indices (one per image), got {tuple(t.shape)}"
        )
    t = t.long().cpu()
    bad = (t < 0) | (t >= num_classes) if num_classes is not None else t < 0
    if bool(bad.any()):
        upper = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"targets: class indices must be in {upper}, got {t.tolist()}")
    return t


def _target_layer(model: nn.Module, method: str) -> nn.Module:
    layer = getattr(model, "target_layer", None)
    if not isinstance(layer, nn.Module):
        raise TypeError(
            f"{method}: the model needs a `target_layer` nn.Module (the module whose output "
            "is the last feature map; see colocam_plugin.cam.base.Classifier), "
            f"got {type(layer).__name__}"
        )
    return layer


def _num_classes(model: nn.Module) -> int | None:
    head = getattr(model, "head", None)
    return head.out_features if isinstance(head, nn.Linear) else None


class CAMPipeline(abc.ABC):
    """Base of the CAM methods: runs the pipeline, subclasses compute raw maps.

    Guarantees of every ``method(model, images, targets)`` call:

    * ``cams``: ``(B, H, W)`` float32 in ``[0, 1]`` on ``images.device``;
      each frame min-max normalised, constant or non-finite frames are zeros.
    * ``logits``: ``(B, num_classes)``, detached, on ``images.device``, from
      the model in eval mode (the forward pass the CAM used).
    * the model runs in eval mode during the call; afterwards every
      submodule's ``training`` flag, every parameter's ``.grad`` (same tensor
      object, same values) and ``requires_grad`` are as before, also when the
      call raises; BatchNorm statistics are not updated.
    * no hook stays registered on any module.
    * works under ``torch.no_grad()`` and with frozen parameters.

    Args of a call:
        model: a :class:`colocam_plugin.cam.base.Classifier`.
        images: ``(B, C, H, W)`` float tensor.
        targets: ``(B,)`` integer class indices; ``None`` = top-1 class.
    """

    #: registry name of the method
    name: ClassVar[str] = ""

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | Sequence[int] | None = None,
    ) -> CAMOutput:
        images = _check_images(images)
        layer = _target_layer(model, self.name)
        target_idx = _check_targets(targets, images.shape[0], _num_classes(model))
        with preserved_model_state(model):
            model.eval()
            raw, logits = self.compute_raw(model, layer, images, target_idx)
        if raw.ndim != 3 or raw.shape[0] != images.shape[0]:
            raise ShapeError(
                f"{self.name}: raw maps must be ({images.shape[0]}, h, w), got {tuple(raw.shape)}"
            )
        cams = upsample_maps(raw.to(images.device), (images.shape[-2], images.shape[-1]))
        cams = normalize_per_frame(cams.float())
        return CAMOutput(cams, logits.detach().to(images.device))

    @abc.abstractmethod
    def compute_raw(
        self,
        model: nn.Module,
        target_layer: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return raw maps ``(B, h, w)`` (any resolution) and logits ``(B, K)``.

        Called with the model in eval mode inside the state guard; ``targets``
        is ``(B,)`` long on CPU, or ``None`` for the top-1 class.
        """

    def options(self) -> dict[str, Any]:
        """The creation keyword arguments of this instance (for ``repr``)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


def method_factory(name: str, cls: type[CAMPipeline]) -> Callable[..., CAMPipeline]:
    """A registry factory for ``cls`` whose errors name the method ``name``.

    Unknown keyword arguments raise ``TypeError`` listing the accepted ones.
    """
    accepted = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]

    def factory(**kwargs: Any) -> CAMPipeline:
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise TypeError(
                f"CAM method {name!r} got unknown keyword argument(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(accepted) or '(none)'}"
            )
        return cls(**kwargs)

    factory.__name__ = f"create_{name}"
    factory.__doc__ = cls.__doc__
    return factory
