"""The training and evaluation pipeline as library functions.

What the ``colocam`` commands, the demo and the benchmarks run, from a
dataset name and a folder to a trained checkpoint: read the split, build the
model, get the (cached) pseudo-label CAMs, train. The command line only parses
flags and prints; benchmarks call these directly.

- :func:`train_stage1`: the frame classifier (stage 1) and its test accuracy;
- :func:`train_stage2`: an F-CAM / TCAM / CoLo-CAM localizer (stage 2);
- :func:`make_frame_loader`: stage 1's ``load_batch`` (decode, resize).

Heavy modules (torch, the models) are imported inside the functions so that
importing this module stays cheap.

Under ``torchrun``, call them inside :func:`colocam_plugin.distributed.session`
(the ``colocam`` commands do): every rank runs the same function, rank 0
reads or builds shared files first (dataset caches, pseudo-label CAMs), the
training loops shard the data and only rank 0 writes (docs/distributed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colocam_plugin.data.records import FrameRecord
from colocam_plugin.errors import ColocamError

__all__ = [
    "make_frame_loader",
    "train_stage1",
    "train_stage2",
]


def make_frame_loader(image_size: int, resize: int) -> Any:
    """``load_batch(frames, train, generator)`` for stage 1: decode and resize.

    Train: ``(B, 3, resize, resize)``; the random crop to ``image_size`` and
    the flip run on the training device (:func:`train_classifier
    <colocam_plugin.train.stage1.train_classifier>`), so ``generator`` is
    not drawn from. Eval: resized straight to ``(image_size, image_size)``.
    """
    from colocam_plugin.data.io import read_image
    from colocam_plugin.data.transforms import ClipTransform

    train_t = ClipTransform(resize=resize, crop=resize, hflip=False, train=False)
    eval_t = ClipTransform(resize=resize, crop=image_size, hflip=False, train=False)

    import torch

    def load_batch(frames: Sequence[FrameRecord], train: bool, gen: Any) -> Any:
        t = train_t if train else eval_t
        return torch.cat([t([read_image(f.path)], generator=gen).frames for f in frames])

    return load_batch


def train_stage1(
    dataset: str,
    root: str | Path,
    out: str | Path,
    *,
    config: Any,
    encoder: str = "resnet18",
    output_stride: int = 32,
    weights: str | None = None,
    pretrained: str | None = None,
    dataset_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
) -> tuple[dict[str, Any], float | None]:
    """Read the data, train the classifier; return (checkpoint, test frame accuracy or None)."""
    import torch

    from colocam_plugin import distributed
    from colocam_plugin.api import create_dataset
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.stage1 import evaluate_accuracy, train_classifier

    kw = dataset_kwargs or {}
    with distributed.main_first():  # a dataset may build a cache on first read
        train = create_dataset(dataset, root, "train", **kw)
    _require_training_frames(train, dataset, root)
    torch.manual_seed(config.seed)
    model = WGAPClassifier(
        encoder,
        len(train.classes),
        output_stride=output_stride,
        weights=weights,
        pretrained=pretrained,
    )
    loader = make_frame_loader(config.image_size, config.resize)
    ckpt = train_classifier(
        model,
        train.frames,
        loader,
        out,
        config=config,
        classes=train.classes,
        device=device,
        resume=resume,
        progress=progress,
    )
    try:
        with distributed.main_first():
            test = create_dataset(dataset, root, "test", **kw)
    except (ColocamError, ValueError):  # a dataset without a test split is fine here
        return ckpt, None
    if not test.frames:
        return ckpt, None
    return ckpt, evaluate_accuracy(model, test.frames, loader, device=device)


def _require_training_frames(train: Any, dataset: str, root: str | Path) -> None:
    """Refuse an empty train split (nothing to learn from) with one line naming it."""
    from colocam_plugin.errors import DataError

    if not train.frames:
        raise DataError(f"{root}: split 'train' of {dataset} has no frames to train on")


def train_stage2(
    classifier_path: str | Path,
    dataset: str,
    root: str | Path,
    out: str | Path,
    *,
    config_overrides: dict[str, Any],
    dataset_kwargs: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    eval_split: str | None = None,
    eval_every: int = 0,
    keep_best: bool = False,
) -> dict[str, Any]:
    """Read the data, get the (cached) pseudo-label CAMs, train the localizer.

    With ``eval_split`` (e.g. ``"val"``), the model in training is scored on
    that split every ``eval_every`` steps and at the end (CorLoc, mean IoU;
    250 thresholds, as wsolevaluation on validation) into ``<out>.val.csv``.
    """
    from colocam_plugin import distributed
    from colocam_plugin.api import create_dataset
    from colocam_plugin.train.cam_cache import cached_cams, temporal_max_cams
    from colocam_plugin.train.checkpoint import check_classes
    from colocam_plugin.train.stage1 import load_classifier
    from colocam_plugin.train.stage2 import Stage2Config, train_localizer

    classifier = load_classifier(classifier_path, device=device)  # reads the checkpoint once
    ccfg = classifier.checkpoint_config
    cfg = Stage2Config(image_size=ccfg["image_size"], resize=ccfg["resize"], **config_overrides)
    with distributed.main_first():  # a dataset may build a cache on first read
        train = create_dataset(dataset, root, "train", **(dataset_kwargs or {}))
    _require_training_frames(train, dataset, root)
    check_classes(
        classifier.classes, train.classes, checkpoint=classifier_path, data=f"{dataset} at {root}"
    )
    frames = [f for s in train.shots for f in s.frames]
    with distributed.main_first():  # rank 0 computes and caches them, the others read
        cams = cached_cams(
            classifier,
            frames,
            method=cfg.pl_method,
            image_size=cfg.image_size,
            cache_dir=cache_dir or Path(out).parent / "cam_cache",
            device=device,
            progress=progress,
        )
    if cfg.method == "tcam":
        shot_of = [i for i, s in enumerate(train.shots) for _ in s.frames]
        cams = temporal_max_cams(cams.float(), shot_of, cfg.tcam_k)
    evaluate = None
    if eval_split is not None:
        with distributed.main_first():
            scored = create_dataset(dataset, root, eval_split, **(dataset_kwargs or {}))
        evaluate = _validation_scorer(classifier, scored, cfg.image_size, device)
    return train_localizer(
        classifier,
        train.shots,
        cams,
        out,
        config=cfg,
        classifier_config=ccfg,
        classes=train.classes,
        device=device,
        resume=resume,
        progress=progress,
        evaluate=evaluate,
        eval_every=eval_every,
        keep_best=keep_best,
    )


def _validation_scorer(classifier: Any, scored: Any, image_size: int, device: str) -> Any:
    """``score(localizer) -> {"corloc", "mean_iou"}`` on the annotated frames of ``scored``."""
    from colocam_plugin.cam.localizer import LocalizerCAM
    from colocam_plugin.harness import validation_scores

    if not scored.frames:
        raise ColocamError(f"--eval-split {scored.split}: no annotated frames to score")

    def score(model: Any) -> dict[str, float]:
        return validation_scores(
            classifier,
            scored.frames,
            LocalizerCAM.from_model(model),
            num_classes=len(scored.classes),
            image_size=image_size,
            device=device,
        )

    return score
