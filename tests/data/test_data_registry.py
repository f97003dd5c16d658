"""Every registered built-in dataset loads through the registry (create_dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from colocam_plugin.api import create_dataset, list_datasets
from colocam_plugin.data import testing
from colocam_plugin.data.info import dataset_info
from colocam_plugin.data.realyto import RealYTOConfig
from colocam_plugin.data.synthyto import SynthYTOConfig


def _yto_v1(tmp: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    return tmp, testing.write_yto_v1_tree(tmp), {}


def _yto_v2(tmp: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    return tmp, testing.write_yto_v2_tree(tmp), {}


def _wsol(tmp: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    testing.write_yto_v1_tree(tmp / "frames")
    expected = testing.write_wsol_metadata(tmp / "meta")
    return tmp / "frames", expected, {"metadata_root": tmp / "meta"}


def _frames(tmp: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    return tmp, testing.write_frames_tree(tmp), {}


BUILDERS = {"yto-v1.0": _yto_v1, "yto-v2.2": _yto_v2, "wsol-splits": _wsol, "frames": _frames}


def test_every_builtin_dataset_has_a_test():
    assert set(BUILDERS) | {"synthyto", "realyto", "videos"} == set(list_datasets())


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_registry_loads_tree(name, tmp_path):
    root, expected, kw = BUILDERS[name](tmp_path)
    ds = create_dataset(name, root, "train", **kw)
    assert ds.name == name and ds.split == "train"
    want = expected["train"]
    info = dataset_info(ds)
    assert (info["videos"], info["shots"], info["frames"]) == (
        want["videos"],
        want["shots"],
        want["frames"],
    )


def test_registry_generates_and_reads_synthyto(tmp_path):
    knobs = SynthYTOConfig.tiny().to_dict()
    test = create_dataset("synthyto", tmp_path / "s", "test", **knobs)
    assert test.name == "synthyto" and test.frames
    assert all(len(f.boxes) > 0 and f.mask_path is not None for f in test.frames)
    again = create_dataset("synthyto", tmp_path / "s", "test", **knobs)  # cached tree
    assert [f.path for f in again.frames] == [f.path for f in test.frames]


def test_registry_generates_and_reads_realyto(tmp_path):
    knobs = RealYTOConfig.tiny().to_dict()
    test = create_dataset("realyto", tmp_path / "r", "test", **knobs)
    assert test.name == "realyto" and test.frames
    assert all(len(f.boxes) > 0 and f.mask_path is not None for f in test.frames)
