"""The shared evaluation harness: any CAM methods, one dataset, one scoring path.

Every method, a grad-cam baseline or a trained CoLo-CAM localizer, is called
through the same contract (:mod:`colocam_plugin.cam.base`) on the same
frames at the same input size, and scored by the same accumulators: one per
metric of the metrics registry (the built-in ``boxes`` and ``pxap`` of
:mod:`colocam_plugin.metrics`, and any a plugin registers; the contract is
:func:`colocam_plugin.hookspecs.colocam_register_metrics`). The scores use
``colocam score``'s keys, plus every plugin metric's.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from colocam_plugin.errors import ColocamError, DuplicateNameError, ShapeError, UsageError
from colocam_plugin.metrics.cam_boxes import box_iou, cam_to_boxes, cams_to_uint8

__all__ = [
    "METRIC_UPDATE_ARGS",
    "EvalResult",
    "evaluate_methods",
    "format_table",
    "validation_scores",
]

log = logging.getLogger("colocam_plugin.harness")

#: what each batch offers a metric's ``update``: it is called with those of
#: these keyword arguments it names (all of them if it takes ``**kwargs``),
#: as pluggy calls hook implementations; ``masks`` only where every frame has one
METRIC_UPDATE_ARGS = ("cams", "labels", "boxes", "pred_labels", "masks")
#: the metric whose pooled best threshold gives ``mean_iou`` (always computed)
_BOXES = "boxes"
#: score keys the harness adds itself
_HARNESS_KEYS = ("constant_cams", "mean_iou", "frame_accuracy")
#: metrics whose keys are not extra table columns: ``boxes`` has the table's
#: own columns, ``pxap`` is in the JSON only (as before plugins could add metrics)
_TABLE_OWN = (_BOXES, "pxap")


@dataclass
class EvalResult:
    """Scores of one method, plus its 8-bit CAMs (for the gallery / npz)."""

    scores: dict[str, Any]
    cams_u8: np.ndarray | None = None
    boxes: list[np.ndarray] = field(default_factory=list)
    labels: np.ndarray | None = None
    #: registered metric name -> the score keys its ``compute()`` gave, in order
    metrics: dict[str, list[str]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class _Metric:
    """A registered metric as the harness uses it: who registered it, what ``update`` takes."""

    name: str
    plugin: str
    factory: Callable[..., Any]

    @property
    def label(self) -> str:
        return f"metric {self.name!r} (plugin {self.plugin})"

    def create(self, **context: Any) -> Any:
        """``factory(**context)``; a factory refusing the context is named with the fix."""
        try:
            acc = self.factory(**context)
        except TypeError as exc:
            given = ", ".join(f"{k}={v!r}" for k, v in context.items())
            raise ColocamError(
                f"{self.label}: factory({given}) failed: {exc} "
                "(a metric factory takes the harness's context as keyword arguments and "
                "accepts **kwargs; see colocam_register_metrics)"
            ) from exc
        if not callable(getattr(acc, "update", None)) or not callable(
            getattr(acc, "compute", None)
        ):
            raise ColocamError(
                f"{self.label}: the factory returned {type(acc).__name__}, "
                "expected an accumulator with update() and compute()"
            )
        return acc

    def update_args(self, acc: Any) -> tuple[frozenset[str], frozenset[str]]:
        """(the batch arguments ``acc.update`` takes, those it requires).

        Raises:
            ColocamError: ``update`` requires an argument the harness cannot
                pass by name (not in :data:`METRIC_UPDATE_ARGS`, or positional-only).
        """
        try:
            params = inspect.signature(acc.update).parameters.values()
        except (TypeError, ValueError):  # no signature to read (a C function): pass all
            return frozenset(METRIC_UPDATE_ARGS), frozenset()
        takes: set[str] = set()
        needs: set[str] = set()
        for p in params:
            required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            if p.kind is p.VAR_KEYWORD:
                takes.update(METRIC_UPDATE_ARGS)
            elif p.name in METRIC_UPDATE_ARGS and p.kind is not p.POSITIONAL_ONLY:
                takes.add(p.name)
                if required:
                    needs.add(p.name)
            elif required:
                raise ColocamError(
                    f"{self.label}: update() requires {p.name!r}, which the harness does "
                    f"not pass; it passes by name {', '.join(METRIC_UPDATE_ARGS)}"
                )
        return frozenset(takes), frozenset(needs)


def _metric_specs(names: Sequence[str] | None) -> list[_Metric]:
    """The metrics to compute, from the registry: ``boxes``, the other built-ins, the plugins'.

    (By name within each group, so the scores' keys keep a stable order.)
    """
    from colocam_plugin.api import get_registries
    from colocam_plugin.plugins import BUILTIN_PLUGINS

    registry = get_registries().metrics
    wanted = registry.names() if names is None else list(dict.fromkeys(names))
    if _BOXES not in wanted:
        raise UsageError(f"metrics {wanted}: the harness needs {_BOXES!r} (CorLoc, mean IoU)")
    entries = sorted(
        (registry.entry(n) for n in wanted),
        key=lambda e: (e.name != _BOXES, e.plugin not in BUILTIN_PLUGINS, e.name),
    )
    return [_Metric(e.name, e.plugin or "unnamed", e.factory) for e in entries]


def _claim(owners: dict[str, str], label: str, keys: Iterable[str]) -> None:
    """Record that ``label`` reports ``keys``; a key reported twice is an error naming both."""
    for key in keys:
        if key in owners and owners[key] != label:
            raise DuplicateNameError(
                f"score {key!r} is reported by both {owners[key]} and {label}; "
                "rename it in one of them or block a plugin (COLOCAM_BLOCK_PLUGINS)"
            )
        owners[key] = label


def _computed(spec: _Metric, acc: Any) -> dict[str, Any]:
    """``acc.compute()``, checked to be a dict of scores named by strings."""
    out = acc.compute()
    if not isinstance(out, Mapping) or not all(isinstance(k, str) for k in out):
        raise ColocamError(
            f"{spec.label}: compute() returned {out!r:.80}, expected a dict str -> score"
        )
    return dict(out)


def _probe_keys(specs: Sequence[_Metric], accs: Mapping[str, Any]) -> None:
    """Fail before the first batch when two metrics report one key (fresh accumulators).

    A metric whose ``compute()`` fails on no data is checked after the run only.
    """
    owners: dict[str, str] = {}
    for i, spec in enumerate(specs):
        try:
            keys = list(accs[spec.name].compute())
        except Exception:  # no data yet: checked once scored
            keys = []
        _claim(owners, spec.label, keys)
        if i == 0:
            _claim(owners, "the harness", _HARNESS_KEYS)


def _create_metrics(
    specs: Sequence[_Metric], methods: Iterable[str], context: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[frozenset[str], frozenset[str]]]]:
    """One accumulator per (method, metric), and what each metric's ``update`` takes.

    A fresh accumulator of each metric is checked before the first batch:
    its ``update`` arguments, its score keys (no two metrics may share one)
    and, in a process group, that it can be pooled.
    """
    accs = {name: {s.name: s.create(**context) for s in specs} for name in methods}
    fresh = {s.name: s.create(**context) for s in specs}
    _probe_keys(specs, fresh)
    update_args = {s.name: s.update_args(fresh[s.name]) for s in specs}
    if distributed.is_distributed():  # a metric without counts is pooled by merge()
        for s in specs:
            acc = fresh[s.name]
            if _counts(acc) is None and not callable(getattr(acc, "merge", None)):
                raise ColocamError(f"{s.label}: no merge(), so the ranks' scores cannot pool")
    return accs, update_args


def _counts(acc: Any) -> np.ndarray | None:
    """The int64 counts an all-reduce sums for ``acc``, or None (merged instead).

    Any accumulator with ``dense_counts()`` and ``load_dense_counts(counts)``
    (the counts protocol of BoxAccumulator and PxAPAccumulator).
    """
    if callable(getattr(acc, "dense_counts", None)) and callable(
        getattr(acc, "load_dense_counts", None)
    ):
        return np.asarray(acc.dense_counts(), dtype=np.int64).ravel()
    return None


def _reduce(accs: dict[str, dict[str, Any]], counters: Sequence[dict[str, int]]) -> None:
    """Pool every rank's metrics, in place (a no-op in one process).

    ``accs``: method -> metric -> accumulator. Counts (the box counts, the
    PxAP histograms, any metric's ``dense_counts()``) and the per-method
    counters (correct predictions, constant CAMs) are int64 and summed in one
    all-reduce, so the pooled accumulators equal one accumulator fed every
    frame. Any other metric is gathered and ``merge``d in rank order, so every
    rank holds the same pooled accumulator.
    """
    if not distributed.is_distributed():
        return
    methods = list(accs)
    summed: list[tuple[str, str]] = []
    parts: list[np.ndarray] = []
    merged: list[tuple[str, str]] = []
    for m in methods:
        for k, acc in accs[m].items():
            counts = _counts(acc)
            if counts is None:
                merged.append((m, k))
            else:
                summed.append((m, k))
                parts.append(counts)
    parts += [np.array([c[m] for m in methods], dtype=np.int64) for c in counters]
    sizes = [len(p) for p in parts]
    total = distributed.all_reduce_sum(torch.from_numpy(np.concatenate(parts))).numpy()
    pieces = iter(np.split(total, np.cumsum(sizes)[:-1]))
    for m, k in summed:
        accs[m][k].load_dense_counts(next(pieces))
    for c in counters:
        c.update(zip(methods, (int(v) for v in next(pieces))))
    if merged:
        gathered = distributed.all_gather_object({key: accs[key[0]][key[1]] for key in merged})
        for m, k in merged:
            pooled = gathered[0][(m, k)]
            for part in gathered[1:]:
                pooled.merge(part[(m, k)])
            accs[m][k] = pooled


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
    metrics: Sequence[str] | None = None,
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
        metrics: names of registered metrics to compute (default: every one
            the metrics registry holds; ``boxes`` is always computed).

    Returns:
        name -> :class:`EvalResult`; ``scores`` has ``colocam score``'s keys
        plus ``mean_iou`` (mean best-box IoU at the pooled best threshold),
        ``frame_accuracy`` (top-1 classification, %) and ``constant_cams``
        (frames whose CAM is constant: scored as no box, logged), then the
        keys of every other registered metric's ``compute()``.

    Metrics come from the metrics registry
    (:func:`~colocam_plugin.hookspecs.colocam_register_metrics`): one
    accumulator per (method, metric), created as ``factory(thresholds=...,
    num_classes=...)`` and fed every batch through ``update`` with the
    arguments of :data:`METRIC_UPDATE_ARGS` it names. ``masks`` is passed
    only when every frame has a GT mask; a metric that requires it (PxAP) is
    otherwise never updated and reports its empty ``compute()`` (``pxap``:
    None).

    Inside a ``torchrun`` process group (:mod:`colocam_plugin.distributed`)
    the batches are dealt to the ranks (rank ``r`` takes batches ``r, r + W,
    ...``; no padding, so no frame counts twice), each rank fills its own
    accumulators and the COUNTS are summed over the ranks before any score
    is computed (a plugin metric without counts is gathered and merged in
    rank order): every rank returns the scores one process would, bit for
    bit (each batch holds the same frames as in one process). The per-frame
    outputs (boxes, labels, kept CAMs) are gathered in frame order.

    Raises:
        DataError: no frames.
        ShapeError: a method returned CAMs of the wrong shape or dtype, with
            NaN or inf, or a constant CAM on every frame (no localization at
            all: a score of it would look like a result).
        DuplicateNameError: two metrics (or a metric and the harness) report
            the same score key; the message names both.
        ColocamError: a metric's factory, ``update`` or ``compute`` breaks
            the contract (named).
    """
    if not frames:
        from colocam_plugin.errors import DataError

        raise DataError("evaluate_methods: no frames to score (empty split?)")
    specs = _metric_specs(metrics)
    context = {"thresholds": thresholds, "num_classes": num_classes}
    accs, update_args = _create_metrics(specs, methods, context)
    model = model.to(device)
    # masks (and so PxAP) when every frame has a GT mask (SynthYTO writes them)
    with_masks = bool(frames) and all(f.mask_path is not None for f in frames)
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
            given: dict[str, Any] = {
                "cams": cams,
                "labels": labels.cpu().numpy(),
                "boxes": boxes,
                "pred_labels": pred.cpu().numpy(),
            }
            if masks is not None:
                given["masks"] = masks
            for metric, (takes, needs) in update_args.items():
                if needs.issubset(given):
                    accs[name][metric].update(**{k: v for k, v in given.items() if k in takes})
            batch.cams_u8[name] = cams_to_uint8(cams.numpy())
        local.append(batch)
    _reduce(accs, (correct, constant))
    computed = {name: {s.name: _computed(s, accs[name][s.name]) for s in specs} for name in methods}
    # the pooled best threshold of each method, the same on every rank
    taus = {name: computed[name][_BOXES]["best_thresholds"]["pooled"] for name in methods}
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
        owners: dict[str, str] = {}
        _claim(owners, specs[0].label, computed[name][_BOXES])
        _claim(owners, "the harness", _HARNESS_KEYS)
        scores = dict(computed[name][_BOXES])
        scores["constant_cams"] = constant[name]
        kept = [b.cams_u8[name] for b in local if name in b.cams_u8]
        cams_u8 = np.concatenate(kept) if kept else np.zeros((0, 1, 1), np.uint8)
        frame_ious = [v for b in local for v in ious.get((b.start, name), [])]
        scores["mean_iou"] = float(np.mean(frame_ious)) if frame_ious else float("nan")
        scores["frame_accuracy"] = 100.0 * correct[name] / max(1, len(frames))
        for spec in specs[1:]:
            _claim(owners, spec.label, computed[name][spec.name])
            scores.update(computed[name][spec.name])
        results[name] = EvalResult(
            scores=scores,
            cams_u8=cams_u8 if keep_cams else None,
            boxes=all_boxes,
            labels=np.asarray(labels_all),
            metrics={s.name: list(computed[name][s.name]) for s in specs},
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
        metrics=(_BOXES,),  # training never depends on a plugin's metric
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


def _extra_columns(results: Mapping[str, EvalResult]) -> list[str]:
    """Score keys of the metrics beyond the table's own, with a number (or None) to show."""
    keys = [
        k
        for res in results.values()
        for metric, names in res.metrics.items()
        if metric not in _TABLE_OWN
        for k in names
    ]
    return [
        k for k in dict.fromkeys(keys) if all(_is_score(r.scores.get(k)) for r in results.values())
    ]


def _is_score(value: Any) -> bool:
    return value is None or (
        isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    )


def format_table(results: Mapping[str, EvalResult], classes: Sequence[str]) -> str:
    """Markdown table in the shape of the paper's Table 1 (CorLoc per class).

    Only classes with evaluated frames get a column. A plugin metric's
    scores (numbers; None shows ``-``) get a column each after the built-in ones.
    """
    first = next(iter(results.values())).scores["per_class"] if results else {}
    present = [i for i in range(len(classes)) if i in first or str(i) in first]
    extra = _extra_columns(results)
    head = (
        "| method | "
        + " | ".join(classes[i] for i in present)
        + " | CorLoc (class-avg) | pooled | MaxBoxAccV2 | mean IoU | frame acc |"
        + "".join(f" {k} |" for k in extra)
    )
    lines = [head, "|---" * (len(present) + 6 + len(extra)) + "|"]
    for name, res in results.items():
        s = res.scores
        per = [s["per_class"].get(i, s["per_class"].get(str(i))) for i in present]
        cells = ["-" if v is None else f"{v:.1f}" for v in per]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {s['corloc']:.1f} | {s['corloc_pooled']:.1f} | {s['maxboxacc_v2']:.1f}"
            + f" | {s['mean_iou']:.3f} | {s['frame_accuracy']:.1f} |"
            + "".join(" - |" if s.get(k) is None else f" {s[k]:.4g} |" for k in extra)
        )
    lines.append("")
    lines.append(
        "CorLoc: MaxBoxAcc at delta 50, single box, tau per class, mean over classes "
        "(CoLo-CAM paper); pooled: one tau for all frames (TCAM code); "
        "MaxBoxAccV2: multi-box, mean over delta 30/50/70; mean IoU: best-box IoU at the "
        "pooled tau; frame acc: the classifier's top-1 accuracy (CoLo-CAM/F-CAM/TCAM "
        "report their frozen classifier's)."
        + (f" {', '.join(extra)}: plugin metrics (colocam plugins)." if extra else "")
    )
    return "\n".join(lines)
