"""``colocam localize`` on videos and frame folders written by the test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from colocam_plugin.cli.main import main
from colocam_plugin.data.videos import VideoWriter, sample_video_frames
from colocam_plugin.localize import ROW_FIELDS, _centred, _to_original
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.train.stage2 import build_localizer

W, H, N = 80, 60, 9
CLASSES = ["cat", "dog"]


def _frame(i: int) -> np.ndarray:
    img = np.full((H, W, 3), 60, dtype=np.uint8)
    img[15:40, 3 * i : 3 * i + 20] = (230, 40, 40)
    return img


def save_checkpoint(path: Path, payload: dict) -> None:
    """What train.checkpoint.save_checkpoint writes, without its versions() (imports kornia)."""
    torch.save(payload, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A 9-frame video, a folder of 4 frames, untrained checkpoints (cat certain, dog not)."""
    d = tmp_path_factory.mktemp("localize")
    video = d / "clip.mp4"
    with VideoWriter(video, 10) as w:
        for i in range(N):
            w.write(_frame(i))
    folder = d / "frames"
    folder.mkdir()
    from PIL import Image

    for i in range(4):
        Image.fromarray(_frame(i)).save(folder / f"{i:03d}.png")
    torch.manual_seed(0)
    model = WGAPClassifier("resnet18", len(CLASSES))
    with torch.no_grad():  # constant logits: p(cat) = 0.9999, p(dog) = 0.0001
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([4.6, -4.6]))
    config = {**model.config, "image_size": 64, "resize": 73}
    clf = d / "clf.pt"
    save_checkpoint(
        clf,
        {
            "kind": "classifier",
            "config": config,
            "classes": CLASSES,
            "state_dict": model.state_dict(),
        },
    )
    loc_model = build_localizer(model, "unet")
    loc = d / "loc.pt"
    save_checkpoint(
        loc,
        {
            "kind": "localizer",
            "config": {"head": "unet", "method": "colocam", "image_size": 64},
            "classifier_config": config,
            "classes": CLASSES,
            "state_dict": loc_model.state_dict(),
        },
    )
    return {"video": video, "folder": folder, "clf": clf, "loc": loc, "dir": d}


def _run(*argv: object) -> int:
    return main([str(a) for a in argv])


