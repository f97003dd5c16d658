"""Clip-consistent transforms: one draw moves frames, boxes, CAMs and masks alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from colocam_plugin.data.transforms import ClipParams, ClipTransform
from colocam_plugin.errors import ShapeError

H, W = 48, 64


def _marker_frame(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 2] = np.arange(W, dtype=np.uint8)[None, :]  # a ramp: makes flips visible
    img[y0 : y1 + 1, x0 : x1 + 1, 0] = 255
    return img


MARKERS = [(3, 30, 9, 36), (40, 5, 50, 12), (20, 20, 27, 26)]


def _clip():
    frames = [_marker_frame(*m) for m in MARKERS]
    boxes = [np.array([m], dtype=np.float64) for m in MARKERS]
    masks = [f[..., 0] == 255 for f in frames]
    return frames, boxes, masks


def _assert_marker_in_box(frame: torch.Tensor, box: np.ndarray) -> None:
    ys, xs = np.nonzero(frame[0].numpy() > 128)
    assert xs.size > 0, "marker lost"
    x0, y0, x1, y1 = box
    assert math.floor(x0) <= xs.min() and xs.max() <= math.ceil(x1)
    assert math.floor(y0) <= ys.min() and ys.max() <= math.ceil(y1)


def _generator_with_flip(t: ClipTransform, flip: bool) -> torch.Generator:
    for seed in range(100):
        if t.sample_params(torch.Generator().manual_seed(seed)).flip == flip:
            return torch.Generator().manual_seed(seed)
    raise AssertionError("no seed gives that flip")


@pytest.mark.parametrize("flip", [False, True])
def test_markers_stay_inside_their_boxes(flip):
    t = ClipTransform(resize=64, crop=56)
    frames, boxes, _ = _clip()
    out = t(frames, boxes, generator=_generator_with_flip(t, flip))
    assert out.params.flip is flip
    assert out.frames.shape == (3, 3, 56, 56) and out.frames.dtype == torch.float32
    assert 0 <= float(out.frames.min()) and float(out.frames.max()) <= 255
    for frame, box in zip(out.frames, out.boxes):
        assert box.shape == (1, 4)
        _assert_marker_in_box(frame, box[0])
    ramp = out.frames[0, 2, 28].numpy()  # the blue ramp runs left->right unless flipped
    assert bool(ramp[-1] < ramp[0]) == flip


def test_every_frame_gets_the_same_draw():
    t = ClipTransform(resize=80, crop=56)
    frame = _marker_frame(*MARKERS[0])
    for seed in range(5):
        out = t([frame] * 4, generator=torch.Generator().manual_seed(seed))
        assert all(torch.equal(out.frames[0], f) for f in out.frames[1:])
        alone = t([frame], params=out.params)  # replaying the draw on one frame agrees
        assert torch.equal(alone.frames[0], out.frames[0])


def test_cams_and_masks_follow_the_frames():
    t = ClipTransform(resize=72, crop=56)
    frames, boxes, masks = _clip()
    cams = [m.astype(np.float32)[::4, ::4] for m in masks]  # low-res CAM (12, 16)
    for flip in (False, True):
        out = t(frames, boxes, cams, masks, generator=_generator_with_flip(t, flip))
        assert out.cams.shape == out.masks.shape == (3, 56, 56)
        assert out.masks.dtype == torch.bool
        for k in range(3):
            red = out.frames[k, 0] > 128
            inter = (red & out.masks[k]).sum().item()
            union = (red | out.masks[k]).sum().item()
            assert inter / union > 0.8
            peak = np.unravel_index(int(out.cams[k].argmax()), (56, 56))
            assert out.masks[k][peak]  # the CAM's peak lands on the marker


def test_numpy_and_torch_generators_are_reproducible():
    t = ClipTransform(resize=64, crop=40)
    frames, boxes, _ = _clip()
    a = t(frames, boxes, generator=np.random.default_rng(5))
    b = t(frames, boxes, generator=np.random.default_rng(5))
    assert a.params == b.params and torch.equal(a.frames, b.frames)
    params = {t.sample_params(torch.Generator().manual_seed(s)) for s in range(30)}
    assert len(params) > 10  # the draw does vary


def test_no_flip_when_disabled():
    t = ClipTransform(resize=64, crop=56, hflip=False)
    assert not any(t.sample_params(np.random.default_rng(s)).flip for s in range(50))


def test_boxes_are_clipped_and_outside_boxes_dropped():
    t = ClipTransform(resize=64, crop=56)
    frame = np.zeros((64, 64, 3), np.uint8)
    boxes = [np.array([[0, 0, 63, 63], [0, 0, 3, 3], [10, 10, 20, 70.0]])]
    out = t([frame], boxes, params=ClipParams((64, 64), top=8, left=8, size=56, flip=False))
    np.testing.assert_allclose(out.boxes[0], [[0, 0, 55, 55], [2, 2, 12, 55]])
    flipped = t([frame], boxes, params=ClipParams((64, 64), top=8, left=8, size=56, flip=True))
    np.testing.assert_allclose(flipped.boxes[0], [[0, 0, 55, 55], [43, 2, 53, 55]])


def test_eval_mode_resizes_without_crop_and_is_deterministic():
    t = ClipTransform(resize=64, crop=56, train=False)
    frames, boxes, _ = _clip()
    a, b = t(frames, boxes), t(frames, boxes, generator=torch.Generator().manual_seed(9))
    assert a.params == ClipParams((56, 56), 0, 0, 56, False) == b.params
    assert torch.equal(a.frames, b.frames)
    full = t(frames[:1], [np.array([[0, 0, W - 1, H - 1.0]])])
    np.testing.assert_allclose(full.boxes[0], [[0, 0, 55, 55]])
    for frame, box in zip(a.frames, a.boxes):
        _assert_marker_in_box(frame, box[0])


def test_constant_frame_keeps_its_value():
    t = ClipTransform(resize=64, crop=56)
    out = t([np.full((H, W, 3), 200, np.uint8)], generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out.frames, torch.full_like(out.frames, 200.0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"frames": [np.zeros((8, 8, 3), np.float32)]}, r"frames\[0\]: expected uint8"),
        ({"frames": [np.zeros((8, 8), np.uint8)]}, r"frames\[0\]: expected uint8 \(H, W, 3\)"),
        ({"frames": [np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8)]}, "one size"),
        ({"frames": []}, "at least one"),
        ({"boxes": [np.zeros((2, 3))]}, r"boxes\[0\]: expected \(k, 4\), got \(2, 3\)"),
        ({"boxes": []}, "expected 1 arrays"),
        ({"cams": [np.zeros((4, 4, 2))]}, "cams: expected 1 2-D maps"),
        ({"masks": [np.zeros((4, 4))] * 2}, "masks: expected 1 maps"),
    ],
)
def test_bad_inputs_raise_shape_errors(kwargs, match):
    args = {"frames": [np.zeros((8, 8, 3), np.uint8)]} | kwargs
    with pytest.raises(ShapeError, match=match):
        ClipTransform(resize=8, crop=6)(**args)


def test_bad_sizes_rejected():
    with pytest.raises(ValueError, match="crop <= resize"):
        ClipTransform(resize=56, crop=64)
