"""Stage 2: train the localizer head (CoLo-CAM, F-CAM, TCAM) on a frozen classifier.

Per minibatch of B frames grouped in sequences of n frames of one shot
(METHOD.md)::

    L = L_PL + L_CRF + L_ASC + L_CoLo

* ``colocam``: all four terms, n frames per sequence (ref n=4, "before");
* ``fcam``: n = 1, no co-localization term;
* ``tcam``: pseudo-labels from CAM-TMP (max over frame t and its k previous
  frames), no co-localization term.

The head, the colour losses and the sampler are created from their
registries by name (``head``, ``crf_loss``, ``coloc_loss``, ``sampler``), so
a plugin can swap any of them.

The DataLoader workers only decode the frames and resize them (and their
pseudo-label source CAMs) to ``resize``; the random crop to ``image_size``,
the horizontal flip and the optional colour jitter run on the training device
as batched Kornia calls, one draw per sequence, each CAM cropped and flipped
exactly as its frame (:mod:`colocam_plugin.train.augment`).

A step whose loss is not finite is skipped and counted; each step's loss
terms, their gradient norms at the decoder output and the learning rate go to
``<out>.log.csv`` (:data:`LOG_COLUMNS`); an optional ``evaluate`` callback
scores the model every ``eval_every`` steps into ``<out>.val.csv`` (a
validation curve). A checkpoint is written atomically after every epoch and
``resume`` continues from it. The epoch/step loop is the one stage 1 uses too,
:func:`colocam_plugin.train.loop.fit`: this module supplies the batches and
the step; the CSV log, the evaluation and the checkpoint are its callbacks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from colocam_plugin import distributed
from colocam_plugin.data.io import read_image
from colocam_plugin.data.records import Shot
from colocam_plugin.errors import UsageError
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.models.localizer import Localizer
from colocam_plugin.train.augment import ColourJitter, colour_augment, crop_flip
from colocam_plugin.train.checkpoint import load_checkpoint, state_fingerprint
from colocam_plugin.train.config import (
    AMP_MODES,
    LOG_COLUMNS,
    METHODS,
    TERMS,
    Stage2Config,
)
from colocam_plugin.train.loop import (
    Checkpoint,
    CsvLogger,
    Evaluation,
    FitState,
    Forward,
    LambdaCallback,
    Step,
    fit,
)
from colocam_plugin.train.precision import amp_dtype, autocast

__all__ = [
    "AMP_MODES",
    "LOG_COLUMNS",
    "METHODS",
    "TERMS",
    "Stage2Config",
    "amp_dtype",
    "autocast",
    "build_localizer",
    "load_localizer",
    "train_localizer",
]


def build_localizer(classifier: WGAPClassifier, head: str = "unet", **head_kw: Any) -> Localizer:
    """Frozen ``classifier`` + the registered head ``head``."""
    from colocam_plugin.api import get_registries

    factory = get_registries().heads.get(head)
    return Localizer(classifier, factory(encoder_channels=classifier.encoder_channels, **head_kw))


def load_localizer(path: str | Path, *, device: str | torch.device = "cpu") -> Localizer:
    """Rebuild a trained localizer (eval mode) from its stage-2 checkpoint."""
    ckpt = load_checkpoint(path, kind="localizer")
    classifier = WGAPClassifier.from_config(ckpt["classifier_config"])
    model = build_localizer(classifier, ckpt["config"]["head"])
    model.load_state_dict(ckpt["state_dict"])
    model.checkpoint_config = dict(ckpt["config"])
    model.classes = list(ckpt.get("classes", []))
    return model.to(device).eval()


class _LRUFrames:
    """Decoded frames, the ``capacity`` most recently used kept (0: none kept).

    Each DataLoader worker holds its own; memory is bounded by the capacity the
    user sets (``Stage2Config.cache_frames``), not by the dataset.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, int(capacity))
        self._items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        img = self._items.get(path)
        if img is not None:
            self._items.move_to_end(path)
            return img
        img = read_image(path)
        if self.capacity:
            self._items[path] = img
            if len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return img


