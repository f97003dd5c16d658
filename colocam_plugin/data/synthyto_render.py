"""SynthYTO's drawing half: sprites, their tracks through a shot, backgrounds, frames.

:mod:`colocam_plugin.data.synthyto` holds the public side (config, cache,
manifest, frame table, contact sheet) and calls :func:`render_tree`; this
module draws, and writes boxes through :mod:`colocam_plugin.data.yto_writer`.
RealYTO reuses :func:`background` for its panned photos. Every random draw comes from
``numpy.random.default_rng([seed, ...])`` keyed by class, video and shot, so a
config gives the same bytes whatever else is drawn.
"""

from __future__ import annotations

import colorsys
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from colocam_plugin.data.yto_writer import bbox, save_sticks, shot_folder, write_video_split

if TYPE_CHECKING:
    from colocam_plugin.data.synthyto_config import SynthYTOConfig

__all__ = ["background", "class_colour", "render_tree"]

#: ``part_colour_mode="class"``: class k's part colour is ``_PALETTE[k % 10]``;
#: the first five are saturated and far apart in hue, the last five muted (body
#: colours while C <= 5).
_PALETTE = (
    np.array(
        [
            *([200, 45, 40], [225, 205, 60], [70, 160, 60], [50, 80, 190], [150, 60, 170]),
            *([195, 150, 140], [110, 125, 145], [120, 80, 45], [225, 225, 215], [60, 60, 65]),
        ],
        dtype=np.float32,
    )
    / 255.0
)
_BACKGROUNDS = (
    *("grass", "brick", "gravel", "rocket", "coffee", "chelsea", "astronaut"),
    *("stereo_motorcycle", "camera", "coins", "hubble_deep_field", "immunohistochemistry"),
)
_TEXTURES = ("grass", "brick", "gravel")  # fine grain: cropped closer than photos
_PX_PER_UNIT = 28.0  # sprite resolution: pixels per body radius
# ``part_colour_mode="body_family"``: HSV ranges of a body colour (every class
# draws from them), the part base's relative lightness change (7-17 RGB units:
# a colour-kernel weight of 0.5-0.9 at sigma 15, a faint seam) and the
# pattern's (70-190 units: a texture a classifier sees at once)
_FAMILY_SATURATION = (0.35, 0.8)
_FAMILY_VALUE = (0.5, 0.9)
_PART_SHADE = 0.05
_PATTERN_SHADE = 0.35


def class_colour(label: int) -> np.ndarray:
    """RGB (0..255, float) of class ``label``'s part in ``part_colour_mode="class"``
    (the ``"adversarial"`` preset): its colour evidence. The default preset has
    no class colours.

    Examples:
        >>> class_colour(0).round().tolist()
        [200.0, 45.0, 40.0]
    """
    return _PALETTE[label % len(_PALETTE)] * 255.0


# --------------------------------------------------------------------------- rendering
# Units: a body has mean radius 1 ("unit"); sprites are drawn once per object at
# _PX_PER_UNIT pixels per unit, then warped (rotate, scale, translate) into frames.


@dataclass
class _Sprite:
    rgba: np.ndarray  # (s, s, 4) float32, premultiplied colour
    part: np.ndarray  # (s, s) float32 part alpha (zeros for distractors)
    centre: float  # body origin, sprite pixels (x == y)
    ppu: float  # sprite pixels per unit
    area: float  # alpha sum, sprite pixels
    extent: float  # furthest drawn point from the origin, units


@dataclass
class _Track:
    sprite: _Sprite
    pos: np.ndarray  # (T, 2) frame pixels
    radius: np.ndarray  # (T,) frame pixels per unit
    angle: np.ndarray  # (T,) radians
    gain: np.ndarray  # (T, 3) colour gain


