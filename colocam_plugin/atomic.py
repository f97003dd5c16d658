"""Atomic writes: a file or folder appears whole, or not at all.

Everything the package writes (checkpoints, JSON, CSV, npz, CAM folders,
caches) goes through :func:`atomic_write` or :func:`atomic_dir`: the content
is written to a temporary sibling in the target's own folder (so the final
rename never crosses a file system), flushed and ``fsync``-ed, then moved
over the target with :func:`os.replace`. A reader (or a resumed run) sees
the old content or the new one, never half a file; an exception, a
``KeyboardInterrupt`` included, removes the temporary and leaves the old
target as it was. (A ``SIGKILL`` cannot run clean-up code: it may leave a
``.NAME.*.tmp`` sibling behind, never a half-written target.)

Examples:
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> target = Path(tmp.name) / "scores.json"
    >>> with atomic_write(target) as fh:
    ...     _ = fh.write("{}\\n")
    >>> target.read_text(), sorted(p.name for p in Path(tmp.name).iterdir())
    ('{}\\n', ['scores.json'])
    >>> tmp.cleanup()
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from colocam_plugin.errors import DataError

__all__ = ["atomic_dir", "atomic_write", "sibling_temp_dir"]

_MODES = ("w", "wb", "wt")


def _umask() -> int:
    """The process's umask (read by setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _prepare_parent(path: Path, kind: str) -> None:
    """Create ``path``'s folder; refuse a target of the wrong kind, naming it."""
    if kind == "file" and path.is_dir():
        raise DataError(f"{path}: is a folder; expected a file path")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise DataError(f"{path}: is a file; expected a folder path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"{path}: a parent of this path is a file, not a folder") from None
    except OSError as exc:
        raise DataError(f"{path.parent}: cannot create folder ({exc.strerror})") from None


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every OS can)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = None,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it onto ``path`` on success.

    Args:
        path: the file to (re)write; its folders are created.
        mode: ``"w"`` (text, UTF-8 unless ``encoding``) or ``"wb"`` (bytes;
            pass the handle to ``torch.save``, ``np.savez``, ...).
        encoding: text encoding (text mode only; default UTF-8).
        newline: as :func:`open` (text mode only; ``""`` for :mod:`csv`).

    Yields:
        The open file. On leaving the block without an exception it is
        flushed, ``fsync``-ed and moved onto ``path`` (permissions as a
        plain ``open`` would give); on an exception the temporary is removed
        and ``path`` keeps its old content.

    Raises:
        DataError: ``path`` is a folder, or a parent of it is a file.
        ValueError: a mode other than ``"w"``/``"wb"``.
    """
    if mode not in _MODES:
        raise ValueError(f"atomic_write: mode must be one of {_MODES}, got {mode!r}")
    target = Path(path)
    _prepare_parent(target, "file")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        text = "b" not in mode
        with os.fdopen(
            fd,
            "w" if text else "wb",
            encoding=(encoding or "utf-8") if text else None,
            newline=newline if text else None,
        ) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


@contextmanager
def sibling_temp_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A new empty folder beside ``path`` (``.NAME.tmp-XXXX``), removed on exit if still there.

    The building block of :func:`atomic_dir`, for callers that publish the
    folder themselves (moving it away before the block ends).
    """
    target = Path(path)
    _prepare_parent(target, "folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _merge(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into the existing folder ``dst`` (files replaced one by one)."""
    for entry in sorted(src.iterdir()):
        there = dst / entry.name
        if entry.is_dir() and there.is_dir():
            _merge(entry, there)
        elif entry.is_dir() and there.exists():
            raise DataError(f"{there}: is a file; expected a folder")
        elif there.is_dir():
            raise DataError(f"{there}: is a folder; expected a file")
        else:
            os.replace(entry, there)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling; move it into place on success.

    Args:
        path: the folder to create (or fill).
        replace: what to do when ``path`` is a non-empty folder: ``False``
            (default) moves each new file into it (each file atomically;
            files already there and not rewritten stay), ``True`` swaps the
            whole folder (the old one is moved aside, then deleted).

    Yields:
        The temporary folder to write into. When ``path`` is missing or
        empty, it is renamed to ``path`` in one step, so the folder appears
        whole; on an exception it is deleted and ``path`` is untouched.

    Raises:
        DataError: ``path`` (or one of its parents) is a file.

    Examples:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with atomic_dir(Path(tmp.name) / "cams") as d:
        ...     _ = (d / "a.npz").write_bytes(b"x")
        >>> sorted(p.name for p in (Path(tmp.name) / "cams").iterdir())
        ['a.npz']
        >>> tmp.cleanup()
    """
    target = Path(path)
    with sibling_temp_dir(target) as tmp:
        yield tmp
        for f in tmp.rglob("*"):  # make the files durable before they become visible
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if not target.exists() or (target.is_dir() and not any(target.iterdir())):
            os.replace(tmp, target)  # rename(2) replaces an empty folder
        elif replace:
            with sibling_temp_dir(target) as trash:
                os.replace(target, trash / "old")
                os.replace(tmp, target)
        else:
            _merge(tmp, target)
    _fsync_dir(target.parent)
