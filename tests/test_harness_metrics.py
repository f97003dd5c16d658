"""The harness creates its metrics from the metrics registry.

A metric a plugin registers is computed for every method and its keys join
the scores (``colocam evaluate --json`` and the printed table) with no other
change; two metrics reporting one key stop the run with one line naming
both; the built-in scores are those of the accumulators fed directly; a
plugin metric pools across ranks by ``merge()``.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from colocam_plugin import api, distributed, hookimpl
from colocam_plugin.api import build_registries
from colocam_plugin.cam.base import CAMOutput
from colocam_plugin.cli.main import main
from colocam_plugin.data.frames import load_frames
from colocam_plugin.data.loading import load_eval_batch
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.data.testing import write_frames_tree
from colocam_plugin.errors import ColocamError, DuplicateNameError
from colocam_plugin.harness import evaluate_methods, format_table
from colocam_plugin.metrics import BoxAccumulator, PxAPAccumulator
from colocam_plugin.plugins import get_plugin_manager

SIZE = 32
THRESHOLDS = 20


# -- a test plugin: a CAM method and metrics ----------------------------------------------------
class _Brightness:
    """CAM = the frame's brightness (random frames: a noisy, deterministic map)."""

    name = "brightness"

    def __call__(self, model: nn.Module, images: torch.Tensor, targets: Any = None) -> CAMOutput:
        cams = images.float().mean(1) / 255.0
        logits = torch.zeros(images.shape[0], 2, device=images.device)
        logits[:, 1] = 1.0  # top-1: class 1
        return CAMOutput(cams, logits)


class PeakHits:
    """Frames with a box whose CAM peak lies in one; records its context and update arguments."""

    def __init__(self, *, thresholds: int, num_classes: int, **context: Any) -> None:
        self.context = {"thresholds": thresholds, "num_classes": num_classes, **context}
        self.hits = 0
        self.frames = 0
        self.given: set[str] = set()

    def update(self, cams: Any, boxes: Any, **kwargs: Any) -> None:
        self.given |= {"cams", "boxes", *kwargs}
        for cam, frame_boxes in zip(np.asarray(cams), boxes, strict=True):
            if len(frame_boxes) == 0:
                continue
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            b = np.asarray(frame_boxes)
            inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
            self.hits += int(inside.any())
            self.frames += 1

    def merge(self, other: PeakHits) -> PeakHits:
        self.hits += other.hits
        self.frames += other.frames
        return self

    def compute(self) -> dict[str, Any]:
        return {"peak_hits": self.hits, "peak_frames": self.frames}


class MaskFrames:
    """Requires ``masks``: not updated on data without them."""

    def __init__(self, **context: Any) -> None:
        self.frames = 0

    def update(self, masks: Any) -> None:
        self.frames += len(masks)

    def merge(self, other: MaskFrames) -> MaskFrames:
        self.frames += other.frames
        return self

    def compute(self) -> dict[str, int]:
        return {"mask_frames": self.frames}


class _Reports:
    """A metric reporting ``key``; with ``empty_fails``, compute() fails before any update."""

    def __init__(self, key: str, *, empty_fails: bool = False) -> None:
        self.key, self.empty_fails, self.seen = key, empty_fails, 0

    def update(self, cams: Any) -> None:
        self.seen += len(cams)

    def compute(self) -> dict[str, float]:
        if self.empty_fails and not self.seen:
            raise ZeroDivisionError("no frames")
        return {self.key: 1.0}


class _Plugin:
    def __init__(self, **metrics: Callable[..., Any]) -> None:
        self.metrics = metrics

    @hookimpl
    def colocam_register_cam_methods(self, registry: Any) -> None:
        registry.add("brightness", _Brightness)

    @hookimpl
    def colocam_register_metrics(self, registry: Any) -> None:
        for name, factory in self.metrics.items():
            registry.add(name, factory)


def _use(monkeypatch: pytest.MonkeyPatch, **metrics: Callable[..., Any]) -> None:
    """The registries: the built-ins plus a plugin named ``testmetrics`` adding ``metrics``."""
    pm = get_plugin_manager(autoload=False)
    pm.register(_Plugin(**metrics), name="testmetrics")
    monkeypatch.setattr(api, "_cache", build_registries(pm))


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[FrameRecord]:
    """The frames tree's test then train frames: 9, 2 with boxes, classes cat and person."""
    root = tmp_path_factory.mktemp("frames")
    write_frames_tree(root)
    return [*load_frames(root, "test").frames, *load_frames(root, "train").frames]


def _boxed(frames: list[FrameRecord]) -> int:
    return sum(len(f.boxes) > 0 for f in frames)


