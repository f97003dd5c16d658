"""SynthYTO's configuration: every knob, the presets, the generator version.

Kept apart from the generator (:mod:`colocam_plugin.data.synthyto`) so that the
drawing code (:mod:`colocam_plugin.data.synthyto_render`) can import it without
an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any

from colocam_plugin.data.yto_writer import config_hash

#: YouTube-Objects class names, in the dataset's label order.
YTO_CLASSES = (
    *("aeroplane", "bird", "boat", "car", "cat"),
    *("cow", "dog", "horse", "motorbike", "train"),
)
MANIFEST = "synthyto.json"
FRAME_TABLE = "synthyto_frames.jsonl"
#: Bumped whenever the pixels change for an unchanged config (invalidates caches).
GENERATOR_VERSION = 4

#: Named designs: knob values that differ from :class:`SynthYTOConfig`'s
#: defaults (``"default"`` is the defaults). ``"adversarial"`` renders the
#: pixels of generator version 3 (see the module docstring and docs/synthyto.md).
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "default": MappingProxyType({}),
        "adversarial": MappingProxyType(
            {
                "train_videos_per_class": 10,
                "shots_per_video": 4,
                "frames_per_shot": 8,
                "shot_length_jitter": 1,
                "part_colour_mode": "class",
                "background_tint": True,
                "same_colour_distractor_prob": 0.5,
                "distractor_colour_shift": 0.0,
                "appearance_drift": 0.2,
                "shading": 0.1,
            }
        ),
    }
)
PART_COLOUR_MODES = ("body_family", "class")


@dataclass(frozen=True)
class SynthYTOConfig:
    """Every knob of the generator; the defaults are the ``"default"`` preset
    (the demo/CI dataset), :meth:`preset` gives the others.

    Sizes are fractions of the frame's shorter side; ranges are ``(low, high)``
    drawn uniformly. See ``docs/synthyto.md`` for pictures and the reasoning.

    Attributes:
        seed: master seed; same config -> byte-identical tree.
        num_classes: C >= 1; the first 10 use YTO names, then ``class10`` ...
        train_videos_per_class: videos listed in ``sets/train.txt`` (>= 1).
        test_videos_per_class: videos listed in ``sets/test.txt`` (>= 0).
        shots_per_video: shot folders per video (>= 1).
        frames_per_shot: mean frames per shot (>= 2).
        shot_length_jitter: shot length is uniform in ``frames_per_shot +- jitter``.
        frame_size: ``(W, H)`` pixels, each >= 32.
        annotate_every: frame ``i`` of a shot is annotated when
            ``i % annotate_every == offset`` (random offset per shot) and an
            object is visible; train videos give val frames, test videos test.
        body_size: body diameter (2 x mean radius), fraction of the shorter side.
        body_aspect: body elongation (major/minor axis ratio).
        part_area: part area as a fraction of the body area (class evidence).
        scale_drift: object size changes by a factor in ``[1/(1+d), 1+d]`` per shot.
        rotation_speed: max body rotation per frame, degrees.
        out_of_view_prob: share of shots where the object leaves the view (it
            exits and returns, enters late or exits early); exact quota over the
            dataset, at least one shot when > 0.
        multi_object_prob: share of shots (exact quota) with a second object.
        distractors: ``(min, max)`` part-less bodies per shot, behind objects.
        same_colour_distractor_prob: chance a distractor takes the object's colours
            (moved by ``distractor_colour_shift``); the others draw their own.
        distractor_colour_shift: RGB distance (0..255) between a same-colour
            distractor's colours and the object's, in a random direction; 0
            copies them exactly.
        part_colour_mode: ``"body_family"``: every class draws object colours
            from one shared distribution; the part's base is a near shade of
            the body (within the colour kernel's reach), its pattern a darker or
            lighter shade of the same hue. ``"class"``: the part's base is its
            class's own colour (:func:`class_colour`), its pattern the body's
            colour, bodies take colours no class owns.
        background_tint: tint grey background photos with a body colour (the
            ``"class"`` palette's spare colours), else leave them grey.
        appearance_drift: per-channel object colour gain and global illumination
            drift across a shot (max relative change).
        shading: lightness slope of an object's shading per body radius (a
            linear light gradient in a random direction, clipped to 0.75..1.2).
        camera_pan: background window travel across a shot, fraction of the window.
        noise_std: sensor noise, standard deviation on 0..255.
        shot_variation: every shot shows a new object instance (shape, colours,
            texture) on a new background, as YTO videos are compilations of
            shots; ``False`` keeps one instance and scene per video, which a
            classifier trained from scratch memorises per video.
        body_texture_prob: chance a body gets a texture (spots, stripes,
            blotches) in its second colour; otherwise it is plain with shading
            and grain. A textured body resembles the class patterns and makes
            the part much harder to learn (most bodies are plain).
        background_saturation: colour photos are blended towards their grey
            version (0: grey, 1: as shipped), so saturated scene colours (an
            orange space suit, a red motorbike) rarely mimic a class colour.
        min_box_pixels: an object gets a box (and mask pixels) only with at least
            this many visible pixels; a frame is annotated only if one does.
        jpeg_quality: JPEG quality (4:4:4 chroma).
        write_masks: write ``frameNNNN.jpg_mask.png`` beside annotated frames.
    """

    seed: int = 0
    num_classes: int = 5
    # 200 training shots (object instances): with 100, a classifier memorised
    # the instances (97% train, 48% test accuracy); with 200, 78% test
    # (docs/synthyto.md, benchmarks/results/classifier_synthyto_instances.md)
    train_videos_per_class: int = 20
    test_videos_per_class: int = 3
    shots_per_video: int = 2
    frames_per_shot: int = 16
    shot_length_jitter: int = 0
    frame_size: tuple[int, int] = (160, 120)
    annotate_every: int = 3
    body_size: tuple[float, float] = (0.4, 0.6)
    body_aspect: tuple[float, float] = (1.0, 1.8)
    part_area: tuple[float, float] = (0.25, 0.35)
    scale_drift: float = 0.35
    rotation_speed: float = 3.0
    out_of_view_prob: float = 0.3
    multi_object_prob: float = 0.25
    distractors: tuple[int, int] = (0, 2)
    same_colour_distractor_prob: float = 0.2
    distractor_colour_shift: float = 30.0
    part_colour_mode: str = "body_family"
    background_tint: bool = False
    appearance_drift: float = 0.05
    shading: float = 0.05
    camera_pan: float = 0.3
    noise_std: float = 3.0
    shot_variation: bool = True
    body_texture_prob: float = 0.1
    background_saturation: float = 1.0
    shared_scenes: bool = False
    min_box_pixels: int = 8
    jpeg_quality: int = 90
    write_masks: bool = True

    def __post_init__(self) -> None:
        for name in ("frame_size", "distractors"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        for name in ("body_size", "body_aspect", "part_area"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        minimum = dict(num_classes=1, train_videos_per_class=1, test_videos_per_class=0)
        minimum |= dict(shots_per_video=1, frames_per_shot=2, shot_length_jitter=0)
        minimum |= dict(annotate_every=1, min_box_pixels=1, jpeg_quality=1)
        checks = [(k, getattr(self, k) >= low, f">= {low}") for k, low in minimum.items()]
        modes = PART_COLOUR_MODES
        checks += [
            ("num_classes", self.num_classes <= 100, "<= 100"),
            ("part_colour_mode", self.part_colour_mode in PART_COLOUR_MODES, str(modes)),
            ("distractor_colour_shift", 0 <= self.distractor_colour_shift <= 255, "in [0, 255]"),
            ("shading", 0.0 <= self.shading <= 1.0, "in [0, 1]"),
            ("jpeg_quality", self.jpeg_quality <= 100, "<= 100"),
            ("shot_length_jitter", self.shot_length_jitter <= self.frames_per_shot - 2, "<= F-2"),
            (
                "frame_size",
                len(self.frame_size) == 2 and min(self.frame_size) >= 32,
                "(W, H) >= 32",
            ),
        ]
        for k in ("body_size", "body_aspect", "part_area", "distractors"):
            pair = getattr(self, k)
            checks.append((k, len(pair) == 2 and 0 <= pair[0] <= pair[1], "0 <= low <= high"))
        for k in (
            "out_of_view_prob",
            "multi_object_prob",
            "same_colour_distractor_prob",
            "body_texture_prob",
            "background_saturation",
        ):
            checks.append((k, 0.0 <= getattr(self, k) <= 1.0, "a probability"))
        for name, ok, want in checks:
            if not ok:
                raise ValueError(
                    f"SynthYTOConfig.{name}: expected {want}, got {getattr(self, name)!r}"
                )

    @classmethod
    def preset(cls, name: str, **changes: Any) -> SynthYTOConfig:
        """The named design of :data:`PRESETS`, with ``changes`` on top.

        Raises:
            ValueError: ``name`` is not a preset (the message lists them), or a
                knob is unknown or out of range.

        Examples:
            >>> SynthYTOConfig.preset("default") == SynthYTOConfig()
            True
            >>> SynthYTOConfig.preset("adversarial", seed=2).part_colour_mode
            'class'
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown SynthYTO preset {name!r}; valid: {sorted(PRESETS)}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(changes) - known):
            raise ValueError(f"SynthYTOConfig: unknown knobs {unknown}; valid: {sorted(known)}")
        return cls(**{**PRESETS[name], **changes})

    @classmethod
    def tiny(cls, preset: str = "default", **changes: Any) -> SynthYTOConfig:
        """A 2-class, 4-video, 64x48 version of ``preset`` for unit tests (about a second).

        Every hard case is forced: out-of-view shots, a second object, one
        distractor per shot. Shots keep 8 frames, enough for 4-frame sequences.

        Examples:
            >>> SynthYTOConfig.tiny(seed=3).frame_size
            (64, 48)
            >>> SynthYTOConfig.tiny("adversarial").part_colour_mode
            'class'
        """
        base: dict[str, Any] = dict(num_classes=2, train_videos_per_class=1)
        base |= dict(test_videos_per_class=1)
        base |= dict(shots_per_video=2, frames_per_shot=8, shot_length_jitter=0)
        base |= dict(frame_size=(64, 48), annotate_every=2, out_of_view_prob=0.5)
        base |= dict(multi_object_prob=0.5, distractors=(1, 1), min_box_pixels=4)
        return cls.preset(preset, **{**base, **changes})

    @property
    def classes(self) -> list[str]:
        """Class names, ``label`` indexes this list."""
        return [YTO_CLASSES[k] if k < 10 else f"class{k:02d}" for k in range(self.num_classes)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the knobs."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthYTOConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"SynthYTOConfig: unknown knobs {unknown}; valid: {sorted(known)}")
        knobs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**knobs)

    @property
    def hash(self) -> str:
        """sha256 of the knobs and the generator version (hex, 64 chars)."""
        return config_hash(GENERATOR_VERSION, self.to_dict())
