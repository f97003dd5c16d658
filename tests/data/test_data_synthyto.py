"""SynthYTO generator: layout, determinism, caching, and the hard cases it promises."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from colocam_plugin.data import synthyto, synthyto_render
from colocam_plugin.data.synthyto import (
    MANIFEST,
    SynthYTOConfig,
    default_cache_dir,
    generate_synthyto,
    read_frame_table,
    render_contact_sheet,
)
from colocam_plugin.errors import DataError

TINY = SynthYTOConfig.tiny()
FRAME_RE = re.compile(r"^(\w+)/data/(\d{4})/shots/(\d{3})/frame(\d{4})\.jpg$")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return generate_synthyto(tmp_path_factory.mktemp("synth") / "tiny", TINY)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tree_layout_matches_yto_v1(tiny_root):
    files = [p.relative_to(tiny_root).as_posix() for p in tiny_root.rglob("*") if p.is_file()]
    frames = sorted(f for f in files if f.endswith(".jpg"))
    assert len(frames) == 2 * 2 * 2 * 8  # classes * videos * shots * frames
    per_shot: dict[tuple[str, str, str], list[int]] = {}
    for f in frames:
        m = FRAME_RE.match(f)
        assert m, f
        per_shot.setdefault(m.groups()[:3], []).append(int(m.group(4)))
    assert all(sorted(v) == list(range(1, 9)) for v in per_shot.values())  # frame0001..0008
    assert {k[2] for k in per_shot} == {"001", "002"}
    for cls in ("aeroplane", "bird"):
        train = (tiny_root / cls / "sets" / "train.txt").read_text().split()
        test = (tiny_root / cls / "sets" / "test.txt").read_text().split()
        assert all(re.fullmatch(r"\d{4}", v) for v in train + test)
        assert len(train) == len(test) == 1 and not set(train) & set(test)
        videos = {p.name for p in (tiny_root / cls / "data").iterdir()}
        assert videos == set(train) | set(test)
    extras = {f for f in files if not f.endswith((".jpg", ".txt", "_sticks.mat", "_mask.png"))}
    assert extras == {MANIFEST, "synthyto_frames.jsonl"}


def test_sticks_files_are_cell_arrays_of_boxes(tiny_root):
    mats = sorted(tiny_root.rglob("*.jpg_sticks.mat"))
    assert mats
    for mat in mats:
        assert Path(str(mat)[: -len("_sticks.mat")]).is_file()
        coor = scipy.io.loadmat(mat)["coor"]
        assert coor.dtype == object and coor.ndim == 2 and coor.shape[0] == 1
        for box in coor[0]:
            assert box.shape == (1, 4) and box.dtype == np.float64
            x0, y0, x1, y1 = box[0]
            assert 0 <= x0 <= x1 <= 63 and 0 <= y0 <= y1 <= 47


def test_boxes_are_tight_around_the_object_masks(tiny_root):
    table = read_frame_table(tiny_root)
    annotated = [r for r in table if r["annotated"]]
    assert annotated
    for rec in annotated:
        path = tiny_root / rec["path"]
        boxes = [b[0].tolist() for b in scipy.io.loadmat(f"{path}_sticks.mat")["coor"][0]]
        assert boxes == [o["box"] for o in rec["objects"] if o["box"] is not None]
        mask = np.asarray(Image.open(f"{path}_mask.png")) > 0
        covered = np.zeros_like(mask)
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=int):
            covered[y0 : y1 + 1, x0 : x1 + 1] = True
            inside = mask[y0 : y1 + 1, x0 : x1 + 1]  # every edge of a box touches the object
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
        assert mask.any() and not (mask & ~covered).any()


def test_the_part_is_a_small_piece_of_the_boxed_object(tiny_root):
    ratios = []
    for rec in read_frame_table(tiny_root):
        for obj in rec["objects"]:
            if obj["box"] is not None and obj["part_box"] is not None and obj["visible"] > 0.99:
                (x0, y0, x1, y1), (p0, q0, p1, q1) = obj["box"], obj["part_box"]
                assert x0 <= p0 <= p1 <= x1 and y0 <= q0 <= q1 <= y1
                ratios.append((p1 - p0 + 1) * (q1 - q0 + 1) / ((x1 - x0 + 1) * (y1 - y0 + 1)))
    assert ratios and 0.03 < float(np.median(ratios)) < 0.35


def test_a_class_colour_appears_only_in_videos_of_its_class(tmp_path, monkeypatch):
    """Parts take the class colour, bodies and other distractors never take another's."""
    calls = []
    real = synthyto_render._make_sprite

    def spy(rng, cfg, colours, part_kind):
        calls.append((np.array(colours), part_kind))
        return real(rng, cfg, colours, part_kind)

    monkeypatch.setattr(synthyto_render, "_make_sprite", spy)
    cfg = SynthYTOConfig.tiny(num_classes=3, distractors=(2, 2), same_colour_distractor_prob=0.5)
    generate_synthyto(tmp_path / "t", cfg)
    class_colours = synthyto_render._PALETTE[:3]
    label = None
    assert any(k is None for _, k in calls) and any(k is not None for _, k in calls)
    for colours, kind in calls:
        if kind is not None:
            label = kind
            assert np.array_equal(colours[1], class_colours[label])
        assert label is not None
        for row in colours[: 1 if kind is not None else 2]:
            others = [c for k, c in enumerate(class_colours) if k != label]
            assert not any(np.array_equal(row, c) for c in others)
        if kind is not None:
            assert not any(np.array_equal(colours[0], c) for c in class_colours)


