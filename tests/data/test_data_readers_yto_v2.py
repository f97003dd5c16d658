"""Tests of the YouTube-Objects v2.2 reader on tiny trees with the real defects."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from colocam_plugin.data.info import dataset_info
from colocam_plugin.data.testing import write_yto_v2_tree
from colocam_plugin.data.yto_v2 import YTO_CLASSES, load_yto_v2, read_gt_boxes, read_ranges
from colocam_plugin.errors import DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("yto2")
    return root, write_yto_v2_tree(root)


@pytest.fixture()
def fresh(tmp_path: Path) -> Path:
    write_yto_v2_tree(tmp_path)
    return tmp_path


@pytest.mark.parametrize("split", SPLITS)
def test_exact_counts_stats_and_ids(tree: tuple[Path, dict[str, Any]], split: str) -> None:
    root, expected = tree
    ds = load_yto_v2(root, split)
    info = dataset_info(ds)
    got = {k: info[k] for k in ("videos", "shots", "frames", "boxes")}
    got["shot_frames"] = sum(len(s) for s in ds.shots)
    assert got == expected[split]
    assert [s.shot_id for s in ds.shots] == expected["shot_ids"][split]
    for key, value in expected["stats"][split].items():
        assert ds.stats[key] == value, key
    assert ds.name == "yto-v2.2" and ds.classes == list(YTO_CLASSES)


@pytest.mark.parametrize("split", ["val", "test"])
def test_exact_repaired_boxes(tree: tuple[Path, dict[str, Any]], split: str) -> None:
    root, expected = tree
    ds = load_yto_v2(root, split)
    got = {f.path.relative_to(root).as_posix(): f.boxes.tolist() for f in ds.frames}
    assert got == {k: v for k, v in expected["boxes"].items() if k in got}
    assert len(got) == expected[split]["frames"]
    assert {f.label for f in ds.frames} == {4, 7}


def test_shared_boundary_frame_counted_once(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    ds = load_yto_v2(root, "train", classes=["horse"])
    names = {s.shot_id: [f.path.name for f in s.frames] for s in ds.shots}
    assert names == {
        "horse/0001/001": ["00000001.jpg", "00000002.jpg", "00000003.jpg"],
        "horse/0001/002": ["00000004.jpg", "00000005.jpg"],
    }
    paths = [f.path for f in ds.frames]
    assert len(paths) == len(set(paths)) == 5
    assert ds.stats["shared_boundary_frames"] == 1


def test_video_split_membership(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    train = set(load_yto_v2(root, "train").videos)
    test = set(load_yto_v2(root, "test").videos)
    assert train == {"cat/0001", "horse/0001"} and test == {"cat/0002", "horse/0002"}
    val = load_yto_v2(root, "val")
    assert set(val.videos) <= train
    assert all(f.path.name != "00000008.jpg" for f in val.frames)  # box of a test video


def test_one_log_line(tree: tuple[Path, dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    root, _ = tree
    with caplog.at_level(logging.INFO, logger="colocam_plugin.data"):
        load_yto_v2(root, "val")
    records = [r for r in caplog.records if r.name == "colocam_plugin.data"]
    assert len(records) == 1 and "shared_boundary_frames=1" in records[0].getMessage()


def test_gt_struct_as_cell_of_structs(tmp_path: Path) -> None:
    path = tmp_path / "bb_gtTest_cat.mat"
    scipy.io.savemat(
        str(path),
        {"bb_gtTest": [{"id": "cat00000012", "bb": np.array([[1.0, 2, 3, 4]])},
                       {"id": "cat00000012", "bb": np.array([[5.0, 6, 7, 8]])}]},
    )  # fmt: skip
    got = read_gt_boxes(path, "cat")
    assert list(got) == [12]
    np.testing.assert_array_equal(got[12], [[1, 2, 3, 4], [5, 6, 7, 8]])


# ----------------------------------------------------------------------------- bad trees


def _error(root: Path, split: str, **kw: Any) -> str:
    with pytest.raises(DataError) as err:
        load_yto_v2(root, split, **kw)
    msg = str(err.value)
    assert "\n" not in msg and err.value.__cause__ is None
    return msg


def test_missing_ranges_and_gt_files(fresh: Path) -> None:
    ranges = fresh / "Ranges" / "ranges_horse.mat"
    ranges.unlink()
    assert _error(fresh, "train") == f"{ranges}: file not found"
    gt = fresh / "GroundTruth" / "cat" / "bb_gtTraining_cat.mat"
    gt.unlink()
    assert _error(fresh, "val", classes=["cat"]) == f"{gt}: file not found"
    assert len(load_yto_v2(fresh, "test", classes=["cat"]).frames) == 1


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (np.zeros((2, 4)), "expected 3 x n_shots, got shape (2, 4)"),
        (np.array([[5.0], [2.0], [1.0]]), "ranges column 1: start frame 5 > end frame 2"),
        (np.array([[1.5], [2.0], [1.0]]), "ranges column 1: expected non-negative integers"),
    ],
)
def test_bad_ranges(fresh: Path, value: np.ndarray, needle: str) -> None:
    path = fresh / "Ranges" / "ranges_cat.mat"
    scipy.io.savemat(str(path), {"ranges": value})
    msg = _error(fresh, "train")
    assert msg.startswith(f"{path}: ") and needle in msg


def test_ranges_either_orientation(tmp_path: Path) -> None:
    path = tmp_path / "r.mat"
    cols = [(1, 3, 1), (4, 9, 1), (10, 12, 2), (13, 13, 5)]
    scipy.io.savemat(str(path), {"ranges": np.array(cols, dtype=float)})
    assert read_ranges(path) == cols
    scipy.io.savemat(str(path), {"ranges": np.array(cols, dtype=float).T})
    assert read_ranges(path) == cols


def test_garbage_and_truncated_mat(fresh: Path) -> None:
    path = fresh / "GroundTruth" / "horse" / "bb_gtTest_horse.mat"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert _error(fresh, "test").startswith(f"{path}: ")
    path.write_bytes(b"garbage" * 30)
    assert _error(fresh, "test").startswith(f"{path}: not a readable MATLAB file")


@pytest.mark.parametrize(
    ("variables", "needle"),
    [
        ({"bb_gtTest": np.zeros((1, 4))}, "expected a struct array with fields id and bb"),
        ({"bb_gtTest": [{"name": "cat00000007", "bb": np.zeros((1, 4))}]}, "fields id and bb"),
        ({"bb_gtTest": [{"id": "dog00000007", "bb": np.zeros((1, 4))}]},
         "entry 1: id 'dog00000007' is not 'cat' + a frame number"),
        ({"bb_gtTest": [{"id": "cat00000007", "bb": np.zeros((1, 3))}]},
         "entry 1 (cat00000007): field bb"),
        ({"a": np.zeros(1), "b": np.zeros(1)}, "no variable 'bb_gtTest' (variables: a, b)"),
    ],
)  # fmt: skip
def test_malformed_gt(fresh: Path, variables: dict[str, Any], needle: str) -> None:
    path = fresh / "GroundTruth" / "cat" / "bb_gtTest_cat.mat"
    scipy.io.savemat(str(path), variables)
    msg = _error(fresh, "test")
    assert msg.startswith(f"{path}: ") and needle in msg


def test_missing_annotated_frame(fresh: Path) -> None:
    frame = fresh / "cat" / "00000007.jpg"
    frame.unlink()
    msg = _error(fresh, "test")
    assert msg.startswith(f"{frame}: annotated frame not found")
    assert "bb_gtTest_cat.mat" in msg
    ds = load_yto_v2(fresh, "test", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1 and [f.path.name for f in ds.frames] == [
        "00000006.jpg"
    ]


def test_corrupt_jpeg(fresh: Path) -> None:
    frame = fresh / "horse" / "00000002.jpg"
    frame.write_bytes(b"garbage")
    assert _error(fresh, "train").startswith(f"{frame}: not a readable image")
    ds = load_yto_v2(fresh, "train", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1 and len(ds.frames) == 9
