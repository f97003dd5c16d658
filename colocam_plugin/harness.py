"""The shared evaluation harness: any CAM methods, one dataset, one scoring path.

Every method, a grad-cam baseline or a trained CoLo-CAM localizer, is called
through the same contract (:mod:`colocam_plugin.cam.base`) on the same
frames at the same input size, and scored by the same accumulators
(:mod:`colocam_plugin.metrics`). The scores use ``colocam score``'s keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from colocam_plugin import distributed
from colocam_plugin.atomic import atomic_write
from colocam_plugin.data.loading import load_eval_batch
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics import BoxAccumulator, PxAPAccumulator
from colocam_plugin.metrics.cam_boxes import box_iou, cam_to_boxes, cams_to_uint8

__all__ = ["EvalResult", "evaluate_methods", "format_table", "validation_scores"]

log = logging.getLogger("colocam_plugin.harness")


@dataclass
class EvalResult:
    """Scores of one method, plus its 8-bit CAMs (for the gallery / npz)."""

    scores: dict[str, Any]
    cams_u8: np.ndarray | None = None
    boxes: list[np.ndarray] = field(default_factory=list)
    labels: np.ndarray | None = None


def _load_masks(frames: Sequence[FrameRecord], size: int) -> np.ndarray:
    """GT masks (B, size, size) bool, resized nearest to the evaluation grid."""
    import cv2

    from colocam_plugin.data.io import read_image

    out = []
    for f in frames:
        m = read_image(f.mask_path)[..., 0] > 127  # type: ignore[arg-type]
        out.append(cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST))
    return np.stack(out).astype(bool)


def _checked_cams(name: str, out: Any, chunk: Sequence[FrameRecord]) -> torch.Tensor:
    """A method's CAMs as float32 on the CPU, checked: shape (B, H, W), float, finite.

    Raises:
        ShapeError: naming the method, the shape (and dtype) it returned, and
            for NaN/inf the first frame concerned.
    """
    cams = getattr(out, "cams", None)
    n = len(chunk)
    if not isinstance(cams, torch.Tensor):
        raise ShapeError(
            f"CAM method {name!r}: expected a CAMOutput with tensor cams, got {out!r:.80}"
        )
    if cams.ndim != 3 or cams.shape[0] != n or not cams.is_floating_point():
        raise ShapeError(
            f"CAM method {name!r}: expected cams float (B, H, W) with B = {n}, "
            f"got {tuple(cams.shape)} {str(cams.dtype).removeprefix('torch.')}"
        )
    cams = cams.detach().float().cpu()
    finite = torch.isfinite(cams).flatten(1).all(1)
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0, 0])
        raise ShapeError(
            f"CAM method {name!r}: NaN or inf in cams {tuple(cams.shape)}, frame {chunk[i].path}"
        )
    return cams


def _constant(cams: torch.Tensor) -> int:
    """How many of the (B, H, W) maps are constant (no box can come out of them)."""
    flat = cams.flatten(1)
    return int((flat.amax(1) == flat.amin(1)).sum())


def _best_ious(cams_u8: np.ndarray, boxes: Sequence[np.ndarray], tau: float) -> list[float]:
    """Best IoU of the single box at threshold ``tau``, per frame with a GT box."""
    ious = []
    for cam, gt in zip(cams_u8, boxes):
        if len(gt) == 0:
            continue
        pred = cam_to_boxes(cam.astype(np.float64) / 255.0, [tau])[0]
        ious.append(float(box_iou(pred, gt).max()))
    return ious


@dataclass
class _Batch:
    """One evaluation batch's per-frame outputs, kept until the scores are pooled."""

    start: int
    boxes: list[np.ndarray]
    labels: list[int]
    cams_u8: dict[str, np.ndarray]


def _reduce_counts(
    accs: Mapping[str, BoxAccumulator],
    pxaps: Mapping[str, PxAPAccumulator],
    counters: Sequence[dict[str, int]],
) -> None:
    """Sum every rank's metric counts, in place (a no-op in one process).

    Box counts, PxAP histograms and the per-method counters (correct
    predictions, constant CAMs) are int64 and summed exactly, so the pooled
    accumulators equal one accumulator fed every frame.
    """
    if not distributed.is_distributed():
        return
    names = list(accs)
    parts = [accs[n].dense_counts() for n in names]
    parts += [np.concatenate([pxaps[n].positive, pxaps[n].negative]) for n in pxaps]
    parts += [np.array([c[n] for n in names], dtype=np.int64) for c in counters]
    sizes = [len(p) for p in parts]
    total = distributed.all_reduce_sum(torch.from_numpy(np.concatenate(parts))).numpy()
    pieces = iter(np.split(total, np.cumsum(sizes)[:-1]))
    for n in names:
        accs[n].load_dense_counts(next(pieces))
    for n in pxaps:
        both = next(pieces)
        half = len(both) // 2
        pxaps[n].positive = both[:half].copy()
        pxaps[n].negative = both[half:].copy()
    for c in counters:
        c.update(zip(names, (int(v) for v in next(pieces))))


