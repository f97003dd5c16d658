"""Stage 1: train the frame classifier on weakly labelled frames.

Every frame of a training shot carries its video's label (METHOD.md, stage
1). Defaults follow the paper's schedule (SGD, Nesterov momentum 0.9, weight
decay 1e-4, x10 learning rate on the last encoder stage and the head, lr x0.9
every ``lr_step`` epochs), with ``epochs``/``lr_step`` scaled to the data by
the caller. The frame loader only decodes and resizes; the random crop, the
horizontal flip (one draw per frame) and the optional colour jitter run on the
training device as batched Kornia calls (:mod:`colocam_plugin.train.augment`).
The epoch/step loop is the shared :func:`colocam_plugin.train.loop.fit`: a
checkpoint is written atomically after every epoch; ``resume`` continues from
it, so a crash loses at most one epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from colocam_plugin import distributed
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.errors import UsageError
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.train.augment import ColourJitter, colour_augment, crop_flip
from colocam_plugin.train.checkpoint import load_checkpoint
from colocam_plugin.train.config import Stage1Config
from colocam_plugin.train.loop import Checkpoint, FitState, Forward, LambdaCallback, Step, fit

__all__ = [
    "Stage1Config",
    "evaluate_accuracy",
    "load_classifier",
    "param_groups",
    "predict_classes",
    "train_classifier",
]

FrameLoader = Callable[[Sequence[FrameRecord], bool, torch.Generator], torch.Tensor]


def param_groups(model: WGAPClassifier, lr: float, mult: float) -> list[dict[str, Any]]:
    """SGD groups: the last encoder stage and the head get ``lr * mult``."""
    stages = model.encoder.get_stages()
    last = stages[max(stages)]
    last_modules = last if isinstance(last, (list, tuple)) else [last]
    fast = {id(p) for m in last_modules for p in m.parameters()}
    fast |= {id(p) for p in model.head.parameters()}
    slow_params = [p for p in model.parameters() if id(p) not in fast]
    fast_params = [p for p in model.parameters() if id(p) in fast]
    return [
        {"params": slow_params, "lr": lr, "name": "encoder"},
        {"params": fast_params, "lr": lr * mult, "name": "last_stage_and_head"},
    ]


@torch.no_grad()
def predict_classes(
    model: nn.Module,
    frames: Sequence[FrameRecord],
    load_batch: FrameLoader,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> list[int]:
    """Top-1 class of ``model`` for each of ``frames`` (eval transform)."""
    was_training = model.training
    model.eval()
    preds: list[int] = []
    gen = torch.Generator().manual_seed(0)
    for i in range(0, len(frames), batch_size):
        x = load_batch(frames[i : i + batch_size], False, gen).to(device)
        preds += model(x).argmax(1).tolist()
    model.train(was_training)
    return preds


def evaluate_accuracy(
    model: nn.Module,
    frames: Sequence[FrameRecord],
    load_batch: FrameLoader,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> float:
    """Top-1 frame accuracy (%) of ``model`` on ``frames`` (eval transform).

    Inside a process group the batches are dealt to the ranks (no padding)
    and the correct counts summed: every rank returns the same accuracy.
    """
    if not distributed.is_distributed():
        preds = predict_classes(model, frames, load_batch, batch_size=batch_size, device=device)
        correct = sum(int(k == f.label) for k, f in zip(preds, frames))
        return 100.0 * correct / max(1, len(frames))
    hits = 0
    for start in distributed.shard(range(0, len(frames), batch_size)):
        chunk = frames[start : start + batch_size]
        preds = predict_classes(model, chunk, load_batch, batch_size=batch_size, device=device)
        hits += sum(int(k == f.label) for k, f in zip(preds, chunk))
    total = distributed.all_reduce_sum(torch.tensor([hits], dtype=torch.int64))
    return 100.0 * int(total[0]) / max(1, len(frames))


def _rank_batches(order: list[int], batch_size: int) -> list[list[int]]:
    """This rank's slice of every global batch of ``order`` (frame indices).

    One process: the batches of ``batch_size`` of ``order``. In a group of
    ``W``: ``order`` is padded by wrapping around to a multiple of ``W`` (as
    ``DistributedSampler`` does, so every rank runs the same number of
    steps), cut in global batches of ``batch_size``, and each global batch in
    ``W`` equal slices; rank ``r`` takes slice ``r``. The ranks together see
    the global batches of one process, up to the padding.
    """
    world, me = distributed.world_size(), distributed.rank()
    if world == 1:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    padded = order + order[: (-len(order)) % world]
    out = []
    for i in range(0, len(padded), batch_size):
        chunk = padded[i : i + batch_size]
        part = len(chunk) // world
        out.append(chunk[me * part : (me + 1) * part])
    return out


def train_classifier(
    model: WGAPClassifier,
    frames: Sequence[FrameRecord],
    load_batch: FrameLoader,
    out: str | Path,
    *,
    config: Stage1Config | None = None,
    classes: Sequence[str] = (),
    val_frames: Sequence[FrameRecord] = (),
    device: str | torch.device = "cpu",
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` with cross-entropy on ``frames``; returns the checkpoint dict.

    Args:
        model: the classifier (trained in place).
        frames: training frames; ``label`` is the video label.
        load_batch: ``load_batch(frames, train, generator) -> (B, 3, H, W)``
            float 0..255. train=True: frames at least ``config.image_size``
            on a side (:func:`~colocam_plugin.pipeline.make_frame_loader`:
            resized to ``config.resize``), cropped to ``config.image_size``
            and flipped here, on the device; train=False: the eval frames.
        out: checkpoint path, rewritten after every epoch.
        config: hyper-parameters.
        classes: class names stored in the checkpoint.
        val_frames: optional frames whose accuracy is logged each epoch.
        resume: continue from ``out`` if it holds a checkpoint of the same config.

    The loop, the per-epoch reseeding, resuming and the checkpoint are
    :func:`colocam_plugin.train.loop.fit`'s; this function supplies the
    epoch's batches and the step. Inside a ``torchrun`` process group
    (:mod:`colocam_plugin.distributed`) ``batch_size`` is the global batch,
    cut in equal slices, one per rank; gradients are averaged by
    ``DistributedDataParallel``, so every rank holds the same weights; only
    rank 0 writes the checkpoint.
    """
    cfg = config or Stage1Config()
    if not frames:
        raise ValueError("no training frames")
    world = distributed.world_size()
    if cfg.batch_size % world:
        raise UsageError(
            f"--batch-size {cfg.batch_size}: the global batch must be a multiple of "
            f"the {world} processes (each takes an equal slice)"
        )
    out = Path(out)
    model.to(device)
    opt = torch.optim.SGD(
        param_groups(model, cfg.lr, cfg.last_stage_lr_mult),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    full_config = {**model.config, **asdict(cfg)}
    if world > 1:  # the shards, hence the run, depend on the number of processes
        full_config["world_size"] = world
    checkpoint = Checkpoint(
        out,
        kind="classifier",
        config=full_config,
        states={"state_dict": model, "optimizer": opt, "scheduler": sched},
        meta={"classes": list(classes)},
    )
    loss_fn = nn.CrossEntropyLoss()
    jitter = ColourJitter(
        brightness=cfg.colour_jitter,
        contrast=cfg.colour_jitter,
        saturation=cfg.colour_jitter,
        hue=cfg.hue_jitter,
        grayscale_p=cfg.grayscale_p,
    )
    labels = np.array([f.label for f in frames])
    gen = torch.Generator()  # the epoch's frame order, then its crops, flips and jitter

    def epoch_seed(epoch: int) -> int:
        return cfg.seed * 100_003 + epoch

    def batches(epoch: int) -> list[list[int]]:
        gen.manual_seed(epoch_seed(epoch))
        order = torch.randperm(len(frames), generator=gen).tolist()
        if world > 1:  # same order on every rank; then each rank its own crops and flips
            gen.manual_seed(distributed.rank_seed(epoch_seed(epoch)))
        return _rank_batches(order, cfg.batch_size)

    def step(forward: Forward, idx: list[int]) -> Step:
        x = load_batch([frames[i] for i in idx], True, gen).to(device)
        x, _ = crop_flip(x, cfg.image_size, gen)
        x = colour_augment(x, jitter, gen)
        y = torch.as_tensor(labels[idx], device=device)
        logits = forward(x).float()
        loss = loss_fn(logits, y)
        correct = int((logits.argmax(1) == y).sum())
        return Step(
            loss,
            {"frames": len(idx), "correct": correct, "loss_sum": float(loss.detach()) * len(idx)},
        )

    def summarize(state: FitState) -> dict[str, Any]:
        total = int(state.sums.get("frames", 0))
        correct = int(state.sums.get("correct", 0))
        loss_sum = float(state.sums.get("loss_sum", 0.0))
        if world > 1:  # the epoch's figures over every rank's frames
            sums = torch.tensor([total, correct, loss_sum], dtype=torch.float64)
            total_f, correct_f, loss_sum = distributed.all_reduce_sum(sums).tolist()
            total, correct = int(total_f), int(correct_f)
        return {"loss": loss_sum / max(1, total), "train_acc": 100.0 * correct / max(1, total)}

    def validate(state: FitState) -> None:
        state.row["val_acc"] = evaluate_accuracy(model, val_frames, load_batch, device=device)

    state = fit(
        model,
        opt,
        epochs=cfg.epochs,
        batches=batches,
        step=step,
        epoch_seed=epoch_seed,
        summarize=summarize,
        scheduler=sched,
        checkpoint=checkpoint,
        resume=resume,
        callbacks=[LambdaCallback(on_epoch_end=validate)] if val_frames else [],
        amp=cfg.amp,
        device=device,
        progress=progress,
        name="stage1",
    )
    # nothing left to train: the checkpoint on disk is final
    return state.checkpoint or load_checkpoint(out, kind="classifier")


def load_classifier(
    path: str | Path, *, device: str | torch.device = "cpu", output_stride: int | None = None
) -> WGAPClassifier:
    """Rebuild a trained classifier (in eval mode) from its checkpoint.

    ``output_stride`` rebuilds the encoder at another stride with the same
    weights (smp dilates the last stages: 8 gives 4x the CAM side of 32);
    ``None`` keeps the stride it was trained at.
    """
    ckpt = load_checkpoint(path, kind="classifier")
    cfg = dict(ckpt["config"])
    if output_stride is not None:
        cfg["output_stride"] = output_stride
    model = WGAPClassifier.from_config(cfg)
    model.load_state_dict(ckpt["state_dict"])
    model.classes = list(ckpt.get("classes", []))
    model.checkpoint_config = dict(cfg)
    return model.to(device).eval()
