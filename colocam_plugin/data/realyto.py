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
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw

from colocam_plugin.data.realyto_config import (
    _STICKS_WRITER,
    FRAME_TABLE,
    GENERATOR_VERSION,
    MANIFEST,
    RealYTOConfig,
)
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

    with atomic_write(out_png, "wb") as stream:
        sheet.quantize(256, dither=Image.Dither.NONE).save(stream, format="PNG", optimize=True)
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
