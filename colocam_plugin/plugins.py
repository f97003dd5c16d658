"""Building the plugin manager: built-ins, entry points, block list.

The manager is built by :func:`get_plugin_manager`, never at import time.
Environment variables:

``COLOCAM_DISABLE_PLUGIN_AUTOLOAD=1``
    do not load third-party plugins from the ``colocam`` entry-point group.
``COLOCAM_BLOCK_PLUGINS=a,b``
    block these plugin names (entry-point names or built-in names); a name
    that is neither is reported with a :class:`PluginWarning`.

A third-party plugin that fails to load (its import raises, or it implements
a hook wrongly) is reported with a :class:`PluginWarning` naming the plugin,
its distribution and the error, and is blocked; the other plugins, and so
``colocam --help``, keep working.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import TYPE_CHECKING, Any

import pluggy

import colocam_plugin.hookspecs as hookspecs

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginWarning",
    "get_plugin_manager",
    "warn_plugin_failure",
]

#: entry-point group third-party plugins declare
ENTRY_POINT_GROUP = "colocam"

#: built-in plugins, registered through the same hooks third parties use
BUILTIN_PLUGINS: tuple[str, ...] = (
    "colocam_plugin.cli.commands",
    "colocam_plugin.builtin.components",
)


class PluginWarning(UserWarning):
    """A plugin was skipped (it failed to load or to register), or the block list
    names an unknown plugin."""


class _PluginManager(pluggy.PluginManager):
    """``PluginManager("colocam")`` whose built-in plugins are called first.

    pluggy calls the plugin registered last first; the built-ins are
    registered first, so they would come last. Calling them first (as if
    marked ``tryfirst``) means a plugin that registers a built-in's name is
    the one refused (and reported), never the built-in.
    """

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and getattr(plugin, "__name__", None) in BUILTIN_PLUGINS:
            opts = opts.copy()  # the dict lives on the function: leave it alone
            opts["tryfirst"] = True
        return opts


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _blocked() -> set[str]:
    raw = os.environ.get("COLOCAM_BLOCK_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _dist_label(dist: Any) -> str:
    return f"{dist.metadata['name']} {dist.version}"


def warn_plugin_failure(
    pm: pluggy.PluginManager, name: str, doing: str, exc: BaseException
) -> None:
    """Warn (:class:`PluginWarning`) that plugin ``name`` failed ``doing`` and is skipped.

    The message names the plugin, its distribution (for an entry-point
    plugin) and the first line of the error.
    """
    plugin = pm.get_plugin(name)
    dists = [d for p, d in pm.list_plugin_distinfo() if p is plugin and plugin is not None]
    where = f" (distribution {dists[0].project_name} {dists[0].version})" if dists else ""
    warnings.warn(
        f"plugin {name!r}{where} failed to {doing} and is skipped: {_one_line(exc)}",
        PluginWarning,
        stacklevel=3,
    )


def _entry_points() -> list[tuple[Any, EntryPoint]]:
    """(distribution, entry point) of every ``colocam`` entry point installed."""
    import importlib.metadata

    return [
        (dist, ep)
        for dist in importlib.metadata.distributions()
        for ep in dist.entry_points
        if ep.group == ENTRY_POINT_GROUP
    ]


def _load_entry_point(pm: pluggy.PluginManager, dist: Any, ep: EntryPoint) -> None:
    """Load and register one entry-point plugin; on failure warn and block it."""
    if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
        return
    try:
        # pluggy loads it (and records its distribution for `colocam plugins`)
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        pm.check_pending()  # the built-ins passed: an unknown hook is this plugin's
    except Exception as exc:
        pm.set_blocked(ep.name)  # unregisters it, if registered
        warnings.warn(
            f"plugin {ep.name!r} (entry point {ep.name} = {ep.value}, distribution "
            f"{_dist_label(dist)}) failed to load and is skipped: {_one_line(exc)}",
            PluginWarning,
            stacklevel=3,
        )


def get_plugin_manager(*, autoload: bool | None = None) -> pluggy.PluginManager:
    """Return a new ``PluginManager("colocam")`` with every plugin registered.

    Built-ins first, then the ``colocam`` entry points one by one: one that
    fails to import or to register is reported (:class:`PluginWarning`) and
    blocked, the others are loaded. Unknown names in
    ``COLOCAM_BLOCK_PLUGINS`` are reported too.

    Args:
        autoload: load entry-point plugins; ``None`` follows
            ``COLOCAM_DISABLE_PLUGIN_AUTOLOAD``.

    Raises:
        pluggy.PluginValidationError: a built-in plugin implements a hook
            that does not exist or with wrong arguments (a bug).
    """
    pm = _PluginManager("colocam")
    pm.add_hookspecs(hookspecs)
    blocked = _blocked()
    for name in sorted(blocked):
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if not pm.is_blocked(modname):
            pm.register(importlib.import_module(modname), name=modname)
    pm.check_pending()
    if autoload is None:
        autoload = not _env_flag("COLOCAM_DISABLE_PLUGIN_AUTOLOAD")
    found = _entry_points() if autoload or blocked else []
    if autoload:
        for dist, ep in found:
            _load_entry_point(pm, dist, ep)
    known = {*BUILTIN_PLUGINS, *(ep.name for _, ep in found)}
    if blocked - known:
        warnings.warn(
            f"COLOCAM_BLOCK_PLUGINS names unknown plugins: {', '.join(sorted(blocked - known))}"
            f"; known plugins: {', '.join(sorted(known))}",
            PluginWarning,
            stacklevel=2,
        )
    return pm