class _SequenceData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """One item = one training batch: ``(seed, [(shot index, frame indices), ...])``.

    Decodes the frames and resizes them and their pseudo-label CAMs (no
    randomness here: the crop and flip run on the device, from the item's
    ``seed``, which is handed back with the batch). The result does not
    depend on which worker (or the main process) builds it, nor on the order
    batches are prefetched in.
    """

    def __init__(
        self,
        shots: Sequence[Shot],
        pseudo_cams: torch.Tensor,
        offsets: np.ndarray,
        transform: Any,
        cache_frames: int,
    ) -> None:
        self.shots, self.pseudo_cams, self.offsets = shots, pseudo_cams, offsets
        self.transform = transform
        self.cache = _LRUFrames(cache_frames)

    def __getitem__(
        self, item: tuple[int, list[tuple[int, Any]]]
    ) -> tuple[torch.Tensor, torch.Tensor, list[int], int]:
        seed, batch = item
        images, cams = [], []
        for shot_idx, idxs in batch:
            shot = self.shots[shot_idx]
            frames = [self.cache.get(shot.frames[i].path) for i in idxs]
            clip_cams = self.pseudo_cams[[self.offsets[shot_idx] + i for i in idxs]].float()
            res = self.transform(frames, cams=clip_cams.numpy())
            images.append(res.frames)
            cams.append(torch.as_tensor(res.cams))
        return torch.cat(images), torch.cat(cams), [len(idxs) for _, idxs in batch], seed


def _batch_loader(data: _SequenceData, items: list[Any], workers: int, pin: bool) -> Any:
    """A DataLoader over whole batches (``batch_size=None``), ``workers`` processes."""
    return torch.utils.data.DataLoader(
        data,
        batch_size=None,
        sampler=items,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
    )


