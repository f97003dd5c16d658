"""Plugin manager: built-ins, entry points (faked and real), autoload, block list,
registries filled through pm.hook (wrappers, tracing), failing plugins skipped."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
import types
import warnings

import pytest

from colocam_plugin import hookimpl
from colocam_plugin.api import _HOOKS, build_registries, get_registries
from colocam_plugin.plugins import BUILTIN_PLUGINS, PluginWarning, get_plugin_manager


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


def _entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group="colocam")


@pytest.fixture
def fake_distributions(monkeypatch):
    """``install(*dists)``: these fake distributions are all that is installed."""
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("COLOCAM_BLOCK_PLUGINS", raising=False)

    def install(*dists: _FakeDist) -> None:
        monkeypatch.setattr(importlib.metadata, "distributions", lambda **kw: iter(dists))

    return install


@pytest.fixture
def fake_entry_point(monkeypatch, fake_distributions):
    """Install a fake distribution exposing one `colocam` entry point."""
    mod = _fake_plugin_module("fake_colocam_ext", "fakecam")
    monkeypatch.setitem(sys.modules, "fake_colocam_ext", mod)
    fake_distributions(_FakeDist("colocam-fake-ext", [_entry_point("fakeext", "fake_colocam_ext")]))
    return mod


def _messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, PluginWarning)]


def test_builtins_registered_through_hooks():
    pm = get_plugin_manager(autoload=False)
    assert {pm.get_name(p) for p in pm.get_plugins()} == set(BUILTIN_PLUGINS)
    regs = build_registries(pm)
    assert "synthyto" in regs.datasets
    assert {"methods", "plugins", "score"} <= set(regs.commands.names())


def test_entry_point_plugin_is_loaded(fake_entry_point):
    regs = get_registries()
    assert "fakecam" in regs.cam_methods
    assert regs.cam_methods.entry("fakecam").plugin == "fakeext"
    assert regs.cam_methods.create("fakecam", k=1) == ("fake", {"k": 1})


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_autoload_off(fake_entry_point, monkeypatch, value):
    monkeypatch.setenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", value)
    assert "fakecam" not in get_registries().cam_methods


def test_block_list_reports_unknown_names(fake_entry_point, monkeypatch):
    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "other, fakeext, typo")
    with pytest.warns(PluginWarning) as record:
        regs = get_registries()
    assert "fakecam" not in regs.cam_methods
    assert regs.pm.is_blocked("fakeext")
    assert _messages(record) == [
        "COLOCAM_BLOCK_PLUGINS names unknown plugins: other, typo; known plugins: "
        "colocam_plugin.builtin.components, colocam_plugin.cli.commands, fakeext"
    ]


def test_block_list_of_known_names_is_quiet(fake_entry_point, monkeypatch, recwarn):
    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "fakeext")
    assert "fakecam" not in get_registries().cam_methods
    assert _messages(recwarn) == []


def test_blocking_a_builtin(monkeypatch):
    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "colocam_plugin.builtin.components")
    pm = get_plugin_manager(autoload=False)
    assert "synthyto" not in build_registries(pm).datasets


# -- registries are filled through pm.hook: wrappers, tracing ------------------------------


class _Wrapper:
    """A third-party hook wrapper: sees what the others registered, adds one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def colocam_register_cam_methods(self, registry):
        result = yield  # every other plugin registers here
        self.seen = registry.names()
        registry.add("wrapped", dict, help="added by a wrapper")
        return result


def test_wrapper_sees_builtins_and_adds_one():
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("fake_ext", "fakecam"), name="fake_ext")
    wrapper = _Wrapper()
    pm.register(wrapper, name="wrapper")
    regs = build_registries(pm)
    assert {"localizer", "fakecam"} <= set(wrapper.seen)
    assert "wrapped" not in wrapper.seen
    assert regs.cam_methods.entry("wrapped").plugin == "wrapper"
    assert regs.cam_methods.entry("fakecam").plugin == "fake_ext"
    assert regs.cam_methods.entry("localizer").plugin == "colocam_plugin.builtin.components"