def _shape_polygon(kind: int) -> np.ndarray:
    """Unit part outline, +x pointing away from the body, centred on its vertices."""
    ring = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    star = np.arange(10) * np.pi / 5
    plus = [1, 0.35, 0.35, 0.35, 0.35, 1, -0.35, 1, -0.35, 0.35, -1, 0.35]
    plus += [-v for v in plus]  # point symmetry completes the cross
    shapes = [
        np.c_[np.cos(ring), np.sin(ring)],  # 0 disc
        np.c_[np.cos([0, 2.094, 4.189]), np.sin([0, 2.094, 4.189])],  # 1 triangle, tip out
        [0.8, 0.8, -0.8, 0.8, -0.8, -0.8, 0.8, -0.8],  # 2 square
        [1.2, 0, 0, 0.7, -1.2, 0, 0, -0.7],  # 3 rhombus, tip out
        plus,  # 4 cross
        np.c_[np.cos(star), np.sin(star)] * np.tile([1.0, 0.45], 5)[:, None],  # 5 star
        [1, 0, 0.1, 0.8, 0.1, 0.3, -0.9, 0.3, -0.9, -0.3, 0.1, -0.3, 0.1, -0.8],  # 6 arrow
        [
            1,
            -0.9,
            1,
            0.9,
            0.45,
            0.9,
            0.45,
            0.3,
            -0.9,
            0.3,
            -0.9,
            -0.3,
            0.45,
            -0.3,
            0.45,
            -0.9,
        ],  # 7 T
        np.c_[np.cos(ring[6:19]) + 0.5, np.sin(ring[6:19])],  # 8 half disc, flat side out
        [1, 1, 0, 0.25, -1, 1, -1, -1, 0, -0.25, 1, -1],  # 9 bow tie
    ]
    pts = np.asarray(shapes[kind % 10], dtype=np.float64).reshape(-1, 2)
    return pts - pts.mean(axis=0)


def _pattern(kind: int, u: np.ndarray, v: np.ndarray, inside: np.ndarray, px: float) -> np.ndarray:
    """Class pattern (drawn in the second colour) in part coordinates (u outward)."""
    r2 = u * u + v * v
    k = kind % 10
    if k == 0:
        return r2 < 0.35**2
    if k == 1:
        return np.floor((v + 1) * 2.5) % 2 == 1
    if k == 2:
        return (u > 0) ^ (v > 0)
    if k == 3:
        return (r2 > 0.4**2) & (r2 < 0.68**2)
    if k == 4:
        return np.floor((u + 1) * 2.5) % 2 == 1
    if k == 5:
        return u > 0.1
    if k == 6:
        return np.abs(u - v) < 0.3
    if k == 7:
        size = max(3, round(0.5 * px) | 1)
        eroded = cv2.erode(inside.astype(np.uint8), np.ones((size, size), np.uint8))
        return inside & ~eroded.astype(bool)
    if k == 8:
        return ((u * u + (v - 0.45) ** 2) < 0.22**2) | ((u * u + (v + 0.45) ** 2) < 0.22**2)
    return np.ones_like(inside)


def _poly_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _fill(size: int, centre: float, pts: np.ndarray, ppu: float) -> np.ndarray:
    img = np.zeros((size, size), np.uint8)
    fixed = np.round((centre + pts * ppu) * 16).astype(np.int32)
    cv2.fillPoly(img, [fixed], 255, lineType=cv2.LINE_AA, shift=4)
    return img.astype(np.float32) / 255.0


