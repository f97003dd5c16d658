"""``colocam gallery``: a static HTML page comparing CAM methods on sampled test frames.

Methods, localizers and the classifier are resolved and scored exactly as
``colocam evaluate`` does (same options, :func:`colocam_plugin.harness.evaluate_methods`);
the page is written by :func:`colocam_plugin.gallery.write_html_gallery`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from colocam_plugin.cli.argtypes import output_dir, positive_int

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from colocam_plugin.cli import run_eval

    run_eval.add_arguments(p)  # the same data, classifier and method options as evaluate
    p.add_argument(
        "--out", required=True, type=output_dir, help="folder for index.html and its images"
    )
    p.add_argument(
        "--max-frames",
        type=positive_int,
        default=12,
        help="number of sampled frames shown (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the frame sample (default %(default)s)"
    )
    p.add_argument(
        "--format",
        dest="image_format",
        choices=("png", "jpg"),
        default="png",
        help="image files (default %(default)s)",
    )
    p.add_argument("--title", default="CAM gallery", help="page title (default %(default)r)")


def run(args: argparse.Namespace) -> int:
    from colocam_plugin.gallery import write_html_gallery
    from colocam_plugin.harness import evaluate_methods, format_table

    ds, model, methods, size = _prepare(args)
    results = evaluate_methods(
        model,
        ds.frames,
        methods,
        num_classes=len(ds.classes),
        image_size=size,
        batch_size=args.batch_size,
        thresholds=args.thresholds or (1000 if args.split == "test" else 250),
        device=args.device,
        keep_cams=True,
        progress=not args.no_progress,
    )
    print(format_table(results, ds.classes))
    _save_like_evaluate(results, args)
    index = write_html_gallery(
        ds.frames,
        results,
        args.out,
        image_size=size,
        classes=ds.classes,
        max_frames=args.max_frames,
        seed=args.seed,
        title=args.title,
        subtitle=f"{args.dataset} ({args.split} split) at {args.root}; "
        f"classifier {Path(args.classifier).name}; input {size}x{size}",
        image_format=args.image_format,
    )
    print(f"gallery written to {index}")
    return 0


# `_prepare` and `_save_like_evaluate` are `colocam evaluate`'s steps (cli/run_eval.py
# keeps them inline in its `run`); they belong in run_eval as shared functions.
def _prepare(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any], int]:
    """Dataset, classifier, ``{display name: CAM method}`` and input size, as evaluate does."""
    from colocam_plugin.api import create_cam_method, create_dataset
    from colocam_plugin.cli.common import dataset_kwargs
    from colocam_plugin.cli.run_eval import _unique
    from colocam_plugin.devices import resolve_device
    from colocam_plugin.errors import UsageError
    from colocam_plugin.train.checkpoint import check_classes
    from colocam_plugin.train.stage1 import load_classifier

    args.device = resolve_device(args.device)
    methods: dict[str, Any] = {}  # unknown names fail here, before any data is read
    for name in filter(None, (m.strip() for m in args.methods.split(","))):
        methods[name] = create_cam_method(name)
    if not methods and not args.localizers.strip(","):
        raise UsageError("--methods and --localizers are both empty: nothing to show")
    ds = create_dataset(args.dataset, args.root, args.split, **dataset_kwargs(args))
    model = load_classifier(args.classifier, device=args.device)
    data = f"{args.dataset} at {args.root}"
    check_classes(model.classes, ds.classes, checkpoint=args.classifier, data=data)
    size = args.image_size or model.checkpoint_config.get("image_size", 224)
    for path in filter(None, (m.strip() for m in args.localizers.split(","))):
        loc = create_cam_method("localizer", checkpoint=path, device=args.device)
        check_classes(loc.classes, ds.classes, checkpoint=path, data=data)
        methods[_unique(loc.name, methods)] = loc
    return ds, model, methods, int(size)


def _save_like_evaluate(results: dict[str, Any], args: argparse.Namespace) -> None:
    """``--save-cams`` and ``--json``, inherited from evaluate's options, written as it does."""
    import json

    from colocam_plugin.atomic import atomic_dir, atomic_write
    from colocam_plugin.harness import save_cams_npz

    if args.save_cams:
        with atomic_dir(args.save_cams) as cams_dir:
            for name, res in results.items():
                save_cams_npz(res, Path(cams_dir) / f"{name}.npz")
    if args.json:
        payload = {name: res.scores for name, res in results.items()}
        with atomic_write(args.json) as fh:
            fh.write(json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n")