def _rows(out: Path) -> tuple[list[dict[str, str]], list[dict[str, object]]]:
    with (out / "boxes.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == ROW_FIELDS
        rows = list(reader)
    return rows, json.loads((out / "boxes.json").read_text())


def _same(csv_rows: list[dict[str, str]], json_rows: list[dict[str, object]]) -> None:
    assert len(csv_rows) == len(json_rows)
    for c, j in zip(csv_rows, json_rows):
        assert list(j) == list(ROW_FIELDS)
        assert {k: "" if v is None else str(v) for k, v in j.items()} == c


@pytest.mark.parametrize("how", ["--localizer", "--method"])
def test_one_row_per_frame_inside_the_frame(files, tmp_path, how, capsys):
    out = tmp_path / "out"
    which = files["loc"] if how == "--localizer" else "cam"
    argv = [files["video"], files["folder"], "--classifier", files["clf"], how, which]
    assert _run("localize", *argv, "--out", out, "--device", "cpu", "--batch-size", "4") == 0
    assert "13 frames from 2 input(s)" in capsys.readouterr().out
    rows, js = _rows(out)
    _same(rows, js)
    assert [r["video"] for r in rows] == [str(files["video"])] * N + [str(files["folder"])] * 4
    assert [int(r["frame"]) for r in rows] == list(range(N)) + list(range(4))
    assert [float(r["time_s"]) for r in rows[:3]] == pytest.approx([0.0, 0.1, 0.2])
    assert [float(r["time_s"]) for r in rows[N : N + 2]] == pytest.approx([0.0, 0.04])
    for r in rows:
        x0, y0, x1, y1 = (int(r[k]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 <= x1 <= W - 1 and 0 <= y0 <= y1 <= H - 1
        assert r["class"] == "cat" and float(r["score"]) > 0.99
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_class_flag_and_fps(files, tmp_path):
    out = tmp_path / "out"
    argv = [files["video"], "--classifier", files["clf"], "--localizer", files["loc"]]
    assert (
        _run("localize", *argv, "--out", out, "--class", "dog", "--fps", "5", "--no-progress") == 0
    )
    rows, js = _rows(out)
    _same(rows, js)
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4]  # 9 frames at 10 fps, taken at 5
    assert all(r["class"] == "dog" and float(r["score"]) < 0.01 for r in rows)
    assert all(r["x0"] != "" for r in rows)  # without --temporal every frame gets a box
    assert _run("localize", *argv, "--out", out, "--class", "horse") == 2


def test_temporal_marks_absent_frames(files, tmp_path):
    argv = [files["video"], "--classifier", files["clf"], "--localizer", files["loc"]]
    absent, present = tmp_path / "absent", tmp_path / "present"
    # p(cat) = 0.9999 in every frame: by default an object the classifier is sure of is
    # in view, so "dog" frames keep their boxes; with --absent-top 1 the class test alone
    # decides and every frame is absent
    assert _run("localize", *argv, "--out", absent, "--temporal", "--class", "dog") == 0
    rows, _ = _rows(absent)
    assert len(rows) == N and all(r["x0"] != "" for r in rows)
    argv += ["--absent-top", "1"]
    assert _run("localize", *argv, "--out", absent, "--temporal", "--class", "dog") == 0
    rows, js = _rows(absent)
    _same(rows, js)
    assert len(rows) == N
    assert all(r[k] == "" for r in rows for k in ("x0", "y0", "x1", "y1"))
    assert all(j["x0"] is None for j in js)
    assert _run("localize", *argv, "--out", present, "--temporal", "--class", "cat") == 0
    rows, _ = _rows(present)
    assert len(rows) == N and all(r["x0"] != "" for r in rows)


def test_overlay_mp4_decodes(files, tmp_path):
    out = tmp_path / "out"
    argv = [files["video"], "--classifier", files["clf"], "--method", "cam", "--out", out]
    assert _run("localize", *argv, "--overlay", "--no-progress") == 0
    frames = list(sample_video_frames(out / "clip_overlay.mp4"))
    assert len(frames) == N and frames[0].image.shape == (H, W, 3)
    # the overlay is not the input: the heat map is blended in
    assert np.abs(frames[0].image.astype(int) - _frame(0).astype(int)).mean() > 10


def test_bad_inputs_are_one_line_errors(files, tmp_path, capsys):
    clf = files["clf"]
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert _run("localize", notes, "--classifier", clf, "--method", "cam", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "notes.txt: not a video" in err and err.count("\n") == 1
    missing = tmp_path / "nope.mp4"
    assert _run("localize", missing, "--classifier", clf, "--method", "cam", "--out", tmp_path) == 2
    assert "nope.mp4: input not found" in capsys.readouterr().err
    both = ["--method", "cam", "--localizer", files["loc"]]  # exclusive
    try:
        rc = _run("localize", files["video"], "--classifier", clf, *both, "--out", tmp_path)
    except SystemExit as exc:  # argparse's own exit
        rc = int(exc.code or 0)
    assert rc == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["localize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    flags = ("--fps", "--batch-size", "--device", "--threshold", "--window", "--absent-below")
    for flag in (*flags, "--absent-top"):
        assert flag in text
    assert text.count("(default") >= 10


def test_centred_window_streams():
    got = [(c, w) for c, w in _centred(iter(range(5)), 1)]
    assert got == [(0, [0, 1]), (1, [0, 1, 2]), (2, [1, 2, 3]), (3, [2, 3, 4]), (4, [3, 4])]
    assert [w for _, w in _centred(iter(range(2)), 2)] == [[0, 1], [0, 1]]


def test_cli_defaults_match_the_library():
    import argparse

    from colocam_plugin import localize as lib
    from colocam_plugin.cli import run_localize

    p = argparse.ArgumentParser()
    run_localize.add_arguments(p)
    keys = ("window", "absent_below", "absent_top", "threshold", "folder_fps")
    got = [p.get_default(k) for k in keys]
    assert got == [
        lib.TEMPORAL_WINDOW,
        lib.ABSENT_BELOW,
        lib.ABSENT_TOP,
        lib.BOX_THRESHOLD,
        lib.FOLDER_FPS,
    ]
    for k, v in zip((k.replace("_", "-") for k in keys), got):
        (action,) = [a for a in p._actions if f"--{k}" in a.option_strings]
        shown = "(default: chance, 1 / number of classes" if v is None else f"(default {v:g})"
        assert shown in (action.help or "")


def _scene(i: int, cls: int, seed: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A textured background with a red square (class 0) or a blue disc (class 1)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(70, 130, size=(H, W, 3), dtype=np.uint8)
    x, y, s = 4 + 4 * i + seed % 7, 12 + seed % 9, 22
    if cls == 0:
        img[y : y + s, x : x + s] = (220, 30, 30)
    else:
        yy, xx = np.mgrid[:H, :W]
        disc = (yy - y - s / 2) ** 2 + (xx - x - s / 2) ** 2 <= (s / 2) ** 2
        img[disc] = (30, 30, 220)
    return img, (x, y, x + s - 1, y + s - 1)


@pytest.mark.slow
def test_video_dataset_trains_and_localizes(tmp_path, monkeypatch, capsys):
    """Class folders of videos -> classifier -> CoLo-CAM localizer -> evaluate -> localize."""
    monkeypatch.setenv("COLOCAM_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "videos"
    box_rows = ["video,frame,x0,y0,x1,y1"]
    for split, per_class in (("train", 3), ("test", 1)):
        for cls, name in enumerate(CLASSES):
            for v in range(per_class):
                path = root / split / name / f"clip{v}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                with VideoWriter(path, 10) as w:
                    for i in range(10):
                        img, box = _scene(i, cls, seed=10 * v + cls)
                        w.write(img)
                        if split == "test" and i % 3 == 0:
                            box_rows.append(f"{name}/clip{v}.mp4,{i}," + ",".join(map(str, box)))
    (root / "test" / "boxes.csv").write_text("\n".join(box_rows) + "\n")
    common = ["--dataset", "videos", "--root", root, "--no-progress", "--device", "cpu"]
    clf, loc = tmp_path / "clf.pt", tmp_path / "colocam.pt"
    assert (
        _run(
            "train-classifier",
            *common,
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--batch-size",
            "8",
            "--out",
            clf,
        )
        == 0
    )
    assert (
        _run(
            "train",
            *common,
            "--method",
            "colocam",
            "--classifier",
            clf,
            "--epochs",
            "1",
            "--n-frames",
            "2",
            "--batch-frames",
            "8",
            "--crf-step",
            "0.5",
            "--out",
            loc,
        )
        == 0
    )
    assert (
        _run(
            "evaluate",
            *common,
            "--classifier",
            clf,
            "--methods",
            "cam",
            "--localizers",
            loc,
            "--json",
            tmp_path / "ev.json",
        )
        == 0
    )
    scores = json.loads((tmp_path / "ev.json").read_text())
    assert set(scores) == {"cam", "colocam"}
    assert all(0.0 <= s["corloc"] <= 100.0 for s in scores.values())
    capsys.readouterr()
    video = root / "test" / "dog" / "clip0.mp4"
    out = tmp_path / "out"
    assert (
        _run(
            "localize",
            video,
            "--classifier",
            clf,
            "--localizer",
            loc,
            "--out",
            out,
            "--temporal",
            "--overlay",
            "--no-progress",
        )
        == 0
    )
    rows, js = _rows(out)
    _same(rows, js)
    assert [int(r["frame"]) for r in rows] == list(range(10))
    for r in rows:
        if r["x0"] != "":
            x0, y0, x1, y1 = (int(r[k]) for k in ("x0", "y0", "x1", "y1"))
            assert 0 <= x0 <= x1 <= W - 1 and 0 <= y0 <= y1 <= H - 1
    assert len(list(sample_video_frames(out / "clip0_overlay.mp4"))) == 10


def test_box_maps_to_original_pixels_inclusively():
    # the whole 64-px grid is the whole 80x60 frame; one input pixel covers 1.25 x 0.94 pixels
    assert _to_original(np.array([0, 0, 63, 63]), (W, H), 64) == (0, 0, W - 1, H - 1)
    assert _to_original(np.array([32, 32, 32, 32]), (W, H), 64) == (40, 30, 41, 30)
    assert _to_original(np.array([1, 1, 2, 2]), (128, 128), 64) == (2, 2, 5, 5)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> dict[str, object]:
    """Checkpoints with a random (non-zero) head, the localizer as loaded, and images."""
    from colocam_plugin.train.stage2 import load_localizer

    d = tmp_path_factory.mktemp("engine")
    torch.manual_seed(3)
    model = WGAPClassifier("resnet18", len(CLASSES)).eval()
    config = {**model.config, "image_size": 64}
    clf = d / "clf.pt"
    save_checkpoint(
        clf,
        {
            "kind": "classifier",
            "config": config,
            "classes": CLASSES,
            "state_dict": model.state_dict(),
        },
    )
    loc_model = build_localizer(model, "unet")
    with torch.no_grad():  # spread the untrained ~0.48 map
        loc_model.head.segmentation_head[0].weight.mul_(100.0)
    loc = d / "loc.pt"
    save_checkpoint(
        loc,
        {
            "kind": "localizer",
            "config": {"head": "unet", "method": "colocam", "image_size": 64},
            "classifier_config": config,
            "classes": CLASSES,
            "state_dict": loc_model.state_dict(),
        },
    )
    images = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 255
    return {"clf": clf, "loc": loc, "loc_model": load_localizer(loc), "x": images}


def test_engine_localizer_float32_equals_two_pass(live):
    """One encoder pass (channels_last, inference mode) == classifier(x) + head(features(x))."""
    from colocam_plugin.localize import CAMEngine

    engine = CAMEngine(live["clf"], localizer=live["loc"], amp="none")
    assert engine.model is None and engine.precision == "float32" and engine.image_size == 64
    cams, probs = engine(live["x"])
    ref = live["loc_model"]
    with torch.no_grad():
        ref_probs = ref.classifier(live["x"]).softmax(1)
        ref_cams = ref.head(ref.classifier.features(live["x"])).softmax(1)[:, 1]
    assert cams.shape == (5, 64, 64) and probs.shape == (5, len(CLASSES))
    assert cams.dtype == probs.dtype == np.float32 and cams.flags.c_contiguous
    assert ref_cams.std() > 0.03
    np.testing.assert_allclose(cams, ref_cams.numpy(), atol=1e-5)
    np.testing.assert_allclose(probs, ref_probs.numpy(), atol=1e-5)


def test_engine_localizer_bf16_boxes_close(live):
    from colocam_plugin.localize import CAMEngine

    engine = CAMEngine(live["clf"], localizer=live["loc"], amp="bf16")
    assert engine.precision == "bf16"
    cams, _ = engine(live["x"])
    ref, _ = CAMEngine(live["clf"], localizer=live["loc"], amp="none")(live["x"])
    assert cams.dtype == np.float32
    assert 0 < np.abs(cams - ref).max() < 0.03


def test_engine_layercam_unchanged_by_frozen_channels_last(live):
    """The CAM-method path (frozen classifier, channels_last) == the method on the plain model."""
    from colocam_plugin.api import create_cam_method
    from colocam_plugin.localize import CAMEngine
    from colocam_plugin.train.stage1 import load_classifier

    engine = CAMEngine(live["clf"], method="layercam", amp="bf16")  # amp: localizer only
    assert engine.precision == "float32"
    assert engine.model is not None
    assert not any(p.requires_grad for p in engine.model.parameters())
    targets = torch.tensor([0, 1, 1, 0, 1])
    cams, probs = engine(live["x"], targets)
    plain = load_classifier(live["clf"])  # as before: NCHW, parameters requiring grad
    assert all(p.requires_grad for p in plain.parameters())
    ref = create_cam_method("layercam")(plain, live["x"], targets)
    assert ref.cams.std() > 0.01
    np.testing.assert_allclose(cams, ref.cams.numpy(), atol=1e-4)
    np.testing.assert_allclose(probs, ref.logits.softmax(1).numpy(), atol=1e-5)


def test_amp_flag_and_precision_in_summary(files, tmp_path, capsys):
    argv = [files["video"], "--classifier", files["clf"], "--localizer", files["loc"]]
    assert _run("localize", *argv, "--out", tmp_path, "--amp", "none", "--no-progress") == 0
    assert capsys.readouterr().out.startswith("colocam (float32): 9 frames")
    try:
        rc = _run("localize", *argv, "--out", tmp_path, "--amp", "fp8")
    except SystemExit as exc:  # argparse's own exit
        rc = int(exc.code or 0)
    assert rc == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err


class _FixedEngine:
    """Uniform CAMs and the given class probabilities, one row per frame."""

    classes = ("a", "b", "c", "d")
    image_size = 16
    name = "fixed"

    def __init__(self, probs: list[list[float]]) -> None:
        self.probs = np.asarray(probs, dtype=np.float32)
        self.pos = 0

    def __call__(self, images, targets=None):
        n = len(images)
        p = self.probs[self.pos : self.pos + n]
        self.pos += n
        cams = np.zeros((n, 16, 16), np.float32)
        cams[:, 4:12, 4:12] = 1
        return cams, p


@pytest.mark.parametrize(
    ("probs", "top", "absent"),
    [
        ([0.05, 0.35, 0.3, 0.3], 0.5, True),  # class under chance (1/4), nothing sure: absent
        ([0.05, 0.9, 0.03, 0.02], 0.5, False),  # another class sure: an object is in view
        ([0.05, 0.9, 0.03, 0.02], 1.0, True),  # --absent-top 1: the class test alone
        ([0.0, 1.0, 0.0, 0.0], 1.0, True),  # ... even where a softmax reaches 1.0
        ([0.3, 0.3, 0.2, 0.2], 0.5, False),  # class above chance: present
    ],
)
def test_absent_rule(probs, top, absent):
    from colocam_plugin.data.videos import DecodedFrame
    from colocam_plugin.localize import localize_stream

    frames = (DecodedFrame(i, i / 25, np.zeros((20, 20, 3), np.uint8)) for i in range(3))
    engine = _FixedEngine([probs] * 3)
    out = list(
        localize_stream(
            frames, engine, video="v", class_index=0, temporal=True, absent_top=top, window=3
        )
    )
    assert [r.box is None for r in out] == [absent] * 3
    assert all(r.class_name == "a" and r.score == pytest.approx(probs[0]) for r in out)