@pytest.mark.parametrize("shared", [True, False])
def test_shared_scenes_reuse_the_body_across_classes(tmp_path, monkeypatch, shared):
    heroes: list[np.ndarray] = []
    real = synthyto_render._make_sprite

    def spy(rng, cfg, colours, part_kind):
        sprite = real(rng, cfg, colours, part_kind)
        if part_kind is not None:
            heroes.append(np.asarray(colours[0]))
        return sprite

    monkeypatch.setattr(synthyto_render, "_make_sprite", spy)
    cfg = SynthYTOConfig.tiny(shared_scenes=shared, multi_object_prob=0.0, shots_per_video=4)
    generate_synthyto(tmp_path / "t", cfg)
    # one instance per shot (shot_variation): class 0's, then class 1's, same (video, shot) order
    assert len(heroes) == 2 * 2 * 4
    same = all(np.array_equal(a, b) for a, b in zip(heroes[:8], heroes[8:]))
    assert same is shared


def test_hard_cases_are_present(tiny_root):
    table = read_frame_table(tiny_root)
    out = [r for r in table if all(o["visible"] == 0 for o in r["objects"])]
    partial = [r for r in table if any(0 < o["visible"] < 0.9 for o in r["objects"])]
    assert out and partial
    assert not any(r["annotated"] for r in out)  # only visible objects are annotated
    assert any(sum(o["box"] is not None for o in r["objects"]) > 1 for r in table)
    assert any(r["n_distractors"] > 0 for r in table)
    counts = json.loads((tiny_root / MANIFEST).read_text())["counts"]
    assert counts["out_of_view_frames"] == len(out) and counts["frames"] == len(table)


def test_same_config_gives_identical_bytes(tiny_root, tmp_path, monkeypatch):
    import time  # scipy stamps .mat headers with time.asctime(): a later clock must not matter

    monkeypatch.setattr(time, "asctime", lambda *a: "Thu Jan  1 00:00:00 2099")
    again = generate_synthyto(tmp_path / "again", TINY)
    assert _digests(again) == _digests(tiny_root)
    other = generate_synthyto(tmp_path / "other", TINY, seed=1)
    manifest = json.loads((other / MANIFEST).read_text())
    assert (
        manifest["content_sha256"]
        != json.loads((tiny_root / MANIFEST).read_text())["content_sha256"]
    )
    assert manifest["config"]["seed"] == 1


def test_second_call_writes_nothing(tiny_root, monkeypatch):
    before = {p: p.stat().st_mtime_ns for p in tiny_root.rglob("*")}

    def boom(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(synthyto, "render_tree", boom)
    assert generate_synthyto(tiny_root, TINY) == tiny_root
    assert {p: p.stat().st_mtime_ns for p in tiny_root.rglob("*")} == before


def test_a_crash_leaves_no_half_tree(tmp_path, monkeypatch):
    def crash(tmp: Path, cfg: SynthYTOConfig) -> dict:
        (tmp / "aeroplane").mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthyto, "render_tree", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_synthyto(tmp_path / "yto", TINY)
    assert list(tmp_path.iterdir()) == []


def test_replaces_an_older_tree_and_refuses_foreign_folders(tmp_path):
    root = generate_synthyto(tmp_path / "yto", TINY, frame_size=(40, 32))
    generate_synthyto(root, TINY)
    assert json.loads((root / MANIFEST).read_text())["config_hash"] == TINY.hash
    assert Image.open(next(root.rglob("*.jpg"))).size == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["yto"]  # no temp folders left
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="mine: exists and is not a SynthYTO tree"):
        generate_synthyto(foreign, TINY)


