"""The harness refuses CAMs it cannot score: wrong shape or dtype, NaN, all constant."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from colocam_plugin.cam.base import CAMOutput
from colocam_plugin.data.frames import load_frames
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.data.testing import write_frames_tree
from colocam_plugin.errors import DataError, ShapeError
from colocam_plugin.harness import evaluate_methods

SIZE = 16


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[FrameRecord]:
    root = tmp_path_factory.mktemp("frames")
    write_frames_tree(root)
    return list(load_frames(root, "test").frames)


class _Fake:
    """A CAM method returning ``make(batch)`` as its CAMs."""

    name = "fake"

    def __init__(self, make: Callable[[int], object]) -> None:
        self.make = make

    def __call__(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> object:
        cams = self.make(images.shape[0])
        return CAMOutput(cams, torch.zeros(images.shape[0], 2))  # type: ignore[arg-type]


def _run(frames: list[FrameRecord], make: Callable[[int], object]) -> dict[str, object]:
    res = evaluate_methods(
        nn.Identity(), frames, {"fake": _Fake(make)}, num_classes=2, image_size=SIZE,
        thresholds=10, progress=False,
    )  # fmt: skip
    return res["fake"].scores


def _blob(b: int) -> torch.Tensor:
    cams = torch.zeros(b, SIZE, SIZE)
    cams[:, 4:10, 3:12] = 1.0
    return cams


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda b: torch.zeros(b, 1, SIZE, SIZE), r"got \(2, 1, 16, 16\) float32"),
        (lambda b: torch.zeros(b + 1, SIZE, SIZE), r"B = 2, got \(3, 16, 16\)"),
        (lambda b: torch.zeros(b, SIZE, SIZE, dtype=torch.int64), r"\(2, 16, 16\) int64"),
        (lambda b: _blob(b).numpy(), "tensor cams"),
        (lambda b: _blob(b).index_fill(1, torch.tensor([0]), float("nan")), "NaN or inf"),
        (lambda b: torch.full((b, SIZE, SIZE), 0.5), "every CAM is constant"),
    ],
    ids=["4d", "batch", "int", "numpy", "nan", "constant"],
)
def test_bad_cams_are_a_shape_error(
    frames: list[FrameRecord], make: Callable[[int], object], message: str
) -> None:
    with pytest.raises(ShapeError, match=message) as err:
        _run(frames, make)
    assert "'fake'" in str(err.value) and "\n" not in str(err.value)


def test_some_constant_cams_are_counted(frames: list[FrameRecord]) -> None:
    def half(b: int) -> torch.Tensor:
        cams = _blob(b)
        cams[0] = 0.0
        return cams

    scores = _run(frames, half)
    assert scores["constant_cams"] == 1
    assert _run(frames, _blob)["constant_cams"] == 0


def test_no_frames_is_an_error(frames: list[FrameRecord]) -> None:
    with pytest.raises(DataError, match="no frames"):
        _run([], _blob)


def test_nan_names_the_frame(frames: list[FrameRecord]) -> None:
    def second_nan(b: int) -> torch.Tensor:
        cams = _blob(b)
        cams[1, 0, 0] = float("inf")
        return cams

    with pytest.raises(ShapeError) as err:
        _run(frames, second_nan)
    assert Path(str(frames[1].path)).name in str(err.value)
