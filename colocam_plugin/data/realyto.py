"""RealYTO: objects cut from real photographs, moving over real photos, in the YTO v1.0 layout.

Every pixel comes from photographs that ship inside the scikit-image wheel
(:mod:`colocam_plugin.data.realyto_sources` cuts a cat, a motorbike and a horse
from them). Every shot shows its video's object under a random flip, partial
view and colour jitter, moving, turning and changing scale over a panned
window of a real photo or texture, with an optional non-class object (a cup,
an astronaut) behind it. Boxes and masks are exact: they are the warped
cut-out's alpha. It is the realism row next to SynthYTO; ``docs/realyto.md``.

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
import hashlib
import itertools
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from colocam_plugin.data.realyto_sources import (
    BACKGROUNDS,
    DISTRACTORS,
    OBJECTS,
    backdrop,
    cutout,
    cutout_preview,
    instance,
    make_track,
    sources_fingerprint,
    sources_manifest,
    warp,
)
from colocam_plugin.data.yto_v1 import YTO_CLASSES
from colocam_plugin.data.yto_writer import (
    bbox,
    cache_root,
    config_hash,
    read_manifest,
    save_sticks,
    shot_folder,
    write_tree,
    write_video_split,
)
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


def default_cache_dir(config: RealYTOConfig | None = None) -> Path:
    """``<cache>/realyto-<hash[:12]>``, ``<cache>`` as for SynthYTO
    (``$COLOCAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/colocam``, else ``~/.cache/colocam``).

    Examples:
        >>> default_cache_dir(RealYTOConfig.tiny()).name.startswith("realyto-")
        True
    """
    return cache_root() / f"realyto-{(config or RealYTOConfig()).hash[:12]}"


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
    hero = make_track(rng, cfg, instance(rng, cfg, name), cfg.object_size, length, out_mode)
    tracks, other = [hero], None
    if rng.random() < cfg.distractor_prob:  # behind the object: drawn first
        other = list(DISTRACTORS)[int(rng.integers(len(DISTRACTORS)))]
        lo, hi = cfg.object_size
        extra = instance(rng, cfg, other)
        tracks.insert(0, make_track(rng, cfg, extra, (0.6 * lo, 0.6 * hi), length, None))
    bg_name, backgrounds = backdrop(rng, cfg, length)
    light0 = 1 + rng.uniform(-0.5, 0.5) * cfg.illumination_drift
    light1 = light0 * (1 + rng.uniform(-0.5, 0.5) * cfg.illumination_drift)
    offset = int(rng.integers(cfg.annotate_every))
    records = []
    for i in range(length):
        frame = backgrounds[i]
        for track in tracks:
            rgba = warp(track, i, (w, h))
            frame = frame * (1 - rgba[..., 3:]) + rgba[..., :3]
        mask = rgba[..., 3] >= 0.5  # the object's: it is drawn last
        visible = float(rgba[..., 3].sum() / (hero.area * hero.scale[i] ** 2))
        box = bbox(mask) if int(mask.sum()) >= cfg.min_box_pixels else None
        frame = frame * (light0 + (light1 - light0) * i / (length - 1)) * 255
        frame = frame + rng.normal(0, cfg.noise_std, frame.shape)
        path = folder / f"frame{i + 1:04d}.jpg"
        pixels = np.clip(np.round(frame), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, quality=cfg.jpeg_quality, subsampling=0)
        annotated = box is not None and i % cfg.annotate_every == offset
        if annotated and box is not None:  # the same test: spelled out for mypy
            save_sticks(Path(f"{path}_sticks.mat"), [box], writer=_STICKS_WRITER)
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
        test = write_video_split(tmp / name, n_videos, cfg.test_videos_per_class, crng)
        for v, s in itertools.product(range(1, n_videos + 1), range(1, cfg.shots_per_video + 1)):
            split = "test" if v in test else "train"
            folder = shot_folder(tmp / name, v, s)
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
    key = hashlib.sha256(f"{cfg.hash}:{sources_fingerprint()}".encode()).hexdigest()

    def build(tmp: Path) -> dict[str, Any]:
        info, table = _render_tree(tmp, cfg)
        (tmp / FRAME_TABLE).write_text("\n".join(table) + "\n")
        info.update(format="realyto", generator_version=GENERATOR_VERSION, config=cfg.to_dict())
        info.update(config_hash=cfg.hash, sources_sha256=sources_fingerprint(), tree_key=key)
        info["opencv"] = cv2.__version__
        info["sources"] = sources_manifest()
        return info

    return write_tree(root, build, manifest=MANIFEST, key_field="tree_key", key=key, kind="RealYTO")


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
        cells.append((cutout_preview(name, (fw * zoom, fh * zoom)), f"cut-out: {name}"))
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
    from colocam_plugin.atomic import atomic_write

    with atomic_write(out_png, "wb") as fh:
        sheet.quantize(256, dither=Image.Dither.NONE).save(fh, format="PNG", optimize=True)
    return out_png


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
    counts = (read_manifest(root, MANIFEST) or {}).get("counts", {})
    print(f"{root}  {json.dumps(counts, sort_keys=True)}  ({seconds:.1f} s)")
    if args.sheet is not None:
        print(render_contact_sheet(root, args.sheet))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
