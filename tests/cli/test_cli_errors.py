"""One error path: every bad input exits non-zero with ONE line naming the culprit.

Table-driven: each case is a command line built from a tiny workspace (a
"frames" tree, a fake checkpoint file, a plain file and a folder) and the
strings its one-line error must contain. Every case also checks that no
traceback is printed and that nothing is left behind in the workspace
(no output, no temporary file). Most cases fail while parsing (no model,
no data read); the others fail before any training starts.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from colocam_plugin.cli.main import main
from colocam_plugin.data.testing import write_frames_tree, write_wsol_metadata, write_yto_v1_tree

#: builds the argv of a case from the workspace folder
Argv = Callable[[Path], list[str]]


def _frames(w: Path) -> list[str]:
    return ["--dataset", "frames", "--root", str(w / "frames")]


def _train(w: Path) -> list[str]:
    return ["train", *_frames(w), "--classifier", str(w / "clf.pt"), "--out", str(w / "o.pt")]


def _classifier(w: Path) -> list[str]:
    return ["train-classifier", *_frames(w), "--out", str(w / "o.pt")]


def _evaluate(w: Path) -> list[str]:
    return ["evaluate", *_frames(w), "--classifier", str(w / "clf.pt"), "--split", "test"]


def _npz(w: Path, name: str, **arrays: np.ndarray) -> str:
    path = w / name
    np.savez(path, **arrays)
    return str(path)


def _no_frames(w: Path, command: str, *extra: str, junk: bool = False) -> list[str]:
    """``command`` on the frames tree after deleting every frame (or making it junk)."""
    for frame in [*(w / "frames").rglob("*.jpg"), *(w / "frames").rglob("*.png")]:
        if junk:
            frame.write_bytes(b"junk")
        else:
            frame.unlink()
    return [command, *_frames(w), *extra]


def _truncated_frame(w: Path, *extra: str) -> list[str]:
    """``data-info`` on the frames tree after cutting the end off one JPEG frame."""
    frame = w / "frames" / "walk_b" / "b.jpg"
    frame.write_bytes(frame.read_bytes()[:-200])
    return ["data-info", *_frames(w), *extra]


#: (case id, argv builder, strings the error line must contain)
CASES: list[tuple[str, Argv, tuple[str, ...]]] = [
    # ---- values out of range, refused when parsed
    ("score-thresholds-0", lambda w: ["score", str(w / "ok.npz"), "--thresholds", "0"],
     ("--thresholds", "'0'")),
    ("score-thresholds-text", lambda w: ["score", str(w / "ok.npz"), "--thresholds", "many"],
     ("--thresholds", "'many'")),
    ("evaluate-batch-size-0", lambda w: [*_evaluate(w), "--batch-size", "0"], ("--batch-size",)),
    ("evaluate-image-size-0", lambda w: [*_evaluate(w), "--image-size", "0"], ("--image-size",)),
    ("evaluate-thresholds-neg", lambda w: [*_evaluate(w), "--thresholds", "-5"],
     ("--thresholds", "'-5'")),
    ("evaluate-device-tpu", lambda w: [*_evaluate(w), "--device", "tpu"], ("--device", "'tpu'")),
    ("train-n-frames-0", lambda w: [*_train(w), "--n-frames", "0"], ("--n-frames", "'0'")),
    ("train-batch-frames-0", lambda w: [*_train(w), "--batch-frames", "0"], ("--batch-frames",)),
    ("train-epochs-0", lambda w: [*_train(w), "--epochs", "0"], ("--epochs",)),
    ("train-lr-0", lambda w: [*_train(w), "--lr", "0"], ("--lr", "'0'")),
    ("train-lr-nan", lambda w: [*_train(w), "--lr", "nan"], ("--lr", "'nan'")),
    ("train-coloc-weight-neg", lambda w: [*_train(w), "--coloc-weight", "-1"],
     ("--coloc-weight",)),
    ("train-crf-step-0", lambda w: [*_train(w), "--crf-step", "0"], ("--crf-step",)),
    ("train-tcam-k-neg", lambda w: [*_train(w), "--tcam-k", "-1"], ("--tcam-k",)),
    ("train-eval-every-neg", lambda w: [*_train(w), "--eval-every", "-2"], ("--eval-every",)),
    ("train-unknown-term", lambda w: [*_train(w), "--terms", "pl,colour"], ("--terms", "colour")),
    ("train-no-term", lambda w: [*_train(w), "--terms", ","], ("--terms",)),
    ("train-eval-split-dev", lambda w: [*_train(w), "--eval-split", "dev"],
     ("--eval-split", "'dev'")),
    ("classifier-batch-size-0", lambda w: [*_classifier(w), "--batch-size", "0"],
     ("--batch-size",)),
    ("classifier-image-size-0", lambda w: [*_classifier(w), "--image-size", "0"],
     ("--image-size",)),
    ("classifier-seed-neg", lambda w: [*_classifier(w), "--seed", "-1"], ("--seed",)),
    ("classifier-output-stride-7", lambda w: [*_classifier(w), "--output-stride", "7"],
     ("--output-stride",)),
    ("demo-image-size-0", lambda w: ["demo", "--out", str(w / "demo"), "--image-size", "0"],
     ("--image-size",)),
    ("demo-unknown-localizer", lambda w: ["demo", "--out", str(w / "d"), "--localizers", "gcam"],
     ("--localizers", "gcam")),
    ("unknown-command", lambda w: ["trian"], ("'trian'",)),
    ("unknown-flag", lambda w: ["score", str(w / "ok.npz"), "--tresholds", "9"],
     ("--tresholds",)),
    ("missing-required", lambda w: ["train", *_frames(w), "--out", str(w / "o.pt")],
     ("--classifier",)),
    # ---- paths of the wrong kind, refused when parsed (nothing is written)
    ("train-out-is-folder", lambda w: [*_train(w)[:-1], str(w / "folder")], ("--out", "folder")),
    ("classifier-out-is-folder", lambda w: [*_classifier(w)[:-1], str(w / "folder")],
     ("--out", "folder")),
    ("out-under-a-file", lambda w: [*_classifier(w)[:-1], str(w / "plain.txt" / "o.pt")],
     ("--out", "plain.txt")),
    ("evaluate-save-cams-is-file", lambda w: [*_evaluate(w), "--save-cams", str(w / "plain.txt")],
     ("--save-cams", "plain.txt")),
    ("evaluate-json-is-folder", lambda w: [*_evaluate(w), "--json", str(w / "folder")],
     ("--json", "folder")),
    ("score-json-is-folder", lambda w: ["score", str(w / "ok.npz"), "--json", str(w / "folder")],
     ("--json", "folder")),
    ("data-info-json-is-folder",
     lambda w: ["data-info", *_frames(w), "--json", str(w / "folder")], ("--json", "folder")),
    ("demo-out-is-file", lambda w: ["demo", "--out", str(w / "plain.txt")],
     ("--out", "plain.txt")),
    ("train-cache-dir-is-file", lambda w: [*_train(w), "--cache-dir", str(w / "plain.txt")],
     ("--cache-dir", "plain.txt")),
    ("score-missing-file", lambda w: ["score", str(w / "nothere.npz")], ("nothere.npz",)),
    ("score-folder-as-file", lambda w: ["score", str(w / "folder")], ("folder",)),
    ("evaluate-missing-classifier", lambda w: ["evaluate", *_frames(w), "--classifier",
     str(w / "no.pt")], ("--classifier", "no.pt")),
    ("evaluate-missing-localizer", lambda w: [*_evaluate(w), "--localizers",
     f"{w / 'clf.pt'},{w / 'gone.pt'}"], ("--localizers", "gone.pt")),
    ("classifier-missing-weights", lambda w: [*_classifier(w), "--weights", str(w / "w.pth")],
     ("--weights", "w.pth")),
    ("metadata-root-missing", lambda w: ["data-info", "--dataset", "wsol-splits", "--root",
     str(w / "yto"), "--metadata-root", str(w / "nometa")], ("--metadata-root", "nometa")),
    # ---- checks across flags or against the registries, before any work
    ("train-n-frames-over-batch", lambda w: [*_train(w), "--n-frames", "8", "--batch-frames",
     "4"], ("--n-frames 8", "--batch-frames 4")),
    ("train-keep-best-alone", lambda w: [*_train(w), "--keep-best"],
     ("--keep-best", "--eval-split")),
    ("train-unknown-pl-method", lambda w: [*_train(w), "--pl-method", "gradcm"], ("'gradcm'",)),
    ("train-unknown-head", lambda w: [*_train(w), "--head", "fpn9"], ("'fpn9'",)),
    ("classifier-resize-below-crop", lambda w: [*_classifier(w), "--image-size", "64",
     "--resize", "32"], ("--resize 32", "--image-size 64")),
    ("evaluate-unknown-method", lambda w: [*_evaluate(w), "--methods", "gradcm"], ("'gradcm'",)),
    ("evaluate-nothing", lambda w: [*_evaluate(w), "--methods", ""], ("--methods",)),
    ("demo-unknown-method", lambda w: ["demo", "--out", str(w / "d"), "--methods", "gradcm"],
     ("'gradcm'",)),
    ("demo-root-without-dataset", lambda w: ["demo", "--out", str(w / "d"), "--root", str(w),
     "--methods", "cam"], ("--root", "--dataset")),
    # ---- data: wrong split, missing metadata, broken files
    ("frames-split-val", lambda w: ["data-info", *_frames(w), "--split", "val"],
     ("split 'val'", "train, test")),
    ("evaluate-frames-split-val", lambda w: [*_evaluate(w)[:-1], "val"], ("split 'val'",)),
    ("wsol-without-metadata-root", lambda w: ["data-info", "--dataset", "wsol-splits", "--root",
     str(w / "yto")], ("--metadata-root",)),
    ("data-info-truncated-jpeg", _truncated_frame, ("b.jpg", "truncated")),
    ("data-info-truncated-jpeg-decode", lambda w: _truncated_frame(w, "--decode"), ("b.jpg",)),
    ("data-info-empty-split", lambda w: _no_frames(w, "data-info"),
     ("split 'train'", "no frames", "empty_shots=3")),
    ("classifier-empty-split", lambda w: _no_frames(w, "train-classifier", "--out",
     str(w / "o.pt")), ("split 'train'", "no frames")),
    ("data-info-all-skipped", lambda w: _no_frames(w, "data-info", "--skip-unreadable", junk=True),
     ("split 'train'", "no frames", "unreadable_frames=7")),
    ("evaluate-bad-checkpoint", lambda w: [*_evaluate(w), "--methods", "cam"], ("clf.pt",)),
    ("score-garbage-npz", lambda w: ["score", str(w / "plain.txt")], ("plain.txt",)),
    ("score-nan-cams", lambda w: ["score", _npz(w, "nan.npz", cams=np.full((2, 4, 4), np.nan),
     labels=np.zeros(2, int), boxes=np.zeros((1, 5)))], ("nan.npz", "'cams'", "NaN")),
    ("score-cams-2d", lambda w: ["score", _npz(w, "flat.npz", cams=np.zeros((4, 4)),
     labels=np.zeros(2, int), boxes=np.zeros((1, 5)))], ("flat.npz", "'cams'", "(4, 4)")),
    ("score-int-labels-dtype", lambda w: ["score", _npz(w, "lab.npz", cams=np.zeros((2, 4, 4)),
     labels=np.zeros(2), boxes=np.zeros((1, 5)))], ("lab.npz", "'labels'", "float64")),
    ("score-zero-boxes", lambda w: ["score", _npz(w, "nobox.npz", cams=np.zeros((2, 4, 4)),
     labels=np.zeros(2, int), boxes=np.zeros((0, 5)))], ("nobox.npz", "'boxes'")),
    ("score-box-outside", lambda w: ["score", _npz(w, "big.npz", cams=np.zeros((2, 4, 4)),
     labels=np.zeros(2, int), boxes=np.array([[0, 0, 0, 9, 3]]))], ("big.npz", "row 0")),
]  # fmt: skip


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frames tree and a v1.0 tree with wsol metadata, written once."""
    root = tmp_path_factory.mktemp("trees")
    write_frames_tree(root / "frames")
    write_yto_v1_tree(root / "yto")
    write_wsol_metadata(root / "yto" / "meta")
    return root


