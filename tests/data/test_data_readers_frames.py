"""Tests of the user-videos reader ("frames") and of dataset_info."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from colocam_plugin.data.frames import load_frames
from colocam_plugin.data.info import dataset_info
from colocam_plugin.data.testing import write_frames_tree
from colocam_plugin.errors import DataError


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("frames")
    return root, write_frames_tree(root)


@pytest.fixture()
def fresh(tmp_path: Path) -> Path:
    write_frames_tree(tmp_path)
    return tmp_path


@pytest.mark.parametrize("split", ["train", "test"])
def test_counts_boxes_stats(tree: tuple[Path, dict[str, Any]], split: str) -> None:
    root, expected = tree
    ds = load_frames(root, split)
    info = dataset_info(ds)
    got = {k: info[k] for k in ("videos", "shots", "frames", "boxes")}
    got["shot_frames"] = sum(len(s) for s in ds.shots)
    assert got == expected[split]
    for key, value in expected["stats"][split].items():
        assert ds.stats[key] == value, key
    boxes = {
        f.path.relative_to(root).as_posix(): f.boxes.tolist() for f in ds.frames if len(f.boxes)
    }
    assert boxes == (expected["boxes"] if split == "test" else {})
    assert ds.name == "frames" and ds.classes == ["cat", "person"]


def test_ids_labels_order(tree: tuple[Path, dict[str, Any]]) -> None:
    root, _ = tree
    ds = load_frames(root, "train")
    assert [(s.video_id, s.shot_id, s.label) for s in ds.shots] == [
        ("walk", "walk", 1),
        ("walk_b", "walk_b", 1),
        ("cats", "cats/clip1", 0),
    ]
    assert [f.path.name for f in ds.shots[0].frames] == ["001.png", "002.png", "003.png"]
    assert dataset_info(ds)["per_class"] == {"cat": 2, "person": 5}


def test_classes_and_integer_labels(fresh: Path) -> None:
    ds = load_frames(fresh, "train", classes=["person", "cat", "dog"])
    assert [s.label for s in ds.shots] == [0, 0, 1]
    (fresh / "labels.csv").write_text("shot,label\nwalk,2\nwalk_b,0\n")
    ds = load_frames(fresh, "train")
    assert ds.classes == ["0", "1", "2"] and [s.label for s in ds.shots] == [2, 0]
    (fresh / "labels.csv").write_text("shot,label\nwalk,1\nwalk_b,cat\n")
    with pytest.raises(DataError, match=r"labels\.csv:2: integer label among class names"):
        load_frames(fresh, "train")
    ds = load_frames(fresh, "train", classes=["cat", "person"])
    assert [s.label for s in ds.shots] == [1, 0]


def test_split_names(tree: tuple[Path, dict[str, Any]]) -> None:
    with pytest.raises(ValueError, match="unknown split 'val'; expected one of train, test"):
        load_frames(tree[0], "val")


# ----------------------------------------------------------------------------- bad trees


def _error(root: Path, split: str, **kw: Any) -> str:
    with pytest.raises(DataError) as err:
        load_frames(root, split, **kw)
    msg = str(err.value)
    assert "\n" not in msg and err.value.__cause__ is None
    return msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("shot;label\nwalk;cat\n", ":1: expected header 'shot,label'"),
        ("shot,label\nwalk,cat,extra\n", ":2: expected 2 cells"),
        ("shot,label\nwalk,cat\nwalk,dog\n", ":3: shot walk already listed at line 2"),
        ("shot,label\nwalk,cat\nnowhere,cat\n", ": shot folder not found (listed at"),
        ("shot,label\nwalk,5\n", ":2: label 5 out of range 0..0"),
        ("shot,label\n", ": no shots listed"),
    ],
)
def test_malformed_labels_csv(fresh: Path, text: str, needle: str) -> None:
    (fresh / "labels.csv").write_text(text)
    msg = _error(fresh, "train", classes=["cat"] if "5" in text else None)
    assert needle in msg
    assert str(fresh) in msg


@pytest.mark.parametrize(
    ("row", "needle"),
    [
        ("walk,001.png,1,2,3", ":5: expected 6 cells"),
        ("walk,001.png,1,2,x,4", ":5: expected a number, got 'x'"),
        ("ghost,001.png,1,2,3,4", ":5: shot 'ghost' is not listed"),
        ("walk,009.png,1,2,3,4", ":5: frame "),
        ("walk,notes.txt,1,2,3,4", ":5: frame 'notes.txt' is not a"),
    ],
)
def test_malformed_boxes_csv(fresh: Path, row: str, needle: str) -> None:
    path = fresh / "boxes.csv"
    path.write_text(path.read_text() + row + "\n")
    msg = _error(fresh, "test")
    assert msg.startswith(str(path)) and needle in msg
    assert len(load_frames(fresh, "train").frames) == 7  # train ignores boxes.csv


def test_missing_files(fresh: Path) -> None:
    (fresh / "boxes.csv").unlink()
    assert "the test split needs boxes" in _error(fresh, "test")
    assert len(load_frames(fresh, "train").shots) == 3
    (fresh / "labels.csv").unlink()
    assert _error(fresh, "train") == f"{fresh / 'labels.csv'}: file not found"
    assert "dataset folder not found" in _error(fresh / "nope", "train")


def test_corrupt_frame_and_empty_shot(fresh: Path) -> None:
    bad = fresh / "walk" / "003.png"
    bad.write_bytes(b"\x89PNG broken")
    assert _error(fresh, "train").startswith(f"{bad}: not a readable image")
    (fresh / "empty").mkdir()
    (fresh / "labels.csv").write_text((fresh / "labels.csv").read_text() + "empty,cat\n")
    ds = load_frames(fresh, "train", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1 and ds.stats["empty_shots"] == 1
    assert len(ds.frames) == 6 and len(ds.shots) == 3