def _sequence_batches(
    sampler: Any, n: int, batch_frames: int, epoch: int, repeats: int, world: int = 1
) -> list[list[tuple[int, Any]]]:
    """The epoch's batches of sequences on this rank (``repeats`` passes over the shots).

    ``batch_frames // n`` sequences make a global batch; in a group of
    ``world`` processes each rank's batch holds ``1 / world`` of them (the
    sampler already yields only this rank's shots).
    """
    per_batch = max(1, batch_frames // n) // world
    seqs = []
    for r in range(repeats):
        sampler.set_epoch(epoch * repeats + r)
        seqs.extend(sampler)
    return [seqs[i : i + per_batch] for i in range(0, len(seqs), per_batch)]


def train_localizer(
    classifier: WGAPClassifier,
    shots: Sequence[Shot],
    pseudo_cams: torch.Tensor,
    out: str | Path,
    *,
    config: Stage2Config | None = None,
    classifier_config: dict[str, Any] | None = None,
    classes: Sequence[str] = (),
    device: str | torch.device = "cpu",
    resume: bool = True,
    progress: bool = True,
    evaluate: Callable[[Localizer], dict[str, float]] | None = None,
    eval_every: int = 0,
    keep_best: bool = False,
    select_metric: str = "corloc",
) -> dict[str, Any]:
    """Train the localizer; returns the final checkpoint dict.

    Args:
        classifier: trained stage-1 classifier (frozen here).
        shots: training shots.
        pseudo_cams: ``(N, S, S)`` CAMs of every frame of ``shots``, listed
            shot by shot (see :mod:`colocam_plugin.train.cam_cache`); for
            TCAM, already the temporal max.
        out: checkpoint path (rewritten each epoch) ; ``<out>.log.csv``
            gets one row per step (:data:`LOG_COLUMNS`).
        evaluate: called with the model (in eval mode, under no_grad) every
            ``eval_every`` optimisation steps and after the last one; its
            metrics (e.g. ``{"corloc": 51.2}``) go to ``<out>.val.csv``
            with the step and epoch.
        eval_every: steps between two ``evaluate`` calls (0: only at the end).
        keep_best: also write ``<out stem>.best.pt``, a localizer checkpoint of
            the weights with the highest ``select_metric`` seen so far (model
            selection on a held-out split, as wsolevaluation prescribes).
        select_metric: the ``evaluate`` key that ranks the weights.
    """
    from colocam_plugin.api import get_registries
    from colocam_plugin.data.transforms import ClipTransform
    from colocam_plugin.losses import SizeLoss

    cfg = config or Stage2Config()
    regs = get_registries()
    out = Path(out)
    offsets = np.cumsum([0] + [len(s) for s in shots])
    if pseudo_cams.shape[0] != offsets[-1]:
        raise ValueError(f"pseudo_cams has {pseudo_cams.shape[0]} CAMs for {offsets[-1]} frames")
    torch.manual_seed(cfg.seed)
    model = build_localizer(classifier, cfg.head).to(device)
    crf = regs.losses.create(
        cfg.crf_loss,
        weight=cfg.crf_weight_at(cfg.image_size, cfg.image_size),
        sigma_rgb=cfg.sigma_rgb,
        sigma_xy=cfg.sigma_xy,
        step=cfg.crf_step,
    ).to(device)
    coloc = regs.losses.create(cfg.coloc_loss, weight=cfg.coloc_weight, sigma_rgb=cfg.sigma_rgb)
    coloc = coloc.to(device)
    size_loss = SizeLoss(weight=cfg.asc_weight).to(device)
    world = distributed.world_size()
    per_batch = max(1, cfg.batch_frames // cfg.n_frames)
    if per_batch % world:
        raise UsageError(
            f"--batch-frames {cfg.batch_frames}: its {per_batch} sequence(s) of "
            f"{cfg.n_frames} frames must be a multiple of the {world} processes "
            "(each takes an equal share)"
        )
    # in a process group the sampler shards SHOTS: a sequence stays on one rank
    shard_kw = {"num_replicas": world, "rank": distributed.rank()} if world > 1 else {}
    sampler = regs.samplers.create(
        cfg.sampler,
        shots=shots,
        n_frames=cfg.n_frames,
        style=cfg.style,
        seed=cfg.seed,
        **shard_kw,
    )
    opt = torch.optim.SGD(
        model.trainable_parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    # the workers only resize (eval mode at the resize side: no crop, no flip);
    # the crop to image_size and the flip run on the device, per batch
    transform = ClipTransform(resize=cfg.resize, crop=cfg.resize, hflip=False, train=False)
    # the classifier's weights are part of the run's identity: a retrained
    # classifier must not resume (or reuse) a localizer trained on the old one
    full_config = {
        **asdict(cfg),
        "classifier_fingerprint": state_fingerprint(classifier.state_dict()),
    }
    # how frames are loaded does not change the result: not part of the run's identity
    for key in ("workers", "cache_frames"):
        full_config.pop(key, None)
    if world > 1:  # the shards, hence the run, depend on the number of processes
        full_config["world_size"] = world
    checkpoint = Checkpoint(
        out,
        kind="localizer",
        config=full_config,
        states={"state_dict": model, "optimizer": opt, "scheduler": sched, "size_loss": size_loss},
        meta={
            "classifier_config": dict(classifier_config or classifier.config),
            "classes": list(classes),
        },
    )
    data = _SequenceData(shots, pseudo_cams, offsets, transform, cfg.cache_frames)
    jitter = ColourJitter(
        brightness=cfg.colour_jitter,
        contrast=cfg.colour_jitter,
        saturation=cfg.colour_jitter,
        hue=cfg.hue_jitter,
        grayscale_p=cfg.grayscale_p,
    )
    gen = torch.Generator()  # the epoch's pseudo-label draws

    def epoch_seed(epoch: int) -> int:
        return cfg.seed * 1_000_003 + epoch

    def batches(epoch: int) -> Any:
        # each rank its own crops, flips and pseudo-label draws (rank 0: as one process)
        seed = distributed.rank_seed(epoch_seed(epoch))
        gen.manual_seed(seed)
        seqs = _sequence_batches(
            sampler, cfg.n_frames, cfg.batch_frames, epoch, cfg.repeats_per_epoch, world
        )
        # one seed per batch for its crops, flips and colour jitter, drawn up
        # front: the batch's augmentation depends on its seed alone, not on
        # which worker built it nor in which order
        data_gen = torch.Generator().manual_seed(seed + 7919)
        draws = torch.randint(0, 2**62, (len(seqs),), generator=data_gen)
        items = [(int(v), b) for v, b in zip(draws, seqs)]
        return _batch_loader(data, items, cfg.workers, pin=torch.device(device).type == "cuda")

    def step(forward: Forward, batch: Any) -> Step:
        x_cpu, c_cpu, lengths, batch_seed = batch
        x = x_cpu.to(device, non_blocking=True)
        c = c_cpu.to(device, non_blocking=True)
        batch_gen = torch.Generator().manual_seed(int(batch_seed))
        x, c = _augment_sequences(x, c, list(lengths), cfg.image_size, jitter, batch_gen)
        terms, seg, probs = _loss_terms(
            forward, x, c, cfg, crf, coloc, size_loss, gen, len(lengths)
        )
        loss = torch.stack(list(terms.values())).sum()
        # the columns of LOG_COLUMNS but epoch, step and lr (the CSV logger's)
        metrics = {
            "loss": float(loss.detach()),
            **{k: float(v.detach()) for k, v in terms.items()},
            **_grad_norms(terms, loss, seg),
            "fg_mean": float(probs[:, 1].detach().mean()),
        }
        return Step(loss, metrics)

    def summarize(state: FitState) -> dict[str, Any]:
        """Each term's mean over the epoch's steps (every rank's), and the steps."""
        sums = {k: v for k, v in state.sums.items() if k in TERMS}
        if world > 1:
            sums = _reduce_epoch_sums(sums, world)
        return {**{k: v / max(1, state.steps) for k, v in sums.items()}, "steps": state.steps}

    callbacks = [
        CsvLogger(out.with_name(out.name + ".log.csv"), LOG_COLUMNS),
        Evaluation(
            evaluate,
            out.with_name(out.name + ".val.csv"),
            every=eval_every,
            best_path=out.with_name(out.stem + ".best" + out.suffix),
            keep_best=keep_best,
            checkpoint=checkpoint,
            select_metric=select_metric,
        ),
        LambdaCallback(on_epoch_end=lambda state: size_loss.step_epoch()),
    ]
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
        callbacks=callbacks,
        amp=cfg.amp,
        device=device,
        progress=progress,
        name=cfg.method,
    )
    # nothing left to train: the checkpoint on disk is final
    return state.checkpoint or load_checkpoint(out, kind="localizer")


def _reduce_epoch_sums(sums: dict[str, float], world: int) -> dict[str, float]:
    """The epoch's per-term sums over every rank, scaled to one rank's steps.

    Every rank runs the same number of steps, so ``sum / steps`` afterwards is
    the mean over all ranks' steps. A term some rank never had (e.g. ``pl``
    when no seed was drawn) is kept if any rank had it.
    """
    names = list(TERMS)
    vec = [sums.get(k, 0.0) for k in names] + [float(k in sums) for k in names]
    total = distributed.all_reduce_sum(torch.tensor(vec, dtype=torch.float64)).tolist()
    return {k: total[i] / world for i, k in enumerate(names) if total[len(names) + i] > 0}


def _augment_sequences(
    x: torch.Tensor,
    cams: torch.Tensor,
    lengths: list[int],
    size: int,
    jitter: ColourJitter,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop to ``size``, flip and colour-jitter each sequence with one draw.

    ``x``: ``(B, 3, R, R)`` resized frames; ``cams``: their ``(B, R, R)``
    pseudo-label source CAMs, cropped and flipped exactly as their frame.
    Colour jitter is off when ``jitter`` is.
    """
    if len(set(lengths)) == 1:
        x, cams = crop_flip(x, size, gen, maps=cams, sequence_length=lengths[0])
        return colour_augment(x, jitter, gen, sequence_length=lengths[0]), cams
    xs, cs = [], []
    for xp, cp in zip(x.split(lengths), cams.split(lengths)):
        xp, cp = crop_flip(xp, size, gen, maps=cp, sequence_length=len(xp))
        xs.append(colour_augment(xp, jitter, gen, sequence_length=len(xp)))
        cs.append(cp)
    return torch.cat(xs), torch.cat(cs)


def _loss_terms(
    model: Forward,
    x: torch.Tensor,
    cams: torch.Tensor,
    cfg: Stage2Config,
    crf: torch.nn.Module,
    coloc: torch.nn.Module,
    size_loss: torch.nn.Module,
    gen: torch.Generator,
    n_seq: int,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The step's loss terms, the decoder's output logits and their softmax.

    ``model`` is the forward pass :func:`~colocam_plugin.train.loop.fit` hands
    the step: under the run's autocast; the terms run in float32 outside it.
    """
    from colocam_plugin.losses import IGNORE_INDEX, sample_pseudo_labels

    seg, _ = model(x)
    seg = seg.float()  # the loss terms and energies run in float32
    probs = seg.softmax(1)
    terms: dict[str, torch.Tensor] = {}
    if cfg.use_pl:
        labels = sample_pseudo_labels(
            cams, size=(int(x.shape[-2]), int(x.shape[-1])), generator=gen
        )
        if (labels != IGNORE_INDEX).any():
            terms["pl"] = F.cross_entropy(seg, labels.to(x.device), ignore_index=IGNORE_INDEX)
    if cfg.use_crf:
        terms["crf"] = crf(probs, x)
    if cfg.use_asc:
        terms["asc"] = size_loss(probs)
    if cfg.use_coloc and cfg.n_frames >= 2:
        b, _, h, w = probs.shape
        n = b // n_seq
        terms["coloc"] = coloc(probs.view(n_seq, n, 2, h, w), x.view(n_seq, n, 3, h, w))
    if not terms:
        raise ValueError("every loss term is switched off")
    return terms, seg, probs


def _grad_norms(
    terms: dict[str, torch.Tensor], loss: torch.Tensor, seg: torch.Tensor
) -> dict[str, float]:
    """L2 norm of each term's (and the total's) gradient w.r.t. the decoder's logits.

    Only the losses' own graph is traversed (the decoder is not), so this costs
    a small fraction of the step.
    """
    names = list(terms)
    outputs = [*terms.values(), loss]
    norms: dict[str, float] = {}
    for name, value in zip([*names, "total"], outputs):
        (grad,) = torch.autograd.grad(value, seg, retain_graph=True, allow_unused=True)
        norms[f"grad_{name}"] = 0.0 if grad is None else float(grad.norm())
    return norms
