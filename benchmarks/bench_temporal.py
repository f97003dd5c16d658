"""``colocam localize --temporal`` vs without: CorLoc and box jitter on a scored dataset.

Every shot of the split (all its frames, in order, as a folder of frames
would be fed to ``colocam localize``) goes through
:func:`colocam_plugin.localize.localize_stream`, the code the command runs,
once without and once with temporal mode (the model runs once; the second
pass replays its outputs). Reported per mode:

- **CorLoc @ fixed threshold**: what ``colocam localize`` writes, scored: a
  frame is correct when its box (at ``--threshold``) has IoU >= 0.5 with a
  ground-truth box (inclusive pixels, original frame); a frame marked absent
  counts as wrong (every scored frame holds the object). Class-average (the
  paper's averaging) and pooled over frames.
- **CorLoc (tau swept)**: the paper's protocol (MaxBoxAcc at delta 50, tau per
  class, class-avg, 1000 thresholds) on the CAMs the mode draws its boxes
  from (window-mean CAMs in temporal mode), through
  :class:`~colocam_plugin.metrics.BoxAccumulator`.
- **Jitter**: over consecutive frames of a shot that both have a box, the
  distance between the box centres divided by the box size
  (``(sqrt(area_t) + sqrt(area_t+1)) / 2``, inclusive pixels), averaged.
  The objects move, so it is not zero for perfect boxes; the ground truth's
  own jitter (consecutive annotated frames) is given for scale.
  Annotated frames that are ``g`` frames apart count ``shift / g``.
- the share of frames marked absent (all frames; scored frames; and, where
  the dataset records it, RealYTO's ``realyto_frames.jsonl``, the frames
  whose object is out of view: there a mark is right).

Bars (issue 14): jitter -30% or better, CorLoc not lower.

    python benchmarks/bench_temporal.py --dataset synthyto --classifier clf.pt \\
        --localizer colocam.pt                                  # default preset, its test split
    python benchmarks/bench_temporal.py --dataset realyto --classifier r_clf.pt \\
        --localizer r_colocam.pt

Writes ``benchmarks/results/temporal_<dataset>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_localize import git_commit

from colocam_plugin.api import create_dataset
from colocam_plugin.devices import resolve_device
from colocam_plugin.localize import (
    ABSENT_BELOW,
    ABSENT_TOP,
    BOX_THRESHOLD,
    TEMPORAL_WINDOW,
    CAMEngine,
    folder_frames,
    localize_stream,
)
from colocam_plugin.metrics import BoxAccumulator
from colocam_plugin.metrics.cam_boxes import box_iou, resize_bbox
from colocam_plugin.train.checkpoint import versions

RESULTS = Path(__file__).parent / "results"
JITTER_BAR = -30.0  # percent change, or better (lower)


class ReplayEngine:
    """Wraps a :class:`CAMEngine`: records its outputs for one shot, then replays them."""

    def __init__(self, engine: CAMEngine) -> None:
        self.engine = engine
        self.classes = engine.classes
        self.image_size = engine.image_size
        self.name = engine.name
        self.tape: list[tuple[np.ndarray, np.ndarray]] = []
        self.replay = False
        self._pos = 0

    def record(self) -> None:
        """Run the model and keep its outputs (a fresh tape)."""
        self.tape, self.replay, self._pos = [], False, 0

    def rewind(self) -> None:
        """Replay the tape from its start."""
        self.replay, self._pos = True, 0

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.replay:
            out = self.tape[self._pos]
            self._pos += 1
            return out
        out = self.engine(images, targets)
        self.tape.append(out)
        return out


def _size(b: np.ndarray) -> float:
    return float(np.sqrt((b[2] - b[0] + 1) * (b[3] - b[1] + 1)))


def jitter(boxes: list[np.ndarray | None]) -> list[float]:
    """Centre shift / box size of each consecutive pair of frames that both have a box."""
    out = []
    for a, b in itertools.pairwise(boxes):
        if a is None or b is None:
            continue
        ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
        cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
        out.append(float(np.linalg.norm(cb - ca) / ((_size(a) + _size(b)) / 2)))
    return out


class ModeScores:
    """Running scores of one mode (see the module docstring)."""

    def __init__(
        self, num_classes: int, image_size: int, out_of_view: frozenset[Path] = frozenset()
    ) -> None:
        self.size = image_size
        self.out_of_view = out_of_view
        self.absent_unseen = self.n_unseen = 0
        self.acc = BoxAccumulator(thresholds=1000, num_classes=num_classes)
        self.hits: dict[int, list[bool]] = {}
        self.jit: list[float] = []
        self.absent_all = self.absent_scored = self.n_all = 0

    def add_shot(self, shot: Any, results: list[Any], scored: dict[Path, Any]) -> None:
        """Score one shot's results (``scored``: path -> annotated record)."""
        boxes = [None if r.box is None else np.asarray(r.box, dtype=np.int64) for r in results]
        self.jit += jitter(boxes)
        self.n_all += len(results)
        self.absent_all += sum(b is None for b in boxes)
        for rec, box in zip(shot.frames, boxes) if self.out_of_view else ():
            if Path(rec.path).resolve() in self.out_of_view:
                self.n_unseen += 1
                self.absent_unseen += box is None
        s = self.size
        cams, labels, gts = [], [], []
        for rec, res, box in zip(shot.frames, results, boxes):
            if rec.path not in scored:
                continue
            gt = np.asarray(scored[rec.path].boxes)
            self.absent_scored += box is None
            ok = box is not None and float(box_iou(box, gt).max()) >= 0.5
            self.hits.setdefault(rec.label, []).append(ok)
            w, h = res.size
            cams.append(res.cam_u8.astype(np.float32) / 255.0)
            labels.append(rec.label)
            gts.append(np.array([resize_bbox(b, (w, h), (s, s)) for b in gt], dtype=np.float64))
        if cams:
            self.acc.update(np.stack(cams), np.asarray(labels), gts)

    def compute(self) -> dict[str, Any]:
        """The mode's figures."""
        n_scored = sum(len(v) for v in self.hits.values())
        return {
            "corloc_fixed": float(np.mean([100.0 * np.mean(v) for v in self.hits.values()])),
            "corloc_fixed_pooled": 100.0
            * sum(sum(v) for v in self.hits.values())
            / max(1, n_scored),
            "corloc_swept": float(self.acc.compute()["corloc"]),
            "jitter": float(np.mean(self.jit)) if self.jit else float("nan"),
            "jitter_pairs": len(self.jit),
            "absent_share_all": self.absent_all / max(1, self.n_all),
            "absent_share_scored": self.absent_scored / max(1, n_scored),
            "absent_share_out_of_view": (
                self.absent_unseen / self.n_unseen if self.n_unseen else None
            ),
            "out_of_view_frames": self.n_unseen,
            "frames": self.n_all,
            "scored_frames": n_scored,
        }


