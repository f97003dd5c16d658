"""Exceptions raised at the package's public boundaries.

Every error names what was wrong (a file and line, a field, a shape) so that a
user can fix the input without reading a traceback.
"""

from __future__ import annotations

__all__ = [
    "ColocamError",
    "DataError",
    "DuplicateNameError",
    "ShapeError",
    "UnknownNameError",
    "UsageError",
]


class ColocamError(Exception):
    """Base class of every error this package raises on purpose."""


class ShapeError(ColocamError, ValueError):
    """A tensor or array has the wrong shape, dtype or value range.

    Example message: ``"probs: expected (B, K, H, W), got (2, 3, 64)"``.
    """


class DataError(ColocamError):
    """A file or folder on disk is missing, unreadable or malformed.

    The message starts with the path (and line, when there is one):
    ``"/data/yto/cat/sets/train.txt:3: expected a video id, got ''"``.
    """


class UsageError(ColocamError, ValueError):
    """An argument (a command-line flag or a keyword) has a value out of its range.

    The message names the flag or argument and the value:
    ``"--n-frames 8 exceeds --batch-frames 4"``, ``"unknown split 'val'; ..."``.
    """


class UnknownNameError(ColocamError, KeyError):
    """A registry has no entry of that name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ColocamError, ValueError):
    """Two plugins tried to register the same name in one registry."""
