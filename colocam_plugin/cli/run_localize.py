"""``colocam localize``: boxes and heat maps on your own videos or frame folders.

Parsing and printing only; the work is :func:`colocam_plugin.localize.localize`.
"""

from __future__ import annotations

import argparse

from colocam_plugin.cli.argtypes import (
    device_name,
    existing_file,
    output_dir,
    positive_float,
    positive_int,
    unit_float,
)

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The command's flags; every help line shows its default."""
    # the constants live in colocam_plugin.localize, which imports torch: keep
    # `colocam localize --help` light by repeating them (checked by a test)
    p.description = (
        "Localize the object in every frame of video files or folders of frames. Writes "
        "OUT/boxes.csv (video,frame,time_s,class,score,x0,y0,x1,y1; boxes 0-based "
        "inclusive pixels of the original frame), OUT/boxes.json (the same rows) and, "
        "with --overlay, OUT/<input>_overlay.mp4 per input."
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files (.mp4 .avi .mkv .webm .mov) "
        "or folders of frames (.jpg .jpeg .png, sorted by name)",
    )
    p.add_argument(
        "--classifier", required=True, type=existing_file, help="stage-1 checkpoint (required)"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--localizer", type=existing_file, help="stage-2 checkpoint (colocam / fcam / tcam)"
    )
    which.add_argument("--method", help="registered CAM method instead, e.g. layercam")
    p.add_argument("--out", required=True, type=output_dir, help="output folder (required)")
    p.add_argument(
        "--class",
        dest="class_name",
        default=None,
        help="localize this class in every frame (default: each frame's top-1 class)",
    )
    p.add_argument(
        "--overlay", action="store_true", help="also write an mp4 per input with CAM and box"
    )
    p.add_argument(
        "--temporal",
        action="store_true",
        help="smooth CAM, class and box over --window frames and leave the box empty "
        "where the class probability is below --absent-below and no class reaches "
        "--absent-top (default: off)",
    )
    p.add_argument(
        "--window",
        type=positive_int,
        default=5,
        help="--temporal: frames in the window, odd (default 5)",
    )
    p.add_argument(
        "--absent-below",
        type=unit_float,
        default=None,
        help="--temporal: class probability (window mean) under which the object is "
        "absent (default: chance, 1 / number of classes; 0: never absent)",
    )
    p.add_argument(
        "--absent-top",
        type=unit_float,
        default=0.5,
        help="--temporal: a frame is not absent when some class's probability (window mean) "
        "reaches this: a class the classifier is sure of means an object is in view; "
        "1: the class probability alone decides (default 0.5)",
    )
    p.add_argument(
        "--threshold",
        type=unit_float,
        default=0.5,
        help="CAM threshold of the box, a fraction of the CAM's max (default 0.5)",
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="frames per second to take from each input (default: every frame)",
    )
    p.add_argument(
        "--folder-fps",
        type=positive_float,
        default=25.0,
        help="frame rate of a folder of frames, for time_s and the overlay (default 25)",
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        help="network input side (default: the classifier's training size)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=16, help="frames per model call (default 16)"
    )
    p.add_argument(
        "--device",
        type=device_name,
        default="auto",
        help="auto (CUDA if present), cpu, cuda, cuda:N (default auto)",
    )
    p.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "none"),
        help="localizer precision (CAMs and scores in float32): auto = bf16 where the device "
        "has fast bf16 kernels (CUDA, AVX-512-bf16/AMX CPUs), none = float32; CAM methods "
        "(--method) always run in float32 (default auto)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown)")


def run(args: argparse.Namespace) -> int:
    """Run :func:`~colocam_plugin.localize.localize` and print one summary line."""
    from colocam_plugin.devices import resolve_device
    from colocam_plugin.localize import localize

    summary = localize(
        args.inputs,
        classifier=args.classifier,
        out_dir=args.out,
        localizer=args.localizer,
        method=args.method,
        class_name=args.class_name,
        overlay=args.overlay,
        temporal=args.temporal,
        device=resolve_device(args.device),
        batch_size=args.batch_size,
        fps=args.fps,
        image_size=args.image_size,
        threshold=args.threshold,
        window=args.window,
        absent_below=args.absent_below,
        absent_top=args.absent_top,
        folder_fps=args.folder_fps,
        progress=not args.no_progress,
        amp=args.amp,
    )
    n = sum(summary.frames.values())
    msg = (
        f"{summary.method} ({summary.precision}): {n} frames from {len(summary.frames)} "
        f"input(s) in "
        f"{summary.seconds:.1f} s ({summary.frames_per_second:.2f} frames/s after "
        f"{summary.load_s:.1f} s loading) -> {summary.csv}"
    )
    if args.temporal:
        msg += f"; {summary.absent} frames marked absent"
    if summary.overlays:
        msg += f"; overlays: {', '.join(str(p) for p in summary.overlays.values())}"
    print(msg)
    return 0
