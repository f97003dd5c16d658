"""Plugin manager: built-ins, entry points (faked and real), autoload, block list."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import types

import pluggy
import pytest

from colocam_plugin import hookimpl
from colocam_plugin.api import build_registries, get_registries
from colocam_plugin.errors import DuplicateNameError
from colocam_plugin.plugins import BUILTIN_PLUGINS, get_plugin_manager


class _FakeDist:
    """Enough of importlib.metadata.Distribution for pluggy's loader."""

    def __init__(self, name: str, entry_points: list[importlib.metadata.EntryPoint]):
        self.metadata = {"name": name}
        self.entry_points = entry_points
        self.version = "9.9"

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def _normalized_name(self) -> str:
        return self.name


def _fake_plugin_module(name: str, method: str) -> types.ModuleType:
    mod = types.ModuleType(name)

    @hookimpl
    def colocam_register_cam_methods(registry):
        registry.add(method, lambda **kw: ("fake", kw))

    mod.colocam_register_cam_methods = colocam_register_cam_methods  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def fake_entry_point(monkeypatch):
    """Install a fake distribution exposing one `colocam` entry point."""
    mod = _fake_plugin_module("fake_colocam_ext", "fakecam")
    monkeypatch.setitem(sys.modules, "fake_colocam_ext", mod)
    ep = importlib.metadata.EntryPoint(name="fakeext", value="fake_colocam_ext", group="colocam")
    dist = _FakeDist("colocam-fake-ext", [ep])
    monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter([dist]))
    return mod


def test_builtins_registered_through_hooks():
    pm = get_plugin_manager(autoload=False)
    assert {pm.get_name(p) for p in pm.get_plugins()} == set(BUILTIN_PLUGINS)
    regs = build_registries(pm)
    assert "synthyto" in regs.datasets
    assert {"methods", "plugins", "score"} <= set(regs.commands.names())


def test_entry_point_plugin_is_loaded(fake_entry_point, monkeypatch):
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    regs = get_registries()
    assert "fakecam" in regs.cam_methods
    assert regs.cam_methods.entry("fakecam").plugin == "fakeext"
    assert regs.cam_methods.create("fakecam", k=1) == ("fake", {"k": 1})


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_autoload_off(fake_entry_point, monkeypatch, value):
    monkeypatch.setenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", value)
    assert "fakecam" not in get_registries().cam_methods


def test_block_list(fake_entry_point, monkeypatch):
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "other, fakeext")
    regs = get_registries()
    assert "fakecam" not in regs.cam_methods
    assert regs.pm.is_blocked("fakeext")


def test_blocking_a_builtin(monkeypatch):
    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "colocam_plugin.builtin.components")
    pm = get_plugin_manager(autoload=False)
    assert "synthyto" not in build_registries(pm).datasets


def test_duplicate_from_plugin_names_it():
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("a_ext", "dup"), name="a_ext")
    pm.register(_fake_plugin_module("b_ext", "dup"), name="b_ext")
    with pytest.raises(
        DuplicateNameError, match="'dup' registered twice by b_ext; first registered by a_ext"
    ):
        build_registries(pm)


def test_check_pending_rejects_unknown_hook(monkeypatch):
    mod = types.ModuleType("typo_ext")

    @hookimpl
    def colocam_register_cam_method(registry):  # missing "s": not a hook
        pass

    mod.colocam_register_cam_method = colocam_register_cam_method  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "typo_ext", mod)
    ep = importlib.metadata.EntryPoint(name="typo", value="typo_ext", group="colocam")
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda **kw: iter([_FakeDist("typo", [ep])])
    )
    with pytest.raises(pluggy.PluginValidationError, match="colocam_register_cam_method"):
        get_plugin_manager(autoload=True)


def _colocam(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "colocam_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_real_plugin_package_installed(tmp_path):
    """A tiny plugin distribution, pip-installed into a folder on PYTHONPATH."""
    pkg = tmp_path / "src"
    (pkg / "tinycam_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tinycam-plugin"
        version = "0.0.1"

        [project.entry-points.colocam]
        tinycam = "tinycam_plugin"
    """)
    )
    (pkg / "tinycam_plugin" / "__init__.py").write_text(
        textwrap.dedent("""
        from colocam_plugin import hookimpl

        @hookimpl
        def colocam_register_cam_methods(registry):
            registry.add("tinycam", dict)
    """)
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(pkg),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = dict(os.environ)
    env.pop("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("COLOCAM_BLOCK_PLUGINS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))

    listed = _colocam(["methods"], env)
    assert listed.returncode == 0, listed.stderr
    assert "tinycam" in listed.stdout.splitlines()

    plugins = _colocam(["plugins"], env)
    line = next(ln for ln in plugins.stdout.splitlines() if ln.startswith("tinycam\t"))
    assert "tinycam-plugin 0.0.1" in line and "colocam_register_cam_methods" in line

    env["COLOCAM_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    off = _colocam(["methods"], env)
    assert off.returncode == 0, off.stderr
    assert "tinycam" not in off.stdout.splitlines()