def test_tracing_records_every_registration_call():
    pm = get_plugin_manager(autoload=False)
    lines: list[str] = []
    pm.trace.root.setwriter(lines.append)
    undo = pm.enable_tracing()
    try:
        build_registries(pm)
    finally:
        undo()
    trace = [ln.strip() for ln in "".join(lines).splitlines()]
    for hook_name, kind in _HOOKS.values():
        at = trace.index(f"{hook_name} [hook]")
        assert trace[at + 1].startswith(f"registry: Registry({kind!r}")
        assert f"finish {hook_name} --> [] [hook]" in trace[at:]


def test_hookimpls_are_left_as_they_were():
    pm = get_plugin_manager(autoload=False)
    pm.register(_Wrapper(), name="wrapper")
    before = {
        h: [i.function for i in getattr(pm.hook, h).get_hookimpls()] for h, _ in _HOOKS.values()
    }
    build_registries(pm)
    after = {
        h: [i.function for i in getattr(pm.hook, h).get_hookimpls()] for h, _ in _HOOKS.values()
    }
    assert after == before


# -- a failing plugin is named, skipped; the others keep working ----------------------------


def test_duplicate_from_plugin_names_it_and_skips_it():
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("a_ext", "dup"), name="a_ext")
    pm.register(_fake_plugin_module("b_ext", "dup"), name="b_ext")
    # pluggy calls the plugin registered last first: b_ext takes 'dup', a_ext is refused
    with pytest.warns(PluginWarning) as record:
        regs = build_registries(pm)
    assert _messages(record) == [
        "plugin 'a_ext' failed to run colocam_register_cam_methods and is skipped: "
        "DuplicateNameError: CAM method 'dup' registered twice by a_ext; first registered by b_ext"
    ]
    assert regs.cam_methods.entry("dup").plugin == "b_ext"
    assert pm.is_blocked("a_ext") and not pm.is_blocked("b_ext")
    assert "localizer" in regs.cam_methods and "synthyto" in regs.datasets


def test_plugin_cannot_take_a_builtin_name():
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("greedy", "localizer"), name="greedy")
    with pytest.warns(
        PluginWarning,
        match="'localizer' registered twice by greedy; first "
        "registered by colocam_plugin.builtin.components",
    ):
        regs = build_registries(pm)
    assert regs.cam_methods.entry("localizer").plugin == "colocam_plugin.builtin.components"


def test_skipping_a_plugin_is_an_error_under_strict_warnings():
    """``-W error::colocam_plugin.plugins.PluginWarning``: CI of a plugin fails loudly."""
    pm = get_plugin_manager(autoload=False)
    pm.register(_fake_plugin_module("a_ext", "dup"), name="a_ext")
    pm.register(_fake_plugin_module("b_ext", "dup"), name="b_ext")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)  # strict: a skipped plugin is an error
        with pytest.raises(
            PluginWarning, match="registered twice by a_ext; first registered by b_ext"
        ):
            build_registries(pm)


def _raising_module(name: str, hook: str, exc: Exception) -> types.ModuleType:
    mod = types.ModuleType(name)

    def impl(registry):
        raise exc

    setattr(mod, hook, hookimpl(impl))
    return mod


def test_wrapper_raising_after_yield_is_skipped():
    class Bad:
        @hookimpl(wrapper=True)
        def colocam_register_datasets(self, registry):
            yield
            raise RuntimeError("boom\nsecond line")

    pm = get_plugin_manager(autoload=False)
    pm.register(Bad(), name="bad_wrapper")
    with pytest.warns(PluginWarning) as record:
        regs = build_registries(pm)
    assert _messages(record) == [
        "plugin 'bad_wrapper' failed to run colocam_register_datasets and is skipped: "
        "RuntimeError: boom"
    ]
    assert "synthyto" in regs.datasets


