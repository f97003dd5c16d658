"""``argparse`` ``type=`` validators: a flag's value is checked when it is parsed.

Each validator takes the flag's text and returns the value, or raises
:class:`argparse.ArgumentTypeError`, which argparse reports as one line
naming the flag (``colocam train: error: argument --n-frames: expected an
integer >= 1, got '0'``). They import nothing heavy (``--help`` stays fast)
and create nothing on disk: the output validators only check that the path
can become a file (or folder) of the kind asked for.

Examples:
    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected an integer >= 1, got '0'
    >>> comma_names(("pl", "crf"))("crf, pl")
    ('crf', 'pl')
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "comma_names",
    "device_name",
    "existing_dir",
    "existing_file",
    "existing_files",
    "nonneg_float",
    "nonneg_int",
    "output_dir",
    "output_file",
    "positive_float",
    "positive_int",
    "unit_float",
]

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (sizes, counts, epochs)."""
    return _int(text, 1)


def nonneg_int(text: str) -> int:
    """An integer >= 0 (seeds, optional counts where 0 means off)."""
    return _int(text, 0)


def _float(text: str, *, strict: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (strict and value == 0):
        kind = "> 0" if strict else ">= 0"
        raise argparse.ArgumentTypeError(f"expected a finite number {kind}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, grid steps)."""
    return _float(text, strict=True)


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (loss weights)."""
    return _float(text, strict=False)


def unit_float(text: str) -> float:
    """A number in [0, 1] (CAM thresholds, probabilities)."""
    value = _float(text, strict=False)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether it exists is checked when run)."""
    if not _DEVICE.match(text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def comma_names(
    valid: Sequence[str], *, allow_empty: bool = False
) -> Callable[[str], tuple[str, ...]]:
    """Validator of a comma-separated list of names out of ``valid``.

    Args:
        valid: the names allowed.
        allow_empty: accept ``""`` (no name); otherwise at least one is needed.

    Returns:
        ``parse(text) -> names`` in the order given, duplicates dropped.
    """

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
        unknown = [n for n in names if n not in valid]
        if unknown or not (names or allow_empty):
            what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no name"
            raise argparse.ArgumentTypeError(f"{what} in {text!r}; use some of {','.join(valid)}")
        return names

    parse.__name__ = "names"
    return parse


def existing_file(text: str) -> str:
    """A path to an existing file (not a folder)."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; expected a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable")
    return text


def existing_files(text: str) -> str:
    """A comma-separated list of existing files (may be empty: ``''``)."""
    for item in filter(None, (t.strip() for t in text.split(","))):
        existing_file(item)
    return text


def existing_dir(text: str) -> str:
    """A path to an existing folder."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("expected a folder path, got ''")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file; expected a folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return text


def _check_writable(text: str, parent: Path) -> None:
    """The nearest existing folder of ``parent`` and its ancestors must be writable."""
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot write in {parent}")


def output_file(text: str) -> str:
    """A path where a file can be written: not a folder, its parents folders (or absent)."""
    path = Path(text)
    if not text or text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; expected a file path")
    _check_writable(text, path.parent)
    return text


def output_dir(text: str) -> str:
    """A path where a folder can be written: a folder or nothing yet, not a file."""
    path = Path(text)
    if not text:
        raise argparse.ArgumentTypeError("expected a folder path, got ''")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file; expected a folder path")
    _check_writable(text, path)
    return text
