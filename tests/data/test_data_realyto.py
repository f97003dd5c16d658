"""RealYTO: real photo cut-outs written in the YTO v1.0 layout, read back by load_yto_v1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from colocam_plugin.data import realyto
from colocam_plugin.data.realyto import (
    FRAME_TABLE,
    MANIFEST,
    OBJECTS,
    RealYTOConfig,
    generate_realyto,
    read_frame_table,
    render_contact_sheet,
)
from colocam_plugin.data.yto_v1 import YTO_CLASSES, load_yto_v1
from colocam_plugin.errors import DataError

pytest.importorskip("skimage")

TINY = RealYTOConfig.tiny()


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate_realyto(tmp_path_factory.mktemp("real") / "tiny", TINY)


def test_classes_are_youtube_objects_classes():
    assert set(OBJECTS) <= set(YTO_CLASSES)
    assert RealYTOConfig().classes == ("cat", "horse", "motorbike")


def test_tree_reads_with_load_yto_v1(tiny_root):
    train = load_yto_v1(tiny_root, "train")
    test = load_yto_v1(tiny_root, "test")
    labels = {YTO_CLASSES.index(c) for c in TINY.classes}
    assert {s.label for s in train.shots} == labels == {f.label for f in test.frames}
    assert len(train.shots) == len(TINY.classes) * TINY.shots_per_video
    assert all(len(s.frames) == TINY.frames_per_shot for s in train.shots)
    assert not {f.video_id for f in train.frames} & {f.video_id for f in test.frames}
    for cls in TINY.classes:
        sets = tiny_root / cls / "sets"
        ids = [(sets / f"{s}.txt").read_text().split() for s in ("train", "test")]
        assert len(ids[0]) == 1 and len(ids[1]) == 1 and not set(ids[0]) & set(ids[1])
    assert test.frames and all(len(f.boxes) == 1 and f.mask_path for f in test.frames)
    assert sum(train.stats.values()) == 0 and sum(test.stats.values()) == 0  # nothing repaired
    manifest = json.loads((tiny_root / MANIFEST).read_text())
    assert manifest["counts"]["test_frames"] == len(test.frames)
    assert manifest["counts"]["val_frames"] == len(load_yto_v1(tiny_root, "val").frames)


def test_boxes_inside_frame_and_non_empty(tiny_root):
    w, h = TINY.frame_size
    for split in ("val", "test"):
        for frame in load_yto_v1(tiny_root, split).frames:
            assert frame.size == (w, h)
            for x0, y0, x1, y1 in frame.boxes:
                assert 0 <= x0 <= x1 <= w - 1 and 0 <= y0 <= y1 <= h - 1
                assert (x1 - x0 + 1) * (y1 - y0 + 1) >= TINY.min_box_pixels


def test_masks_inside_boxes(tiny_root):
    for frame in load_yto_v1(tiny_root, "test").frames:
        mask = np.asarray(Image.open(frame.mask_path)) > 0
        ys, xs = np.nonzero(mask)
        assert mask.sum() >= TINY.min_box_pixels
        assert [xs.min(), ys.min(), xs.max(), ys.max()] == frame.boxes[0].astype(int).tolist()


def test_frame_table_matches_boxes(tiny_root):
    table = read_frame_table(tiny_root)
    assert len(table) == json.loads((tiny_root / MANIFEST).read_text())["counts"]["frames"]
    boxes = {r["path"]: r["objects"][0]["box"] for r in table if r["annotated"]}
    for frame in load_yto_v1(tiny_root, "test").frames:
        rel = frame.path.relative_to(tiny_root).as_posix()
        assert boxes[rel] == frame.boxes[0].astype(int).tolist()
    assert any(r["objects"][0]["visible"] == 0 for r in table)  # exit_prob: out of view
    assert any(r["distractor"] for r in table)


def test_same_seed_same_bytes(tiny_root, tmp_path):
    realyto.cutout.cache_clear()  # grabCut runs again too
    again = generate_realyto(tmp_path / "again", TINY)
    files = sorted(p.relative_to(tiny_root) for p in tiny_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((tiny_root / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = generate_realyto(tmp_path / "other", RealYTOConfig.tiny(seed=1))
    digest = [json.loads((r / MANIFEST).read_text())["content_sha256"] for r in (again, other)]
    assert digest[0] != digest[1]


def test_cached_by_config_and_refuses_foreign_folder(tiny_root, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("regenerated a cached tree")

    monkeypatch.setattr(realyto, "_render_tree", boom)
    assert generate_realyto(tiny_root, TINY) == tiny_root
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a RealYTO tree"):
        generate_realyto(foreign, TINY)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_other_config_replaces_an_older_tree(tmp_path):
    root = generate_realyto(tmp_path / "yto", RealYTOConfig.tiny(classes=("cat",)))
    generate_realyto(root, RealYTOConfig.tiny(classes=("horse",), frame_size=(48, 32)))
    assert sorted(p.name for p in root.iterdir()) == ["horse", MANIFEST, FRAME_TABLE]
    assert Image.open(next(root.rglob("*.jpg"))).size == (48, 32)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("classes", ("dog",)),
        ("classes", ()),
        ("classes", "cat"),
        ("frame_size", (16, 16)),
        ("train_videos_per_class", 0),
        ("frames_per_shot", 1),
        ("object_size", (0.8, 0.2)),
        ("exit_prob", 1.5),
        ("partial_view", 0.9),
        ("jpeg_quality", 101),
    ],
)
def test_bad_config_field_raises_naming_it(field, value):
    with pytest.raises(ValueError, match=rf"RealYTOConfig\.{field}: expected"):
        RealYTOConfig(**{field: value})


def test_config_round_trips_through_dict():
    cfg = RealYTOConfig.tiny(seed=5)
    assert RealYTOConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert RealYTOConfig.from_dict(cfg.to_dict()).hash == cfg.hash != RealYTOConfig().hash
    with pytest.raises(ValueError, match="unknown knobs"):
        RealYTOConfig.from_dict({"sed": 1})


def test_cutouts_are_objects_not_photos():
    for name in [*OBJECTS, *realyto.DISTRACTORS]:
        rgb, alpha = realyto.cutout(name)
        assert max(alpha.shape) == 192 and rgb.shape == (*alpha.shape, 3)
        share = float((alpha > 0.5).mean())  # fills its box, but not all of it
        assert 0.3 < share < 0.97, (name, share)
        assert (rgb <= alpha[..., None] + 1e-6).all()  # premultiplied


def test_registry_generates_and_reads_realyto(tmp_path):
    from colocam_plugin.api import build_registries
    from colocam_plugin.plugins import get_plugin_manager

    datasets = build_registries(get_plugin_manager(autoload=False)).datasets  # built-ins only
    ds = datasets.get("realyto")(tmp_path / "r", "test", **TINY.to_dict())
    assert ds.name == "realyto" and ds.frames
    assert all(len(f.boxes) == 1 and f.mask_path is not None for f in ds.frames)


def test_command_writes_a_tree_and_help_shows_defaults(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        realyto.main(["--help"])
    assert exc.value.code == 0
    assert "(default: 8)" in capsys.readouterr().out
    args = ["--out", str(tmp_path / "cli"), "--seed", "2", "--classes", "cat"]
    args += ["--train-videos", "1", "--test-videos", "1", "--shots", "1", "--frames", "4"]
    args += ["--size", "48", "32", "--sheet", str(tmp_path / "sheet.png")]
    assert realyto.main(args) == 0
    assert load_yto_v1(tmp_path / "cli", "train").shots
    assert (tmp_path / "sheet.png").stat().st_size > 0
    with pytest.raises(SystemExit) as exc:
        realyto.main(["--size", "8", "8"])
    assert exc.value.code == 2
    assert "RealYTOConfig.frame_size" in capsys.readouterr().err


def test_contact_sheet(tiny_root, tmp_path):
    out = render_contact_sheet(tiny_root, tmp_path / "s.png", num_frames=4, columns=2)
    with Image.open(out) as img:
        assert img.width >= 2 * TINY.frame_size[0] and img.height > 2 * TINY.frame_size[1]
    with pytest.raises(ValueError, match="num_frames"):
        render_contact_sheet(tiny_root, tmp_path / "x.png", num_frames=0)
