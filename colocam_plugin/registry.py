"""Typed registries that plugins fill through the ``colocam_register_*`` hooks.

A registry maps a name to a factory. It refuses duplicates (naming the plugin
that registered the name first) and, on a miss, lists the valid names::

    >>> reg = Registry("CAM method")
    >>> reg.add("gradcam", dict)
    >>> reg.create("gradcm")
    Traceback (most recent call last):
    ...
    colocam_plugin.errors.UnknownNameError: Unknown CAM method 'gradcm'; registered: gradcam
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from colocam_plugin.errors import DuplicateNameError, UnknownNameError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered factory and who registered it."""

    name: str
    factory: Callable[..., T]
    plugin: str | None = None
    help: str = ""


class Registry(Generic[T]):
    """Name -> factory map of one kind of component (CAM methods, datasets, ...).

    Args:
        kind: human name of the component kind, used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        #: the plugin whose hook implementation is running, recorded in the
        #: entries it adds (set by :func:`colocam_plugin.api.build_registries`)
        self.current_plugin: str | None = None

    def add(self, name: str, factory: Callable[..., T], *, help: str = "") -> None:
        """Register ``factory`` under ``name``.

        Raises:
            DuplicateNameError: ``name`` is already registered.
            ValueError: ``name`` is empty or ``factory`` is not callable.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise ValueError(f"{self.kind} {name!r}: factory must be callable, got {factory!r}")
        if name in self._entries:
            first = self._entries[name].plugin or "an earlier plugin"
            by = f" by {self.current_plugin}" if self.current_plugin else ""
            raise DuplicateNameError(
                f"{self.kind} {name!r} registered twice{by}; first registered by {first}"
            )
        self._entries[name] = Entry(name, factory, self.current_plugin, help)

    def entry(self, name: str) -> Entry[T]:
        """Return the entry of ``name``; the error lists the valid names."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"Unknown {self.kind} {name!r}; registered: {valid}") from None

    def get(self, name: str) -> Callable[..., T]:
        """Return the factory registered under ``name``."""
        return self.entry(name).factory

    def create(self, name: str, /, **kwargs: Any) -> T:
        """Call the factory of ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted names, optionally filtered by a shell pattern (``"grad*"``)."""
        names = sorted(self._entries)
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
