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
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from colocam_plugin.data.synthyto_config import (  # noqa: F401  (re-exported)
    FRAME_TABLE,
    GENERATOR_VERSION,
    MANIFEST,
    PART_COLOUR_MODES,
    PRESETS,
    YTO_CLASSES,
    SynthYTOConfig,
)
from colocam_plugin.data.synthyto_render import class_colour, render_tree
from colocam_plugin.data.yto_writer import cache_root, read_manifest, write_tree
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
