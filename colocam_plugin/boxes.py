"""Box geometry shared by the data readers and the metrics (no other imports)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["resize_bbox"]


def resize_bbox(
    box: Sequence[float], image_size: Sequence[float], resize_size: Sequence[float]
) -> tuple[int, int, int, int]:
    """Rescale an ``[x0, y0, x1, y1]`` box between image sizes, truncating with ``int()``.

    Sizes are ``(width, height)``, as in wsolevaluation: that convention is
    the one that reproduces its fixture
    ``resize_bbox((1, 2, 4, 3), (10, 20), (35, 10)) == (3, 1, 14, 1)``
    (``(height, width)`` would give ``(0, 3, 2, 7)``).

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels of the source image.
        image_size: source ``(width, height)``.
        resize_size: target ``(width, height)``.

    Returns:
        ``(x0, y0, x1, y1)`` ints in the target grid.

    Examples:
        >>> resize_bbox((1, 2, 4, 3), (10, 20), (35, 10))
        (3, 1, 14, 1)
    """
    if len(box) != 4 or len(image_size) != 2 or len(resize_size) != 2:
        raise ValueError("resize_bbox: expected box (x0, y0, x1, y1) and sizes (width, height)")
    x0, y0, x1, y1 = map(float, box)
    w, h = map(float, image_size)
    nw, nh = map(float, resize_size)
    if w <= 0 or h <= 0:
        raise ValueError(f"resize_bbox: image_size must be positive, got {tuple(image_size)}")
    return int(x0 * nw / w), int(y0 * nh / h), int(x1 * nw / w), int(y1 * nh / h)