@pytest.fixture
def workspace(tmp_path: Path, trees: Path) -> Path:
    """Copies of the trees, a junk checkpoint, a plain file, a folder and a valid npz."""
    for name in ("frames", "yto"):
        shutil.copytree(trees / name, tmp_path / name)
    (tmp_path / "clf.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "plain.txt").write_text("a plain file\n")
    (tmp_path / "folder").mkdir()
    np.savez(
        tmp_path / "ok.npz",
        cams=np.zeros((1, 4, 4)),
        labels=np.zeros(1, int),
        boxes=np.zeros((1, 5)),
    )
    return tmp_path


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("argv", "culprits"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], argv: Argv, culprits: tuple[str, ...]
) -> None:
    args = argv(workspace)
    before = _listing(workspace)
    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("colocam"), lines
    assert "error:" in lines[0], lines
    for text in culprits:
        assert text in lines[0], lines[0]
    assert _listing(workspace) == before  # no output, no temporary file


def test_cases_are_distinct() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 50


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_gpu(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*_evaluate(workspace), "--device", "cuda"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and "--device cuda" in lines[0] and "--device cpu" in lines[0]


def test_debug_shows_the_traceback(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--debug", "data-info", *_frames(workspace), "--split", "val"],
        ["data-info", *_frames(workspace), "--split", "val", "--debug"],  # after the command
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2
        assert "Traceback" in err and "UsageError" in err
        assert err.strip().splitlines()[-1].startswith("colocam: error: unknown split 'val'")


def test_a_bug_is_one_line_with_a_hint(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import colocam_plugin.data.info as info

    def broken(ds: object) -> dict[str, int]:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(info, "dataset_info", broken)
    code = main(["data-info", *_frames(workspace)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1, lines
    assert "unexpected RuntimeError: boom second line" in lines[0]
    assert "--debug" in lines[0]
    code = main(["--debug", "data-info", *_frames(workspace)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err


def test_help_and_version_still_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["score", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    assert "--thresholds" in capsys.readouterr().out


def test_good_input_still_works(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = workspace / "new" / "info.json"
    assert main(["data-info", *_frames(workspace), "--json", str(out), "--decode"]) == 0
    assert out.read_text().startswith("{")
    assert not [p for p in out.parent.iterdir() if p.name != "info.json"]  # no temp left
