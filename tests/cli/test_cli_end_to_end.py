"""The whole job through the CLI on a tiny SynthYTO tree (one epoch each)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from colocam_plugin.cli.main import main
from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
from colocam_plugin.train.stage2 import LOG_COLUMNS

SCORE_KEYS = {
    "corloc",
    "corloc_pooled",
    "maxboxacc",
    "maxboxacc_v2",
    "pxap",
    "per_class",
    "best_thresholds",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    generate_synthyto(d / "data", SynthYTOConfig.tiny())
    return d


def _cli(*argv: str) -> int:
    return main([str(a) for a in argv])


def test_train_evaluate_and_score(run_dir, capsys):
    d = run_dir
    common = ["--dataset", "yto-v1.0", "--root", d / "data", "--no-progress"]
    assert (
        _cli(
            "train-classifier",
            *common,
            "--encoder",
            "resnet18",
            "--epochs",
            "1",
            "--image-size",
            "64",
            "--out",
            d / "clf.pt",
        )
        == 0
    )
    assert "classifier saved to" in capsys.readouterr().out
    for method in ("colocam", "tcam"):
        assert (
            _cli(
                "train",
                *common,
                "--method",
                method,
                "--classifier",
                d / "clf.pt",
                "--epochs",
                "1",
                "--batch-frames",
                "8",
                "--crf-step",
                "0.5",
                "--eval-split",
                "val",
                "--eval-every",
                "1",
                "--keep-best",
                "--out",
                d / f"{method}.pt",
            )
            == 0
        )
    with (d / "colocam.pt.log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == LOG_COLUMNS
    for term in ("pl", "crf", "asc", "coloc"):
        # every term is logged with its value and its pull on the decoder's output
        assert all(float(r[term]) == float(r[term]) and float(r[f"grad_{term}"]) > 0 for r in rows)
    # a validation curve: one row per step (--eval-every 1), CorLoc in [0, 100]
    with (d / "colocam.pt.val.csv").open() as f:
        curve = list(csv.DictReader(f))
    assert [int(r["step"]) for r in curve] == [int(r["step"]) for r in rows]
    assert all(0.0 <= float(r["corloc"]) <= 100.0 for r in curve)
    # --keep-best: the weights of the best val CorLoc, a loadable localizer checkpoint
    import torch

    best = torch.load(d / "colocam.best.pt", map_location="cpu", weights_only=False)
    assert best["val"]["corloc"] == pytest.approx(max(float(r["corloc"]) for r in curve))
    assert best["kind"] == "localizer" and best["classes"]
    with (d / "tcam.pt.log.csv").open() as f:
        tcam_rows = list(csv.DictReader(f))
    assert tcam_rows and all(r["coloc"] == "" and r["grad_coloc"] == "" for r in tcam_rows)
    # pseudo-label CAMs were cached once, next to the checkpoints
    assert len(list((d / "cam_cache").glob("cams-layercam-64-*.pt"))) == 1

    assert (
        _cli(
            "evaluate",
            *common,
            "--classifier",
            d / "clf.pt",
            "--methods",
            "cam,layercam",
            "--localizers",
            f"{d / 'colocam.pt'},{d / 'tcam.pt'}",
            "--json",
            d / "ev.json",
            "--save-cams",
            d / "cams",
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| layercam |" in table and "| colocam |" in table and "| tcam |" in table
    ev = json.loads((d / "ev.json").read_text())
    assert set(ev) == {"cam", "layercam", "colocam", "tcam"}
    # each localizer's entry names the file it came from; CAM methods have none
    assert ev["colocam"]["checkpoint"] == str(d / "colocam.pt")
    assert ev["tcam"]["checkpoint"] == str(d / "tcam.pt")
    assert "checkpoint" not in ev["layercam"]
    assert all(0.0 <= s["pxap"] <= 100.0 for s in ev.values())  # SynthYTO has masks
    for scores in ev.values():
        assert SCORE_KEYS <= set(scores)
        assert 0.0 <= scores["corloc"] <= 100.0

    # the saved CAMs re-score to the same numbers through `colocam score`
    assert _cli("score", d / "cams" / "colocam.npz", "--json", d / "re.json") == 0
    rescored = json.loads((d / "re.json").read_text())
    assert rescored["corloc"] == pytest.approx(ev["colocam"]["corloc"])
    assert rescored["maxboxacc_v2"] == pytest.approx(ev["colocam"]["maxboxacc_v2"])

    # a classifier trained on other classes is refused, with both lists shown
    # (scoring it would print a confident, meaningless CorLoc)
    import torch

    ckpt = torch.load(d / "clf.pt", map_location="cpu", weights_only=False)
    ckpt["classes"] = ["cat", "dog"]
    torch.save(ckpt, d / "other.pt")
    common_eval = ["evaluate", *common, "--methods", "layercam"]
    assert _cli(*common_eval, "--classifier", d / "other.pt") != 0
    err = capsys.readouterr().err
    assert "trained on classes ['cat', 'dog']" in err and "'aeroplane'" in err
    assert "Traceback" not in err
    train_argv = ["train", *common, "--method", "fcam", "--out", d / "x.pt"]
    assert _cli(*train_argv, "--classifier", d / "other.pt") != 0
    assert "trained on classes ['cat', 'dog']" in capsys.readouterr().err
    assert not (d / "x.pt").exists()


def test_data_info_counts(run_dir, tmp_path):
    out = tmp_path / "info.json"
    assert (
        _cli(
            "data-info",
            "--dataset",
            "yto-v1.0",
            "--root",
            run_dir / "data",
            "--split",
            "test",
            "--json",
            out,
        )
        == 0
    )
    info = json.loads(out.read_text())
    manifest = json.loads((run_dir / "data" / "synthyto.json").read_text())
    assert info["frames"] > 0 and info["boxes"] >= info["frames"]
    assert sum(info["per_class"].values()) == info["frames"]
    assert set(info) == {"videos", "shots", "frames", "boxes", "per_class"}
    assert manifest["config"]["num_classes"] == sum(1 for v in info["per_class"].values() if v)


def test_bad_checkpoint_is_one_line_error(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    code = _cli(
        "evaluate",
        "--dataset",
        "yto-v1.0",
        "--root",
        run_dir / "data",
        "--classifier",
        bad,
        "--no-progress",
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("colocam: error: ") and "bad.pt" in err[-1]


def test_score_rejects_bad_npz(tmp_path, capsys):
    path = tmp_path / "c.npz"
    np.savez(path, cams=np.full((2, 8, 8), 1.5), labels=np.zeros(2, int), boxes=np.zeros((1, 5)))
    assert _cli("score", path) == 2
    err = capsys.readouterr().err.strip()
    assert "c.npz" in err and "cams" in err and len(err.splitlines()) == 1
