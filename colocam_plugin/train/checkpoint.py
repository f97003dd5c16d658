"""Checkpoints: atomic writes, config and library versions recorded.

A checkpoint is a ``torch.save`` dict::

    {"kind": "classifier" | "localizer", "config": {...}, "state_dict": {...},
     "classes": [...], "epoch": int, "versions": {...}, "history": [...],
     "optimizer": {...}, "scheduler": {...}}

It is written through :func:`colocam_plugin.atomic.atomic_write` (a
temporary sibling, fsync, rename), so a crash never leaves a half-written
file: at most the work since the last checkpoint is lost.
"""

from __future__ import annotations

import hashlib
import logging
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from colocam_plugin.atomic import atomic_write
from colocam_plugin.errors import ColocamError

log = logging.getLogger("colocam_plugin.train")

__all__ = [
    "check_classes",
    "load_checkpoint",
    "resume",
    "save_checkpoint",
    "state_fingerprint",
    "versions",
]


def versions() -> dict[str, str]:
    """Versions of the libraries a result depends on."""
    import kornia
    import numpy
    import segmentation_models_pytorch as smp

    from colocam_plugin import __version__

    return {
        "colocam_plugin": __version__,
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
        "kornia": kornia.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (plus ``versions``) to ``path``."""
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        torch.save({**payload, "versions": versions()}, fh)
    return path


def load_checkpoint(path: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ColocamError: missing or unreadable file, or a checkpoint of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ColocamError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ColocamError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
        raise ColocamError(f"{path}: not a colocam checkpoint (no 'state_dict'/'config')")
    if kind is not None and ckpt.get("kind") != kind:
        raise ColocamError(f"{path}: expected a {kind} checkpoint, got {ckpt.get('kind')!r}")
    return ckpt


def check_classes(
    trained: Sequence[str], dataset: Sequence[str], *, checkpoint: str | Path, data: str
) -> None:
    """Refuse a checkpoint trained on other classes than the dataset's (same names, same order).

    A classifier's output index ``i`` means its ``classes[i]``; scoring or
    training it against labels that mean something else gives a confident,
    wrong number. Checkpoints from before the class list was stored (empty
    ``trained``) cannot be checked and pass.

    Raises:
        ColocamError: naming both files and showing both class lists.

    Examples:
        >>> check_classes(["cat", "dog"], ["cat", "dog"], checkpoint="c.pt", data="D")
        >>> check_classes(["cat", "dog"], ["dog", "cat"], checkpoint="c.pt", data="D")
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        colocam_plugin.errors.ColocamError: c.pt was trained on classes ['cat', 'dog'] but D ...
    """
    if trained and list(trained) != list(dataset):
        raise ColocamError(
            f"{checkpoint} was trained on classes {list(trained)} but {data} has "
            f"{list(dataset)}; use a checkpoint trained on this dataset's classes"
        )


def state_fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    """Short hash of a state dict (invalidates caches when a model changes)."""
    h = hashlib.sha1()
    for key in sorted(state_dict):
        h.update(key.encode())
        h.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def resume(
    path: Path, *, kind: str, config: dict[str, Any], epochs: int, states: dict[str, Any]
) -> tuple[dict[str, Any] | None, int, list[dict[str, Any]]]:
    """Continue from ``path`` when it holds a run of the same ``config``.

    ``states`` maps checkpoint keys to objects with ``load_state_dict``
    (``{"state_dict": model, "optimizer": opt, ...}``). A finished run loads
    only the model (``"state_dict"``) and is returned, so it is not trained
    again; an unfinished one loads every state.

    Returns:
        ``(finished checkpoint or None, first epoch to train, history)``.
    """
    if not path.is_file():
        return None, 0, []
    ckpt = load_checkpoint(path, kind=kind)
    if ckpt["config"] != config:
        return None, 0, []
    if ckpt["epoch"] >= epochs:
        states["state_dict"].load_state_dict(ckpt["state_dict"])
        log.info("%s is complete (epoch %d); not training again", path, ckpt["epoch"])
        return ckpt, ckpt["epoch"], ckpt["history"]
    for key, obj in states.items():
        obj.load_state_dict(ckpt[key])
    log.info("resuming %s at epoch %d", path, ckpt["epoch"])
    return None, ckpt["epoch"], ckpt["history"]
