"""Front door: registries filled by the plugins, and ``create_*`` helpers.

Each registry is filled by one call of its hook,
``pm.hook.colocam_register_<kind>(registry=...)``: a hook wrapper
(``@hookimpl(wrapper=True)``) sees what the other plugins registered and may
add to it, and ``pm.enable_tracing()`` records the call. A third-party
plugin whose hook raises (a duplicate name, a bug) is reported with a
:class:`~colocam_plugin.plugins.PluginWarning` naming it, blocked, and the
registries are filled again without it.

The registries are built once per process from :func:`get_plugin_manager`
and cached; :func:`reset_registries` drops the cache (tests, or after
changing ``COLOCAM_*`` environment variables).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from colocam_plugin.plugins import BUILTIN_PLUGINS, warn_plugin_failure
from colocam_plugin.registry import Registry

if TYPE_CHECKING:
    import argparse

    from torch import nn

    from colocam_plugin.cam.base import CAMMethod
    from colocam_plugin.data.records import VideoDataset

    #: what a command factory returns: ``run(args) -> exit code``
    CommandRun = Callable[[argparse.Namespace], int]

__all__ = [
    "Registries",
    "build_registries",
    "create_cam_method",
    "create_dataset",
    "get_registries",
    "list_cam_methods",
    "list_datasets",
    "reset_registries",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Registries:
    """Every registry of the harness, filled by one plugin manager.

    Each registry is typed by what its factories return (see
    :mod:`colocam_plugin.hookspecs`).
    """

    pm: pluggy.PluginManager
    cam_methods: Registry[CAMMethod]
    datasets: Registry[VideoDataset]
    #: accumulators with ``update``, ``merge``, ``compute`` (no common base class)
    metrics: Registry[Any]
    #: ``factory(parser)`` returns ``run(args) -> exit code``
    commands: Registry[CommandRun]
    heads: Registry[nn.Module]
    losses: Registry[nn.Module]
    #: iterables of ``(shot_index, frame_indices)`` with ``set_epoch`` (no common base class)
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


class _PluginFailed(Exception):
    """A (non built-in) plugin's registration hook raised ``error``."""

    def __init__(self, plugin: str, hook_name: str, error: Exception) -> None:
        super().__init__(plugin, hook_name, error)
        self.plugin, self.hook_name, self.error = plugin, hook_name, error


class _Attribution:
    """Who registers what during one hook call (a context manager).

    pluggy calls every implementation within one ``hook(...)`` call and has no
    per-implementation callback. So, for the duration of the call only, each
    implementation's function is swapped for one that sets
    ``registry.current_plugin`` around it (and around each step of a hook
    wrapper's generator), so that entries and duplicate errors name their
    plugin, and that notes which plugin raised an exception.
    """

    def __init__(self, hook: pluggy.HookCaller, registry: Registry[Any]) -> None:
        self.registry = registry
        self.saved = [(impl, impl.function) for impl in hook.get_hookimpls()]
        self.raised: dict[int, tuple[BaseException, str]] = {}

    def __enter__(self) -> _Attribution:
        for impl, function in self.saved:
            wrapper = bool(impl.wrapper or impl.hookwrapper)
            impl.function = self._as(impl.plugin_name, function, wrapper)  # type: ignore[misc]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for impl, function in self.saved:
            impl.function = function  # type: ignore[misc]

    def culprit(self, exc: BaseException) -> str | None:
        """The plugin whose implementation raised ``exc``, if one did."""
        found = self.raised.get(id(exc))
        return found[1] if found is not None and found[0] is exc else None

    def _step(self, plugin: str, step: Callable[[], T], passing: BaseException | None = None) -> T:
        """``step()`` as ``plugin``; a new exception (not ``passing``) is noted as its."""
        outer = self.registry.current_plugin
        self.registry.current_plugin = plugin
        try:
            return step()
        except Exception as exc:
            if exc is not passing and not isinstance(exc, StopIteration):
                self.raised.setdefault(id(exc), (exc, plugin))
            raise
        finally:
            self.registry.current_plugin = outer

    def _as(self, plugin: str, function: Callable[..., Any], wrapper: bool) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._step(plugin, functools.partial(function, *args, **kwargs))
            return self._resume(plugin, result) if wrapper else result

        return call

    def _resume(self, plugin: str, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
        """Drive a hook wrapper's generator as pluggy would, each step as ``plugin``."""
        value: Any = None
        error: BaseException | None = None
        while True:
            step = (
                functools.partial(gen.send, value)
                if error is None
                else functools.partial(gen.throw, error)
            )
            try:
                out = self._step(plugin, step, passing=error)
            except StopIteration as stop:
                return stop.value
            try:
                value, error = (yield out), None
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                value, error = None, exc


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry[Any]) -> None:
    """One ``pm.hook.<hook_name>(registry=registry)`` call; name the plugin that fails."""
    hook = getattr(pm.hook, hook_name)
    with _Attribution(hook, registry) as who:
        try:
            hook(registry=registry)
        except Exception as exc:
            plugin = who.culprit(exc)
            if plugin is None or plugin in BUILTIN_PLUGINS or pm.get_plugin(plugin) is None:
                raise  # a built-in's error is a bug: let it surface
            raise _PluginFailed(plugin, hook_name, exc) from exc


def _build(pm: pluggy.PluginManager) -> Registries:
    regs: dict[str, Registry[Any]] = {}
    for field_name, (hook_name, kind) in _HOOKS.items():
        regs[field_name] = Registry(kind)
        _fill(pm, hook_name, regs[field_name])
    return Registries(pm=pm, **regs)


def build_registries(pm: pluggy.PluginManager) -> Registries:
    """Fill fresh registries by calling every registration hook of ``pm``.

    A third-party plugin whose hook raises is reported
    (:class:`~colocam_plugin.plugins.PluginWarning`, naming the plugin, its
    distribution and the error) and blocked in ``pm``; the registries are
    then filled again without it. A built-in plugin that raises is a bug:
    the error propagates.
    """
    while True:
        try:
            return _build(pm)
        except _PluginFailed as failed:
            warn_plugin_failure(pm, failed.plugin, f"run {failed.hook_name}", failed.error)
            pm.set_blocked(failed.plugin)


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
    """Create the CAM method ``name`` (see :mod:`colocam_plugin.cam.base`).

    Typed ``Any``, not ``CAMMethod``: a method may offer more than the
    protocol (the ``localizer`` method's ``classes``), which callers use.
    """
    return get_registries().cam_methods.create(name, **kwargs)


def list_datasets(pattern: str | None = None) -> list[str]:
    """Names of the registered datasets."""
    return get_registries().datasets.names(pattern)


def create_dataset(name: str, /, root: Any, split: str, **kwargs: Any) -> VideoDataset:
    """Read split ``split`` of dataset ``name`` under ``root`` (a VideoDataset)."""
    return get_registries().datasets.get(name)(root, split, **kwargs)
