"""SynthYTO generator: layout, determinism, caching, and the hard cases it promises."""

from __future__ import annotations

import colorsys
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
    PRESETS,
    SynthYTOConfig,
    default_cache_dir,
    generate_synthyto,
    read_frame_table,
    render_contact_sheet,
)
from colocam_plugin.data.synthyto_stats import (
    colour_kernel_mass_in_box,
    colour_kernel_share,
    synthyto_colour_stats,
)
from colocam_plugin.errors import DataError

TINY = SynthYTOConfig.tiny()
FRAME_RE = re.compile(r"^(\w+)/data/(\d{4})/shots/(\d{3})/frame(\d{4})\.jpg$")


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return generate_synthyto(tmp_path_factory.mktemp("synth") / "tiny", TINY)


@pytest.fixture(scope="module")
def adversarial_root(tmp_path_factory) -> Path:
    return generate_synthyto(
        tmp_path_factory.mktemp("synth") / "adv", SynthYTOConfig.tiny("adversarial")
    )


def _kernel(a: np.ndarray, b: np.ndarray, sigma: float = 15.0) -> float:
    """The colour term's weight between two RGB colours on 0..255."""
    return float(np.exp(-((np.asarray(a) - np.asarray(b)) ** 2).sum() / (2 * sigma**2)))


def _spy_sprites(monkeypatch) -> list[tuple[np.ndarray, int | None]]:
    """Record ``(colours (4, 3) on 0..1, part kind)`` of every sprite drawn."""
    calls: list[tuple[np.ndarray, int | None]] = []
    real = synthyto_render._make_sprite

    def spy(rng, cfg, colours, part_kind):
        calls.append((np.array(colours), part_kind))
        return real(rng, cfg, colours, part_kind)

    monkeypatch.setattr(synthyto_render, "_make_sprite", spy)
    return calls


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
    sidecars = (".jpg", ".txt", "_sticks.mat", "_mask.png", "_part.png")
    extras = {f for f in files if not f.endswith(sidecars)}
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


def test_adversarial_a_class_colour_appears_only_in_videos_of_its_class(tmp_path, monkeypatch):
    """Adversarial preset: parts take the class colour, bodies and other distractors
    never take another's."""
    calls = _spy_sprites(monkeypatch)
    cfg = SynthYTOConfig.tiny(
        "adversarial", num_classes=3, distractors=(2, 2), same_colour_distractor_prob=0.5
    )
    generate_synthyto(tmp_path / "t", cfg)
    class_colours = synthyto_render._PALETTE[:3]
    label = None
    assert any(k is None for _, k in calls) and any(k is not None for _, k in calls)
    for colours, kind in calls:
        if kind is not None:
            label = kind
            assert np.array_equal(colours[1], class_colours[label])
            assert np.array_equal(colours[2], class_colours[label])  # the part's base
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


def test_default_preset_is_a_small_hard_dataset_of_long_shots(tmp_path):
    # the full default (65 videos, ~10 s to render) with 3 videos per class
    cfg = SynthYTOConfig(train_videos_per_class=2, test_videos_per_class=1)
    root = generate_synthyto(tmp_path / "default", cfg)
    manifest = json.loads((root / MANIFEST).read_text())
    counts = manifest["counts"]
    assert manifest["classes"] == ["aeroplane", "bird", "boat", "car", "cat"]
    assert counts["videos"] == 15 and counts["shots"] == 30
    lengths: dict[str, int] = {}
    for rec in read_frame_table(root):
        lengths[rec["shot"]] = lengths.get(rec["shot"], 0) + 1
    assert min(lengths.values()) >= 16 and max(lengths.values()) <= 18
    assert counts["out_of_view_frames"] > 0 and counts["multi_object_frames"] > 0
    assert counts["distractor_frames"] > 0 and counts["val_frames"] > counts["test_frames"] > 0
    assert Image.open(next(root.rglob("*.jpg"))).size == (160, 120)
    full = SynthYTOConfig()  # 200 training shots: enough object instances to generalise
    assert full.train_videos_per_class * full.shots_per_video * full.num_classes == 200
    assert full.frames_per_shot - full.shot_length_jitter >= 16


# ---------------------------------------------------------------------------- presets


def test_presets_exist_and_adversarial_differs_from_default():
    assert set(PRESETS) == {"default", "adversarial"}
    assert SynthYTOConfig.preset("default") == SynthYTOConfig()  # the defaults ARE the preset
    adv = SynthYTOConfig.preset("adversarial", seed=3)
    assert adv.seed == 3 and adv != SynthYTOConfig(seed=3) and adv.hash != SynthYTOConfig().hash
    assert adv.part_colour_mode == "class" and adv.background_tint
    assert adv.distractor_colour_shift == 0 and adv.frames_per_shot == 8
    assert adv.train_videos_per_class == 10 and adv.shots_per_video == 4  # generator 3's counts
    default = SynthYTOConfig()
    assert default.part_colour_mode == "body_family" and not default.background_tint
    assert default.frames_per_shot - default.shot_length_jitter >= 16  # shots of >= 16 frames
    assert 0 < default.same_colour_distractor_prob <= 0.25  # a minority
    assert default.distractor_colour_shift > 0  # never exact copies
    assert SynthYTOConfig.tiny("adversarial").part_colour_mode == "class"
    assert SynthYTOConfig.tiny().frame_size == SynthYTOConfig.tiny("adversarial").frame_size


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"Unknown SynthYTO preset 'nope'; valid: \['adversarial', 'default'\]"
    ):
        SynthYTOConfig.preset("nope")
    with pytest.raises(ValueError, match="Unknown SynthYTO preset"):
        SynthYTOConfig.tiny("nope")
    with pytest.raises(ValueError, match="unknown knobs"):
        SynthYTOConfig.preset("default", sed=1)
    with pytest.raises(ValueError, match="part_colour_mode"):
        SynthYTOConfig(part_colour_mode="rainbow")
    with pytest.raises(ValueError, match="distractor_colour_shift"):
        SynthYTOConfig(distractor_colour_shift=-1.0)


