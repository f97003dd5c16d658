"""``colocam gallery``: a static HTML page comparing CAM methods on sampled test frames.

Methods, localizers and the classifier are resolved and scored exactly as
``colocam evaluate`` does (same options, :func:`colocam_plugin.harness.evaluate_methods`);
the page is written by :func:`colocam_plugin.gallery.write_html_gallery`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    from colocam_plugin.cli.run_eval import prepare, write_outputs
    from colocam_plugin.devices import resolve_device
    from colocam_plugin.gallery import write_html_gallery
    from colocam_plugin.harness import evaluate_methods, format_table

    args.device = resolve_device(args.device)
    ds, model, methods, size = prepare(args, what="show")
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
    write_outputs(results, args, methods)
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
