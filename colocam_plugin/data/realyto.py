"""RealYTO: objects cut from real photographs, moving over real photos, in the YTO v1.0 layout.

Every pixel comes from photographs that ship inside the scikit-image wheel
(``skimage/data``, read from the installed package, never downloaded): a cat
(Chelsea), a motorbike (Middlebury stereo) and a horse (an openclipart
silhouette coated with a real photo texture) are cut out once (grabCut from
a hand-set rectangle, a hand-written polygon, or the silhouette itself), then
every shot shows its video's object under a random flip, partial view and
colour jitter, moving, turning and changing scale over a panned window of a
real photo or texture, with an optional non-class object (a coffee cup, an
astronaut) behind it. Boxes and masks are exact: they are the warped cut-out's
alpha. It is the realism row next to SynthYTO; ``docs/realyto.md`` shows it.

The tree is exactly the YTO v1.0 download read by
:func:`colocam_plugin.data.yto_v1.load_yto_v1`. Extra files (ignored by the
reader): ``realyto.json`` (manifest: config, its hash, the sources' hash,
counts, content hash), ``realyto_frames.jsonl`` (one line per frame) and,
beside every annotated frame, ``frameNNNN.jpg_mask.png`` (uint8 0/255 mask of
the object's pixels, for PxAP). Run ``python -m colocam_plugin.data.realyto
--help`` to build one from the shell.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from colocam_plugin.data.synthyto import SynthYTOConfig, _content_hash
from colocam_plugin.data.synthyto import default_cache_dir as _synthyto_cache_dir
from colocam_plugin.data.synthyto_render import _background, _bbox, _save_sticks
from colocam_plugin.data.yto_v1 import YTO_CLASSES
from colocam_plugin.errors import DataError

__all__ = [
    "BACKGROUNDS",
    "DISTRACTORS",
    "FRAME_TABLE",
    "MANIFEST",
    "OBJECTS",
    "RealYTOConfig",
    "cutout",
    "default_cache_dir",
    "generate_realyto",
    "main",
    "read_frame_table",
    "render_contact_sheet",
    "sources_fingerprint",
]

MANIFEST = "realyto.json"
FRAME_TABLE = "realyto_frames.jsonl"
#: Bumped whenever the pixels change for an unchanged config (invalidates caches).
GENERATOR_VERSION = 1
_CUT_SIDE = 192  # cut-outs are kept at this longest side (frames show them smaller)


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class _Cut:
    """How one object is cut from its photo (coordinates in the photo's pixels)."""

    file: str  # in skimage/data
    scale: float  # the photo is resized by this before cutting
    how: str  # "grabcut" (from ``rect``), "polygon" (``polygons`` + ``ellipses``), "silhouette"
    rect: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1
    polygons: tuple[tuple[tuple[int, int], ...], ...] = ()
    ellipses: tuple[tuple[int, int, int, int], ...] = ()  # cx, cy, semi-axis x, semi-axis y
    round_to: tuple[int, int, int, int] | None = None  # keep only this ellipse's inside


_MOTORBIKE_BODY = (
    *((88, 197), (118, 193), (140, 182), (142, 160), (160, 156), (230, 163), (300, 170)),
    *((345, 184), (356, 175), (360, 165), (400, 140), (430, 128), (470, 112), (495, 108)),
    *((515, 118), (548, 120), (562, 112), (586, 116), (587, 144), (563, 148), (561, 178)),
    *((550, 196), (548, 262), (585, 262), (620, 272), (642, 292), (644, 316), (600, 312)),
    *((602, 372), (575, 386), (548, 340), (525, 300), (512, 282), (508, 262), (480, 248)),
    *((478, 330), (480, 382), (400, 388), (345, 378), (330, 372), (250, 360), (175, 345)),
    *((150, 300), (112, 250), (94, 228)),
)
_KICKSTAND = ((318, 372), (342, 372), (346, 438), (316, 438))

#: class name (a YouTube-Objects class) -> how its object is cut
OBJECTS: dict[str, _Cut] = {
    # the photo crops the cat's head at its top, left and bottom edges: an
    # ellipse rounds those straight cuts into a head outline
    "cat": _Cut(
        "chelsea.png", 0.8, "grabcut", rect=(0, 0, 380, 300), round_to=(185, 160, 192, 178)
    ),
    "horse": _Cut("horse.png", 0.6, "silhouette"),
    # grabCut cannot tell the red bike from the red crate behind it: hand polygon,
    # wheels as filled ellipses (the floor seen between the spokes stays in)
    "motorbike": _Cut(
        "motorcycle_left.png",
        0.5,
        "polygon",
        polygons=(_MOTORBIKE_BODY, _KICKSTAND),
        ellipses=((199, 318, 77, 82), (597, 371, 85, 81)),
    ),
}
#: non-class objects that may move behind the class object (never boxed)
DISTRACTORS: dict[str, _Cut] = {
    "cup": _Cut("coffee.png", 0.6, "grabcut", rect=(20, 20, 480, 370)),
    "person": _Cut("astronaut.png", 0.6, "grabcut", rect=(60, 20, 450, 511)),
}
#: background photo/texture -> RGB tint for grey sources (``None``: used as shipped)
BACKGROUNDS: dict[str, tuple[float, float, float] | None] = {
    "grass.png": (0.62, 0.78, 0.42),
    "brick.png": (0.86, 0.56, 0.45),
    "gravel.png": (0.9, 0.84, 0.74),
    "rocket.jpg": None,
    "coffee.png": None,
    "astronaut.png": None,
    "camera.png": None,
    "coins.png": (0.95, 0.9, 0.8),
}
_TEXTURES = ("grass.png", "brick.png", "gravel.png")  # fine grain: cropped closer than photos
_COAT_TEXTURES = ("grass.png",)  # fine strands read as hair once blurred
#: horse coats (RGB 0..1): bay, dark bay, chestnut, black, grey, palomino, dun, white
_COATS = np.array(
    [
        *([0.45, 0.27, 0.15], [0.27, 0.16, 0.1], [0.58, 0.31, 0.16], [0.13, 0.12, 0.12]),
        *([0.6, 0.6, 0.58], [0.8, 0.66, 0.4], [0.66, 0.55, 0.4], [0.85, 0.84, 0.8]),
    ],
    dtype=np.float32,
)


def _skimage_file(name: str) -> Path:
    spec = importlib.util.find_spec("skimage")  # locate only: importing it is slow
    if spec is None or spec.origin is None:
        raise ImportError(
            "RealYTO reads photos shipped in scikit-image: pip install 'colocam-plugin[synth]'"
        )
    return Path(spec.origin).parent / "data" / name


@functools.cache
def _photo(name: str) -> np.ndarray:
    """uint8 RGB of a photo of the scikit-image wheel (grey sources repeat the channel)."""
    path = _skimage_file(name)
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read this scikit-image photo ({exc})") from exc


def _all_files() -> list[str]:
    cuts = [*OBJECTS.values(), *DISTRACTORS.values()]
    return sorted({c.file for c in cuts} | set(BACKGROUNDS) | set(_COAT_TEXTURES))


@functools.cache
def sources_fingerprint() -> str:
    """sha256 of every source photo and of the OpenCV version (grabCut's output).

    Part of the cache key: another scikit-image or OpenCV release rebuilds the tree.
    """
    digest = hashlib.sha256(f"opencv {cv2.__version__}\0".encode())
    for name in _all_files():
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(_skimage_file(name).read_bytes()).digest())
    return digest.hexdigest()


