"""Pictures a person can look at: CAM overlays with GT and predicted boxes.

:func:`render_gallery` draws one PNG sheet (``colocam demo``);
:func:`write_html_gallery` writes a static HTML page with one image file per
tile (``colocam gallery``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from colocam_plugin.atomic import atomic_dir
from colocam_plugin.data.io import read_image
from colocam_plugin.data.loading import resize_frame
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.metrics.cam_boxes import box_iou, cam_to_boxes

__all__ = ["overlay", "render_gallery", "sample_frames", "write_html_gallery"]

_GT = (0, 255, 0)
_PRED = (255, 40, 40)


def overlay(image: np.ndarray, cam_u8: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 RGB (S,S,3) blended with a JET heat map of ``cam_u8`` (S,S)."""
    heat = cv2.applyColorMap(np.ascontiguousarray(cam_u8), cv2.COLORMAP_JET)[..., ::-1]
    return np.ascontiguousarray(image * (1 - alpha) + heat * alpha, dtype=np.uint8)


def _draw(img: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int]) -> None:
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=int).reshape(-1, 4):
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, 1)


def render_gallery(
    frames: Sequence[FrameRecord],
    results: Mapping[str, Any],
    out_png: str | Path,
    *,
    image_size: int,
    max_frames: int = 8,
    seed: int = 0,
) -> Path:
    """Grid: one row per frame (a seeded sample), the frame then one column per method.

    Green: ground truth; red: the method's box at its pooled best threshold.
    ``results`` are :class:`colocam_plugin.harness.EvalResult` with ``cams_u8``.
    """
    picks = sample_frames(len(frames), max_frames, seed)
    names = list(results)
    pad, label_h = 4, 14
    cell = image_size + pad
    sheet = np.full((label_h + cell * len(picks), cell * (1 + len(names)), 3), 255, dtype=np.uint8)
    for col, title in enumerate(["frame", *names]):
        cv2.putText(
            sheet,
            title[:14],
            (col * cell + 2, 11),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    for row, idx in enumerate(picks):
        frame = resize_frame(read_image(frames[idx].path), image_size)
        img = np.ascontiguousarray(frame.permute(1, 2, 0).round().byte().numpy())
        y = label_h + row * cell
        gt = next(iter(results.values())).boxes[idx]
        base = img.copy()
        _draw(base, gt, _GT)
        sheet[y : y + image_size, 0:image_size] = base
        for col, name in enumerate(names, start=1):
            res = results[name]
            cam = res.cams_u8[idx]
            tile = overlay(img, cam)
            tau = float(res.scores["best_thresholds"]["pooled"])
            _draw(tile, gt, _GT)
            _draw(tile, cam_to_boxes(cam.astype(np.float64) / 255.0, [tau])[0], _PRED)
            sheet[y : y + image_size, col * cell : col * cell + image_size] = tile
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), sheet[..., ::-1])
    return out_png


def sample_frames(num_frames: int, max_frames: int, seed: int = 0) -> list[int]:
    """Sorted indices of a seeded sample of ``min(max_frames, num_frames)`` frames.

    Examples:
        >>> sample_frames(3, 8)
        [0, 1, 2]
        >>> len(sample_frames(100, 5, seed=1))
        5
    """
    rng = np.random.default_rng(seed)
    size = min(max_frames, num_frames)
    return sorted(int(i) for i in rng.choice(num_frames, size=size, replace=False))


