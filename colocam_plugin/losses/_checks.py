"""Input checks shared by the loss modules (shape strings, matching sizes)."""

from __future__ import annotations

import torch

from colocam_plugin.errors import ShapeError

__all__ = ["check_float", "check_ndim", "check_same_spatial"]


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def check_ndim(t: object, name: str, layout: str) -> torch.Tensor:
    """Raise ShapeError unless ``t`` is a tensor with as many dims as ``layout``.

    ``layout`` is the dims' names separated by ", ", e.g. ``"B, K, H, W"``.
    """
    if not isinstance(t, torch.Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor ({layout}), got {type(t).__name__}")
    ndim = len(layout.split(", "))
    if t.ndim != ndim:
        raise ShapeError(f"{name}: expected ({layout}), got {_shape(t)}")
    return t


def check_float(t: torch.Tensor, name: str) -> None:
    """Raise ShapeError unless ``t`` has a floating-point dtype."""
    if not t.is_floating_point():
        raise ShapeError(f"{name}: expected a floating-point tensor, got dtype {t.dtype}")


def check_same_spatial(
    a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str, dims: int
) -> None:
    """Raise ShapeError unless ``a`` and ``b`` agree on their leading and last ``dims`` sizes.

    The leading sizes (all but the channel dim just before the last ``dims``) and
    the trailing spatial sizes must match; the channel dim is free.
    """
    lead_a, lead_b = _shape(a)[: -dims - 1], _shape(b)[: -dims - 1]
    tail_a, tail_b = _shape(a)[-dims:], _shape(b)[-dims:]
    if lead_a != lead_b or tail_a != tail_b:
        raise ShapeError(
            f"{b_name}: expected the batch and spatial sizes of {a_name} {_shape(a)}, "
            f"got {_shape(b)}"
        )
    if a.device != b.device:
        raise ShapeError(f"{b_name}: expected device {a.device} like {a_name}, got {b.device}")