def _largest_component(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == keep, 255, 0).astype(np.uint8)


@functools.cache
def cutout(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out of object ``name`` (a key of :data:`OBJECTS` or :data:`DISTRACTORS`).

    Returns:
        ``(premultiplied RGB (h, w, 3), alpha (h, w))``, float32 in 0..1, cropped
        to the object, longest side 192 px. The horse's RGB is black: its coat
        is drawn per shot.

    Raises:
        KeyError: unknown name.

    Examples:
        >>> rgb, alpha = cutout("cat")
        >>> rgb.shape[:2] == alpha.shape and max(alpha.shape) == 192
        True
    """
    spec = {**OBJECTS, **DISTRACTORS}[name]
    img = cv2.resize(
        _photo(spec.file), None, fx=spec.scale, fy=spec.scale, interpolation=cv2.INTER_AREA
    )
    h, w = img.shape[:2]

    def px(values: Sequence[Any]) -> np.ndarray:
        return np.round(np.asarray(values, dtype=np.float64) * spec.scale).astype(np.int32)

    mask = np.zeros((h, w), np.uint8)
    if spec.how == "grabcut":
        x0, y0, x1, y1 = px(spec.rect).tolist()
        labels = np.zeros((h, w), np.uint8)
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        cv2.setRNGSeed(0)  # grabCut seeds its colour models by k-means: fix it
        rect = (x0, y0, min(x1, w - 1) - x0, min(y1, h - 1) - y0)
        cv2.grabCut(img[..., ::-1].copy(), labels, rect, bgd, fgd, 5, cv2.GC_INIT_WITH_RECT)
        mask = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8) * 255
        mask = _largest_component(mask)
    elif spec.how == "polygon":
        cv2.fillPoly(mask, [px(p) for p in spec.polygons], 255)
        for cx, cy, ax, ay in px(spec.ellipses).tolist():
            cv2.ellipse(mask, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
    else:  # black silhouette on white
        mask = np.where(img.mean(axis=2) < 128, 255, 0).astype(np.uint8)
        img = np.zeros_like(img)
    if spec.round_to is not None:
        cx, cy, ax, ay = px(spec.round_to).tolist()
        keep = np.zeros_like(mask)
        cv2.ellipse(keep, (cx, cy), (ax, ay), 0, 0, 360, 255, -1)
        mask = np.minimum(mask, keep)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 0.8)  # soft edge
    ys, xs = np.nonzero(alpha > 0.01)
    crop = np.s_[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    rgba = np.dstack([img[crop].astype(np.float32) / 255 * alpha[crop][..., None], alpha[crop]])
    f = _CUT_SIDE / max(rgba.shape[:2])
    size = (max(1, round(rgba.shape[1] * f)), max(1, round(rgba.shape[0] * f)))
    rgba = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    rgba = np.clip(rgba, 0, 1)
    rgba.setflags(write=False)  # cached: shared by every caller
    return rgba[..., :3], rgba[..., 3]


# --------------------------------------------------------------------------- config
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
        payload = json.dumps({"version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def default_cache_dir(config: RealYTOConfig | None = None) -> Path:
    """``<cache>/realyto-<hash[:12]>``, ``<cache>`` as for SynthYTO
    (``$COLOCAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/colocam``, else ``~/.cache/colocam``).

    Examples:
        >>> default_cache_dir(RealYTOConfig.tiny()).name.startswith("realyto-")
        True
    """
    base = _synthyto_cache_dir(SynthYTOConfig()).parent
    return base / f"realyto-{(config or RealYTOConfig()).hash[:12]}"


# --------------------------------------------------------------------------- drawing
@dataclass
class _Track:
    rgba: np.ndarray  # (h, w, 4) premultiplied, pre-shrunk for the shot
    area: float  # alpha sum of ``rgba``
    pos: np.ndarray  # (T, 2) centre, frame pixels
    scale: np.ndarray  # (T,) frame pixels per ``rgba`` pixel
    angle: np.ndarray  # (T,) radians


def _coat(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """A horse coat: a real coat colour modulated by a real photo texture, lit from above."""
    h, w = alpha.shape
    texture = _photo(_COAT_TEXTURES[rng.integers(len(_COAT_TEXTURES))])[..., 0]
    side = int(rng.integers(160, 320))
    y, x = rng.integers(0, [texture.shape[0] - side + 1, texture.shape[1] - side + 1])
    patch = cv2.resize(texture[y : y + side, x : x + side].astype(np.float32), (w, h))
    patch = cv2.GaussianBlur(patch, (0, 0), 0.8)
    patch = (patch - patch.mean()) / (patch.std() + 1e-6)
    colour = _COATS[rng.integers(len(_COATS))] * rng.uniform(0.9, 1.1, 3)
    shade = np.linspace(1.2, 0.75, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    coat = colour * (shade * (1 + 0.08 * patch))[..., None]
    return np.clip(coat, 0, 1).astype(np.float32)


def _instance(rng: np.random.Generator, cfg: RealYTOConfig, name: str) -> np.ndarray:
    """The object as one shot shows it: premultiplied RGBA (h, w, 4) float32."""
    rgb, alpha = cutout(name)
    if name == "horse":
        rgb = _coat(rng, alpha) * alpha[..., None]
    rgba = np.dstack([rgb, alpha])
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1]
    if cfg.partial_view > 0 and rng.random() < 0.5:
        side, share = int(rng.integers(4)), rng.uniform(0, cfg.partial_view)
        h, w = alpha.shape
        trim = [0, 0, 0, 0]  # left, right, top, bottom
        trim[side] = round(share * (w if side < 2 else h))
        rgba = rgba[trim[2] : h - trim[3], trim[0] : w - trim[1]]
    j = cfg.colour_jitter
    grey = rgba[..., :3].mean(axis=2, keepdims=True)
    saturated = grey + rng.uniform(1 - j, 1 + j) * (rgba[..., :3] - grey)  # premultiplied-safe
    gain = rng.uniform(1 - j, 1 + j) * rng.uniform(1 - j / 3, 1 + j / 3, 3)
    colour = np.minimum(np.clip(saturated * gain, 0, None), rgba[..., 3:])
    return np.ascontiguousarray(np.dstack([colour, rgba[..., 3]]), dtype=np.float32)


def _make_track(
    rng: np.random.Generator,
    cfg: RealYTOConfig,
    rgba: np.ndarray,
    size: tuple[float, float],
    length: int,
    out_mode: str | None,
) -> _Track:
    """Path, scale and angle of an object over a shot (``out_mode``: "enter"/"exit")."""
    w, h = cfg.frame_size
    frac = np.arange(length, dtype=np.float64) / (length - 1)
    ch, cw = rgba.shape[:2]
    s0 = rng.uniform(*size) * min(w, h) / math.sqrt(ch * cw)
    ratio = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.scale_drift))
    scale = s0 * ratio**frac
    inside = lambda: rng.uniform([0.3 * w, 0.35 * h], [0.7 * w, 0.65 * h])  # noqa: E731
    start, end = inside(), inside()
    if out_mode is not None:
        reach = 0.5 * math.hypot(cw, ch) * scale.max() + 2
        a = rng.uniform(0.3, 0.7)
        edge = [(-reach, a * h), (w - 1 + reach, a * h), (a * w, -reach), (a * w, h - 1 + reach)]
        away = np.array(edge[int(rng.integers(4))])
        start, end = (away, end) if out_mode == "enter" else (start, away)
    phase, cycles = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.5, 1.5)
    sway = np.c_[np.sin(2 * np.pi * cycles * frac + phase[0]), np.cos(np.pi * frac + phase[1])]
    pos = start + (end - start) * frac[:, None] + 0.02 * w * sway
    a0, a1 = np.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation, 2))
    angle = a0 + (a1 - a0) * frac
    shrink = min(1.0, 1.1 * float(scale.max()))  # area-filter once, warp near 1:1
    if shrink < 1.0:
        size_px = (max(2, round(cw * shrink)), max(2, round(ch * shrink)))
        rgba = cv2.resize(rgba, size_px, interpolation=cv2.INTER_AREA)
        scale = scale * cw / size_px[0]
    return _Track(rgba, float(rgba[..., 3].sum()), pos, scale, angle)


def _warp(track: _Track, i: int, size: tuple[int, int]) -> np.ndarray:
    ch, cw = track.rgba.shape[:2]
    sc = track.scale[i]
    c, s = math.cos(track.angle[i]) * sc, math.sin(track.angle[i]) * sc
    cx, cy = (cw - 1) / 2, (ch - 1) / 2
    px, py = track.pos[i]
    mat = np.array([[c, -s, px - c * cx + s * cy], [s, c, py - s * cx - c * cy]])
    return cv2.warpAffine(
        track.rgba, mat, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _backdrop(
    rng: np.random.Generator, cfg: RealYTOConfig, length: int
) -> tuple[str, list[np.ndarray]]:
    name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    source = _photo(name).astype(np.float32) / 255
    tint = BACKGROUNDS[name]
    if tint is not None:
        source = source * np.asarray(tint, dtype=np.float32)
    zoom = (0.2, 0.4) if name in _TEXTURES else (0.5, 0.9)
    window = SynthYTOConfig(frame_size=cfg.frame_size, camera_pan=cfg.camera_pan)
    return name, _background(rng, window, source, length, zoom)


def _render_shot(
    folder: Path, cfg: RealYTOConfig, name: str, key: list[int], counts: dict[str, int]
) -> list[dict[str, Any]]:
    """Write one shot's frames (and boxes, masks) into ``folder``; return its frame records.

    ``key`` = ``[class label, video, shot]`` seeds the shot's random stream.
    """
    w, h = cfg.frame_size
    rng = np.random.default_rng([cfg.seed, 2, *key])
    length = cfg.frames_per_shot
    out_mode = ("enter", "exit")[int(rng.integers(2))] if rng.random() < cfg.exit_prob else None
    hero = _make_track(rng, cfg, _instance(rng, cfg, name), cfg.object_size, length, out_mode)
    tracks, other = [hero], None
    if rng.random() < cfg.distractor_prob:  # behind the object: drawn first
        other = list(DISTRACTORS)[int(rng.integers(len(DISTRACTORS)))]
        lo, hi = cfg.object_size
        extra = _instance(rng, cfg, other)
        tracks.insert(0, _make_track(rng, cfg, extra, (0.6 * lo, 0.6 * hi), length, None))
    bg_name, backgrounds = _backdrop(rng, cfg, length)
    light0 = 1 + rng.uniform(-0.5, 0.5) * cfg.illumination_drift
    light1 = light0 * (1 + rng.uniform(-0.5, 0.5) * cfg.illumination_drift)
    offset = int(rng.integers(cfg.annotate_every))
    records = []
    for i in range(length):
        frame = backgrounds[i]
        for track in tracks:
            rgba = _warp(track, i, (w, h))
            frame = frame * (1 - rgba[..., 3:]) + rgba[..., :3]
        mask = rgba[..., 3] >= 0.5  # the object's: it is drawn last
        visible = float(rgba[..., 3].sum() / (hero.area * hero.scale[i] ** 2))
        box = _bbox(mask) if int(mask.sum()) >= cfg.min_box_pixels else None
        frame = frame * (light0 + (light1 - light0) * i / (length - 1)) * 255
        frame = frame + rng.normal(0, cfg.noise_std, frame.shape)
        path = folder / f"frame{i + 1:04d}.jpg"
        pixels = np.clip(np.round(frame), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=cfg.jpeg_quality, subsampling=0)
        annotated = box is not None and i % cfg.annotate_every == offset
        if annotated:
            cell = np.empty((1, 1), dtype=object)
            cell[0, 0] = np.asarray([box], dtype=np.float64)
            _save_sticks(Path(f"{path}_sticks.mat"), cell)
            if cfg.write_masks:
                Image.fromarray(mask.astype(np.uint8) * 255).save(f"{path}_mask.png")
        counts["out_of_view_frames"] += visible < 1e-3
        counts["distractor_frames"] += other is not None
        records.append(
            {
                "frame": i,
                "path": path,
                "annotated": annotated,
                "objects": [{"box": box, "visible": round(min(1.0, visible), 4)}],
                "source": OBJECTS[name].file,
                "background": bg_name,
                "distractor": other,
            }
        )
    return records


def _render_tree(tmp: Path, cfg: RealYTOConfig) -> tuple[dict[str, Any], list[str]]:
    """Write every class folder under ``tmp``; return the counts and the frame table."""
    n_videos = cfg.train_videos_per_class + cfg.test_videos_per_class
    counts = dict.fromkeys(("frames", "val_frames", "val_boxes", "test_frames", "test_boxes"), 0)
    counts |= dict.fromkeys(("out_of_view_frames", "distractor_frames"), 0)
    table: list[str] = []
    for name in cfg.classes:
        c = YTO_CLASSES.index(name)
        crng = np.random.default_rng([cfg.seed, 1, c])
        test = set((crng.choice(n_videos, cfg.test_videos_per_class, replace=False) + 1).tolist())
        sets = tmp / name / "sets"
        sets.mkdir(parents=True)
        train = sorted(set(range(1, n_videos + 1)) - test)
        (sets / "train.txt").write_text("".join(f"{v:04d}\n" for v in train))
        (sets / "test.txt").write_text("".join(f"{v:04d}\n" for v in sorted(test)))
        for v, s in itertools.product(range(1, n_videos + 1), range(1, cfg.shots_per_video + 1)):
            split = "test" if v in test else "train"
            folder = tmp / name / "data" / f"{v:04d}" / "shots" / f"{s:03d}"
            folder.mkdir(parents=True)
            for rec in _render_shot(folder, cfg, name, [c, v, s], counts):
                role = "val" if split == "train" else "test"
                counts["frames"] += 1
                counts[f"{role}_frames"] += rec["annotated"]
                counts[f"{role}_boxes"] += rec["annotated"]  # one object per frame
                rec |= {"path": rec["path"].relative_to(tmp).as_posix(), "label": c}
                rec |= {"video": f"{name}/{v:04d}", "shot": f"{name}/{v:04d}/{s:03d}"}
                table.append(json.dumps({**rec, "video_split": split}, sort_keys=True))
    counts |= {"videos": n_videos * len(cfg.classes)}
    counts |= {"shots": n_videos * len(cfg.classes) * cfg.shots_per_video}
    return {"classes": list(cfg.classes), "counts": counts}, table


# --------------------------------------------------------------------------- tree
def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _tree_key(cfg: RealYTOConfig) -> str:
    return hashlib.sha256(f"{cfg.hash}:{sources_fingerprint()}".encode()).hexdigest()


def generate_realyto(root: str | Path | None = None, config: RealYTOConfig | None = None) -> Path:
    """Write a RealYTO tree at ``root`` (or reuse it) and return its path.

    Idempotent: if ``root/realyto.json`` was written for the same config and
    the same source photos (and OpenCV), nothing is written. Otherwise the tree
    is built in a sibling temporary folder and renamed into place, so a crash
    never leaves a half tree; an older RealYTO tree at ``root`` is replaced,
    any other non-empty folder is refused.

    Args:
        root: target folder; ``None`` -> :func:`default_cache_dir`.
        config: all knobs (default :class:`RealYTOConfig`).

    Returns:
        The tree's root.

    Raises:
        DataError: ``root`` is a non-empty folder that is not a RealYTO tree.
        ImportError: scikit-image (the photos) is not installed.

    Examples:
        >>> import tempfile
        >>> tmp = Path(tempfile.mkdtemp())
        >>> root = generate_realyto(tmp / "yto", RealYTOConfig.tiny())
        >>> sorted(p.name for p in root.iterdir())
        ['cat', 'horse', 'motorbike', 'realyto.json', 'realyto_frames.jsonl']
        >>> generate_realyto(root, RealYTOConfig.tiny()) == root  # cached: no work
        True
    """
    cfg = config or RealYTOConfig()
    root = Path(root) if root is not None else default_cache_dir(cfg)
    key = _tree_key(cfg)
    manifest = _read_manifest(root)
    if manifest is not None and manifest.get("tree_key") == key:
        return root
    if root.exists() and manifest is None and (not root.is_dir() or any(root.iterdir())):
        raise DataError(
            f"{root}: exists and is not a RealYTO tree (no {MANIFEST}); refusing to overwrite"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        info, table = _render_tree(tmp, cfg)
        (tmp / FRAME_TABLE).write_text("\n".join(table) + "\n")
        info.update(format="realyto", generator_version=GENERATOR_VERSION, config=cfg.to_dict())
        info.update(config_hash=cfg.hash, sources_sha256=sources_fingerprint(), tree_key=key)
        info["opencv"] = cv2.__version__
        info["sources"] = {"objects": {k: c.file for k, c in OBJECTS.items()}}
        info["sources"] |= {"distractors": {k: c.file for k, c in DISTRACTORS.items()}}
        info["sources"] |= {"backgrounds": list(BACKGROUNDS), "package": "scikit-image"}
        info["content_sha256"] = _content_hash(tmp)  # before the manifest exists
        (tmp / MANIFEST).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        _move_into_place(tmp, root, key)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _move_into_place(tmp: Path, root: Path, key: str) -> None:
    old = None
    if root.exists() and _read_manifest(root) is not None:
        old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, old / "tree")
    try:
        os.replace(tmp, root)  # atomic; replaces an empty folder
    except OSError:
        other = _read_manifest(root)  # a concurrent writer won the race
        if other is None or other.get("tree_key") != key:
            raise DataError(f"{root}: appeared while generating and holds another tree") from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_frame_table(root: str | Path) -> list[dict[str, Any]]:
    """Per-frame records of ``realyto_frames.jsonl``.

    Each record: ``path`` (relative), ``label`` (YTO index), ``video``,
    ``shot``, ``frame`` (0-based in the shot), ``video_split``, ``annotated``,
    ``objects`` (one ``{"box": [x0, y0, x1, y1] inclusive or None, "visible":
    share of the object in view}``), ``source`` / ``background`` (photo
    files) and ``distractor`` (name or ``None``).

    Raises:
        DataError: the file is missing or a line is not JSON.
    """
    path = Path(root) / FRAME_TABLE
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the frame table ({exc})") from exc


def render_contact_sheet(
    root: str | Path, out_png: str | Path, *, num_frames: int = 12, columns: int = 4, zoom: int = 1
) -> Path:
    """Cut-outs (first row, on a checkerboard), then annotated frames with boxes.

    Frames are picked class by class, one per shot first, test videos first;
    the ground-truth box is drawn in green, the mask outline in yellow. Saved
    as a 256-colour PNG to stay small.
    """
    if num_frames < 1 or columns < 1 or zoom < 1:
        raise ValueError(f"num_frames, columns, zoom must be >= 1, got {num_frames, columns, zoom}")
    root = Path(root)
    table = [r for r in read_frame_table(root) if r["annotated"]]
    table.sort(key=lambda r: (r["video_split"] != "test", r["path"]))
    queues: dict[int, list[dict[str, Any]]] = {}
    for rec in table:
        queues.setdefault(rec["label"], []).append(rec)
    picks: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(picks) < num_frames and any(queues.values()):
        for queue in queues.values():
            pick = next((r for r in queue if r["shot"] not in seen), queue[0] if queue else None)
            if pick is not None and len(picks) < num_frames:
                queue.remove(pick)
                picks.append(pick)
                seen.add(pick["shot"])
    if not picks:
        raise DataError(f"{root}: no annotated frame to show")
    with Image.open(root / picks[0]["path"]) as first_frame:
        fw, fh = first_frame.size
    cells = []
    classes = [YTO_CLASSES[k] for k in sorted(queues)]
    for name in classes + list(DISTRACTORS):
        rgb, alpha = cutout(name)
        if name == "horse":
            rgb = _coat(np.random.default_rng(0), alpha) * alpha[..., None]
        yy, xx = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
        board = np.where((yy // 12 + xx // 12) % 2 == 0, 0.8, 0.6)[..., None]
        img = Image.fromarray(np.uint8(255 * (rgb + board * (1 - alpha[..., None]))))
        f = min(fw * zoom / img.width, fh * zoom / img.height)
        img = img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.LANCZOS)
        cells.append((img, f"cut-out: {name}"))
    for rec in picks:
        img = Image.open(root / rec["path"]).convert("RGB")
        mask_path = root / f"{rec['path']}_mask.png"
        if mask_path.exists():
            mask = np.asarray(Image.open(mask_path)) > 0
            edge = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            pixels = np.asarray(img).copy()
            pixels[edge] = (255, 230, 0)
            img = Image.fromarray(pixels)
        img = img.resize((img.width * zoom, img.height * zoom), Image.Resampling.NEAREST)
        draw = ImageDraw.Draw(img)
        box = rec["objects"][0]["box"]
        if box is not None:
            x0, y0, x1, y1 = (v * zoom for v in box)
            draw.rectangle((x0, y0, x1 + zoom - 1, y1 + zoom - 1), outline=(0, 255, 0))
        cells.append(
            (img, f"{YTO_CLASSES[rec['label']]} {rec['shot'].split('/', 1)[1]} f{rec['frame']}")
        )
    w, h = fw * zoom, fh * zoom + 12
    rows = 1 + math.ceil((len(cells) - len(classes) - len(DISTRACTORS)) / columns)
    cols = max(columns, len(classes) + len(DISTRACTORS))
    sheet = Image.new("RGB", (cols * (w + 4), rows * (h + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (img, caption) in enumerate(cells):
        first = len(classes) + len(DISTRACTORS)
        r, col = (0, k) if k < first else (1 + (k - first) // columns, (k - first) % columns)
        x, y = col * (w + 4), r * (h + 4)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + h - 12), caption, fill=0)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, dither=Image.Dither.NONE).save(out_png, optimize=True)
    return out_png


# --------------------------------------------------------------------------- command
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m colocam_plugin.data.realyto``: generate a tree, print where and what."""
    d = RealYTOConfig()
    p = argparse.ArgumentParser(
        prog="python -m colocam_plugin.data.realyto",
        description="Generate RealYTO (real photo cut-outs, YTO v1.0 layout); cached by config.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=None, help="target folder; None: the cache folder")
    p.add_argument("--seed", type=int, default=d.seed, help="master seed")
    p.add_argument(
        "--classes", nargs="+", default=list(d.classes), choices=list(OBJECTS), help="classes"
    )
    p.add_argument("--train-videos", type=int, default=d.train_videos_per_class, help="per class")
    p.add_argument("--test-videos", type=int, default=d.test_videos_per_class, help="per class")
    p.add_argument("--shots", type=int, default=d.shots_per_video, help="shots per video")
    p.add_argument("--frames", type=int, default=d.frames_per_shot, help="frames per shot")
    p.add_argument(
        "--size", type=int, nargs=2, default=list(d.frame_size), metavar=("W", "H"), help="frame"
    )
    p.add_argument(
        "--annotate-every", type=int, default=d.annotate_every, help="box every n-th frame"
    )
    p.add_argument("--sheet", type=Path, default=None, help="also write a contact sheet PNG here")
    args = p.parse_args(argv)
    try:
        cfg = RealYTOConfig(
            seed=args.seed,
            classes=tuple(args.classes),
            train_videos_per_class=args.train_videos,
            test_videos_per_class=args.test_videos,
            shots_per_video=args.shots,
            frames_per_shot=args.frames,
            frame_size=tuple(args.size),
            annotate_every=args.annotate_every,
        )
    except ValueError as exc:
        p.error(str(exc))
    start = time.perf_counter()
    root = generate_realyto(args.out, cfg)
    seconds = time.perf_counter() - start
    counts = (_read_manifest(root) or {}).get("counts", {})
    print(f"{root}  {json.dumps(counts, sort_keys=True)}  ({seconds:.1f} s)")
    if args.sheet is not None:
        print(render_contact_sheet(root, args.sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
