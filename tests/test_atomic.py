"""Atomic writes: a file or folder appears whole or not at all; nothing is left behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from colocam_plugin.atomic import atomic_dir, atomic_write, sibling_temp_dir
from colocam_plugin.errors import DataError


class Boom(Exception):
    """Raised on purpose in the middle of a write."""


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "sub" / "a.json") as fh:
        json.dump({"x": 1}, fh)
    assert json.loads((tmp_path / "sub" / "a.json").read_text()) == {"x": 1}
    with atomic_write(tmp_path / "t.pt", "wb") as fh:
        torch.save({"w": torch.arange(3)}, fh)
    assert torch.load(tmp_path / "t.pt")["w"].tolist() == [0, 1, 2]
    with atomic_write(tmp_path / "c.npz", "wb") as fh:
        np.savez_compressed(fh, a=np.ones(2))
    with np.load(tmp_path / "c.npz") as z:
        assert z["a"].tolist() == [1.0, 1.0]
    assert _names(tmp_path) == ["c.npz", "sub", "t.pt"]
    assert _names(tmp_path / "sub") == ["a.json"]


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_failure_mid_write_keeps_the_old_file(tmp_path: Path, error: type[BaseException]) -> None:
    target = tmp_path / "scores.json"
    target.write_text("old\n")
    with pytest.raises(error):
        with atomic_write(target) as fh:
            fh.write("new, half written")
            fh.flush()
            raise error()
    assert target.read_text() == "old\n"
    assert _names(tmp_path) == ["scores.json"]


def test_failure_on_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        with atomic_write(tmp_path / "new.bin", "wb") as fh:
            fh.write(b"x" * 100_000)
            raise Boom
    assert _names(tmp_path) == []


def test_permissions_follow_the_umask(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "f.txt") as fh:
        fh.write("x")
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~mask


def test_wrong_kind_of_target_is_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="folder: is a folder; expected a file path"):
        with atomic_write(tmp_path / "folder"):
            pass
    with pytest.raises(DataError, match="a parent of this path is a file"):
        with atomic_write(tmp_path / "file" / "x.json"):
            pass
    with pytest.raises(DataError, match="file: is a file; expected a folder path"):
        with atomic_dir(tmp_path / "file"):
            pass
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "a", "a"):
            pass
    assert _names(tmp_path) == ["file", "folder"]
    assert _names(tmp_path / "folder") == []


def test_atomic_dir_new_folder_appears_whole(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "cams") as d:
        (d / "a.npz").write_bytes(b"a")
        (d / "b.npz").write_bytes(b"b")
        assert not (tmp_path / "cams").exists()  # not visible before the end
    assert _names(tmp_path / "cams") == ["a.npz", "b.npz"]
    assert _names(tmp_path) == ["cams"]


def test_atomic_dir_failure_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        with atomic_dir(tmp_path / "cams") as d:
            (d / "a.npz").write_bytes(b"a")
            raise Boom
    assert _names(tmp_path) == []


def test_atomic_dir_into_an_existing_folder(tmp_path: Path) -> None:
    cams = tmp_path / "cams"
    cams.mkdir()
    (cams / "keep.txt").write_text("mine")
    (cams / "a.npz").write_bytes(b"old")
    with pytest.raises(Boom):  # a failure changes nothing
        with atomic_dir(cams) as d:
            (d / "a.npz").write_bytes(b"new")
            raise Boom
    assert (cams / "a.npz").read_bytes() == b"old"
    with atomic_dir(cams) as d:  # merge: new files replace, others stay
        (d / "a.npz").write_bytes(b"new")
    assert (cams / "a.npz").read_bytes() == b"new" and (cams / "keep.txt").exists()
    with atomic_dir(cams, replace=True) as d:  # replace: the whole folder is swapped
        (d / "b.npz").write_bytes(b"b")
    assert _names(cams) == ["b.npz"]
    assert _names(tmp_path) == ["cams"]


def test_sibling_temp_dir_is_removed(tmp_path: Path) -> None:
    with pytest.raises(Boom):
        with sibling_temp_dir(tmp_path / "tree") as d:
            (d / "x").write_text("x")
            assert d.parent == tmp_path and d.name.startswith(".tree.tmp-")
            raise Boom
    assert _names(tmp_path) == []


def test_save_checkpoint_failure_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from colocam_plugin.train import checkpoint

    path = tmp_path / "clf.pt"
    checkpoint.save_checkpoint(path, {"epoch": 1, "state_dict": {}, "config": {}})
    real_save = torch.save

    def dies_half_way(obj: object, fh: object) -> None:
        real_save(obj, fh)  # the bytes are written ...
        raise Boom  # ... then the process "dies" before the rename

    monkeypatch.setattr(checkpoint.torch, "save", dies_half_way)
    with pytest.raises(Boom):
        checkpoint.save_checkpoint(path, {"epoch": 2, "state_dict": {}, "config": {}})
    assert checkpoint.load_checkpoint(path)["epoch"] == 1
    assert _names(tmp_path) == ["clf.pt"]


def test_save_cams_npz_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from colocam_plugin import harness

    res = harness.EvalResult(
        scores={},
        cams_u8=np.zeros((2, 4, 4), np.uint8),
        boxes=[np.array([[0, 0, 3, 3]]), np.zeros((0, 4))],
        labels=np.array([0, 1]),
    )
    out = harness.save_cams_npz(res, tmp_path / "cams" / "m.npz")
    with np.load(out) as z:
        assert z["boxes"].tolist() == [[0, 0, 0, 3, 3]]

    def broken(fh: object, **arrays: object) -> None:
        raise Boom

    monkeypatch.setattr(harness.np, "savez_compressed", broken)
    with pytest.raises(Boom):
        harness.save_cams_npz(res, tmp_path / "cams" / "m.npz")
    with np.load(out) as z:  # the first file is intact
        assert z["labels"].tolist() == [0, 1]
    assert _names(tmp_path / "cams") == ["m.npz"]


def test_write_tree_failure_leaves_nothing(tmp_path: Path) -> None:
    from colocam_plugin.data.yto_writer import write_tree

    def build(tmp: Path) -> dict[str, str]:
        (tmp / "a.txt").write_text("a")
        raise Boom

    kw = {"manifest": "m.json", "key_field": "k", "key": "1", "kind": "test"}
    with pytest.raises(Boom):
        write_tree(tmp_path / "tree", build, **kw)
    assert _names(tmp_path) == []

    def good(tmp: Path) -> dict[str, str]:
        (tmp / "a.txt").write_text("a")
        return {"k": "1"}

    assert write_tree(tmp_path / "tree", good, **kw) == tmp_path / "tree"
    assert _names(tmp_path / "tree") == ["a.txt", "m.json"]
    assert _names(tmp_path) == ["tree"]