def _make_sprite(
    rng: np.random.Generator, cfg: SynthYTOConfig, colours: np.ndarray, part_kind: int | None
) -> _Sprite:
    """A textured body, plus the class part when ``part_kind`` is given.

    ``colours`` (4, 3) in 0..1: body base, body texture, part base, part pattern.
    """
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    r = np.ones_like(t)
    for k in range(2, 6):
        r += rng.uniform(0, 0.16 / (k - 1)) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    aspect = math.sqrt(rng.uniform(*cfg.body_aspect))
    body = np.c_[
        np.clip(r, 0.55, None) * np.cos(t) * aspect, np.clip(r, 0.55, None) * np.sin(t) / aspect
    ]
    part = None
    if part_kind is not None:
        unit = _shape_polygon(part_kind)
        scale = math.sqrt(rng.uniform(*cfg.part_area) * _poly_area(body) / _poly_area(unit))
        q = body[rng.integers(len(body))]
        d = q / np.linalg.norm(q)
        centre_uv = q + d * 0.45 * scale
        rot = np.array([[d[0], -d[1]], [d[1], d[0]]])
        part = centre_uv + (unit * scale) @ rot.T
    pts = body if part is None else np.vstack([body, part])
    extent = float(np.linalg.norm(pts, axis=1).max())
    ppu = _PX_PER_UNIT
    half = math.ceil((extent + 0.15) * ppu)
    size = 2 * half + 1
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xs - half) / ppu, (ys - half) / ppu
    # plain bodies by default: a textured body looks like a class pattern
    style = int(rng.integers(3)) if rng.random() < cfg.body_texture_prob else 3
    if style == 0:
        mark = np.zeros((size, size), bool)
        for _ in range(rng.integers(4, 10)):
            cx, cy = rng.uniform(-1.2, 1.2, 2)
            mark |= (x - cx) ** 2 + (y - cy) ** 2 < rng.uniform(0.1, 0.25) ** 2
    elif style == 1:
        phi, freq = rng.uniform(0, np.pi), rng.uniform(0.8, 1.8)
        wave = np.sin(2 * np.pi * freq * (x * np.cos(phi) + y * np.sin(phi)) + rng.uniform(0, 6.3))
        mark = wave > rng.uniform(0.2, 0.6)
    elif style == 2:
        noise = cv2.resize(
            rng.random((6, 6)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
        )
        mark = noise > np.quantile(noise, rng.uniform(0.55, 0.75))
    else:
        mark = np.zeros((size, size), bool)
    psi = rng.uniform(0, 2 * np.pi)
    slope = cfg.shading * (x * np.cos(psi) + y * np.sin(psi))
    shade = np.clip(1 + slope, 0.75, 1.2)[..., None]
    grain = cv2.GaussianBlur(rng.normal(0, 0.04, (size, size)).astype(np.float32), (0, 0), 1.0)
    body_rgb = np.where(mark[..., None], colours[1], colours[0]) * shade + grain[..., None]
    body_a = _fill(size, half, body, ppu)
    part_a = np.zeros_like(body_a)
    rgb = body_rgb * body_a[..., None]
    if part is not None and part_kind is not None:
        part_a = _fill(size, half, part, ppu)
        rel_x, rel_y = x - centre_uv[0], y - centre_uv[1]
        u = (rel_x * d[0] + rel_y * d[1]) / scale
        v = (-rel_x * d[1] + rel_y * d[0]) / scale
        pattern_kind = (part_kind % 10 + part_kind // 10) % 10
        pat = _pattern(pattern_kind, u, v, part_a > 0.5, scale * ppu)
        if cfg.part_colour_mode == "body_family" and pattern_kind == 9:
            pat = np.zeros_like(pat)  # a solid pattern would hide the base shade
        part_rgb = np.where(pat[..., None], colours[3], colours[2]) * shade + grain[..., None]
        rgb = part_rgb * part_a[..., None] + rgb * (1 - part_a[..., None])
    alpha = 1 - (1 - body_a) * (1 - part_a)
    rgba = np.dstack([np.clip(rgb, 0, None), alpha]).astype(np.float32)
    return _Sprite(rgba, part_a, float(half), ppu, float(alpha.sum()), extent)


def _shrink(sprite: _Sprite, factor: float) -> _Sprite:
    """Pre-shrink a sprite (area filter) so per-frame warps do not alias."""
    if factor >= 0.95:
        return sprite
    size = max(3, round(sprite.rgba.shape[0] * factor))
    f = size / sprite.rgba.shape[0]
    rgba = cv2.resize(sprite.rgba, (size, size), interpolation=cv2.INTER_AREA)
    part = cv2.resize(sprite.part, (size, size), interpolation=cv2.INTER_AREA)
    centre = (sprite.centre + 0.5) * f - 0.5
    return _Sprite(rgba, part, centre, sprite.ppu * f, float(rgba[..., 3].sum()), sprite.extent)


def _make_track(
    rng: np.random.Generator,
    cfg: SynthYTOConfig,
    sprite: _Sprite,
    length: int,
    out_mode: str | None,
) -> _Track:
    """Trajectory, size, rotation and colour drift of one object over a shot."""
    w, h = cfg.frame_size
    t = np.arange(length, dtype=np.float64)
    frac = t / (length - 1)
    r0 = rng.uniform(*cfg.body_size) * min(w, h) / 2
    ratio = math.exp(rng.uniform(-1, 1) * math.log1p(cfg.scale_drift))
    radius = r0 * ratio**frac
    wobble_amp = 0.015 * w
    inside = lambda: rng.uniform([0.15 * w, 0.15 * h], [0.85 * w, 0.85 * h])  # noqa: E731
    keys = [(0, inside()), (length - 1, inside())]
    if out_mode is not None:
        reach = sprite.extent * radius.max() + wobble_amp + 2
        edge = rng.integers(4)

        def outside() -> np.ndarray:
            a = rng.uniform(0.2, 0.8)
            return np.array(
                [(-reach, a * h), (w - 1 + reach, a * h), (a * w, -reach), (a * w, h - 1 + reach)][
                    edge
                ]
            )

        a = int(rng.integers(max(1, length // 4), max(2, length // 2)))
        b = min(length - 2, a + max(1, length // 4))
        if out_mode == "exit_return" and b > a:
            keys = [(0, keys[0][1]), (a, outside()), (b, outside()), (length - 1, keys[1][1])]
        elif out_mode == "enter" or out_mode == "exit_return":
            keys = [(0, outside()), (a, outside()), (length - 1, keys[1][1])]
        else:
            keys = [(0, keys[0][1]), (b, outside()), (length - 1, outside())]
    pos = np.zeros((length, 2))
    for (ta, pa), (tb, pb) in itertools.pairwise(keys):
        s = np.clip((t - ta) / max(tb - ta, 1), 0, 1)  # linear: exits take several frames
        seg = (t >= ta) & (t <= tb)
        pos[seg] = pa + (pb - pa) * s[seg, None]
    phase, cycles = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.5, 1.5)
    pos += (
        wobble_amp
        * np.c_[np.sin(2 * np.pi * cycles * frac + phase[0]), np.cos(2 * np.pi * frac + phase[1])]
    )
    omega = math.radians(rng.uniform(-cfg.rotation_speed, cfg.rotation_speed))
    angle = rng.uniform(0, 2 * np.pi) + omega * t
    drift = cfg.appearance_drift
    g0 = 1 + rng.uniform(-drift / 2, drift / 2, 3)
    g1 = g0 * (1 + rng.uniform(-drift, drift, 3))
    gain = g0 + (g1 - g0) * frac[:, None]
    scale = (radius / sprite.ppu).mean()
    sprite = _shrink(sprite, 1.25 * (radius.max() / sprite.ppu)) if scale < 0.75 else sprite
    return _Track(sprite, pos, radius, angle, gain.astype(np.float32))


def _warp(track: _Track, i: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Warped premultiplied RGBA and part alpha of a track at frame ``i``, and its scale."""
    sp = track.sprite
    sc = track.radius[i] / sp.ppu
    c, s = math.cos(track.angle[i]) * sc, math.sin(track.angle[i]) * sc
    off = track.pos[i] - np.array([c * sp.centre - s * sp.centre, s * sp.centre + c * sp.centre])
    mat = np.array([[c, -s, off[0]], [s, c, off[1]]], dtype=np.float64)
    kw: dict[str, Any] = {
        "flags": cv2.INTER_LINEAR,
        "borderMode": cv2.BORDER_CONSTANT,
        "borderValue": 0,
    }
    return cv2.warpAffine(sp.rgba, mat, size, **kw), cv2.warpAffine(sp.part, mat, size, **kw), sc


def _load_background(name: str, cache: dict[str, np.ndarray]) -> np.ndarray:
    if name not in cache:
        try:
            from skimage import data
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "SynthYTO needs scikit-image: pip install 'colocam-plugin[synth]'"
            ) from exc
        img = data.stereo_motorcycle()[0] if name == "stereo_motorcycle" else getattr(data, name)()
        img = np.asarray(img, dtype=np.float32) / 255.0
        cache[name] = img[..., :3] if img.ndim == 3 else img
    return cache[name]


def background(
    rng: np.random.Generator,
    source: np.ndarray,
    length: int,
    zoom_range: tuple[float, float],
    *,
    frame_size: tuple[int, int],
    camera_pan: float,
) -> list[np.ndarray]:
    """Panned, zoomed window of a photo or texture for every frame of a shot.

    The window is the most cluttered (highest pixel std) of 6 random draws, so
    flat sky or black space rarely makes the background trivial.

    Args:
        rng: the shot's random stream (draws the window, then the pan direction).
        source: ``(H, W, 3)`` float32 image in 0..1.
        length: frames in the shot (>= 2).
        zoom_range: window height as a share of the source's, ``(low, high)``.
        frame_size: ``(W, H)`` of a frame.
        camera_pan: window travel across the shot, fraction of the frame width.

    Returns:
        ``length`` float32 ``(H, W, 3)`` frames.
    """
    w, h = frame_size
    src_h, src_w = source.shape[:2]
    best = (-1.0, 0.0, np.zeros(2))
    for _ in range(6):
        zoom, corner = rng.uniform(*zoom_range), rng.uniform(0, 1, 2)
        win_h = zoom * min(src_h, src_w * h / w)
        x0, y0 = corner * np.array([src_w - win_h * w / h, src_h - win_h]).clip(0)
        patch = source[int(y0) : int(y0 + win_h) : 4, int(x0) : int(x0 + win_h * w / h) : 4]
        if (clutter := float(patch.std())) > best[0]:
            best = (clutter, win_h, corner)
    _, win_h, corner = best
    f = h / win_h
    scaled = cv2.resize(
        source, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    )
    room = np.array([scaled.shape[1] - w, scaled.shape[0] - h], dtype=np.float64).clip(0)
    start = corner * room
    direction = rng.uniform(0, 2 * np.pi)
    end = np.clip(
        start + camera_pan * w * np.array([math.cos(direction), math.sin(direction)]), 0, room
    )
    out = []
    for i in range(length):
        x, y = start + (end - start) * i / (length - 1)
        mat = np.array([[1, 0, -x], [0, 1, -y]], dtype=np.float64)
        out.append(
            cv2.warpAffine(
                scaled, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
        )
    return out


def _quota(prob: float, total: int, rng: np.random.Generator) -> set[int]:
    count = 0 if prob == 0 else min(total, max(1, round(prob * total)))
    return {int(i) for i in rng.choice(total, count, replace=False)}


def _body_colours(cfg: SynthYTOConfig, label: int) -> list[int]:
    """Palette indices a body may take: no class's part colour while there are spares."""
    spare = list(range(cfg.num_classes, len(_PALETTE)))
    return spare or [k for k in range(len(_PALETTE)) if k != label % len(_PALETTE)]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(s, 1.0), min(v, 1.0)), dtype=np.float32)


def _family_colours(rng: np.random.Generator) -> np.ndarray:
    """Colours (4, 3) of one hue, from a distribution no class owns.

    Rows: body, pattern shade (body texture), part base (a near shade of the
    body, so the colour kernel joins part and body), pattern shade.
    """
    h, s, v = rng.uniform(0, 1), rng.uniform(*_FAMILY_SATURATION), rng.uniform(*_FAMILY_VALUE)
    body = _hsv(h, s, v)
    near = _hsv(h, s, v * (1 - _PART_SHADE) if v > 0.7 else v * (1 + _PART_SHADE))
    if v > 0.7:  # dark pattern on a light body, light and paler on a dark one
        pattern = _hsv(h, s, v * (1 - _PATTERN_SHADE))
    else:
        pattern = _hsv(h, s * 0.5, v + _PATTERN_SHADE)
    return np.stack([body, pattern, near, pattern])


def _object_colours(rng: np.random.Generator, cfg: SynthYTOConfig, label: int) -> np.ndarray:
    """Colours (4, 3) of an object of class ``label`` (rows as in :func:`_make_sprite`).

    ``"class"`` mode: the part's base is the class colour, its pattern and the
    body a non-class colour, so colour alone points at the part, never at the
    whole body. ``"body_family"`` mode: :func:`_family_colours`.
    """
    if cfg.part_colour_mode == "body_family":
        return _family_colours(rng)
    body, part = _PALETTE[[rng.choice(_body_colours(cfg, label)), label % len(_PALETTE)]]
    return np.stack([body, part, part, body])


def _distractor_colours(
    rng: np.random.Generator, cfg: SynthYTOConfig, colours: np.ndarray
) -> np.ndarray:
    """Colours of a part-less distractor in a shot whose object has ``colours``.

    With ``same_colour_distractor_prob`` they are the object's, moved by
    ``distractor_colour_shift`` in RGB (one random direction for every row,
    turned back where the body colour would leave 0..1); otherwise their own.
    """
    same = rng.random() < cfg.same_colour_distractor_prob
    if cfg.part_colour_mode == "class":
        # other distractors take non-class colours: a class colour seen in
        # another class's video would make the part's colour a lie
        pool = _body_colours(cfg, -1)
        first, second = _PALETTE[rng.choice(pool, 2, replace=len(pool) < 2)]
        own = np.stack([first, second, second, first])
    else:
        own = _family_colours(rng)
    if not same or cfg.distractor_colour_shift == 0:
        return own if not same else colours
    step = rng.normal(size=3)
    step *= cfg.distractor_colour_shift / 255.0 / max(float(np.linalg.norm(step)), 1e-12)
    step = np.where((colours[0] + step < 0) | (colours[0] + step > 1), -step, step)
    return np.clip(colours + step, 0.0, 1.0).astype(np.float32)


def _scene(
    rng: np.random.Generator, cfg: SynthYTOConfig, label: int, sources: dict[str, np.ndarray]
) -> tuple[np.ndarray, _Sprite, np.ndarray, tuple[float, float]]:
    """Object colours and sprite, background image and its zoom range."""
    colours = _object_colours(rng, cfg, label)
    hero = _make_sprite(rng, cfg, colours, label)
    bg_name = _BACKGROUNDS[rng.integers(len(_BACKGROUNDS))]
    source = _load_background(bg_name, sources)
    zoom_range = (0.15, 0.35) if bg_name in _TEXTURES else (0.45, 0.9)  # keep grain visible
    if source.ndim == 2 and cfg.background_tint:  # tint grey photos with a non-class colour
        source = source[..., None] * (0.5 + 0.5 * _PALETTE[rng.choice(_body_colours(cfg, -1))])
    elif source.ndim == 2:
        source = np.repeat(source[..., None], 3, axis=2)
    elif cfg.background_saturation != 1.0:  # keep the texture, mute the colours
        grey = source.mean(axis=2, keepdims=True)
        source = np.clip(grey + cfg.background_saturation * (source - grey), 0.0, 1.0)
    return colours, hero, source, zoom_range


def render_tree(tmp: Path, cfg: SynthYTOConfig) -> tuple[dict[str, Any], list[str]]:
    """Write every class folder under ``tmp``; return the counts and the frame table.

    The frame table is one JSON line per frame (see
    :func:`colocam_plugin.data.synthyto.read_frame_table`); the caller writes it.
    """
    w, h = cfg.frame_size
    n_videos = cfg.train_videos_per_class + cfg.test_videos_per_class
    videos = []  # (class, video number, split)
    for c, name in enumerate(cfg.classes):
        crng = np.random.default_rng([cfg.seed, 1, c])
        test = write_video_split(tmp / name, n_videos, cfg.test_videos_per_class, crng)
        videos += [(c, v, "test" if v in test else "train") for v in range(1, n_videos + 1)]
    plan = np.random.default_rng([cfg.seed, 0])
    n_shots = len(videos) * cfg.shots_per_video
    out_shots = _quota(cfg.out_of_view_prob, n_shots, plan)
    multi_shots = _quota(cfg.multi_object_prob, n_shots, plan)
    sources: dict[str, np.ndarray] = {}
    table: list[str] = []
    counts = dict.fromkeys(("frames", "val_frames", "val_boxes", "test_frames", "test_boxes"), 0)
    counts |= dict.fromkeys(("out_of_view_frames", "multi_object_frames", "distractor_frames"), 0)
    for vi, (c, v, split) in enumerate(videos):
        name = cfg.classes[c]
        if not cfg.shot_variation:  # one instance and scene for the whole video
            scene = _scene(np.random.default_rng([cfg.seed, 2, c, v]), cfg, c, sources)
        for s in range(1, cfg.shots_per_video + 1):
            shot_no = vi * cfg.shots_per_video + s - 1
            srng = np.random.default_rng([cfg.seed, 3, c, v, s])
            if cfg.shot_variation:
                key = [cfg.seed, 4, v, s] if cfg.shared_scenes else [cfg.seed, 4, c, v, s]
                scene = _scene(np.random.default_rng(key), cfg, c, sources)
            colours, hero, source, zoom_range = scene
            j = cfg.shot_length_jitter
            length = cfg.frames_per_shot + int(srng.integers(-j, j + 1))
            out_mode = None
            if shot_no in out_shots:
                out_mode = ("exit_return", "enter", "exit")[int(srng.integers(3))]
            objects = [_make_track(srng, cfg, hero, length, out_mode)]
            if shot_no in multi_shots:
                other = _object_colours(srng, cfg, c)
                objects.append(
                    _make_track(srng, cfg, _make_sprite(srng, cfg, other, c), length, None)
                )
            distractors = []
            for _ in range(int(srng.integers(cfg.distractors[0], cfg.distractors[1] + 1))):
                pal = _distractor_colours(srng, cfg, colours)
                distractors.append(
                    _make_track(srng, cfg, _make_sprite(srng, cfg, pal, None), length, None)
                )
            backgrounds = background(
                srng,
                source,
                length,
                zoom_range,
                frame_size=cfg.frame_size,
                camera_pan=cfg.camera_pan,
            )
            light0 = 1 + srng.uniform(-0.5, 0.5) * cfg.appearance_drift
            light1 = light0 * (1 + srng.uniform(-0.5, 0.5) * cfg.appearance_drift)
            offset = int(srng.integers(cfg.annotate_every))
            folder = shot_folder(tmp / name, v, s)
            folder.mkdir(parents=True)
            for i in range(length):
                frame = backgrounds[i].copy()
                for track in distractors:
                    rgba, _, _ = _warp(track, i, (w, h))
                    frame = frame * (1 - rgba[..., 3:]) + rgba[..., :3] * track.gain[i]
                masks, parts = [], []
                objs: list[dict[str, Any]] = []
                for track in objects:
                    rgba, part, sc = _warp(track, i, (w, h))
                    frame = frame * (1 - rgba[..., 3:]) + rgba[..., :3] * track.gain[i]
                    mask = rgba[..., 3] >= 0.5
                    boxed = int(mask.sum()) >= cfg.min_box_pixels
                    masks.append(mask if boxed else None)
                    parts.append(part >= 0.5 if boxed else None)
                    visible = float(rgba[..., 3].sum()) / (track.sprite.area * sc * sc)
                    objs.append(
                        {
                            "box": bbox(mask) if boxed else None,
                            "part_box": bbox(part >= 0.5) if boxed else None,
                            "visible": round(min(1.0, visible), 4),
                        }
                    )
                frame = frame * (light0 + (light1 - light0) * i / (length - 1))
                frame = frame * 255 + srng.normal(0, cfg.noise_std, frame.shape)
                pixels = np.clip(np.round(frame), 0, 255).astype(np.uint8)
                path = folder / f"frame{i + 1:04d}.jpg"
                Image.fromarray(pixels).save(path, quality=cfg.jpeg_quality, subsampling=0)
                boxes = [o["box"] for o in objs if o["box"] is not None]
                annotated = bool(boxes) and i % cfg.annotate_every == offset
                if annotated:
                    save_sticks(Path(f"{path}_sticks.mat"), boxes, writer="synthyto")
                    if cfg.write_masks:
                        for suffix, layers in (("_mask.png", masks), ("_part.png", parts)):
                            union = np.any([m for m in layers if m is not None], axis=0)
                            Image.fromarray(union.astype(np.uint8) * 255).save(f"{path}{suffix}")
                    role = "val" if split == "train" else "test"
                    counts[f"{role}_frames"] += 1
                    counts[f"{role}_boxes"] += len(boxes)
                counts["frames"] += 1
                counts["out_of_view_frames"] += all(o["visible"] == 0 for o in objs)
                counts["multi_object_frames"] += len(boxes) > 1
                counts["distractor_frames"] += bool(distractors)
                record = {
                    "path": path.relative_to(tmp).as_posix(),
                    "label": c,
                    "video": f"{name}/{v:04d}",
                    "shot": f"{name}/{v:04d}/{s:03d}",
                    "frame": i,
                    "video_split": split,
                    "annotated": annotated,
                    "n_distractors": len(distractors),
                    "objects": objs,
                }
                table.append(json.dumps(record, sort_keys=True))
    counts |= {"videos": len(videos), "shots": n_shots}
    return {"classes": cfg.classes, "counts": counts}, table