def test_error_passing_through_a_wrapper_names_its_source():
    pm = get_plugin_manager(autoload=False)
    wrapper = _Wrapper()
    pm.register(wrapper, name="wrapper")
    pm.register(
        _raising_module("buggy", "colocam_register_cam_methods", KeyError("x")), name="buggy"
    )
    with pytest.warns(PluginWarning, match="plugin 'buggy' failed .* KeyError: 'x'"):
        regs = build_registries(pm)
    assert "wrapped" in regs.cam_methods and "localizer" in wrapper.seen


def test_registration_failure_names_the_distribution(fake_distributions, monkeypatch):
    mod = _raising_module("raising_ext", "colocam_register_metrics", ValueError("bad metric"))
    monkeypatch.setitem(sys.modules, "raising_ext", mod)
    fake_distributions(_FakeDist("colocam-raising", [_entry_point("raising", "raising_ext")]))
    with pytest.warns(PluginWarning) as record:
        regs = get_registries()
    assert _messages(record) == [
        "plugin 'raising' (distribution colocam-raising 9.9) failed to run "
        "colocam_register_metrics and is skipped: ValueError: bad metric"
    ]
    assert "boxes" in regs.metrics


def test_broken_entry_points_are_reported_once_and_others_load(
    fake_distributions, monkeypatch, tmp_path
):
    (tmp_path / "exploding_ext.py").write_text("raise RuntimeError('kaboom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "fake_colocam_ext", _fake_plugin_module("f", "fakecam"))
    fake_distributions(
        _FakeDist("colocam-missing", [_entry_point("missing", "no_such_module_xyz")]),
        _FakeDist("colocam-exploding", [_entry_point("exploding", "exploding_ext")]),
        _FakeDist("colocam-fake-ext", [_entry_point("fakeext", "fake_colocam_ext")]),
    )
    with pytest.warns(PluginWarning) as record:
        regs = get_registries()
        get_registries()  # cached: no second report
    assert _messages(record) == [
        "plugin 'missing' (entry point missing = no_such_module_xyz, distribution "
        "colocam-missing 9.9) failed to load and is skipped: ModuleNotFoundError: "
        "No module named 'no_such_module_xyz'",
        "plugin 'exploding' (entry point exploding = exploding_ext, distribution "
        "colocam-exploding 9.9) failed to load and is skipped: RuntimeError: kaboom at import",
    ]
    assert "fakecam" in regs.cam_methods
    assert regs.pm.is_blocked("missing") and regs.pm.is_blocked("exploding")


def _bad_hook_module(kind: str) -> types.ModuleType:
    mod = types.ModuleType(f"{kind}_ext")
    if kind == "typo":

        @hookimpl
        def colocam_register_cam_method(registry):  # missing "s": not a hook
            pass

        mod.colocam_register_cam_method = colocam_register_cam_method  # type: ignore[attr-defined]
    else:

        @hookimpl
        def colocam_register_cam_methods(registry, extra):  # not an argument of the spec
            pass

        mod.colocam_register_cam_methods = colocam_register_cam_methods  # type: ignore[attr-defined]
    return mod


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("typo", "PluginValidationError: unknown hook 'colocam_register_cam_method'"),
        (
            "badargs",
            "PluginValidationError: Plugin 'badargs' for hook 'colocam_register_cam_methods'",
        ),
    ],
)
def test_invalid_hookimpl_is_reported_and_skipped(fake_distributions, monkeypatch, kind, error):
    monkeypatch.setitem(sys.modules, f"{kind}_ext", _bad_hook_module(kind))
    fake_distributions(_FakeDist(f"colocam-{kind}", [_entry_point(kind, f"{kind}_ext")]))
    with pytest.warns(PluginWarning) as record:
        pm = get_plugin_manager()
    [message] = _messages(record)
    assert message.startswith(f"plugin '{kind}' (entry point {kind} = {kind}_ext, distribution")
    assert f"failed to load and is skipped: {error}" in message
    assert "\n" not in message
    assert pm.is_blocked(kind)
    pm.check_pending()  # nothing of the bad plugin is left
    assert "synthyto" in build_registries(pm).datasets


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
