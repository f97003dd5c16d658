"""Writing a generated YouTube-Objects v1.0 tree: the parts SynthYTO and RealYTO share.

A generator draws its frames; this module does the rest the same way for
both: the class folders' video split (:func:`write_video_split`), shot
folders (:func:`shot_folder`), boxes from masks (:func:`bbox`), box files
(:func:`save_sticks`), the cache folder and key (:func:`cache_root`,
:func:`config_hash`), the manifest (:func:`read_manifest`,
:func:`content_hash`) and the atomic build-then-rename of the tree
(:func:`write_tree`). Nothing here draws a pixel.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from colocam_plugin.atomic import sibling_temp_dir
from colocam_plugin.errors import DataError

__all__ = [
    "bbox",
    "cache_root",
    "config_hash",
    "content_hash",
    "read_manifest",
    "save_sticks",
    "shot_folder",
    "write_tree",
    "write_video_split",
]

_MAT_HEADER = 116  # bytes of descriptive text at the start of a MAT 5.0 file


def bbox(mask: np.ndarray) -> list[int] | None:
    """Inclusive ``[x0, y0, x1, y1]`` of a mask's non-zero pixels, ``None`` if it has none.

    Examples:
        >>> m = np.zeros((4, 5), bool); m[1:3, 2] = True
        >>> bbox(m), bbox(np.zeros((2, 2)))
        ([2, 1, 2, 2], None)
    """
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]


def save_sticks(path: Path, boxes: Sequence[Sequence[float]], *, writer: str) -> None:
    """Write a frame's boxes as YTO v1.0 does: ``savemat(path, {"coor": cell})``.

    ``cell`` is a ``(1, K)`` object array whose entries are ``(1, 4)`` float64
    boxes. The header is fixed (scipy would stamp the time), so the same boxes
    give the same bytes.

    Args:
        path: the ``frameNNNN.jpg_sticks.mat`` file to write.
        boxes: ``[x0, y0, x1, y1]`` inclusive pixel boxes, one per object.
        writer: named in the header, "MATLAB 5.0 MAT-file, written by
            colocam_plugin <writer>"; part of the file's bytes.

    Raises:
        ValueError: the header text exceeds the 116 bytes MAT 5.0 allows.
    """
    text = f"MATLAB 5.0 MAT-file, written by colocam_plugin {writer}".encode()
    if len(text) > _MAT_HEADER:
        raise ValueError(f"save_sticks: header {text!r} exceeds {_MAT_HEADER} bytes")
    cell = np.empty((1, len(boxes)), dtype=object)
    for k, box in enumerate(boxes):
        cell[0, k] = np.asarray([box], dtype=np.float64)
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"coor": cell})
    path.write_bytes(text.ljust(_MAT_HEADER, b" ") + buf.getvalue()[_MAT_HEADER:])


def write_video_split(
    class_dir: Path, n_videos: int, n_test: int, rng: np.random.Generator
) -> set[int]:
    """Draw ``n_test`` of the videos ``1..n_videos`` for test; write ``sets/{train,test}.txt``.

    Returns:
        The test videos' numbers (the others are train videos).
    """
    test = set((rng.choice(n_videos, n_test, replace=False) + 1).tolist())
    sets = class_dir / "sets"
    sets.mkdir(parents=True)
    for split, ids in (
        ("train", sorted(set(range(1, n_videos + 1)) - test)),
        ("test", sorted(test)),
    ):
        (sets / f"{split}.txt").write_text("".join(f"{v:04d}\n" for v in ids))
    return test


def shot_folder(class_dir: Path, video: int, shot: int) -> Path:
    """``<class_dir>/data/<video:04d>/shots/<shot:03d>``, where a shot's frames go (not created)."""
    return class_dir / "data" / f"{video:04d}" / "shots" / f"{shot:03d}"


def cache_root() -> Path:
    """Folder of cached trees: ``$COLOCAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/colocam``,
    else ``~/.cache/colocam``.
    """
    base = os.environ.get("COLOCAM_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = str(Path(xdg) / "colocam") if xdg else str(Path.home() / ".cache" / "colocam")
    return Path(base)


def config_hash(version: int, knobs: dict[str, Any]) -> str:
    """sha256 (hex, 64 chars) of a generator's version and its JSON-ready knobs: its cache key."""
    payload = json.dumps({"version": version, **knobs}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def read_manifest(root: Path, manifest: str) -> dict[str, Any] | None:
    """The JSON file ``root/manifest``, or ``None`` when missing or not JSON."""
    try:
        return json.loads((root / manifest).read_text())
    except (OSError, ValueError):
        return None


def content_hash(root: Path, manifest: str) -> str:
    """sha256 (hex) over every file under ``root`` but ``manifest``: paths and bytes.

    Files are taken in sorted order of their path; each adds its POSIX path
    relative to ``root``, a NUL byte and the sha256 of its bytes.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != manifest):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def write_tree(
    root: Path,
    build: Callable[[Path], dict[str, Any]],
    *,
    manifest: str,
    key_field: str,
    key: str,
    kind: str,
) -> Path:
    """Build a tree at ``root`` unless its manifest already holds ``key``.

    ``build(tmp)`` writes every file but the manifest into a sibling temporary
    folder and returns the manifest's fields (``key_field`` among them); this
    adds ``content_sha256`` (:func:`content_hash`), writes the manifest and
    renames the folder into place, so a crash never leaves a half tree. An
    older tree of the same manifest at ``root`` is replaced.

    Args:
        root: target folder.
        build: writes the tree into the folder it is given.
        manifest: file name of the manifest (JSON) in the tree's root.
        key_field: manifest field that identifies the tree's content.
        key: its value for the tree wanted.
        kind: the generator's name, for error messages.

    Returns:
        ``root``.

    Raises:
        DataError: ``root`` is a non-empty folder without ``manifest``, or
            another tree appeared there while building.
    """
    existing = read_manifest(root, manifest)
    if existing is not None and existing.get(key_field) == key:
        return root
    if root.exists() and existing is None and (not root.is_dir() or any(root.iterdir())):
        raise DataError(
            f"{root}: exists and is not a {kind} tree (no {manifest}); refusing to overwrite"
        )
    with sibling_temp_dir(root) as tmp:  # removed on any failure
        info = build(tmp)
        info["content_sha256"] = content_hash(tmp, manifest)  # before the manifest exists
        (tmp / manifest).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        _swap_into_place(tmp, root, manifest, key_field, key)
    return root


def _swap_into_place(tmp: Path, root: Path, manifest: str, key_field: str, key: str) -> None:
    trash = None
    if root.exists() and read_manifest(root, manifest) is not None:
        trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, trash / "tree")
    try:
        os.replace(tmp, root)  # atomic; replaces an empty folder
    except OSError:
        other = read_manifest(root, manifest)  # a concurrent writer won the race
        if other is None or other.get(key_field) != key:
            raise DataError(f"{root}: appeared while generating and holds another tree") from None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