def evaluate_methods(
    model: nn.Module,
    frames: Sequence[FrameRecord],
    methods: Mapping[str, Any],
    *,
    num_classes: int,
    image_size: int = 224,
    batch_size: int = 16,
    thresholds: int = 1000,
    device: str | torch.device = "cpu",
    keep_cams: bool = False,
    progress: bool = True,
) -> dict[str, EvalResult]:
    """Run every method over ``frames`` and score it.

    Args:
        model: the classifier handed to every method (methods with their own
            model, e.g. a trained localizer, may ignore it).
        frames: annotated frames (boxes in original pixels).
        methods: display name -> CAM method.
        num_classes: number of classes (for per-class CorLoc).
        image_size: evaluation input size (frames resized, no crop).
        thresholds: CAM thresholds (1000 on test, 250 on validation).
        keep_cams: keep the 8-bit CAMs in the result (memory: N*S*S bytes).

    Returns:
        name -> :class:`EvalResult`; ``scores`` has ``colocam score``'s keys
        plus ``mean_iou`` (mean best-box IoU at the pooled best threshold),
        ``frame_accuracy`` (top-1 classification, %) and ``constant_cams``
        (frames whose CAM is constant: scored as no box, logged).

    Inside a ``torchrun`` process group (:mod:`colocam_plugin.distributed`)
    the batches are dealt to the ranks (rank ``r`` takes batches ``r, r + W,
    ...``; no padding, so no frame counts twice), each rank fills its own
    accumulators and the COUNTS are summed over the ranks before any score
    is computed: every rank returns the scores one process would, bit for
    bit (each batch holds the same frames as in one process). The per-frame
    outputs (boxes, labels, kept CAMs) are gathered in frame order.

    Raises:
        DataError: no frames.
        ShapeError: a method returned CAMs of the wrong shape or dtype, with
            NaN or inf, or a constant CAM on every frame (no localization at
            all: a score of it would look like a result).
    """
    if not frames:
        from colocam_plugin.errors import DataError

        raise DataError("evaluate_methods: no frames to score (empty split?)")
    model = model.to(device)
    accs = {
        name: BoxAccumulator(thresholds=thresholds, num_classes=num_classes) for name in methods
    }
    # PxAP when every frame has a GT mask (SynthYTO writes them)
    with_masks = bool(frames) and all(f.mask_path is not None for f in frames)
    pxaps = {name: PxAPAccumulator(num_bins=thresholds) for name in methods} if with_masks else {}
    correct = {name: 0 for name in methods}
    constant = {name: 0 for name in methods}
    local: list[_Batch] = []
    # one process: every batch; a process group: this rank's batches, whole
    starts = distributed.shard(range(0, len(frames), batch_size))
    bar = tqdm(starts, desc="evaluate", disable=not progress)
    for start in bar:
        chunk = frames[start : start + batch_size]
        images, boxes = load_eval_batch(chunk, image_size)
        images = images.to(device)
        labels = torch.tensor([f.label for f in chunk], device=device)
        masks = _load_masks(chunk, image_size) if with_masks else None
        batch = _Batch(start, list(boxes), [int(f.label) for f in chunk], {})
        for name, method in methods.items():
            out = method(model, images, labels)
            pred = out.logits.argmax(1)
            correct[name] += int((pred == labels).sum())
            cams = _checked_cams(name, out, chunk)
            constant[name] += _constant(cams)
            accs[name].update(cams, labels.cpu().numpy(), boxes, pred_labels=pred.cpu().numpy())
            batch.cams_u8[name] = cams_to_uint8(cams.numpy())
            if masks is not None:
                pxaps[name].update(cams, masks)
        local.append(batch)
    _reduce_counts(accs, pxaps, (correct, constant))
    # the pooled best threshold of each method, the same on every rank
    taus = {name: accs[name].compute()["best_thresholds"]["pooled"] for name in methods}
    ious = {
        (b.start, name): _best_ious(b.cams_u8[name], b.boxes, float(tau))
        for b in local
        for name, tau in taus.items()
        if tau is not None
    }
    if distributed.is_distributed():  # per-frame outputs, gathered in frame order
        if not keep_cams:
            local = [_Batch(b.start, b.boxes, b.labels, {}) for b in local]
        gathered = distributed.all_gather_object((local, ious))
        local = sorted((b for part, _ in gathered for b in part), key=lambda b: b.start)
        ious = {k: v for _, part in gathered for k, v in part.items()}
    all_boxes = [box for b in local for box in b.boxes]
    labels_all = [label for b in local for label in b.labels]
    results: dict[str, EvalResult] = {}
    for name in methods:
        if constant[name] == len(frames):
            raise ShapeError(
                f"CAM method {name!r}: every CAM is constant ({len(frames)} frames); "
                "nothing to localize"
            )
        if constant[name]:
            log.warning(
                "%s: %d of %d CAMs are constant (scored as no box)",
                name,
                constant[name],
                len(frames),
            )
        scores = dict(accs[name].compute())
        scores["constant_cams"] = constant[name]
        kept = [b.cams_u8[name] for b in local if name in b.cams_u8]
        cams_u8 = np.concatenate(kept) if kept else np.zeros((0, 1, 1), np.uint8)
        frame_ious = [v for b in local for v in ious.get((b.start, name), [])]
        scores["mean_iou"] = float(np.mean(frame_ious)) if frame_ious else float("nan")
        scores["frame_accuracy"] = 100.0 * correct[name] / max(1, len(frames))
        scores["pxap"] = pxaps[name].compute()["pxap"] if with_masks else None
        results[name] = EvalResult(
            scores=scores,
            cams_u8=cams_u8 if keep_cams else None,
            boxes=all_boxes,
            labels=np.asarray(labels_all),
        )
        log.info(
            "%s: CorLoc %.1f, MaxBoxAccV2 %.1f", name, scores["corloc"], scores["maxboxacc_v2"]
        )
    return results


