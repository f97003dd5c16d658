"""Front door: registries filled by the plugins, and ``create_*`` helpers.

The registries are built once per process from :func:`get_plugin_manager`
and cached; :func:`reset_registries` drops the cache (tests, or after
changing ``COLOCAM_*`` environment variables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pluggy

from colocam_plugin.registry import Registry

__all__ = [
    "Registries",
    "create_cam_method",
    "create_dataset",
    "get_registries",
    "list_cam_methods",
    "list_datasets",
    "reset_registries",
]


@dataclass(frozen=True)
class Registries:
    """Every registry of the harness, filled by one plugin manager."""

    pm: pluggy.PluginManager
    cam_methods: Registry[Any]
    datasets: Registry[Any]
    metrics: Registry[Any]
    commands: Registry[Any]
    heads: Registry[Any]
    losses: Registry[Any]
    samplers: Registry[Any]


_HOOKS = {
    "cam_methods": ("colocam_register_cam_methods", "CAM method"),
    "datasets": ("colocam_register_datasets", "dataset"),
    "metrics": ("colocam_register_metrics", "metric"),
    "commands": ("colocam_register_commands", "command"),
    "heads": ("colocam_register_heads", "head"),
    "losses": ("colocam_register_losses", "loss"),
    "samplers": ("colocam_register_samplers", "sampler"),
}

_cache: Registries | None = None


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry[Any]) -> None:
    """Call one registration hook plugin by plugin, so errors name the plugin."""
    hook = getattr(pm.hook, hook_name)
    # get_hookimpls() is in registration order (pluggy *calls* them in
    # reverse): built-ins first, so a third-party duplicate is the one reported.
    for impl in hook.get_hookimpls():
        registry.current_plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            impl.function(**{a: registry for a in impl.argnames})
        finally:
            registry.current_plugin = None


def build_registries(pm: pluggy.PluginManager) -> Registries:
    """Fill fresh registries by calling every registration hook of ``pm``."""
    regs: dict[str, Registry[Any]] = {}
    for field_name, (hook_name, kind) in _HOOKS.items():
        regs[field_name] = Registry(kind)
        _fill(pm, hook_name, regs[field_name])
    return Registries(pm=pm, **regs)


def get_registries() -> Registries:
    """The process-wide registries (built on first use)."""
    global _cache
    if _cache is None:
        from colocam_plugin.plugins import get_plugin_manager

        _cache = build_registries(get_plugin_manager())
    return _cache


def reset_registries() -> None:
    """Forget the cached registries; the next call rebuilds them."""
    global _cache
    _cache = None


def list_cam_methods(pattern: str | None = None) -> list[str]:
    """Names of the registered CAM methods, filtered by a shell pattern (``"grad*"``)."""
    return get_registries().cam_methods.names(pattern)


def create_cam_method(name: str, /, **kwargs: Any) -> Any:
    """Create the CAM method ``name`` (see :mod:`colocam_plugin.cam.base`)."""
    return get_registries().cam_methods.create(name, **kwargs)


def list_datasets(pattern: str | None = None) -> list[str]:
    """Names of the registered datasets."""
    return get_registries().datasets.names(pattern)


def create_dataset(name: str, /, root: Any, split: str, **kwargs: Any) -> Any:
    """Read split ``split`` of dataset ``name`` under ``root`` (a VideoDataset)."""
    return get_registries().datasets.get(name)(root, split, **kwargs)
