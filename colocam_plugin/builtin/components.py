"""Built-in datasets, metrics and CoLo-CAM components.

Factories import their modules lazily so that building the registries stays
cheap (``colocam methods`` must not import torch models or scipy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from colocam_plugin import hookimpl
from colocam_plugin.registry import Registry


def _yto_v1(root: str | Path, split: str, **kw: Any) -> Any:
    from colocam_plugin.data.yto_v1 import load_yto_v1

    return load_yto_v1(root, split, **kw)


def _yto_v2(root: str | Path, split: str, **kw: Any) -> Any:
    from colocam_plugin.data.yto_v2 import load_yto_v2

    return load_yto_v2(root, split, **kw)


def _wsol_splits(root: str | Path, split: str, **kw: Any) -> Any:
    from colocam_plugin.data.wsol_splits import load_wsol_splits

    return load_wsol_splits(root, split, **kw)


def _frames(root: str | Path, split: str, **kw: Any) -> Any:
    from colocam_plugin.data.frames import load_frames

    return load_frames(root, split, **kw)


def _synthyto(root: str | Path | None, split: str, **kw: Any) -> Any:
    """Generate (once, cached) the synthetic set in the v1.0 layout, then read it."""
    from colocam_plugin.data.synthyto import ensure_synthyto

    return ensure_synthyto(root, split, **kw)


@hookimpl
def colocam_register_datasets(registry: Registry[Any]) -> None:
    registry.add("yto-v1.0", _yto_v1, help="YouTube-Objects v1.0, original layout")
    registry.add("yto-v2.2", _yto_v2, help="YouTube-Objects v2.2, original layout")
    registry.add("wsol-splits", _wsol_splits, help="wsolevaluation metadata split files")
    registry.add("frames", _frames, help="your videos: shot folders + labels.csv")
    registry.add("synthyto", _synthyto, help="seeded synthetic YTO (v1.0 layout)")


def _box_metrics(**kw: Any) -> Any:
    from colocam_plugin.metrics import BoxAccumulator

    return BoxAccumulator(**kw)


def _pxap(**kw: Any) -> Any:
    from colocam_plugin.metrics import PxAPAccumulator

    return PxAPAccumulator(**kw)


@hookimpl
def colocam_register_metrics(registry: Registry[Any]) -> None:
    registry.add("boxes", _box_metrics, help="CorLoc, MaxBoxAcc(V2), top-1/GT-known loc")
    registry.add("pxap", _pxap, help="pixel average precision (needs masks)")
