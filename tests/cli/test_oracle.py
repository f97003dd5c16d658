"""Oracle: CAMs equal to the ground-truth boxes score 100 through the whole
``colocam evaluate`` path (reader, resize, CAM method from the registry, box
extraction, accumulators, JSON).

The frames are black with white rectangles exactly where ``boxes.csv`` puts
the boxes; the oracle method returns the frame's brightness as its CAM, so the
CAM is the ground-truth box mask. Frames are not square and the boxes are not
aligned to the resize grid, so the path's coordinate handling is exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colocam_plugin import api, hookimpl
from colocam_plugin.api import build_registries
from colocam_plugin.cam.base import CAMOutput
from colocam_plugin.cli.main import main
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.plugins import get_plugin_manager
from colocam_plugin.train.checkpoint import save_checkpoint

#: (shot, frame name, class, boxes) -- boxes 0-based inclusive, original pixels
FRAMES = [
    ("cats/a", "000.png", "cat", [(5, 7, 40, 30)]),
    ("cats/a", "001.png", "cat", [(9, 3, 51, 44)]),
    ("dogs/b", "000.png", "dog", [(0, 0, 20, 15)]),
    ("dogs/b", "001.png", "dog", [(30, 20, 71, 47)]),
    ("dogs/c", "000.png", "dog", [(11, 13, 29, 41)]),
]
SIZE = (48, 72)  # H, W


class _Oracle:
    name = "oracle"

    def __call__(self, model, images, targets=None):  # type: ignore[no-untyped-def]
        cams = images.float().mean(1) / 255.0
        return CAMOutput(cams, torch.zeros(images.shape[0], 2, device=images.device))


class _OraclePlugin:
    @hookimpl
    def colocam_register_cam_methods(self, registry):  # type: ignore[no-untyped-def]
        registry.add("oracle", _Oracle, help="CAM = the ground-truth box mask")


def _write_tree(root: Path) -> None:
    rows = ["shot,frame,x0,y0,x1,y1"]
    for shot, name, _, boxes in FRAMES:
        img = np.zeros((*SIZE, 3), dtype=np.uint8)
        for x0, y0, x1, y1 in boxes:
            img[y0 : y1 + 1, x0 : x1 + 1] = 255
            rows.append(f"{shot},{name},{x0},{y0},{x1},{y1}")
        (root / shot).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / shot / name)
    labels = {shot: cls for shot, _, cls, _ in FRAMES}
    (root / "labels.csv").write_text(
        "shot,label\n" + "".join(f"{s},{c}\n" for s, c in labels.items())
    )
    (root / "boxes.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def oracle_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = get_plugin_manager(autoload=False)
    pm.register(_OraclePlugin(), name="oracle_plugin")
    monkeypatch.setattr(api, "_cache", build_registries(pm))


@pytest.mark.parametrize("image_size", [100])
def test_cams_equal_to_boxes_score_100(
    tmp_path: Path, oracle_registered: None, image_size: int
) -> None:
    _write_tree(tmp_path / "data")
    model = WGAPClassifier("resnet18", 2, weights=None)
    clf = save_checkpoint(
        tmp_path / "clf.pt",
        {
            "kind": "classifier",
            "config": model.config,
            "classes": ["cat", "dog"],
            "state_dict": model.state_dict(),
        },
    )
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--dataset", "frames", "--root", str(tmp_path / "data")]
    argv += ["--classifier", str(clf), "--methods", "oracle", "--json", str(out)]
    argv += ["--image-size", str(image_size), "--no-progress"]
    assert main(argv) == 0
    scores = json.loads(out.read_text())["oracle"]
    assert scores["num_frames"] == len(FRAMES)
    assert scores["corloc"] == pytest.approx(100.0)
    assert scores["maxboxacc"] == pytest.approx(100.0)
    assert scores["maxboxacc_v2"] == pytest.approx(100.0)
