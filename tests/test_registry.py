from __future__ import annotations

import pytest

from colocam_plugin.errors import DuplicateNameError, UnknownNameError
from colocam_plugin.registry import Entry, Registry


def test_add_create_and_list():
    reg: Registry[dict] = Registry("CAM method")
    reg.add("gradcam", dict)
    reg.add("gradcampp", dict)
    reg.add("layercam", dict)
    assert reg.names() == ["gradcam", "gradcampp", "layercam"]
    assert reg.names("grad*") == ["gradcam", "gradcampp"]
    assert reg.create("layercam", a=1) == {"a": 1}
    assert "gradcam" in reg and len(reg) == 3


def test_duplicate_is_refused_and_names_first_plugin():
    reg: Registry[dict] = Registry("dataset")
    reg.current_plugin = "first"
    reg.add("yto", dict)
    reg.current_plugin = "second"
    with pytest.raises(
        DuplicateNameError, match="'yto' registered twice by second; first registered by first"
    ):
        reg.add("yto", dict)


def test_miss_lists_valid_names():
    reg: Registry[dict] = Registry("CAM method")
    reg.add("gradcam", dict)
    reg.add("layercam", dict)
    with pytest.raises(UnknownNameError) as err:
        reg.create("gradcm")
    assert str(err.value) == "Unknown CAM method 'gradcm'; registered: gradcam, layercam"
    assert isinstance(err.value, KeyError)


@pytest.mark.parametrize("name", ["", None, 3])
def test_bad_name(name):
    with pytest.raises(ValueError, match="non-empty string"):
        Registry("x").add(name, dict)  # type: ignore[arg-type]


def test_factory_must_be_callable():
    with pytest.raises(ValueError, match="factory must be callable"):
        Registry("x").add("a", 3)  # type: ignore[arg-type]


def test_entries_record_the_current_plugin():
    reg: Registry[dict] = Registry("metric")
    reg.add("a", dict)
    reg.current_plugin = "ext"
    reg.add("b", dict, help="B")
    assert reg.entry("a").plugin is None
    assert reg.entry("b") == Entry("b", dict, "ext", "B")
