"""Helpers shared by the built-in commands: dataset flags, JSON output, empty splits."""

from __future__ import annotations

import argparse
import json
from typing import Any

from colocam_plugin.cli.argtypes import existing_dir, positive_float

__all__ = ["add_dataset_arguments", "dataset_kwargs", "require_frames", "write_json"]


def write_json(obj: Any, path: str | None) -> None:
    """``obj`` as JSON to ``path`` (atomically), or to stdout when ``path`` is empty."""
    from colocam_plugin.atomic import atomic_write

    text = json.dumps(obj, indent=2, sort_keys=True)
    if path:
        with atomic_write(path) as fh:
            fh.write(text + "\n")
    else:
        print(text)


def add_dataset_arguments(p: argparse.ArgumentParser, *, split: str | None = None) -> None:
    """``--dataset``, ``--root`` (and ``--split``), ``--metadata-root``, ``--skip-unreadable``."""
    p.add_argument("--dataset", required=True, help="registered dataset name (colocam datasets)")
    p.add_argument("--root", required=True, help="dataset folder")
    if split is not None:
        p.add_argument("--split", default=split, choices=("train", "val", "test"))
    p.add_argument(
        "--metadata-root",
        type=existing_dir,
        help="wsol-splits: folder of the split metadata files",
    )
    p.add_argument(
        "--skip-unreadable", action="store_true", help="skip and count unreadable frames"
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="videos: frames per second taken from each video (default: every frame)",
    )


def dataset_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Reader keyword arguments given on the command line."""
    kw: dict[str, Any] = {}
    if getattr(args, "metadata_root", None):
        kw["metadata_root"] = args.metadata_root
    if getattr(args, "skip_unreadable", False):
        kw["skip_unreadable"] = True
    if getattr(args, "fps", None):
        kw["fps"] = args.fps
    return kw


def require_frames(ds: Any, args: argparse.Namespace) -> None:
    """Refuse an empty split: zero frames would give empty or null results, not an error.

    Raises:
        DataError: naming the folder, the split and the dataset, with the
            loader's non-zero counters (skipped frames, empty shots).
    """
    from colocam_plugin.errors import DataError

    if not ds.frames:
        what = "frames" if ds.split == "train" else "annotated frames"
        counts = ", ".join(f"{k}={v}" for k, v in ds.stats.items() if v) or "none"
        raise DataError(
            f"{args.root}: split {ds.split!r} of {args.dataset} has no {what} (counters: {counts})"
        )
