"""CAM -> boxes, IoU and resize_bbox: wsolevaluation's fixtures and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colocam_plugin.errors import ShapeError
from colocam_plugin.metrics import (
    box_iou,
    cam_to_boxes,
    cams_to_uint8,
    default_thresholds,
    normalize_cams,
    resize_bbox,
)


# -- fixtures from wsolevaluation's tests ----------------------------------------------------
def test_iou_fixture():
    assert box_iou([1, 2, 5, 6], [3, 1, 4, 5])[0, 0] == 8 / 27


def test_resize_bbox_fixture_uses_width_height():
    assert resize_bbox((1, 2, 4, 3), (10, 20), (35, 10)) == (3, 1, 14, 1)
    # (height, width) sizes would give another box: the convention is (width, height)
    assert resize_bbox((1, 2, 4, 3), (20, 10), (10, 35)) != (3, 1, 14, 1)


def test_resize_bbox_truncates_and_checks():
    assert resize_bbox((1279, 719, 1279, 719), (1280, 720), (224, 224)) == (223, 223, 223, 223)
    with pytest.raises(ValueError, match="image_size"):
        resize_bbox((0, 0, 1, 1), (0, 10), (5, 5))


# -- IoU ------------------------------------------------------------------------------------
def test_iou_values():
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0])[0, 0] == 1.0  # one pixel each
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3])[0, 0] == 0.0
    assert box_iou([0, 0, 3, 3], [0, 0, 1, 3])[0, 0] == 8 / 16
    ious = box_iou([[0, 0, 9, 9], [5, 5, 9, 9]], [[0, 0, 4, 4], [0, 0, 9, 9], [5, 5, 9, 9]])
    np.testing.assert_array_equal(ious, [[0.25, 1.0, 0.25], [0.0, 0.25, 1.0]])


def test_iou_degenerate_union_is_zero():
    assert box_iou([5, 5, 3, 3], [5, 5, 3, 3])[0, 0] == 0.0  # reversed: area <= 0


# -- normalisation ----------------------------------------------------------------------------
def test_normalize_min_max_and_degenerate_maps():
    cams = np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 7.0), np.ones((2, 2))])
    cams[2, 0, 0] = np.nan
    out = normalize_cams(cams)
    np.testing.assert_allclose(out[0], [[0, 1 / 3], [2 / 3, 1]])
    assert (out[1] == 0).all() and (out[2] == 0).all()
    inf = np.array([[0.0, np.inf]])
    assert (normalize_cams(inf) == 0).all()


def test_uint8_is_floor_of_cam_times_255():
    cam = np.array([[0.0, 0.1, 0.5], [0.9, 0.99, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(cams_to_uint8(cam), np.floor(cam * np.float32(255)))
    assert cams_to_uint8(cam).dtype == np.uint8


def test_torch_equals_numpy():
    x = torch.rand(3, 9, 11) * 5 - 2
    np.testing.assert_array_equal(cams_to_uint8(x), cams_to_uint8(x.numpy()))
    np.testing.assert_array_equal(normalize_cams(x.double()), normalize_cams(x.double().numpy()))


# -- CAM -> boxes -----------------------------------------------------------------------------
def _block_cam() -> np.ndarray:
    cam = np.zeros((10, 12), dtype=np.float32)
    cam[2:6, 3:8] = 1.0  # rows 2..5, cols 3..7
    cam[7:9, 9:11] = 0.5  # a weaker, smaller blob
    return cam


def test_box_from_known_cam():
    cam = _block_cam()
    # tau 0.6: only the strong block; boundingRect w = 5 -> x1 = x0 + w = 8
    assert cam_to_boxes(cam, [0.6])[0].tolist() == [[3, 2, 8, 6]]
    # tau 0.3: both blobs; single-box mode keeps the larger
    assert cam_to_boxes(cam, [0.3])[0].tolist() == [[3, 2, 8, 6]]
    multi = cam_to_boxes(cam, [0.3], multi_contour=True)[0].tolist()
    assert sorted(multi) == [[3, 2, 8, 6], [9, 7, 11, 9]]


def test_threshold_is_strict():
    cam = np.zeros((6, 6))
    cam[1:3, 1:3] = 1.0
    cam[4, 4] = 0.5  # uint8 127
    # int(0.5 * 255) = 127: a pixel of 127 is not above it
    assert cam_to_boxes(cam, [0.5], multi_contour=True)[0].tolist() == [[1, 1, 3, 3]]
    # int(0.49 * 255) = 124 < 127: now it is
    assert len(cam_to_boxes(cam, [0.49], multi_contour=True)[0]) == 2


def test_box_clipped_to_last_pixel():
    cam = np.zeros((5, 7))
    cam[2:, 4:] = 1.0  # touches the right and bottom borders
    assert cam_to_boxes(cam, [0.5])[0].tolist() == [[4, 2, 6, 4]]


def test_no_contour_gives_zero_box():
    assert cam_to_boxes(np.full((5, 5), 3.0), [0.0, 0.5])[1].tolist() == [[0, 0, 0, 0]]
    cam = np.eye(4)
    # tau close to 1: int(0.999 * 255) = 254 < 255 still keeps the diagonal
    assert cam_to_boxes(cam, [0.999])[0].tolist() == [[0, 0, 3, 3]]


def test_largest_area_is_polygon_area_not_pixel_count():
    cam = np.zeros((12, 12))
    cam[1, 0:9] = 1.0  # a line: 9 pixels, polygon area 0
    cam[5:8, 5:8] = 1.0  # a 3x3 square: 9 pixels, polygon area 4
    assert cam_to_boxes(cam, [0.5])[0].tolist() == [[5, 5, 8, 8]]


def test_one_box_per_threshold_and_checks():
    boxes = cam_to_boxes(_block_cam(), 1000)
    assert len(boxes) == 1000 and all(b.shape == (1, 4) for b in boxes)
    with pytest.raises(ShapeError, match="cam"):
        cam_to_boxes(np.zeros((2, 3, 4)))
    with pytest.raises(ShapeError, match="thresholds"):
        default_thresholds([0.5, 1.5])
    with pytest.raises(ValueError, match="thresholds"):
        default_thresholds(0)
    np.testing.assert_array_equal(default_thresholds(250), np.arange(0, 1, 0.004))
