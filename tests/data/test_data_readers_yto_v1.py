"""Tests of the YouTube-Objects v1.0 reader on tiny trees with the real defects."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from colocam_plugin.data.info import dataset_info
from colocam_plugin.data.records import VideoDataset
from colocam_plugin.data.testing import write_image, write_yto_v1_tree
from colocam_plugin.data.yto_v1 import YTO_CLASSES, load_yto_v1
from colocam_plugin.errors import DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("yto1")
    return root, write_yto_v1_tree(root)


@pytest.fixture()
def fresh(tmp_path: Path) -> Path:
    write_yto_v1_tree(tmp_path)
    return tmp_path


def _counts(ds: VideoDataset) -> dict[str, int]:
    info = dataset_info(ds)
    return {
        "videos": info["videos"],
        "shots": info["shots"],
        "frames": info["frames"],
        "boxes": info["boxes"],
        "shot_frames": sum(len(s) for s in ds.shots),
    }


def test_classes_constant() -> None:
    assert YTO_CLASSES == ("aeroplane", "bird", "boat", "car", "cat", "cow", "dog", "horse",
                           "motorbike", "train")  # fmt: skip


@pytest.mark.parametrize("split", SPLITS)
def test_exact_counts_and_stats(tree: tuple[Path, dict[str, Any]], split: str) -> None:
    root, expected = tree
    ds = load_yto_v1(root, split)
    assert ds.name == "yto-v1.0" and ds.split == split and ds.root == root
    assert ds.classes == list(YTO_CLASSES)
    assert _counts(ds) == expected[split]
    for key, value in expected["stats"][split].items():
        assert ds.stats[key] == value, key


@pytest.mark.parametrize("split", ["val", "test"])
def test_exact_repaired_boxes(tree: tuple[Path, dict[str, Any]], split: str) -> None:
    root, expected = tree
    ds = load_yto_v1(root, split)
    got = {f.path.relative_to(root).as_posix(): f.boxes.tolist() for f in ds.frames}
    want = {k: v for k, v in expected["boxes"].items() if k in got}
    assert got == want
    assert len(got) == expected[split]["frames"]
    for f in ds.frames:
        assert f.boxes.dtype == np.float64 and f.size == (64, 48)


def test_records_ids_labels_and_shot_membership(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    ds = load_yto_v1(root, "test")
    assert [s.shot_id for s in ds.shots] == ["cat/0003/001", "cat/0003/002", "horse/0002/055"]
    assert ds.videos == ["cat/0003", "horse/0002"]
    horse = ds.shots[2]
    assert horse.label == 7 and ds.shots[0].label == 4
    assert [f.path.name for f in horse.frames] == [
        "frame0019.jpg",
        "frame0020.jpg",
        "frame0021.jpg",
    ]
    assert [f.frame_index for f in horse.frames] == [0, 1, 2]
    # annotated frames are the very records of their shot; the others carry no boxes
    annotated = [f for f in ds.frames if f.shot_id == "horse/0002/055"]
    assert len(annotated) == 1 and annotated[0] is horse.frames[1]
    assert len(horse.frames[0].boxes) == 0 and len(horse.frames[2].boxes) == 0
    assert ds.frames[1].frame_index == 2 and ds.frames[1].video_id == "cat/0003"


def test_train_has_every_frame_and_no_boxes(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    ds = load_yto_v1(root, "train")
    assert [s.shot_id for s in ds.shots] == ["cat/0001/001", "cat/0001/003", "cat/0002/001",
                                             "horse/0001/001"]  # fmt: skip
    assert [f for s in ds.shots for f in s.frames] == ds.frames
    assert all(len(f.boxes) == 0 for f in ds.frames)
    assert "horse/0003" not in ds.videos  # listed in no sets file


def test_one_log_line(tree: tuple[Path, dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    root, _ = tree
    with caplog.at_level(logging.INFO, logger="colocam_plugin.data"):
        load_yto_v1(root, "test")
    records = [r for r in caplog.records if r.name == "colocam_plugin.data"]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert "yto-v1.0 test" in msg and "boxes_swapped=2" in msg and "boxes_clipped=1" in msg


def test_classes_argument(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    ds = load_yto_v1(root, "test", classes=["horse"])
    assert [s.shot_id for s in ds.shots] == ["horse/0002/055"]
    assert dataset_info(ds)["per_class"]["cat"] == 0
    with pytest.raises(ValueError, match="unknown classes"):
        load_yto_v1(root, "test", classes=["zebra"])
    with pytest.raises(DataError, match="dog: class folder not found"):
        load_yto_v1(root, "test", classes=["dog"])
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_yto_v1(root, "dev")


def test_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no class folder found"):
        load_yto_v1(tmp_path, "train")
    with pytest.raises(DataError, match="dataset folder not found"):
        load_yto_v1(tmp_path / "nope", "train")


# ----------------------------------------------------------------------------- bad trees


def _error(root: Path, split: str, **kw: Any) -> str:
    with pytest.raises(DataError) as err:
        load_yto_v1(root, split, **kw)
    msg = str(err.value)
    assert "\n" not in msg and err.value.__cause__ is None
    return msg


def test_missing_sets_file(fresh: Path) -> None:
    path = fresh / "cat" / "sets" / "test.txt"
    path.unlink()
    assert _error(fresh, "test") == f"{path}: file not found"
    assert len(load_yto_v1(fresh, "train").shots) == 4  # train.txt is enough for train


def test_malformed_sets_line(fresh: Path) -> None:
    path = fresh / "cat" / "sets" / "train.txt"
    path.write_text("0001\n\nvideo 2\n")
    assert _error(fresh, "train").startswith(f"{path}:3: expected a video id")


def test_unpadded_and_duplicate_ids(fresh: Path) -> None:
    (fresh / "cat" / "sets" / "train.txt").write_text("1\n0001\n2\n")
    ds = load_yto_v1(fresh, "train")
    assert ds.stats["duplicate_video_ids"] == 1
    assert ds.videos == ["cat/0001", "cat/0002", "horse/0001"]


def test_missing_video_folder(fresh: Path) -> None:
    (fresh / "cat" / "sets" / "test.txt").write_text("0003\n0009\n")
    msg = _error(fresh, "test")
    assert msg.startswith(str(fresh / "cat" / "data" / "0009" / "shots"))
    assert "test.txt:2" in msg


def test_missing_data_folder(fresh: Path) -> None:
    import shutil

    shutil.rmtree(fresh / "horse" / "data")
    assert _error(fresh, "train") == f"{fresh / 'horse' / 'data'}: folder not found"


@pytest.mark.parametrize("name", ["frame0002.jpg", "frame0001.jpg"])  # plain / annotated
def test_corrupt_jpeg(fresh: Path, name: str) -> None:
    path = fresh / "cat" / "data" / "0003" / "shots" / "001" / name
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    assert _error(fresh, "test").startswith(f"{path}: not a readable image")
    ds = load_yto_v1(fresh, "test", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1
    assert sum(len(s) for s in ds.shots) == 6
    assert len(ds.frames) == (4 if name == "frame0002.jpg" else 3)
    assert all(f.path != path for s in ds.shots for f in s.frames)
    if name == "frame0002.jpg":
        assert [f.frame_index for f in ds.shots[0].frames] == [0, 1]


@pytest.mark.parametrize("defect", ["truncated", "garbage", "no_coor", "bad_shape"])
def test_bad_sticks_mat(fresh: Path, defect: str) -> None:
    import scipy.io

    path = fresh / "horse" / "data" / "0002" / "shots" / "055" / "frame0020.jpg_sticks.mat"
    if defect == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif defect == "garbage":
        path.write_bytes(b"MATLAB 5.0 MAT-file, garbage" + b"\x00" * 10)
    elif defect == "no_coor":
        scipy.io.savemat(str(path), {"boxes": np.zeros((1, 4))})
    else:
        scipy.io.savemat(str(path), {"coor": np.zeros((2, 3))})
    msg = _error(fresh, "test")
    assert msg.startswith(str(path))
    if defect == "no_coor":
        assert "no variable 'coor'" in msg
    if defect == "bad_shape":
        assert "shape (2, 3)" in msg


def test_sticks_without_frame(fresh: Path) -> None:
    frame = fresh / "horse" / "data" / "0002" / "shots" / "055" / "frame0020.jpg"
    frame.unlink()
    assert "box file without its frame frame0020.jpg" in _error(fresh, "test")
    ds = load_yto_v1(fresh, "test", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1 and len(ds.frames) == 3


def test_mask_sidecar_is_mask_not_frame(fresh: Path) -> None:
    shot = fresh / "cat" / "data" / "0003" / "shots" / "002"
    mask = shot / "frame0001.jpg_mask.png"
    write_image(mask)
    write_image(shot / "frame0002.jpg_mask.png")  # beside no annotated frame: ignored
    ds = load_yto_v1(fresh, "test")
    assert sum(len(s) for s in ds.shots) == 7
    by_path = {f.path.name: f for s in ds.shots for f in s.frames if s.shot_id == "cat/0003/002"}
    assert list(by_path) == ["frame0001.jpg"] and by_path["frame0001.jpg"].mask_path == mask
    assert all(f.mask_path is None for f in ds.frames if f.shot_id != "cat/0003/002")
