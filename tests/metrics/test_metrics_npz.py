"""score_npz / load_score_inputs: a valid file, and one-line errors naming file and key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from colocam_plugin.errors import DataError, ShapeError
from colocam_plugin.metrics import BoxAccumulator, PxAPAccumulator, load_score_inputs, score_npz


def _arrays(n: int = 4, h: int = 16, w: int = 20) -> dict[str, np.ndarray]:
    cams = np.zeros((n, h, w), dtype=np.float32)
    for i in range(n):
        cams[i, 2 + i : 8 + i, 3:10] = 1.0
        cams[i] += 0.01 * i
    cams /= cams.max()
    boxes = np.array(
        [[0, 3, 2, 10, 8], [1, 3, 3, 10, 9], [1, 0, 0, 4, 4], [2, 12.7, 1, 19, 15]],
        dtype=np.float64,
    )  # frame 3 has no box
    masks = cams > 0.5
    return {
        "cams": cams,
        "labels": np.array([0, 1, 1, 0]),
        "boxes": boxes,
        "masks": masks,
        "pred_labels": np.array([0, 1, 0, 0]),
    }


def _save(tmp_path, name="cams.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_score_npz_matches_accumulators(tmp_path):
    arrays = _arrays()
    path = _save(tmp_path, **arrays)
    out = score_npz(path, thresholds=100, progress=False)
    assert list(out)[:5] == ["corloc", "corloc_pooled", "maxboxacc", "maxboxacc_v2", "pxap"]
    json.dumps(out)  # JSON-ready

    acc = BoxAccumulator(thresholds=100)
    per_frame = [arrays["boxes"][arrays["boxes"][:, 0] == i, 1:] for i in range(4)]
    acc.update(arrays["cams"], arrays["labels"], per_frame, arrays["pred_labels"])
    ref = acc.compute()
    for key in ref:
        assert out[key] == ref[key], key
    px = PxAPAccumulator(num_bins=100)
    px.update(arrays["cams"], arrays["masks"])
    assert out["pxap"] == px.compute()["pxap"]
    assert out["num_frames"] == 3 and out["num_frames_without_boxes"] == 1
    assert out["top1_loc"] is not None


def test_optional_keys(tmp_path):
    arrays = _arrays()
    del arrays["masks"], arrays["pred_labels"]
    out = score_npz(_save(tmp_path, **arrays), thresholds=50, progress=False)
    assert out["pxap"] is None and out["top1_loc"] is None
    inputs = load_score_inputs(_save(tmp_path, "b.npz", **arrays))
    assert inputs.masks is None and inputs.num_frames == 4
    assert [len(b) for b in inputs.boxes_per_frame()] == [1, 2, 1, 0]
    assert inputs.boxes_per_frame()[2].tolist() == [[12, 1, 19, 15]]  # truncated


def _bad(key, value):
    arrays = _arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    return arrays


BAD_CASES = [
    ("cams", None, DataError, "missing key 'cams'"),
    ("labels", None, DataError, "missing key 'labels'"),
    ("boxes", None, DataError, "missing key 'boxes'"),
    ("cams", np.zeros((4, 16)), ShapeError, "'cams' must be (N, H, W)"),
    ("cams", np.zeros((4, 16, 20), dtype=np.int64), ShapeError, "'cams' must be float"),
    ("cams", np.full((4, 16, 20), 1.7), ShapeError, "'cams' has values outside [0, 1] (max 1.7)"),
    ("cams", np.full((4, 16, 20), -0.5), ShapeError, "'cams' has values outside [0, 1] (min -0.5)"),
    ("cams", np.full((4, 16, 20), np.nan), ShapeError, "'cams' has NaN or inf"),
    ("labels", np.array([0.0, 1.0, 1.0, 0.0]), ShapeError, "'labels' must hold integers"),
    ("labels", np.array([0, 1, 1]), ShapeError, "'labels' must be (N,) = (4,)"),
    ("labels", np.array([0, -1, 1, 0]), ShapeError, "'labels' has a negative class"),
    ("boxes", np.zeros((2, 4)), ShapeError, "'boxes' must be (M, 5)"),
    ("boxes", np.array([[0, 1, 1, np.inf, 2]]), ShapeError, "'boxes' has NaN or inf"),
    ("boxes", np.array([[4, 1, 1, 2, 2]]), ShapeError, "'boxes' row 0: frame_index 4"),
    ("boxes", np.array([[0, 1, 1, 2, 2], [0.5, 1, 1, 2, 2]]), ShapeError, "'boxes' row 1"),
    ("boxes", np.array([[0, 5, 1, 2, 2]]), ShapeError, "'boxes' row 0: [x0, y0, x1, y1]"),
    ("boxes", np.array([[0, 1, 1, 20, 2]]), ShapeError, "20x16 CAM grid"),
    ("masks", np.zeros((4, 16, 21), bool), ShapeError, "'masks' must be (4, 16, 20)"),
    ("masks", np.full((4, 16, 20), 0.5), ShapeError, "'masks' must be bool"),
    ("pred_labels", np.array([0, 1]), ShapeError, "'pred_labels' must be (N,)"),
    ("pred_labels", np.array(["a", "b", "c", "d"]), ShapeError, "'pred_labels' must hold integers"),
]


@pytest.mark.parametrize(("key", "value", "error", "message"), BAD_CASES)
def test_bad_inputs_name_file_and_key(tmp_path, key, value, error, message):
    path = _save(tmp_path, **_bad(key, value))
    with pytest.raises(error) as info:
        load_score_inputs(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert message in text
    assert f"'{key}'" in text


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_score_inputs(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"junk\.npz: cannot read"):
        load_score_inputs(junk)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, cams=np.array([{"a": 1}], dtype=object), labels=[0], boxes=np.zeros((0, 5)))
    with pytest.raises(DataError, match=r"obj\.npz: cannot read"):
        load_score_inputs(pickled)


def test_score_npz_without_boxes_is_a_data_error(tmp_path):
    arrays = _arrays()
    arrays["boxes"] = np.zeros((0, 5))
    path = _save(tmp_path, name="noboxes.npz", **arrays)
    with pytest.raises(DataError, match=r"noboxes\.npz: 'boxes' is empty: none of the 4 frames"):
        score_npz(path, thresholds=10, progress=False)
