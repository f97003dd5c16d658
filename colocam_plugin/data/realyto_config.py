"""RealYTO's configuration: every knob and the generator version.

Kept apart from the generator (:mod:`colocam_plugin.data.realyto`) so that the
source loader (:mod:`colocam_plugin.data.realyto_sources`) can import it
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from colocam_plugin.data.realyto_sources import (
    OBJECTS,
)
from colocam_plugin.data.yto_writer import (
    config_hash,
)

MANIFEST = "realyto.json"
FRAME_TABLE = "realyto_frames.jsonl"
#: Bumped whenever the pixels change for an unchanged config (invalidates caches).
GENERATOR_VERSION = 1
#: Named in the box files' header. Version 1 trees were written with SynthYTO's
#: name there; it is part of their bytes, so change it only with GENERATOR_VERSION.
_STICKS_WRITER = "synthyto"


@dataclass(frozen=True)
class RealYTOConfig:
    """Every knob of the generator (the defaults are the benchmark's realism set).

    Sizes are fractions of the frame's shorter side; ranges are ``(low, high)``
    drawn uniformly.

    Attributes:
        seed: master seed; same config (and same sources) -> byte-identical tree.
        classes: object classes, names of :data:`OBJECTS` (YouTube-Objects names).
        train_videos_per_class: videos listed in ``sets/train.txt`` (>= 1).
        test_videos_per_class: videos listed in ``sets/test.txt`` (>= 0).
        shots_per_video: shot folders per video (>= 1).
        frames_per_shot: frames per shot (>= 2).
        frame_size: ``(W, H)`` pixels, each >= 32.
        annotate_every: frame ``i`` of a shot is annotated when
            ``i % annotate_every == offset`` (random offset per shot) and the
            object is visible; train videos give val frames, test videos test.
        object_size: object size (square root of its box area at the shot's
            start), fraction of the shorter side.
        scale_drift: the object's size changes by a factor in
            ``[1/(1+d), 1+d]`` across a shot.
        max_rotation: the object's in-plane angle stays within +- this, degrees.
        partial_view: half of the shots trim one side of the object by up to
            this share of its extent (a partial view of it).
        colour_jitter: per-shot brightness, saturation and white-balance change
            of the object (max relative change).
        exit_prob: chance a shot's object enters late or leaves early (frames
            without it keep the video's label, as in YTO).
        distractor_prob: chance a non-class object (a cup, a person) moves
            behind the object.
        camera_pan: background window travel across a shot, fraction of the window.
        illumination_drift: global brightness change across a shot (max relative).
        noise_std: sensor noise, standard deviation on 0..255.
        min_box_pixels: the object gets a box only with at least this many
            visible pixels; a frame is annotated only if it does.
        jpeg_quality: JPEG quality (4:4:4 chroma).
        write_masks: write ``frameNNNN.jpg_mask.png`` beside annotated frames.
    """

    seed: int = 0
    classes: tuple[str, ...] = ("cat", "horse", "motorbike")
    train_videos_per_class: int = 8
    test_videos_per_class: int = 3
    shots_per_video: int = 2
    frames_per_shot: int = 18
    frame_size: tuple[int, int] = (160, 120)
    annotate_every: int = 3
    object_size: tuple[float, float] = (0.45, 0.75)
    scale_drift: float = 0.3
    max_rotation: float = 8.0
    partial_view: float = 0.15
    colour_jitter: float = 0.12
    exit_prob: float = 0.15
    distractor_prob: float = 0.3
    camera_pan: float = 0.3
    illumination_drift: float = 0.15
    noise_std: float = 2.0
    min_box_pixels: int = 8
    jpeg_quality: int = 90
    write_masks: bool = True

    def __post_init__(self) -> None:
        for name, kind in (("classes", str), ("frame_size", int), ("object_size", float)):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not isinstance(value, Sequence):
                raise ValueError(f"RealYTOConfig.{name}: expected a sequence, got {value!r}")
            object.__setattr__(self, name, tuple(kind(v) for v in value))
        minimum = dict(train_videos_per_class=1, test_videos_per_class=0, shots_per_video=1)
        minimum |= dict(frames_per_shot=2, annotate_every=1, min_box_pixels=1, jpeg_quality=1)
        checks = [(k, getattr(self, k) >= low, f">= {low}") for k, low in minimum.items()]
        known = ", ".join(OBJECTS)
        checks += [
            ("classes", len(self.classes) >= 1, "at least one class"),
            ("classes", all(c in OBJECTS for c in self.classes), f"names among {known}"),
            ("classes", len(set(self.classes)) == len(self.classes), "distinct names"),
            (
                "frame_size",
                len(self.frame_size) == 2 and min(self.frame_size) >= 32,
                "(W, H) >= 32",
            ),
            ("jpeg_quality", self.jpeg_quality <= 100, "<= 100"),
            ("max_rotation", 0.0 <= self.max_rotation <= 90.0, "0..90 degrees"),
            ("noise_std", self.noise_std >= 0.0, ">= 0"),
            ("scale_drift", self.scale_drift >= 0.0, ">= 0"),
            ("object_size", len(self.object_size) == 2, "(low, high)"),
            (
                "object_size",
                0.05 <= self.object_size[0] <= self.object_size[-1] <= 1.0,
                "0.05 <= low <= high <= 1",
            ),
        ]
        for k in ("partial_view", "colour_jitter", "illumination_drift", "camera_pan"):
            checks.append((k, 0.0 <= getattr(self, k) <= 0.5, "in [0, 0.5]"))
        for k in ("exit_prob", "distractor_prob"):
            checks.append((k, 0.0 <= getattr(self, k) <= 1.0, "a probability"))
        for name, ok, want in checks:
            if not ok:
                raise ValueError(
                    f"RealYTOConfig.{name}: expected {want}, got {getattr(self, name)!r}"
                )

    @classmethod
    def tiny(cls, **changes: Any) -> RealYTOConfig:
        """All three classes, one train and one test video each, 64x48: for unit tests.

        Examples:
            >>> RealYTOConfig.tiny(seed=3).frame_size
            (64, 48)
        """
        base: dict[str, Any] = dict(train_videos_per_class=1, test_videos_per_class=1)
        base |= dict(shots_per_video=1, frames_per_shot=8, frame_size=(64, 48))
        base |= dict(annotate_every=2, exit_prob=0.5, distractor_prob=0.5, min_box_pixels=4)
        return cls(**{**base, **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the knobs."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RealYTOConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"RealYTOConfig: unknown knobs {unknown}; valid: {sorted(known)}")
        return cls(**data)

    @property
    def hash(self) -> str:
        """sha256 of the knobs and the generator version (hex, 64 chars)."""
        return config_hash(GENERATOR_VERSION, self.to_dict())
