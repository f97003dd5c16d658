"""Tests of colocam_plugin.data.io: images, .mat, text, box parsing and repair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from colocam_plugin.data.io import (
    boxes_from_array,
    check_frame,
    image_size,
    list_frames,
    load_mat,
    read_csv_rows,
    read_image,
    read_text_lines,
    repair_boxes,
)
from colocam_plugin.data.testing import write_image, write_v1_boxes
from colocam_plugin.errors import DataError


def _one_line(err: pytest.ExceptionInfo[DataError], path: Path) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    assert err.value.__cause__ is None  # re-raised "from None" or raised directly
    return msg


# ----------------------------------------------------------------------------- images


def test_read_image_rgb_and_grey(tmp_path: Path) -> None:
    p = write_image(tmp_path / "a.jpg", size=(10, 7))
    img = read_image(p)
    assert img.shape == (7, 10, 3) and img.dtype == np.uint8
    g = tmp_path / "g.png"
    Image.new("L", (4, 3), 77).save(g)
    grey = read_image(g)
    assert grey.shape == (3, 4, 3) and (grey == 77).all()
    assert image_size(p) == (10, 7)


def test_corrupt_and_missing_images(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    for fn in (image_size, read_image):
        with pytest.raises(DataError) as err:
            fn(bad)
        _one_line(err, bad)
        with pytest.raises(DataError, match="not found") as err:
            fn(tmp_path / "none.jpg")
        _one_line(err, tmp_path / "none.jpg")


def test_truncated_jpeg_is_caught_by_decode(tmp_path: Path) -> None:
    p = write_image(tmp_path / "t.jpg", size=(64, 48))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert image_size(p) == (64, 48)  # the header is intact
    with pytest.raises(DataError, match="cannot decode") as err:
        read_image(p)
    _one_line(err, p)


@pytest.mark.parametrize(
    "kind", ["baseline", "progressive", "big_exif", "grey", "cmyk", "optimize", "png"]
)
def test_header_size_matches_pil(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8))
    p = tmp_path / ("f.png" if kind == "png" else "f.jpg")
    if kind == "grey":
        img = img.convert("L")
    if kind == "cmyk":
        img = img.convert("CMYK")
    kw: dict[str, object] = {}
    if kind == "progressive":
        kw["progressive"] = True
    if kind == "optimize":
        kw["optimize"] = True
    if kind == "big_exif":  # frame header beyond the first 4 KiB
        kw["exif"] = b"Exif\x00\x00" + bytes(rng.integers(0, 256, 9000, dtype=np.uint8))
    img.save(p, **kw)
    with Image.open(p) as ref:
        assert image_size(p) == ref.size == (53, 37)


def test_jpeg_with_bad_header_falls_back_to_pil(tmp_path: Path) -> None:
    p = tmp_path / "odd.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0\x00\x01garbage")  # length < 2
    with pytest.raises(DataError, match="not a readable image"):
        image_size(p)
    p.write_bytes(b"\xff\xd8")  # SOI only
    with pytest.raises(DataError, match="not a readable image"):
        image_size(p)
    png = write_image(tmp_path / "really_png.png", size=(9, 4))
    p.write_bytes(png.read_bytes())  # wrong suffix: PIL still reads it
    assert image_size(p) == (9, 4)


def test_check_frame_skips_and_counts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8garbage")
    stats: dict[str, int] = {}
    assert check_frame(bad, skip_unreadable=True, stats=stats) is None
    assert stats == {"unreadable_frames": 1}
    with pytest.raises(DataError):
        check_frame(bad, skip_unreadable=False, stats=stats)


def test_list_frames_sorted_and_filtered(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "c.jpeg", "notes.txt", "d.mat", "a.JPG_mask.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    assert [p.name for p in list_frames(tmp_path)] == ["a.JPG", "b.png", "c.jpeg"]
    with pytest.raises(DataError, match="folder not found"):
        list_frames(tmp_path / "missing")


# ----------------------------------------------------------------------------- .mat


def test_load_mat_errors(tmp_path: Path) -> None:
    good = write_v1_boxes(tmp_path / "f.jpg_sticks.mat", [[1, 2, 3, 4]])
    assert set(load_mat(good)) == {"coor"}
    with pytest.raises(DataError, match="no variable 'ranges'") as err:
        load_mat(good, ["ranges"])
    _one_line(err, good)
    garbage = tmp_path / "g.mat"
    garbage.write_bytes(b"\x00garbage" * 40)
    with pytest.raises(DataError, match="not a readable MATLAB file") as err:
        load_mat(garbage)
    _one_line(err, garbage)
    cut = tmp_path / "cut.mat"
    cut.write_bytes(good.read_bytes()[:150])
    with pytest.raises(DataError) as err:
        load_mat(cut)
    _one_line(err, cut)
    with pytest.raises(DataError, match="file not found"):
        load_mat(tmp_path / "absent.mat")


@pytest.mark.parametrize("form", ["cell_row", "cell_col", "numeric"])
def test_v1_box_forms_round_trip(tmp_path: Path, form: str) -> None:
    boxes = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]
    p = write_v1_boxes(tmp_path / "x.mat", boxes, form=form)
    got = boxes_from_array(load_mat(p)["coor"], "x")
    np.testing.assert_array_equal(got, boxes)
    assert got.dtype == np.float64


def _cell(*items: object, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, it in enumerate(items):
        arr[i] = it
    return arr.reshape(shape if shape is not None else (1, len(items)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (_cell(np.array([[1.0, 2, 3, 4]])), [[1, 2, 3, 4]]),
        (_cell(np.array([1.0, 2, 3, 4]), np.array([[5.0], [6], [7], [8]]), shape=(2, 1)),
         [[1, 2, 3, 4], [5, 6, 7, 8]]),
        (_cell(np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]])), [[1, 2, 3, 4], [5, 6, 7, 8]]),
        (_cell(np.zeros((0, 0)), np.array([[1.0, 2, 3, 4]])), [[1, 2, 3, 4]]),
        (np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]), [[1, 2, 3, 4], [5, 6, 7, 8]]),
        (np.array([1, 2, 3, 4]), [[1, 2, 3, 4]]),
        (np.zeros((0, 0), dtype=object), []),
        (np.zeros((1, 0), dtype=object), []),
        (np.zeros((0, 0)), []),
    ],
)  # fmt: skip
def test_boxes_from_array_accepts(value: np.ndarray, expected: list[list[float]]) -> None:
    got = boxes_from_array(value, "f: variable 'coor'")
    assert got.shape == (len(expected), 4)
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float64).reshape(-1, 4))


@pytest.mark.parametrize(
    "value",
    [
        np.array([1.0, 2, 3]),
        np.zeros((2, 5)),
        _cell(np.zeros((1, 3))),
        _cell(np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 4)), np.zeros((1, 4)), shape=(2, 2)),
        np.array([[1.0, np.nan, 3, 4]]),
        _cell("text"),
    ],
)
def test_boxes_from_array_rejects(value: np.ndarray) -> None:
    with pytest.raises(DataError, match=r"^f\.mat: variable 'coor'"):
        boxes_from_array(value, "f.mat: variable 'coor'")


# ----------------------------------------------------------------------------- repair


def test_repair_each_kind() -> None:
    stats: dict[str, int] = {}
    boxes = np.array(
        [
            [10, 5, 30, 20],  # fine
            [30, 5, 10, 20],  # x swapped
            [10, 25, 30, 20],  # y swapped
            [-3, -1, 20, 20],  # negatives
            [50, 40, 70, 60],  # beyond 64x48
            [70, 50, 90, 60],  # entirely outside
        ],
        dtype=np.float64,
    )
    out = repair_boxes(boxes, (64, 48), stats)
    np.testing.assert_array_equal(
        out,
        [
            [10, 5, 30, 20],
            [10, 5, 30, 20],
            [10, 20, 30, 25],
            [0, 0, 20, 20],
            [50, 40, 63, 47],
            [63, 47, 63, 47],
        ],
    )
    assert stats == {"boxes_swapped": 2, "boxes_clamped": 1, "boxes_clipped": 2}
    np.testing.assert_array_equal(boxes[1], [30, 5, 10, 20])  # input untouched


def test_repair_empty() -> None:
    stats: dict[str, int] = {}
    assert repair_boxes(np.zeros((0, 4)), (4, 4), stats).shape == (0, 4)
    assert stats == {"boxes_swapped": 0, "boxes_clamped": 0, "boxes_clipped": 0}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(-100, 200, allow_nan=False)] * 4), min_size=1, max_size=5),
    st.integers(1, 120),
    st.integers(1, 120),
)
def test_repair_properties(rows: list[tuple[float, ...]], w: int, h: int) -> None:
    out = repair_boxes(np.array(rows), (w, h))
    assert (out[:, 0] <= out[:, 2]).all() and (out[:, 1] <= out[:, 3]).all()
    assert (out >= 0).all() and (out[:, [0, 2]] <= w - 1).all() and (out[:, [1, 3]] <= h - 1).all()
    stats: dict[str, int] = {}
    np.testing.assert_array_equal(repair_boxes(out, (w, h), stats), out)  # idempotent
    assert sum(stats.values()) == 0


# ----------------------------------------------------------------------------- text


def test_read_text_lines_numbers(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_text("a\n\n  b  \n\nc")
    assert read_text_lines(p) == [(1, "a"), (3, "b"), (5, "c")]
    bad = tmp_path / "bin.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(DataError, match="cannot read text") as err:
        read_text_lines(bad)
    _one_line(err, bad)


def test_read_csv_rows(tmp_path: Path) -> None:
    p = tmp_path / "l.csv"
    p.write_text('shot,label\n\n a , cat \n"b,c",dog\n')
    assert read_csv_rows(p, ("shot", "label")) == [
        (3, {"shot": "a", "label": "cat"}),
        (4, {"shot": "b,c", "label": "dog"}),
    ]
    p.write_text("shot,lbl\na,b\n")
    with pytest.raises(DataError, match=r"l\.csv:1: expected header 'shot,label'"):
        read_csv_rows(p, ("shot", "label"))
    p.write_text("shot,label\na,b\nc\n")
    with pytest.raises(DataError, match=r"l\.csv:3: expected 2 cells"):
        read_csv_rows(p, ("shot", "label"))
    p.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_csv_rows(p, ("shot", "label"))
