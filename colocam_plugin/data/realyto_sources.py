"""RealYTO's sources: photos of the scikit-image wheel turned into moving object sprites.

Every pixel of RealYTO comes from photographs that ship inside the
scikit-image wheel (``skimage/data``, read from the installed package, never
downloaded): a cat (Chelsea), a motorbike (Middlebury stereo) and a horse (an
openclipart silhouette coated with a real photo texture) are cut out once
(grabCut from a hand-set rectangle, a hand-written polygon, or the silhouette
itself): :data:`OBJECTS`, :data:`DISTRACTORS`, :func:`cutout`. This module also
varies an object per shot (:func:`instance`, :func:`coat`), moves it through a
shot (:func:`make_track`, :func:`warp`), pans a background photo or texture
(:data:`BACKGROUNDS`, :func:`backdrop`) and fingerprints every source for the
cache key (:func:`sources_fingerprint`). :mod:`colocam_plugin.data.realyto`
composes the frames and writes the tree.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from colocam_plugin.data.synthyto_render import background
from colocam_plugin.errors import DataError

if TYPE_CHECKING:
    from colocam_plugin.data.realyto_config import RealYTOConfig

__all__ = [
    "BACKGROUNDS",
    "DISTRACTORS",
    "OBJECTS",
    "Cut",
    "Track",
    "backdrop",
    "coat",
    "cutout",
    "cutout_preview",
    "instance",
    "make_track",
    "sources_fingerprint",
    "sources_manifest",
    "warp",
]

_CUT_SIDE = 192  # cut-outs are kept at this longest side (frames show them smaller)


@dataclass(frozen=True)
class Cut:
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
OBJECTS: dict[str, Cut] = {
    # the photo crops the cat's head at its top, left and bottom edges: an
    # ellipse rounds those straight cuts into a head outline
    "cat": Cut("chelsea.png", 0.8, "grabcut", rect=(0, 0, 380, 300), round_to=(185, 160, 192, 178)),
    "horse": Cut("horse.png", 0.6, "silhouette"),
    # grabCut cannot tell the red bike from the red crate behind it: hand polygon,
    # wheels as filled ellipses (the floor seen between the spokes stays in)
    "motorbike": Cut(
        "motorcycle_left.png",
        0.5,
        "polygon",
        polygons=(_MOTORBIKE_BODY, _KICKSTAND),
        ellipses=((199, 318, 77, 82), (597, 371, 85, 81)),
    ),
}
#: non-class objects that may move behind the class object (never boxed)
DISTRACTORS: dict[str, Cut] = {
    "cup": Cut("coffee.png", 0.6, "grabcut", rect=(20, 20, 480, 370)),
    "person": Cut("astronaut.png", 0.6, "grabcut", rect=(60, 20, 450, 511)),
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


def sources_manifest() -> dict[str, Any]:
    """The photo file of every object, distractor and background, for the manifest."""
    return {
        "objects": {k: c.file for k, c in OBJECTS.items()},
        "distractors": {k: c.file for k, c in DISTRACTORS.items()},
        "backgrounds": list(BACKGROUNDS),
        "package": "scikit-image",
    }


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


def coat(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
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
    fur = colour * (shade * (1 + 0.08 * patch))[..., None]
    return np.clip(fur, 0, 1).astype(np.float32)


def cutout_preview(name: str, fit: tuple[int, int]) -> Image.Image:
    """:func:`cutout` ``name`` over a grey checkerboard (the horse in a fixed coat).

    Scaled (Lanczos) to the largest size within ``fit`` = ``(W, H)``, aspect kept.
    """
    rgb, alpha = cutout(name)
    if name == "horse":
        rgb = coat(np.random.default_rng(0), alpha) * alpha[..., None]
    yy, xx = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    board = np.where((yy // 12 + xx // 12) % 2 == 0, 0.8, 0.6)[..., None]
    img = Image.fromarray(np.uint8(255 * (rgb + board * (1 - alpha[..., None]))))
    f = min(fit[0] / img.width, fit[1] / img.height)
    return img.resize((round(img.width * f), round(img.height * f)), Image.Resampling.LANCZOS)


def instance(rng: np.random.Generator, cfg: RealYTOConfig, name: str) -> np.ndarray:
    """The object as one shot shows it: premultiplied RGBA (h, w, 4) float32.

    A random flip, half the time a side trimmed by up to ``cfg.partial_view``
    of the object's extent, then saturation and gain changes of up to
    ``cfg.colour_jitter`` (the horse first gets a :func:`coat`).
    """
    rgb, alpha = cutout(name)
    if name == "horse":
        rgb = coat(rng, alpha) * alpha[..., None]
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


def backdrop(
    rng: np.random.Generator, cfg: RealYTOConfig, length: int
) -> tuple[str, list[np.ndarray]]:
    """A random background of :data:`BACKGROUNDS`, panned over a shot: its name, its frames.

    Textures are cropped closer than photos; grey sources are tinted. See
    :func:`colocam_plugin.data.synthyto_render.background` for the window.
    """
    name = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    source = _photo(name).astype(np.float32) / 255
    tint = BACKGROUNDS[name]
    if tint is not None:
        source = source * np.asarray(tint, dtype=np.float32)
    zoom = (0.2, 0.4) if name in _TEXTURES else (0.5, 0.9)
    return name, background(
        rng, source, length, zoom, frame_size=cfg.frame_size, camera_pan=cfg.camera_pan
    )


@dataclass
class Track:
    """An object's sprite and its pose in every frame of a shot."""

    rgba: np.ndarray  # (h, w, 4) premultiplied, pre-shrunk for the shot
    area: float  # alpha sum of ``rgba``
    pos: np.ndarray  # (T, 2) centre, frame pixels
    scale: np.ndarray  # (T,) frame pixels per ``rgba`` pixel
    angle: np.ndarray  # (T,) radians


def make_track(
    rng: np.random.Generator,
    cfg: RealYTOConfig,
    rgba: np.ndarray,
    size: tuple[float, float],
    length: int,
    out_mode: str | None,
) -> Track:
    """Path, scale and angle of a sprite over a shot of ``length`` frames.

    Args:
        rng: the shot's random stream.
        cfg: its ``frame_size``, ``scale_drift`` and ``max_rotation`` apply.
        rgba: premultiplied RGBA sprite, ``(h, w, 4)`` float32.
        size: its size at the start (square root of its area), fraction of
            the frame's shorter side, ``(low, high)``.
        length: frames in the shot (>= 2).
        out_mode: ``"enter"`` or ``"exit"``: it comes from or leaves through
            an edge; ``None``: it stays inside.
    """
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
    return Track(rgba, float(rgba[..., 3].sum()), pos, scale, angle)


def warp(track: Track, i: int, size: tuple[int, int]) -> np.ndarray:
    """Frame ``i`` of ``track``: its sprite warped into a ``size`` (W, H) frame, RGBA."""
    ch, cw = track.rgba.shape[:2]
    sc = track.scale[i]
    c, s = math.cos(track.angle[i]) * sc, math.sin(track.angle[i]) * sc
    cx, cy = (cw - 1) / 2, (ch - 1) / 2
    px, py = track.pos[i]
    mat = np.array([[c, -s, px - c * cx + s * cy], [s, c, py - s * cx - c * cy]])
    return cv2.warpAffine(
        track.rgba, mat, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