def evaluate(
    ds: Any,
    engine: CAMEngine,
    *,
    class_from: str,
    threshold: float,
    window: int,
    absent_below: float | None,
    batch_size: int,
    absent_top: float = ABSENT_TOP,
    out_of_view: frozenset[Path] = frozenset(),
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """``(plain scores, temporal scores, ground-truth jitter)`` over every shot of ``ds``."""
    from tqdm.auto import tqdm

    scored = {f.path: f for f in ds.frames}
    replay = ReplayEngine(engine)
    modes = {
        m: ModeScores(len(ds.classes), engine.image_size, out_of_view)
        for m in ("plain", "temporal")
    }
    gt_jit: list[float] = []
    for shot in tqdm(ds.shots, desc="shots", disable=not progress):
        # annotated frames may be several frames apart (SynthYTO: every 3rd):
        # each pair's shift is divided by its frame gap, a per-frame rate
        idx = [i for i, f in enumerate(shot.frames) if f.path in scored]
        for a, b in itertools.pairwise(idx):
            pair = [scored[shot.frames[k].path].boxes[0] for k in (a, b)]
            gt_jit += [j / (b - a) for j in jitter(pair)]
        for mode in ("plain", "temporal"):
            if mode == "plain":
                replay.record()
            else:
                replay.rewind()
            results = list(
                localize_stream(
                    folder_frames([f.path for f in shot.frames]),
                    replay,  # type: ignore[arg-type]
                    video=shot.shot_id,
                    class_index=shot.label if class_from == "label" else None,
                    temporal=mode == "temporal",
                    threshold=threshold,
                    window=window,
                    absent_below=absent_below,
                    absent_top=absent_top,
                    batch_size=batch_size,
                )
            )
            modes[mode].add_shot(shot, results, scored)
    gt = float(np.mean(gt_jit)) if gt_jit else float("nan")
    return modes["plain"].compute(), modes["temporal"].compute(), gt


def out_of_view_frames(root: str | Path | None) -> frozenset[Path]:
    """Frames whose object is out of view, where the dataset records it (RealYTO's table)."""
    from colocam_plugin.data.realyto import FRAME_TABLE, read_frame_table

    if root is None or not (Path(root) / FRAME_TABLE).is_file():
        return frozenset()
    return frozenset(
        (Path(root) / r["path"]).resolve()
        for r in read_frame_table(root)
        if all(o["visible"] < 1e-3 for o in r["objects"])
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    knobs = json.loads(args.knobs) if args.knobs else {}
    ds = create_dataset(args.dataset, args.root, args.split, **knobs)
    engine = CAMEngine(args.classifier, localizer=args.localizer, method=args.method, device=device)
    if list(engine.classes) != list(ds.classes):
        raise SystemExit(f"{args.classifier}: classes {engine.classes} != dataset {ds.classes}")
    t0 = time.perf_counter()
    plain, temporal, gt_jitter = evaluate(
        ds,
        engine,
        class_from=args.class_from,
        threshold=args.threshold,
        window=args.window,
        absent_below=args.absent_below,
        absent_top=args.absent_top,
        batch_size=args.batch_size,
        out_of_view=out_of_view_frames(args.root),
    )
    seconds = time.perf_counter() - t0
    base = plain["jitter"]
    change = 100.0 * (temporal["jitter"] / base - 1.0) if base > 0 else float("nan")
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.machine()
    return {
        "benchmark": "temporal",
        "dataset": args.dataset,
        "root": str(args.root) if args.root else None,
        "knobs": knobs,
        "split": args.split,
        "classifier": str(args.classifier),
        "cam": str(args.localizer or args.method),
        "method": engine.name,
        "image_size": engine.image_size,
        "class_from": args.class_from,
        "threshold": args.threshold,
        "window": args.window,
        "absent_below": args.absent_below,
        "absent_top": args.absent_top,
        "plain": plain,
        "temporal": temporal,
        "jitter_change_pct": change,
        "corloc_change": temporal["corloc_fixed"] - plain["corloc_fixed"],
        "bars": {
            "jitter": change <= JITTER_BAR,
            "corloc_not_lower": temporal["corloc_fixed"] >= plain["corloc_fixed"],
        },
        "gt_jitter": gt_jitter,
        "seconds": seconds,
        "device": device,
        "device_name": name,
        "threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "command": "python benchmarks/bench_temporal.py " + " ".join(sys.argv[1:]),
    }


def markdown(r: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    p, t = r["plain"], r["temporal"]
    rows = [
        ("CorLoc @ threshold, class-avg (%)", "corloc_fixed", ".1f"),
        ("CorLoc @ threshold, pooled (%)", "corloc_fixed_pooled", ".1f"),
        ("CorLoc tau swept, class-avg (%)", "corloc_swept", ".1f"),
        ("jitter (centre shift / box size)", "jitter", ".4f"),
        ("absent, all frames (share)", "absent_share_all", ".3f"),
        ("absent, scored frames (share)", "absent_share_scored", ".3f"),
    ]
    if t.get("absent_share_out_of_view") is not None:
        rows.append(
            (
                f"absent, object out of view ({t['out_of_view_frames']} frames; share)",
                "absent_share_out_of_view",
                ".3f",
            )
        )
    absent = "1/K (chance)" if r["absent_below"] is None else r["absent_below"]
    top = r.get("absent_top", 1.0)
    top = f"unless a class reaches {top:g}" if top < 1 else "(the class test alone)"
    lines = [
        f"# `colocam localize --temporal` on {r['dataset']} ({r['split']})",
        "",
        f"{t['frames']} frames, each shot in order, {t['scored_frames']} scored; {r['method']} "
        f"CAMs at {r['image_size']} px, box threshold {r['threshold']}, window {r['window']}, "
        f"absent below p = {absent} {top}, class: "
        f"{'the ground-truth label' if r['class_from'] == 'label' else 'top-1'}. "
        f"{r['device']} ({r['device_name']}), {r['threads']} threads, commit "
        f"`{r['git_commit']}`, torch {r['versions']['torch']}.",
        "",
        "| | without | --temporal |",
        "|---|---:|---:|",
    ]
    for label, key, fmt in rows:
        lines.append(f"| {label} | {p[key]:{fmt}} | {t[key]:{fmt}} |")
    bars = r["bars"]
    lines += [
        "",
        f"Jitter change: **{r['jitter_change_pct']:+.1f}%** (bar <= {JITTER_BAR:.0f}%: "
        f"{'met' if bars['jitter'] else 'NOT met'}); CorLoc @ threshold change: "
        f"**{r['corloc_change']:+.1f}** points (bar >= 0: "
        f"{'met' if bars['corloc_not_lower'] else 'NOT met'}). Ground-truth boxes' own jitter "
        f"(consecutive annotated frames, per frame of gap): {r['gt_jitter']:.4f}.",
        "",
        "CorLoc @ threshold scores the boxes `colocam localize` writes (one fixed CAM "
        "threshold, absent frames count as misses); CorLoc tau swept is the paper's protocol "
        "on the same CAMs (tau chosen per class on this split), not comparable to the first.",
        "",
        f"Command: `{r['command']}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--dataset", default="synthyto", help="registered dataset (synthyto, realyto)")
    ap.add_argument("--root", default=None, help="dataset folder (synthyto/realyto: the cache)")
    ap.add_argument("--knobs", default=None, help="JSON of dataset keyword arguments")
    ap.add_argument("--split", default="test")
    ap.add_argument("--classifier", required=True, help="stage-1 checkpoint")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--localizer", help="stage-2 checkpoint")
    which.add_argument("--method", help="a registered CAM method instead")
    ap.add_argument("--class-from", default="label", choices=("label", "top1"))
    ap.add_argument("--threshold", type=float, default=BOX_THRESHOLD)
    ap.add_argument("--window", type=int, default=TEMPORAL_WINDOW)
    ap.add_argument(
        "--absent-below", type=float, default=ABSENT_BELOW, help="default: chance, 1 / classes"
    )
    ap.add_argument("--absent-top", type=float, default=ABSENT_TOP, help="1: the class test alone")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="path stem (default results/temporal_D)")
    args = ap.parse_args(argv)
    record = run(args)
    out = args.out or RESULTS / f"temporal_{args.dataset}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".json").write_text(json.dumps(record, indent=2) + "\n")
    out.with_name(out.name + ".md").write_text(markdown(record))
    print(markdown(record))
    return 0 if all(record["bars"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
