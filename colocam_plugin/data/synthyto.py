"""SynthYTO: a synthetic YouTube-Objects v1.0 tree, hard for CAMs in the ways real video is.

Every object is a large body (shared shapes across classes, mostly plain)
with a smaller protruding *part* whose shape and pattern are the class
evidence. A classifier therefore fires on the part, while the ground truth
boxes the whole object; CoLo-CAM's colour term is what can spread the map over
the body. Two presets (:data:`PRESETS`) set how colour relates to the class:

- ``"default"`` poses the paper's problem: an object's colours come from one
  family drawn from a distribution shared by every class (colour says nothing
  about the class), the part is a near shade of the body (the colour kernel
  connects them) with its pattern in a darker or lighter shade, the colour
  barely drifts over a shot of 16 frames, backgrounds are not tinted, and
  few distractors share the object's colours, never exactly.
- ``"adversarial"`` is generator version 3 (same pixels for the same seed):
  the part's base is its class's own colour, half the distractors copy the
  object's colours exactly, grey backgrounds are tinted with body colours,
  shots have 7-9 frames. The colour term cannot spread from part to body.

Frames add real clutter (scikit-image photos and textures, panned),
distractor bodies without a part, objects leaving the view while the video
label stays, several objects of the class, and drifting scale, colour and
illumination. The layout is exactly the YTO v1.0 download read by
:func:`colocam_plugin.data.yto_v1.load_yto_v1`; every knob is documented in
``docs/synthyto.md``.

Extra files (ignored by the reader): ``synthyto.json`` (manifest: config, its
hash, counts, content hash), ``synthyto_frames.jsonl`` (one line per frame:
object/part boxes, visible fractions, distractor count) and, beside every
annotated frame, ``frameNNNN.jpg_mask.png`` (uint8 0/255 mask of the boxed
objects' pixels, for PxAP) and ``frameNNNN.jpg_part.png`` (the same for their
parts).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from PIL import Image, ImageDraw

from colocam_plugin.data.synthyto_render import class_colour, render_tree
from colocam_plugin.data.yto_writer import cache_root, config_hash, read_manifest, write_tree
from colocam_plugin.errors import DataError

__all__ = [
    "FRAME_TABLE",
    "MANIFEST",
    "PRESETS",
    "YTO_CLASSES",
    "SynthYTOConfig",
    "class_colour",
    "default_cache_dir",
    "generate_synthyto",
    "read_frame_table",
    "render_contact_sheet",
]

log = logging.getLogger(__name__)

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


def default_cache_dir(config: SynthYTOConfig | None = None) -> Path:
    """``<cache>/synthyto-<hash[:12]>``; ``<cache>`` is ``$COLOCAM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/colocam``, else ``~/.cache/colocam``.

    Examples:
        >>> default_cache_dir(SynthYTOConfig.tiny()).name.startswith("synthyto-")
        True
    """
    return cache_root() / f"synthyto-{(config or SynthYTOConfig()).hash[:12]}"


def generate_synthyto(
    root: str | Path | None = None,
    config: SynthYTOConfig | None = None,
    *,
    seed: int | None = None,
    num_classes: int | None = None,
    train_videos_per_class: int | None = None,
    test_videos_per_class: int | None = None,
    shots_per_video: int | None = None,
    frames_per_shot: int | None = None,
    frame_size: tuple[int, int] | None = None,
    annotate_every: int | None = None,
) -> Path:
    """Write a SynthYTO tree at ``root`` (or reuse it) and return its path.

    Idempotent: if ``root/synthyto.json`` has the same config hash, nothing is
    written. Otherwise the tree is built in a sibling temporary folder and
    renamed into place, so a crash never leaves a half tree; an older
    SynthYTO tree at ``root`` is replaced, any other non-empty folder is refused.

    Args:
        root: target folder; ``None`` -> :func:`default_cache_dir`.
        config: all knobs (default :class:`SynthYTOConfig`); the keyword
            arguments below override single fields of it.
        seed, num_classes, train_videos_per_class, test_videos_per_class,
            shots_per_video, frames_per_shot, frame_size, annotate_every:
            see :class:`SynthYTOConfig`.

    Returns:
        The tree's root.

    Raises:
        DataError: ``root`` is a non-empty folder that is not a SynthYTO tree.
        ValueError: a knob is out of range.

    Examples:
        >>> import tempfile
        >>> tmp = Path(tempfile.mkdtemp())
        >>> root = generate_synthyto(tmp / "yto", SynthYTOConfig.tiny())
        >>> sorted(p.name for p in root.iterdir())
        ['aeroplane', 'bird', 'synthyto.json', 'synthyto_frames.jsonl']
        >>> generate_synthyto(root, SynthYTOConfig.tiny()) == root  # cached: no work
        True
    """
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "seed": seed,
            "num_classes": num_classes,
            "train_videos_per_class": train_videos_per_class,
            "test_videos_per_class": test_videos_per_class,
            "shots_per_video": shots_per_video,
            "frames_per_shot": frames_per_shot,
            "frame_size": frame_size,
            "annotate_every": annotate_every,
        }.items()
        if v is not None
    }
    cfg = replace(config or SynthYTOConfig(), **overrides)

    def build(tmp: Path) -> dict[str, Any]:
        info, table = render_tree(tmp, cfg)
        (tmp / FRAME_TABLE).write_text("\n".join(table) + "\n")
        info.update(format="synthyto", generator_version=GENERATOR_VERSION, config=cfg.to_dict())
        info["config_hash"] = cfg.hash
        return info

    root = Path(root) if root is not None else default_cache_dir(cfg)
    return write_tree(
        root, build, manifest=MANIFEST, key_field="config_hash", key=cfg.hash, kind="SynthYTO"
    )


def read_frame_table(root: str | Path) -> list[dict[str, Any]]:
    """Per-frame records of ``synthyto_frames.jsonl`` (see the module docstring).

    Each record: ``path`` (relative), ``label``, ``video``, ``shot``, ``frame``
    (0-based in the shot), ``video_split`` (``"train"``/``"test"``),
    ``annotated``, ``n_distractors`` and ``objects``: one dict per object of
    the class with ``box``/``part_box`` (``[x0, y0, x1, y1]`` inclusive, or
    ``None`` when not boxed) and ``visible`` (visible share of its area).

    Raises:
        DataError: the file is missing or a line is not JSON.
    """
    path = Path(root) / FRAME_TABLE
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the frame table ({exc})") from exc
    out = []
    for i, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise DataError(f"{path}:{i}: not JSON ({exc})") from exc
    return out


def render_contact_sheet(
    root: str | Path,
    out_png: str | Path,
    *,
    num_frames: int = 12,
    columns: int = 4,
    zoom: int = 2,
    max_colours: int | None = None,
) -> Path:
    """Draw a grid of frames with their GT boxes (green) and part boxes (orange).

    Picks annotated test frames class by class, plus out-of-view and
    multi-object frames when the tree has them; captions name class, shot and
    frame.

    Args:
        root: a SynthYTO tree.
        out_png: output PNG path (parents created).
        num_frames: cells in the sheet (>= 1).
        columns: cells per row (>= 1).
        zoom: integer upscaling of each frame (nearest).
        max_colours: when given (2..256), save a palette PNG of that many
            colours (octree, dithered): a file a third the size.

    Returns:
        ``out_png`` as a Path.
    """
    if num_frames < 1 or columns < 1 or zoom < 1:
        raise ValueError(f"num_frames, columns, zoom must be >= 1, got {num_frames, columns, zoom}")
    if max_colours is not None and not 2 <= max_colours <= 256:
        raise ValueError(f"max_colours must be in 2..256, got {max_colours}")
    root = Path(root)
    table = read_frame_table(root)
    out_of_view = [r for r in table if all(o["visible"] == 0 for o in r["objects"])]
    multi = [
        r for r in table if r["annotated"] and sum(o["box"] is not None for o in r["objects"]) > 1
    ]
    annotated = [r for r in table if r["annotated"]]
    by_class: dict[int, list[dict[str, Any]]] = {}
    for rec in sorted(annotated, key=lambda r: (r["video_split"] != "test", r["path"])):
        by_class.setdefault(rec["label"], []).append(rec)
    picks: list[dict[str, Any]] = [*out_of_view[:1], *multi[:1]]
    seen = {r["shot"] for r in picks}  # one frame per shot first, then the rest
    queues = [list(v) for _, v in sorted(by_class.items())]
    for fresh_only in (True, False):
        for _ in range(max(map(len, queues), default=0)):
            for queue in queues:
                pick: dict[str, Any] | None = next(
                    (r for r in queue if not fresh_only or r["shot"] not in seen), None
                )
                if pick is not None and len(picks) < num_frames:
                    queue.remove(pick)
                    picks.append(pick)
                    seen.add(pick["shot"])
    manifest = read_manifest(root, MANIFEST)
    classes = manifest["classes"] if manifest else []
    cells = []
    for rec in picks[:num_frames]:
        img = Image.open(root / rec["path"]).convert("RGB")
        img = img.resize((img.width * zoom, img.height * zoom), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (img.width, img.height + 12), "white")
        canvas.paste(img, (0, 0))
        draw = ImageDraw.Draw(canvas)
        for obj in rec["objects"]:
            for key, colour in (("box", (0, 255, 0)), ("part_box", (255, 150, 0))):
                if obj[key] is not None:
                    x0, y0, x1, y1 = (v * zoom for v in obj[key])
                    draw.rectangle((x0, y0, x1 + zoom - 1, y1 + zoom - 1), outline=colour)
        name = classes[rec["label"]] if rec["label"] < len(classes) else str(rec["label"])
        tag = " out" if all(o["visible"] == 0 for o in rec["objects"]) else ""
        draw.text(
            (2, img.height), f"{name} {rec['shot'].split('/', 1)[1]} f{rec['frame']}{tag}", fill=0
        )
        cells.append(canvas)
    w, h = cells[0].size
    rows = math.ceil(len(cells) / columns)
    sheet = Image.new("RGB", (columns * (w + 4), rows * (h + 4)), "white")
    for i, cell in enumerate(cells):
        sheet.paste(cell, ((i % columns) * (w + 4), (i // columns) * (h + 4)))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if max_colours is not None:
        sheet = sheet.quantize(max_colours, method=Image.Quantize.FASTOCTREE)
    from colocam_plugin.atomic import atomic_write

    with atomic_write(out_png, "wb") as fh:
        sheet.save(fh, format="PNG", optimize=True)
    return out_png