@pytest.fixture(scope="module")
def masked(
    frames: list[FrameRecord], tmp_path_factory: pytest.TempPathFactory
) -> list[FrameRecord]:
    """The same frames, each with a mask (its boxes filled; a corner where it has none)."""
    root = tmp_path_factory.mktemp("masks")
    out = []
    for i, f in enumerate(frames):
        w, h = Image.open(f.path).size
        m = np.zeros((h, w, 3), np.uint8)
        for x0, y0, x1, y1 in np.asarray(f.boxes, int).reshape(-1, 4):
            m[y0 : y1 + 1, x0 : x1 + 1] = 255
        if not m.any():
            m[: h // 3, : w // 3] = 255
        Image.fromarray(m).save(root / f"{i}.png")
        out.append(dataclasses.replace(f, mask_path=root / f"{i}.png"))
    return out


def _evaluate(frames: list[FrameRecord], **kw: Any) -> dict[str, Any]:
    res = evaluate_methods(
        nn.Identity(), frames, {"b": _Brightness()}, num_classes=2, image_size=SIZE,
        batch_size=2, thresholds=THRESHOLDS, progress=False, **kw,
    )  # fmt: skip
    return res["b"].scores


def _direct(frames: list[FrameRecord]) -> tuple[dict[str, Any], float | None]:
    """Box scores and PxAP of the accumulators fed every frame in one batch."""
    from colocam_plugin.harness import _load_masks

    images, boxes = load_eval_batch(frames, SIZE)
    out = _Brightness()(nn.Identity(), images)
    labels = np.array([f.label for f in frames])
    box = BoxAccumulator(thresholds=THRESHOLDS, num_classes=2)
    box.update(out.cams, labels, boxes, pred_labels=out.logits.argmax(1).numpy())
    if frames[0].mask_path is None:
        return box.compute(), None
    px = PxAPAccumulator(num_bins=THRESHOLDS)
    px.update(out.cams, _load_masks(frames, SIZE))
    return box.compute(), px.compute()["pxap"]


# -- the built-in scores -------------------------------------------------------------------------
@pytest.mark.parametrize("with_masks", [False, True], ids=["no-masks", "masks"])
def test_builtin_scores_are_the_accumulators(
    frames: list[FrameRecord], masked: list[FrameRecord], with_masks: bool
) -> None:
    data = masked if with_masks else frames
    scores = _evaluate(data)
    box, pxap = _direct(data)
    harness = ["constant_cams", "mean_iou", "frame_accuracy"]
    assert list(scores) == [*box, *harness, "pxap"]  # the keys, in the order they always had
    assert {k: scores[k] for k in box} == box
    assert scores["pxap"] == pxap
    assert (pxap is None) is (not with_masks)  # pxap only with masks
    person = sum(f.label == 1 for f in data)  # every top-1 is class 1
    assert scores["frame_accuracy"] == pytest.approx(100.0 * person / len(data))


def test_a_plugin_metric_changes_no_builtin_score(
    masked: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _evaluate(masked)
    _use(monkeypatch, peak=PeakHits, masks=MaskFrames)
    after = _evaluate(masked)
    assert json.dumps({k: after[k] for k in before}, default=float) == json.dumps(
        before, default=float
    )
    assert list(after) == [*before, "mask_frames", "peak_hits", "peak_frames"]  # plugins last


# -- the contract ------------------------------------------------------------------------------
def test_factory_context_and_update_arguments(
    frames: list[FrameRecord], masked: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[PeakHits] = []

    def peak(**context: Any) -> PeakHits:
        made.append(PeakHits(**context))
        return made[-1]

    _use(monkeypatch, peak=peak, masks=MaskFrames)
    scores = _evaluate(frames)
    assert made[0].context == {"thresholds": THRESHOLDS, "num_classes": 2}
    assert made[0].given == {"cams", "labels", "boxes", "pred_labels"}  # no masks to give
    assert scores["peak_frames"] == _boxed(frames) == 2  # the frames with a box
    assert scores["mask_frames"] == 0  # requires masks: never updated
    made.clear()
    scores = _evaluate(masked)
    assert made[0].given == {"cams", "labels", "boxes", "pred_labels", "masks"}
    assert scores["mask_frames"] == len(masked) == 9


def test_a_factory_without_kwargs_is_named(
    frames: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, strict=lambda: PeakHits(thresholds=1, num_classes=1))
    with pytest.raises(ColocamError, match=r"metric 'strict' \(plugin testmetrics\).*\*\*kwargs"):
        _evaluate(frames)


def test_an_update_argument_the_harness_lacks_is_named(
    frames: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Odd(PeakHits):
        def update(self, maps: Any, boxes: Any) -> None:  # type: ignore[override]
            pass

    _use(monkeypatch, odd=Odd)
    with pytest.raises(ColocamError, match=r"metric 'odd' .*requires 'maps'.*cams, labels"):
        _evaluate(frames)


def test_a_collision_found_after_the_run_names_the_harness(
    frames: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, late=lambda **_: _Reports("mean_iou", empty_fails=True))
    with pytest.raises(DuplicateNameError) as err:
        _evaluate(frames)
    assert str(err.value) == (
        "score 'mean_iou' is reported by both the harness and metric 'late' (plugin "
        "testmetrics); rename it in one of them or block a plugin (COLOCAM_BLOCK_PLUGINS)"
    )


def test_the_table_shows_plugin_scores(
    frames: list[FrameRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, peak=PeakHits, text=lambda **_: _Reports("note"))
    res = evaluate_methods(
        nn.Identity(), frames, {"b": _Brightness()}, num_classes=2, image_size=SIZE,
        thresholds=THRESHOLDS, progress=False,
    )  # fmt: skip
    res["b"].scores["note"] = "not a number"  # JSON only, no column
    lines = format_table(res, ["cat", "person"]).splitlines()
    assert lines[0].endswith("| frame acc | peak_hits | peak_frames |")
    assert lines[1].count("|---") == len(lines[0].split("|")) - 2
    hits, n = res["b"].scores["peak_hits"], res["b"].scores["peak_frames"]
    assert lines[2].endswith(f" | {hits} | {n} |")
    assert "peak_hits, peak_frames: plugin metrics" in lines[-1]


# -- `colocam evaluate` ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(frames tree, an untrained resnet18 checkpoint on its classes)."""
    from colocam_plugin.models.classifier import WGAPClassifier
    from colocam_plugin.train.checkpoint import save_checkpoint

    tmp = tmp_path_factory.mktemp("cli")
    write_frames_tree(tmp / "data")
    model = WGAPClassifier("resnet18", 2, weights=None)
    state = {"kind": "classifier", "config": model.config, "classes": ["cat", "person"]}
    clf = save_checkpoint(tmp / "clf.pt", {**state, "state_dict": model.state_dict()})
    return tmp / "data", clf


def _cli(inputs: tuple[Path, Path], out: Path) -> list[str]:
    data, clf = inputs
    argv = ["evaluate", "--dataset", "frames", "--root", str(data), "--classifier", str(clf)]
    argv += ["--methods", "brightness", "--image-size", str(SIZE), "--thresholds", "20"]
    return [*argv, "--json", str(out), "--no-progress", "--device", "cpu"]


def test_evaluate_shows_a_plugin_metric(
    cli_inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, peak=PeakHits)
    out = tmp_path / "scores.json"
    assert main(_cli(cli_inputs, out)) == 0
    scores = json.loads(out.read_text())["brightness"]
    assert scores["peak_frames"] == 2 and 0 <= scores["peak_hits"] <= 2  # the test split's
    assert scores["num_frames"] == 2 and scores["pxap"] is None  # the built-ins, as ever
    table = capsys.readouterr().out.splitlines()
    head = next(line for line in table if line.startswith("| method |"))
    row = next(line for line in table if line.startswith("| brightness |"))
    assert head.endswith("| peak_hits | peak_frames |")
    assert row.endswith(f" | {scores['peak_hits']} | 2 |")


def test_evaluate_refuses_two_metrics_with_one_key(
    cli_inputs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(monkeypatch, mine=lambda **_: _Reports("corloc"))
    out = tmp_path / "scores.json"
    assert main(_cli(cli_inputs, out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err == (
        "colocam: error: score 'corloc' is reported by both metric 'boxes' (plugin "
        "colocam_plugin.builtin.components) and metric 'mine' (plugin testmetrics); rename it "
        "in one of them or block a plugin (COLOCAM_BLOCK_PLUGINS)\n"
    )
    assert not out.exists()


# -- two ranks: a plugin metric pools by merge() --------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, port: int, frames: list[FrameRecord], out: Path) -> None:
    code = 1
    try:
        torch.set_num_threads(1)
        os.environ.update(
            RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
        )  # fmt: skip
        with distributed.session("cpu"):
            scores = _evaluate(frames)
        (out / f"rank{rank}.json").write_text(json.dumps(scores, sort_keys=True, default=float))
        code = 0
    except BaseException as exc:  # reported by the parent through the exit code
        (out / f"rank{rank}.error").write_text(repr(exc))
    finally:
        os._exit(code)


@pytest.mark.skipif(
    not torch.distributed.is_gloo_available() or "fork" not in mp.get_all_start_methods(),
    reason="needs gloo and fork",
)
def test_two_ranks_merge_a_plugin_metric(
    masked: list[FrameRecord], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, peak=PeakHits, masks=MaskFrames)
    # batches of 2, dealt 0, 1, 0, ...: each rank gets one of the two frames with a box
    data = [masked[2], masked[3], masked[0], masked[4], masked[1], *masked[5:]]
    assert [len(f.boxes) > 0 for f in data[:6]] == [False, False, True, False, True, False]
    single = json.loads(json.dumps(_evaluate(data), sort_keys=True, default=float))
    port = _free_port()
    ctx = mp.get_context("fork")  # the children inherit the registries with the test plugin
    procs = [ctx.Process(target=_rank, args=(r, port, data, tmp_path)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    errors = {p.name: p.read_text() for p in tmp_path.glob("*.error")}
    assert [p.exitcode for p in procs] == [0, 0], errors
    for r in (0, 1):  # every rank: the one-process scores, plugin metrics included
        assert json.loads((tmp_path / f"rank{r}.json").read_text()) == single
    assert single["peak_frames"] == 2 and single["mask_frames"] == 9
