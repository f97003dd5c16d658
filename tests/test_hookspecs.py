"""Meta-tests: every hook is documented, tested, and follows the naming rules."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from colocam_plugin import hookspecs
from colocam_plugin.api import _HOOKS, build_registries
from colocam_plugin.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name for name, fn in vars(hookspecs).items() if name.startswith("colocam_") and callable(fn)
)


def test_hooks_found():
    assert len(HOOKS) == 7


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_docstring_and_registry_argument(hook):
    fn = getattr(hookspecs, hook)
    assert (fn.__doc__ or "").strip(), f"{hook} has no docstring"
    assert list(inspect.signature(fn).parameters) == ["registry"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert f"### `{hook}`" in (ROOT / "docs" / "plugins.md").read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_wired_to_a_registry_and_used_by_builtins(hook):
    assert hook in {h for h, _ in _HOOKS.values()}
    pm = get_plugin_manager(autoload=False)
    assert getattr(pm.hook, hook).get_hookimpls(), f"no built-in implements {hook}"


def test_every_builtin_registry_is_non_empty():
    regs = build_registries(get_plugin_manager(autoload=False))
    for field in _HOOKS:
        assert len(getattr(regs, field)) > 0, field