def validation_scores(
    model: nn.Module,
    frames: Sequence[FrameRecord],
    method: Any,
    *,
    num_classes: int,
    image_size: int,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{"corloc", "mean_iou"}`` of one CAM method on validation frames (250 thresholds)."""
    res = evaluate_methods(
        model,
        frames,
        {"m": method},
        num_classes=num_classes,
        image_size=image_size,
        thresholds=250,
        device=device,
        progress=False,
    )["m"].scores
    return {"corloc": float(res["corloc"]), "mean_iou": float(res["mean_iou"])}


def save_cams_npz(result: EvalResult, path: str | Path) -> Path:
    """Write a method's CAMs in ``colocam score``'s npz format (atomically)."""
    if result.cams_u8 is None or result.labels is None:
        raise ValueError("save_cams_npz needs evaluate_methods(..., keep_cams=True)")
    rows = [[i, *b] for i, bs in enumerate(result.boxes) for b in bs]
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        np.savez_compressed(
            fh,
            cams=result.cams_u8.astype(np.float32) / 255.0,
            labels=result.labels,
            boxes=np.asarray(rows, dtype=np.float64).reshape(-1, 5),
        )
    return path


def format_table(results: Mapping[str, EvalResult], classes: Sequence[str]) -> str:
    """Markdown table in the shape of the paper's Table 1 (CorLoc per class).

    Only classes with evaluated frames get a column.
    """
    first = next(iter(results.values())).scores["per_class"] if results else {}
    present = [i for i in range(len(classes)) if i in first or str(i) in first]
    head = (
        "| method | "
        + " | ".join(classes[i] for i in present)
        + " | CorLoc (class-avg) | pooled | MaxBoxAccV2 | mean IoU | frame acc |"
    )
    lines = [head, "|---" * (len(present) + 6) + "|"]
    for name, res in results.items():
        s = res.scores
        per = [s["per_class"].get(i, s["per_class"].get(str(i))) for i in present]
        cells = ["-" if v is None else f"{v:.1f}" for v in per]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {s['corloc']:.1f} | {s['corloc_pooled']:.1f} | {s['maxboxacc_v2']:.1f}"
            + f" | {s['mean_iou']:.3f} | {s['frame_accuracy']:.1f} |"
        )
    lines.append("")
    lines.append(
        "CorLoc: MaxBoxAcc at delta 50, single box, tau per class, mean over classes "
        "(CoLo-CAM paper); pooled: one tau for all frames (TCAM code); "
        "MaxBoxAccV2: multi-box, mean over delta 30/50/70; mean IoU: best-box IoU at the "
        "pooled tau; frame acc: the classifier's top-1 accuracy (CoLo-CAM/F-CAM/TCAM "
        "report their frozen classifier's)."
    )
    return "\n".join(lines)