def _frame_tau(scores: Mapping[str, Any], label: int) -> float:
    """The frame's class threshold of CorLoc (tau per class); the pooled one if absent."""
    best = scores["best_thresholds"]
    per_class = best.get("corloc_per_class") or {}
    tau = per_class.get(label, per_class.get(str(label)))
    return float(best["pooled"] if tau is None else tau)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:  # pragma: no cover - cv2 encodes every uint8 RGB image
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "-" if value is None else format(float(value), spec)


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.scores { border-collapse: collapse; margin: 0.5em 0 1em; }
table.scores th, table.scores td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
table.scores th:first-child, table.scores td:first-child { text-align: left; }
.row { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 14px; }
figure { margin: 0; }
figure img { width: 160px; height: 160px; image-rendering: pixelated; display: block; }
figcaption { font-size: 12px; max-width: 160px; }
.hit { color: #0a7d24; } .miss { color: #b3261e; }
"""


def write_html_gallery(
    frames: Sequence[FrameRecord],
    results: Mapping[str, Any],
    out_dir: str | Path,
    *,
    image_size: int,
    classes: Sequence[str] | None = None,
    max_frames: int = 12,
    seed: int = 0,
    title: str = "CAM gallery",
    subtitle: str = "",
    image_format: str = "png",
) -> Path:
    """Write ``out_dir/index.html`` and its images: methods side by side on sampled frames.

    The header has a table of each method's CorLoc (class-average, the
    paper's), pooled CorLoc, MaxBoxAccV2 and frame accuracy over all
    ``frames``. Then one row per sampled frame (:func:`sample_frames`): the
    frame with its ground-truth boxes (green), then per method the CAM
    overlay with the ground truth and the method's box (red) at the frame's
    class threshold of CorLoc, captioned with the box's IoU. Images are
    separate files next to ``index.html`` (relative links). The page is
    built in a temporary sibling folder and moved into place
    (:func:`colocam_plugin.atomic.atomic_dir`): a new ``out_dir`` appears
    whole; into an existing one each file is moved atomically, images before
    ``index.html``, and other files there are left alone.

    Args:
        frames: the evaluated frames, in the order :func:`~colocam_plugin.harness.evaluate_methods`
            scored them.
        results: method name -> :class:`~colocam_plugin.harness.EvalResult` with ``cams_u8``
            (``evaluate_methods(..., keep_cams=True)``).
        out_dir: folder to write (created).
        image_size: the evaluation input size (the CAMs' and boxes' grid).
        classes: class names (``label`` indexes them); default: the label numbers.
        max_frames: number of frames shown.
        seed: seed of the frame sample.
        title: the page's title.
        subtitle: one line under the title (dataset, classifier, ...).
        image_format: ``"png"`` or ``"jpg"``.

    Returns:
        the path of ``index.html``.

    Raises:
        ValueError: ``results`` is empty, a result lacks ``cams_u8``, or an
            unknown ``image_format``.
    """
    if not results:
        raise ValueError("write_html_gallery needs at least one method's results")
    missing = [name for name, res in results.items() if res.cams_u8 is None]
    if missing:
        raise ValueError(
            f"no CAMs kept for {', '.join(missing)}: run evaluate_methods(..., keep_cams=True)"
        )
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        _write_page(
            tmp,
            frames,
            results,
            image_size,
            classes,
            max_frames,
            seed,
            title,
            subtitle,
            image_format,
        )
    return out / "index.html"


def _write_page(
    out: Path,
    frames: Sequence[FrameRecord],
    results: Mapping[str, Any],
    image_size: int,
    classes: Sequence[str] | None,
    max_frames: int,
    seed: int,
    title: str,
    subtitle: str,
    image_format: str,
) -> None:
    """Write the images and ``index.html`` of :func:`write_html_gallery` into ``out``."""
    names = list(results)
    gt_boxes = next(iter(results.values())).boxes

    def class_name(label: int) -> str:
        return classes[label] if classes is not None and 0 <= label < len(classes) else str(label)

    rows: list[str] = []
    for row, idx in enumerate(sample_frames(len(frames), max_frames, seed)):
        rec = frames[idx]
        frame = resize_frame(read_image(rec.path), image_size)
        img = np.ascontiguousarray(frame.permute(1, 2, 0).round().byte().numpy())
        gt = np.asarray(gt_boxes[idx]).reshape(-1, 4)
        base = img.copy()
        _draw(base, gt, _GT)
        src = f"f{row:03d}.{image_format}"
        _write_image(out / src, base)
        caption = (
            f"{html.escape(rec.video_id)} #{rec.frame_index}<br>"
            f"{html.escape(class_name(rec.label))}"
        )
        tiles = [_figure(src, f"frame {rec.shot_id} #{rec.frame_index}", caption)]
        for col, name in enumerate(names):
            res = results[name]
            cam = res.cams_u8[idx]
            tile = overlay(img, cam)
            pred = cam_to_boxes(cam.astype(np.float64) / 255.0, [_frame_tau(res.scores, rec.label)])
            _draw(tile, gt, _GT)
            _draw(tile, pred[0], _PRED)
            src = f"f{row:03d}_m{col:02d}.{image_format}"
            _write_image(out / src, tile)
            if len(gt):
                iou = float(box_iou(pred[0].reshape(-1, 4), gt).max())
                mark = "hit" if iou >= 0.5 else "miss"
                caption = f'{html.escape(name)} <span class="{mark}">IoU {iou:.2f}</span>'
            else:
                caption = f"{html.escape(name)} (no GT box)"
            tiles.append(_figure(src, f"{name} on frame {rec.shot_id} #{rec.frame_index}", caption))
        rows.append('<div class="row">\n' + "\n".join(tiles) + "\n</div>")

    head = (
        "<tr><th>method</th><th>CorLoc (class-avg)</th><th>CorLoc (pooled)</th>"
        "<th>MaxBoxAccV2</th><th>frame acc</th></tr>"
    )
    body = [
        f"<tr><td>{html.escape(name)}</td><td>{_fmt(s.get('corloc'))}</td>"
        f"<td>{_fmt(s.get('corloc_pooled'))}</td><td>{_fmt(s.get('maxboxacc_v2'))}</td>"
        f"<td>{_fmt(s.get('frame_accuracy'))}</td></tr>"
        for name, s in ((name, results[name].scores) for name in names)
    ]
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
<table class="scores">
{head}
{chr(10).join(body)}
</table>
<p>{len(frames)} frames scored; {len(rows)} shown (seed {seed}). Green: ground truth; red: the
method's box at its CorLoc threshold for the frame's class; IoU: that box against the best
ground-truth box (hit at 0.5).</p>
{chr(10).join(rows)}
</body>
</html>
"""
    (out / "index.html").write_text(page, encoding="utf-8")


def _figure(src: str, alt: str, caption_html: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(alt)}">'
        f"<figcaption>{caption_html}</figcaption></figure>"
    )
