"""Built-in datasets, metrics and CoLo-CAM components.

Factories import their modules lazily so that building the registries stays
cheap (``colocam methods`` must not import torch models or scipy).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _videos(root: str | Path, split: str, **kw: Any) -> Any:
    from colocam_plugin.data.videos import load_videos

    return load_videos(root, split, **kw)


def _synthyto(
    root: str | Path | None,
    split: str,
    *,
    skip_unreadable: bool = False,
    preset: str = "default",
    **knobs: Any,
) -> Any:
    """Generate (once, cached by config hash) the synthetic set in the v1.0 layout, read it.

    ``preset`` names a design of :data:`~colocam_plugin.data.synthyto.PRESETS`
    (``"default"``, ``"adversarial"``); ``knobs`` are
    :class:`~colocam_plugin.data.synthyto.SynthYTOConfig` fields set on top.
    """
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
    from colocam_plugin.data.yto_v1 import load_yto_v1

    path = generate_synthyto(root, SynthYTOConfig.preset(preset, **knobs))
    ds = load_yto_v1(path, split, skip_unreadable=skip_unreadable)
    ds.name = "synthyto"
    return ds


@hookimpl
def colocam_register_datasets(registry: Registry[Any]) -> None:
    registry.add("yto-v1.0", _yto_v1, help="YouTube-Objects v1.0, original layout")
    registry.add("yto-v2.2", _yto_v2, help="YouTube-Objects v2.2, original layout")
    registry.add("wsol-splits", _wsol_splits, help="wsolevaluation metadata split files")
    registry.add("frames", _frames, help="your videos: shot folders + labels.csv")
    registry.add("videos", _videos, help="your video files: <split>/<class>/<name>.mp4")
    registry.add("synthyto", _synthyto, help="seeded synthetic YTO (v1.0 layout)")
    registry.add("realyto", _realyto, help="real photo cut-outs over real photos (v1.0 layout)")


def _box_metrics(
    *,
    thresholds: Any = 1000,
    num_classes: int | None = None,
    deltas: Sequence[int] = (30, 50, 70),
    **_context: Any,
) -> Any:
    """:class:`~colocam_plugin.metrics.BoxAccumulator`; other context keywords are ignored."""
    from colocam_plugin.metrics import BoxAccumulator

    return BoxAccumulator(thresholds=thresholds, num_classes=num_classes, deltas=deltas)


def _pxap(*, thresholds: int = 1000, num_bins: int | None = None, **_context: Any) -> Any:
    """:class:`~colocam_plugin.metrics.PxAPAccumulator`; ``num_bins`` defaults to ``thresholds``."""
    from colocam_plugin.metrics import PxAPAccumulator

    return PxAPAccumulator(num_bins=thresholds if num_bins is None else num_bins)


@hookimpl
def colocam_register_metrics(registry: Registry[Any]) -> None:
    registry.add("boxes", _box_metrics, help="CorLoc, MaxBoxAcc(V2), top-1/GT-known loc")
    registry.add("pxap", _pxap, help="pixel average precision (needs masks)")


def _localizer_cam(**kw: Any) -> Any:
    from colocam_plugin.cam.localizer import LocalizerCAM

    return LocalizerCAM(**kw)


@hookimpl
def colocam_register_cam_methods(registry: Registry[Any]) -> None:
    registry.add(
        "localizer", _localizer_cam, help="a trained stage-2 checkpoint (colocam/fcam/tcam)"
    )


def _unet(**kw: Any) -> Any:
    from colocam_plugin.models.heads import UNetHead

    return UNetHead(**kw)


@hookimpl
def colocam_register_heads(registry: Registry[Any]) -> None:
    registry.add("unet", _unet, help="smp UnetDecoder + 2-channel SegmentationHead (F-CAM)")


def _crf(**kw: Any) -> Any:
    from colocam_plugin.losses import CRFLoss

    return CRFLoss(**kw)


def _coloc(**kw: Any) -> Any:
    from colocam_plugin.losses import CoLocLoss

    return CoLocLoss(**kw)


@hookimpl
def colocam_register_losses(registry: Registry[Any]) -> None:
    registry.add("crf", _crf, help="per-frame dense CRF energy (bilateral grid)")
    registry.add("coloc", _coloc, help="multi-frame colour co-localization energy")


def _sequence_sampler(**kw: Any) -> Any:
    from colocam_plugin.data.sampler import FrameSequenceSampler

    return FrameSequenceSampler(**kw)


@hookimpl
def colocam_register_samplers(registry: Registry[Any]) -> None:
    registry.add("sequence", _sequence_sampler, help="n frames of one shot (METHOD.md)")


def _realyto(
    root: str | Path | None, split: str, *, skip_unreadable: bool = False, **knobs: Any
) -> Any:
    """Generate (once, cached) the real-photo set in the v1.0 layout, read it.

    ``knobs`` are :class:`~colocam_plugin.data.realyto.RealYTOConfig` fields.
    """
    from colocam_plugin.data.realyto import RealYTOConfig, generate_realyto
    from colocam_plugin.data.yto_v1 import load_yto_v1

    path = generate_realyto(root, RealYTOConfig(**knobs))
    ds = load_yto_v1(path, split, skip_unreadable=skip_unreadable)
    ds.name = "realyto"
    return ds
