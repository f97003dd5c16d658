"""The adapter is a pluggy plugin of the ``colocam`` project, found by entry point."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import subprocess
import sys

import pluggy
import pytest
from colocam_gradcam import plugin

import colocam_plugin
from colocam_plugin import hookspecs
from colocam_plugin.registry import Registry

EXPECTED = {
    "cam",
    "gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "hirescam",
    "eigencam",
    "scorecam",
}


def test_hookimpl_is_valid_for_the_colocam_project():
    pm = pluggy.PluginManager("colocam")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="gradcam")
    pm.check_pending()
    reg = Registry("CAM method")
    pm.hook.colocam_register_cam_methods(registry=reg)
    assert set(reg.names()) == EXPECTED
    assert all("https://" in reg.entry(name).help for name in reg)  # paper link


@pytest.mark.parametrize("method", plugin.METHODS, ids=lambda m: m.name)
def test_method_table_matches_the_classes(method):
    """The table names each class without importing it: keep it true to the class."""
    cls = method.load()
    assert cls.name == method.name
    assert method.help == (cls.__doc__ or "").strip().splitlines()[0]
    reg = Registry("CAM method")
    plugin.colocam_register_cam_methods(reg)
    assert type(reg.create(method.name)) is cls  # the registered factory makes that class


def test_factory_checks_keyword_arguments():
    reg = Registry("CAM method")
    plugin.colocam_register_cam_methods(reg)
    with pytest.raises(TypeError, match="CAM method 'gradcam' got unknown keyword argument"):
        reg.create("gradcam", batch_size=8)


def test_loading_the_plugin_imports_no_torch():
    code = (
        "import sys, colocam_gradcam, colocam_gradcam.plugin\n"
        "print(sorted(m for m in ('torch', 'pytorch_grad_cam', 'scipy', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_package_names_are_imported_on_first_access():
    import colocam_gradcam
    from colocam_gradcam.gradcam import GradCAM

    assert colocam_gradcam.GradCAM is GradCAM
    assert set(colocam_gradcam.__all__) <= set(dir(colocam_gradcam))
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        colocam_gradcam.Nope  # noqa: B018


def test_core_package_does_not_import_the_adapter():
    root = pathlib.Path(colocam_plugin.__file__).parent
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if re.search(r"^\s*(from|import)\s+colocam_gradcam", path.read_text(), re.M)
    ]
    assert offenders == []



def test_entry_point_is_discovered(monkeypatch):
    eps = importlib.metadata.entry_points(group="colocam")
    assert {ep.name: ep.value for ep in eps}.get("gradcam") == "colocam_gradcam.plugin"
    monkeypatch.delenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("COLOCAM_BLOCK_PLUGINS", raising=False)
    assert EXPECTED <= set(colocam_plugin.list_cam_methods())
    assert colocam_plugin.list_cam_methods("grad*") == ["gradcam", "gradcampp"]
    method = colocam_plugin.create_cam_method("scorecam", batch_size=8)
    assert method.name == "scorecam" and method.batch_size == 8


def test_block_list_and_autoload_switch(monkeypatch):
    from colocam_plugin.api import reset_registries

    monkeypatch.setenv("COLOCAM_BLOCK_PLUGINS", "gradcam")
    assert "gradcam" not in colocam_plugin.list_cam_methods()
    reset_registries()
    monkeypatch.delenv("COLOCAM_BLOCK_PLUGINS")
    monkeypatch.setenv("COLOCAM_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "scorecam" not in colocam_plugin.list_cam_methods()
