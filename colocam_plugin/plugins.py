"""Building the plugin manager: built-ins, entry points, block list.

The manager is built by :func:`get_plugin_manager`, never at import time.
Environment variables:

``COLOCAM_DISABLE_PLUGIN_AUTOLOAD=1``
    do not load third-party plugins from the ``colocam`` entry-point group.
``COLOCAM_BLOCK_PLUGINS=a,b``
    block these plugin names (entry-point names or built-in names).
"""

from __future__ import annotations

import importlib
import os

import pluggy

from colocam_plugin import hookspecs

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "get_plugin_manager"]

#: entry-point group third-party plugins declare
ENTRY_POINT_GROUP = "colocam"

#: built-in plugins, registered through the same hooks third parties use
BUILTIN_PLUGINS: tuple[str, ...] = (
    "colocam_plugin.builtin.commands",
    "colocam_plugin.builtin.components",
)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _blocked() -> set[str]:
    raw = os.environ.get("COLOCAM_BLOCK_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def get_plugin_manager(*, autoload: bool | None = None) -> pluggy.PluginManager:
    """Return a new ``PluginManager("colocam")`` with every plugin registered.

    Args:
        autoload: load entry-point plugins; ``None`` follows
            ``COLOCAM_DISABLE_PLUGIN_AUTOLOAD``.

    Raises:
        pluggy.PluginValidationError: a plugin implements a hook that does
            not exist (``check_pending``) or with wrong arguments.
    """
    pm = pluggy.PluginManager("colocam")
    pm.add_hookspecs(hookspecs)
    for name in sorted(_blocked()):
        pm.set_blocked(name)
    for modname in BUILTIN_PLUGINS:
        if pm.is_blocked(modname):
            continue
        pm.register(importlib.import_module(modname), name=modname)
    if autoload is None:
        autoload = not _env_flag("COLOCAM_DISABLE_PLUGIN_AUTOLOAD")
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm
