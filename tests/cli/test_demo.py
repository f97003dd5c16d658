"""``colocam demo --quick``: the make-demo pipeline end to end on tiny data."""

from __future__ import annotations

import json

import torch

from colocam_plugin.cli.main import main
from colocam_plugin.recipes import STAGE1_LR, SYNTHYTO_COLOC_WEIGHT


def _config(path):
    return torch.load(path, map_location="cpu", weights_only=False)["config"]


def _coloc_weight(path):
    return _config(path)["coloc_weight"]


def test_demo_quick_trains_and_scores_every_method(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-progress", "--out", str(out)]) == 0
    scores = json.loads((out / "results.json").read_text())
    assert set(scores) == {"cam", "gradcam", "gradcampp", "xgradcam", "layercam"} | {
        "fcam",
        "tcam",
        "colocam",
    }
    assert all(0.0 <= s["corloc"] <= 100.0 for s in scores.values())
    assert (out / "gallery.png").stat().st_size > 0
    assert _coloc_weight(out / "colocam.pt") == SYNTHYTO_COLOC_WEIGHT
    assert _config(out / "classifier.pt")["lr"] == STAGE1_LR  # not Stage1Config's paper 1e-3


def test_demo_coloc_weight_reaches_the_checkpoint(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--no-progress", "--out", str(out), "--localizers", "colocam"]
    assert main([*argv, "--methods", "layercam", "--coloc-weight", "0.7"]) == 0
    assert _coloc_weight(out / "colocam.pt") == 0.7


def test_demo_runs_the_recipe_on_a_given_dataset(tmp_path):
    # a real-photo YTO v1.0 tree the demo did not generate
    from colocam_plugin.data.realyto import RealYTOConfig, generate_realyto

    root = generate_realyto(tmp_path / "tree", RealYTOConfig.tiny())
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--no-progress", "--out", str(out), "--methods", "layercam"]
    assert main([*argv, "--dataset", "yto-v1.0", "--root", str(root)]) == 0
    scores = json.loads((out / "results.json").read_text())
    assert set(scores) == {"layercam", "fcam", "tcam", "colocam"}
    assert all(0.0 <= s["corloc"] <= 100.0 for s in scores.values())
    assert not (out / "synthyto").exists()  # nothing generated


def test_demo_root_without_dataset_is_a_one_line_error(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "d"), "--root", str(tmp_path)]) != 0
    assert "--root needs --dataset" in capsys.readouterr().err
