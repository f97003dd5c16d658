"""Tests of the wsolevaluation-metadata reader ("wsol-splits")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from colocam_plugin.data.info import dataset_info
from colocam_plugin.data.testing import write_wsol_metadata, write_yto_v1_tree
from colocam_plugin.data.wsol_splits import load_wsol_splits, shot_video_ids
from colocam_plugin.data.yto_v1 import load_yto_v1
from colocam_plugin.errors import DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("wsol")
    write_yto_v1_tree(root)
    return root, write_wsol_metadata(root / "meta")


@pytest.fixture()
def fresh(tmp_path: Path) -> Path:
    write_yto_v1_tree(tmp_path)
    write_wsol_metadata(tmp_path / "meta")
    return tmp_path


@pytest.mark.parametrize("split", SPLITS)
def test_counts_match_and_agree_with_v1_reader(
    tree: tuple[Path, dict[str, Any]], split: str
) -> None:
    root, expected = tree
    ds = load_wsol_splits(root, split, metadata_root=root / "meta")
    info = dataset_info(ds)
    got = {k: info[k] for k in ("videos", "shots", "frames", "boxes")}
    got["shot_frames"] = sum(len(s) for s in ds.shots)
    assert got == expected[split]
    for key, value in expected["stats"][split].items():
        assert ds.stats[key] == value, key
    ref = load_yto_v1(root, split)
    assert [s.shot_id for s in ds.shots] == [s.shot_id for s in ref.shots]
    assert [(f.path, f.video_id, f.shot_id, f.frame_index, f.label, f.boxes.tolist())
            for f in ds.frames] == [(f.path, f.video_id, f.shot_id, f.frame_index, f.label,
                                     f.boxes.tolist()) for f in ref.frames]  # fmt: skip
    assert ds.name == "wsol-splits"


def test_shot_video_ids() -> None:
    assert shot_video_ids("cat/data/0003/shots/012/") == ("cat/0003", "cat/0003/012")
    assert shot_video_ids("./a/b/c") == ("a/b", "a/b/c")
    assert shot_video_ids("a\\b") == ("a", "a/b")


# ----------------------------------------------------------------------------- bad trees


def _error(root: Path, split: str, **kw: Any) -> str:
    with pytest.raises(DataError) as err:
        load_wsol_splits(root, split, metadata_root=root / "meta", **kw)
    msg = str(err.value)
    assert "\n" not in msg and err.value.__cause__ is None
    return msg


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


def test_missing_metadata(fresh: Path) -> None:
    with pytest.raises(DataError, match="metadata folder not found"):
        load_wsol_splits(fresh, "val", metadata_root=fresh / "nowhere")
    ids = fresh / "meta" / "test" / "image_ids.txt"
    ids.unlink()
    assert _error(fresh, "test") == f"{ids}: file not found"


def test_malformed_localization_line(fresh: Path) -> None:
    loc = fresh / "meta" / "test" / "localization.txt"
    n = len(loc.read_text().splitlines())
    _append(loc, "cat/data/0003/shots/002/frame0001.jpg,1,2,three,4")
    assert _error(fresh, "test") == f"{loc}:{n + 1}: expected a number, got 'three'"
    loc.write_text("cat/data/0003/shots/002/frame0001.jpg,1,2\n")
    assert _error(fresh, "test").startswith(f"{loc}:1: expected path,x0,y0,x1,y1")


def test_label_errors(fresh: Path) -> None:
    labels = fresh / "meta" / "val" / "class_labels.txt"
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join([lines[0].rsplit(",", 1)[0] + ",12", *lines[1:]]) + "\n")
    assert _error(fresh, "val").startswith(f"{labels}:1: label 12 out of range 0..9")
    labels.write_text("\n".join(lines[1:]) + "\n")
    ids = fresh / "meta" / "val" / "image_ids.txt"
    assert _error(fresh, "val") == (
        f"{ids}:1: {lines[0].rsplit(',', 1)[0]} has no row in class_labels.txt"
    )


def test_frame_without_box(fresh: Path) -> None:
    ids = fresh / "meta" / "test" / "image_ids.txt"
    labels = fresh / "meta" / "test" / "class_labels.txt"
    extra = "cat/data/0003/shots/001/frame0002.jpg"
    _append(ids, extra)
    _append(labels, extra + ",4")
    n = len(ids.read_text().splitlines())
    assert _error(fresh, "test") == f"{ids}:{n}: {extra} has no box in localization.txt"


def test_box_of_unlisted_frame(fresh: Path) -> None:
    loc = fresh / "meta" / "val" / "localization.txt"
    _append(loc, "cat/x.jpg,1,2,3,4")
    n = len(loc.read_text().splitlines())
    assert _error(fresh, "val") == f"{loc}:{n}: cat/x.jpg is not listed in image_ids.txt"


def test_size_mismatch(fresh: Path) -> None:
    sizes = fresh / "meta" / "test" / "image_sizes.txt"
    lines = sizes.read_text().splitlines()
    lines[0] = lines[0].rsplit(",", 2)[0] + ",1280,720"
    sizes.write_text("\n".join(lines) + "\n")
    assert _error(fresh, "test").startswith(f"{sizes}:1: ")
    assert "listed as 1280x720, but the file is 64x48" in _error(fresh, "test")


def test_missing_shot_folder_and_frames(fresh: Path) -> None:
    import shutil

    shutil.rmtree(fresh / "cat" / "data" / "0002")
    msg = _error(fresh, "train")
    assert msg.startswith(str(fresh / "cat" / "data" / "0002" / "shots" / "001"))
    assert "image_ids.txt:" in msg
    frame = fresh / "cat" / "data" / "0001" / "shots" / "001" / "frame0002.jpg"
    frame.unlink()
    assert _error(fresh, "val") == f"{frame}: frame file not found"
    ds = load_wsol_splits(fresh, "val", metadata_root=fresh / "meta", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 2  # the deleted frame, the deleted shot's frame
    assert len(ds.frames) == 1


def test_corrupt_frame_skipped_on_train(fresh: Path) -> None:
    frame = fresh / "horse" / "data" / "0001" / "shots" / "001" / "frame0002.jpg"
    frame.write_bytes(b"not an image")
    assert _error(fresh, "train").startswith(f"{frame}: not a readable image")
    ds = load_wsol_splits(fresh, "train", metadata_root=fresh / "meta", skip_unreadable=True)
    assert ds.stats["unreadable_frames"] == 1 and len(ds.frames) == 8