def test_default_part_is_a_shade_of_the_body_adversarial_part_is_not(tmp_path, monkeypatch):
    calls = _spy_sprites(monkeypatch)
    generate_synthyto(tmp_path / "d", SynthYTOConfig.tiny(seed=1))
    heroes = [c * 255 for c, kind in calls if kind is not None]
    assert heroes
    for body, _, part, pattern in heroes:
        assert _kernel(body, part) > 0.3  # the colour term joins part base and body
        assert _kernel(body, pattern) < 0.05  # the pattern is a visible texture
        hues = [colorsys.rgb_to_hsv(*(c / 255)) for c in (body, part, pattern)]
        hue_gap = [min(abs(h[0] - hues[0][0]), 1 - abs(h[0] - hues[0][0])) for h in hues]
        assert max(hue_gap) < 1e-3  # one colour family
    calls.clear()
    generate_synthyto(tmp_path / "a", SynthYTOConfig.tiny("adversarial", seed=1))
    heroes = [c * 255 for c, kind in calls if kind is not None]
    assert heroes and all(_kernel(body, part) < 1e-3 for body, _, part, _ in heroes)


def test_default_object_colours_say_nothing_about_the_class():
    """Every class draws its colours from one distribution; the label never enters."""
    for preset, shared in (("default", True), ("adversarial", False)):
        cfg = SynthYTOConfig.tiny(preset, num_classes=5)
        draws = [
            synthyto_render._object_colours(np.random.default_rng(7), cfg, label)
            for label in range(5)
        ]
        assert all(np.array_equal(d, draws[0]) for d in draws) is shared


@pytest.mark.parametrize("preset", ["default", "adversarial"])
def test_same_colour_distractors_are_never_exact_copies(tmp_path, monkeypatch, preset):
    calls = _spy_sprites(monkeypatch)
    cfg = SynthYTOConfig.tiny(
        preset, same_colour_distractor_prob=1.0, distractors=(2, 2), multi_object_prob=0.0
    )
    generate_synthyto(tmp_path / "t", cfg)
    hero = None
    gaps = []
    for colours, kind in calls:  # per shot: the object, then its distractors
        if kind is not None:
            hero = colours
        else:
            assert hero is not None
            gaps.append(np.linalg.norm((colours[0] - hero[0]) * 255))
    assert len(gaps) == 2 * 2 * 2 * 2
    if preset == "default":  # moved by distractor_colour_shift in RGB, every one
        np.testing.assert_allclose(gaps, cfg.distractor_colour_shift, atol=0.01)
    else:  # generator 3 copied them exactly
        assert max(gaps) == 0


def test_background_tint_only_in_the_adversarial_preset():
    grey = np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)
    sources = dict.fromkeys(synthyto_render._BACKGROUNDS, grey)
    for preset, tinted in (("default", False), ("adversarial", True)):
        cfg = SynthYTOConfig.tiny(preset)
        _, _, source, _ = synthyto_render._scene(np.random.default_rng(0), cfg, 0, sources)
        assert source.shape == (48, 64, 3)
        assert bool(np.ptp(source, axis=2).max() > 0.01) is tinted


# ------------------------------------------------------------------------ colour stats


def test_colour_kernel_share_matches_a_dense_sum():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 6, 5, 3)).astype(np.float64)
    images[:, :3, :3] = [120, 60, 30]  # a flat object-coloured patch in both frames
    receivers = np.zeros((2, 6, 5), bool)
    receivers[0, :3, :3] = True
    senders = np.zeros_like(receivers)
    senders[:, :4, :4] = True
    flat = images.reshape(-1, 3)
    w = np.exp(-((flat[:, None] - flat[None]) ** 2).sum(-1) / (2 * 15.0**2))
    rows = w[receivers.reshape(-1)]
    expected = rows[:, senders.reshape(-1)].sum() / rows.sum()
    assert colour_kernel_share(images, receivers, senders) == pytest.approx(expected, rel=1e-5)
    assert colour_kernel_mass_in_box(images, receivers, senders) == pytest.approx(
        expected, rel=1e-5
    )
    sub = colour_kernel_share(images, receivers, senders, max_receivers=4, max_pixels=30, seed=1)
    assert 0.0 <= sub <= 1.0
    with pytest.raises(ValueError, match="no pixel"):
        colour_kernel_share(images, receivers & False, senders)
    with pytest.raises(ValueError, match=r"senders: expected \(2, 6, 5\)"):
        colour_kernel_share(images, receivers, senders[0])


def test_default_preset_lets_the_colour_term_reach_the_body_and_stay_in_the_box(
    tiny_root, adversarial_root
):
    default = synthyto_colour_stats(tiny_root, max_receivers=256, max_pixels=2048)
    adversarial = synthyto_colour_stats(adversarial_root, max_receivers=256, max_pixels=2048)
    assert default["frames"] > 0 and adversarial["frames"] > 0
    for key in ("kernel_mass_in_box", "part_to_body", "part_area_share", "box_area_share"):
        assert 0.0 < default[key]["mean"] <= 1.0
    assert default["part_to_body"]["mean"] > 1.3 * adversarial["part_to_body"]["mean"]
    assert default["kernel_mass_in_box"]["mean"] > adversarial["kernel_mass_in_box"]["mean"]
    assert default["part_to_body"]["mean"] < default["part_area_share"]["mean"]