def test_default_root_is_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COLOCAM_CACHE_DIR", str(tmp_path))
    cfg = SynthYTOConfig.tiny(num_classes=1, shots_per_video=1)
    root = generate_synthyto(None, cfg)
    assert root == default_cache_dir(cfg) == tmp_path / f"synthyto-{cfg.hash[:12]}"
    assert (root / MANIFEST).is_file()


def test_config_round_trip_and_validation():
    cfg = SynthYTOConfig(num_classes=12, frame_size=[96, 64])  # lists are accepted
    assert SynthYTOConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.classes[:2] == ["aeroplane", "bird"] and cfg.classes[-1] == "class11"
    assert cfg.hash != SynthYTOConfig().hash
    with pytest.raises(ValueError, match="frame_size"):
        SynthYTOConfig(frame_size=(16, 64))
    with pytest.raises(ValueError, match="out_of_view_prob"):
        SynthYTOConfig(out_of_view_prob=1.5)
    with pytest.raises(ValueError, match="background_saturation"):
        SynthYTOConfig(background_saturation=1.5)
    with pytest.raises(ValueError, match="part_area"):
        SynthYTOConfig(part_area=(0.3, 0.1))
    with pytest.raises(ValueError, match="unknown knobs"):
        SynthYTOConfig.from_dict({"sed": 1})


def test_frame_table_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"synthyto_frames\.jsonl"):
        read_frame_table(tmp_path)


def test_contact_sheet(tiny_root, tmp_path):
    out = render_contact_sheet(tiny_root, tmp_path / "sheet.png", num_frames=6, columns=3)
    img = Image.open(out)
    assert img.size == (3 * (128 + 4), 2 * (96 + 12 + 4))
    assert np.asarray(img).std() > 10


@pytest.mark.skipif(
    importlib.util.find_spec("colocam_plugin.data.yto_v1") is None,
    reason="colocam_plugin.data.yto_v1 (the YTO v1.0 reader) is not in this checkout yet",
)
def test_the_yto_v1_reader_reads_the_tree(tiny_root):
    from colocam_plugin.data.yto_v1 import load_yto_v1

    table = read_frame_table(tiny_root)
    counts = json.loads((tiny_root / MANIFEST).read_text())["counts"]
    train = load_yto_v1(tiny_root, "train")
    train_rows = [r for r in table if r["video_split"] == "train"]
    assert len(train.shots) == 2 * 1 * 2 and len(train.frames) == len(train_rows)
    assert all(f.boxes.shape == (0, 4) for f in train.frames)
    for split, role in (("val", "train"), ("test", "test")):
        ds = load_yto_v1(tiny_root, split)
        rows = {r["path"]: r for r in table if r["annotated"] and r["video_split"] == role}
        assert len(ds.frames) == counts[f"{split}_frames"] == len(rows)
        assert sum(len(f.boxes) for f in ds.frames) == counts[f"{split}_boxes"]
        for f in ds.frames:
            rec = rows[f.path.relative_to(tiny_root).as_posix()]
            assert f.label == rec["label"] and f.video_id == rec["video"]
            expected = [o["box"] for o in rec["objects"] if o["box"] is not None]
            np.testing.assert_array_equal(f.boxes, np.asarray(expected, dtype=np.float64))


def test_default_config_is_a_small_hard_dataset(tmp_path):
    root = generate_synthyto(tmp_path / "default")
    manifest = json.loads((root / MANIFEST).read_text())
    counts = manifest["counts"]
    assert manifest["classes"] == ["aeroplane", "bird", "boat", "car", "cat"]
    assert counts["videos"] == 65 and counts["shots"] == 260
    assert 260 * 7 <= counts["frames"] <= 260 * 9
    assert counts["out_of_view_frames"] > 0 and counts["multi_object_frames"] > 0
    assert counts["distractor_frames"] > 0 and counts["val_frames"] > counts["test_frames"] > 0
    assert Image.open(next(root.rglob("*.jpg"))).size == (160, 120)
