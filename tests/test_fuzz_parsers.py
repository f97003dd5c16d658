"""Fuzzing (hypothesis): parsers, the npz scorer and box extraction never crash.

Whatever bytes, lines, arrays or dtypes they are fed, the dataset readers
(``yto-v1.0``, ``yto-v2.2``, ``wsol-splits``, ``frames`` and the file readers
of :mod:`colocam_plugin.data.io`), :func:`~colocam_plugin.metrics.npz.score_npz`
and :func:`~colocam_plugin.metrics.cam_boxes.cam_to_boxes` either succeed or
raise one of the package's documented errors
(:class:`~colocam_plugin.errors.ColocamError` and its subclasses) with a
one-line message. Inputs are drawn near valid ones (real lines with a
mutation, real arrays with another shape or dtype) as well as at random, so
the examples get past the first check.

Time-bounded for the default suite: every test has a fixed ``max_examples``
(the whole file runs in well under 20 s on 2 cores); ``deadline=None``
because a loaded CI machine makes per-example timings noisy.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from colocam_plugin.data import io
from colocam_plugin.data.frames import load_frames
from colocam_plugin.data.testing import (
    write_frames_tree,
    write_image,
    write_wsol_metadata,
    write_yto_v1_tree,
    write_yto_v2_tree,
)
from colocam_plugin.data.wsol_splits import load_wsol_splits
from colocam_plugin.data.yto_v1 import load_yto_v1
from colocam_plugin.data.yto_v2 import load_yto_v2
from colocam_plugin.errors import ColocamError
from colocam_plugin.metrics.cam_boxes import cam_to_boxes
from colocam_plugin.metrics.npz import score_npz

#: a reader that casts complex numbers to real silently drops data: an error here
pytestmark = pytest.mark.filterwarnings(
    r"error::numpy.exceptions.ComplexWarning:colocam_plugin\.data"
)

#: examples per test; ``COLOCAM_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_parsers.py`` digs deeper
EXAMPLES = int(os.environ.get("COLOCAM_FUZZ_EXAMPLES", "25"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ----------------------------------------------------------------------------- strategies

_TOKENS = st.sampled_from(
    ["", ",", " ", "-1", "0", "1", "2", "3", "9", "10", "48", "64", "70", "1.5", "-0", "1e400",
     "nan", "inf", "9" * 30, "0x10", "a", "cat", "../", "/", "\t", "\x00", '"', "é", "1,2"]
)  # fmt: skip
_TOKEN = st.one_of(_TOKENS, st.text(max_size=6))


def _line(real: list[str]) -> st.SearchStrategy[str]:
    """A real line, a real line with a splice, a row of tokens, or random text."""
    mutated = st.tuples(st.sampled_from(real), st.integers(0, 80), st.integers(0, 4), _TOKEN).map(
        lambda t: t[0][: t[1]] + t[3] + t[0][t[1] + t[2] :]
    )
    last_cell = st.tuples(st.sampled_from(real), _TOKEN).map(
        lambda t: t[0].rsplit(",", 1)[0] + "," + t[1]
    )
    row = st.lists(_TOKEN, min_size=1, max_size=7).map(",".join)
    return st.one_of(st.sampled_from(real), mutated, last_cell, row, st.text(max_size=30))


def _file_bytes(real: bytes) -> st.SearchStrategy[bytes]:
    """Contents for a text file whose good content is ``real``."""
    lines = real.decode().splitlines() or ["x"]
    text = st.tuples(
        st.lists(_line(lines), max_size=10),
        st.sampled_from(["\n", "\r\n", "\r"]),
        st.booleans(),
    ).map(lambda t: (("\ufeff" if t[2] else "") + t[1].join(t[0])).encode("utf-8", "surrogatepass"))
    cut = st.integers(0, max(0, len(real) - 1)).map(lambda n: real[:n])
    return st.one_of(text, cut, st.binary(max_size=120))


_THRESHOLD = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([np.nan, np.inf, 0.0, 1.0]))
_DTYPES = st.sampled_from(
    [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.int8, np.bool_,
     np.complex128]
)  # fmt: skip


def _arrays(
    max_dims: int = 3, max_side: int = 6, min_side: int = 0
) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(
        _DTYPES,
        hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=min_side, max_side=max_side),
    )


def _mat_value() -> st.SearchStrategy[Any]:
    """What a .mat variable may hold: arrays of any dtype/shape, text, cell arrays."""

    def cell(items: list[np.ndarray]) -> np.ndarray:
        out = np.empty((1, len(items)), dtype=object)
        for i, item in enumerate(items):
            out[0, i] = item
        return out

    return st.one_of(
        _arrays(),
        st.text(max_size=12),
        st.lists(_arrays(max_dims=2, max_side=5), max_size=4).map(cell),
    )


# ----------------------------------------------------------------------------- harness


@contextlib.contextmanager
def _replaced(path: Path, data: bytes | None) -> Iterator[None]:
    """``path`` holds ``data`` (deleted when ``None``) inside the block, then its old bytes."""
    old = path.read_bytes() if path.exists() else None
    try:
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(data)
        yield
    finally:
        if old is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(old)


def _survives(call: Callable[[], Any]) -> Any:
    """Run ``call``: a documented error (one line) is fine, anything else fails the test."""
    try:
        return call()
    except ColocamError as exc:
        assert "\n" not in str(exc), str(exc)
        assert str(exc).strip(), type(exc)
        return None


def _savemat(path: Path, variables: dict[str, Any]) -> bytes:
    """Bytes of a .mat file holding ``variables``; rejects what scipy cannot write."""
    tmp = path.with_name(path.name + ".draft.mat")
    try:
        scipy.io.savemat(str(tmp), variables)
        return tmp.read_bytes()
    except Exception:
        reject()
        raise AssertionError("unreachable") from None
    finally:
        tmp.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    write_yto_v1_tree(root / "v1")
    write_wsol_metadata(root / "v1" / "meta")
    write_yto_v2_tree(root / "v2")
    write_frames_tree(root / "frames")
    return root


# ----------------------------------------------------------------------------- text parsers

_V1_TEXT = ["cat/sets/train.txt", "cat/sets/test.txt", "horse/sets/test.txt"]
_WSOL = [f"meta/{s}/{f}.txt" for s in ("train", "val") for f in
         ("image_ids", "class_labels", "image_sizes", "localization")]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_yto_v1_sets_files(trees: Path, data: st.DataObject) -> None:
    path = trees / "v1" / data.draw(st.sampled_from(_V1_TEXT))
    content = data.draw(_file_bytes(path.read_bytes()))
    with _replaced(path, content):
        for split in ("train", "test"):
            _survives(lambda s=split: load_yto_v1(trees / "v1", s))


@FUZZ
@given(data=st.data())
def test_wsol_split_files(trees: Path, data: st.DataObject) -> None:
    rel = data.draw(st.sampled_from(_WSOL))
    path = trees / "v1" / rel
    content = data.draw(st.one_of(st.none(), _file_bytes(path.read_bytes())))
    split = rel.split("/")[1]
    with _replaced(path, content):
        _survives(lambda: load_wsol_splits(trees / "v1", split, metadata_root=trees / "v1/meta"))


@FUZZ
@given(data=st.data())
def test_frames_csv_files(trees: Path, data: st.DataObject) -> None:
    path = trees / "frames" / data.draw(st.sampled_from(["labels.csv", "boxes.csv"]))
    content = data.draw(st.one_of(st.none(), _file_bytes(path.read_bytes())))
    with _replaced(path, content):
        for split in ("train", "test"):
            _survives(lambda s=split: load_frames(trees / "frames", s))


@FUZZ
@given(content=st.binary(max_size=200), header=st.sampled_from([("shot", "label"), ("a",)]))
def test_text_and_csv_readers(tmp_path_factory: pytest.TempPathFactory, content: bytes,
                              header: tuple[str, ...]) -> None:  # fmt: skip
    path = tmp_path_factory.getbasetemp() / "fuzz_text.csv"
    path.write_bytes(content)
    lines = _survives(lambda: io.read_text_lines(path))
    rows = _survives(lambda: io.read_csv_rows(path, header))
    if lines is not None:
        assert all(text and text == text.strip() for _, text in lines)
    if rows is not None:
        assert all(set(r) == set(header) for _, r in rows)


@FUZZ
@given(text=st.one_of(_TOKEN, st.text(max_size=20)), integer=st.booleans())
def test_parse_number(text: str, integer: bool) -> None:
    value = _survives(lambda: io.parse_number(text, "f:1", integer=integer))
    if value is not None:
        assert math.isfinite(float(value))


# ----------------------------------------------------------------------------- .mat files


@FUZZ
@given(data=st.data())
def test_yto_v1_sticks_files(trees: Path, data: st.DataObject) -> None:
    path = trees / "v1" / "cat/data/0003/shots/001/frame0001.jpg_sticks.mat"
    real = path.read_bytes()
    name = data.draw(st.sampled_from(["coor", "coor", "other"]))
    content = data.draw(
        st.one_of(
            _mat_value().map(lambda v: _savemat(path, {name: v})),
            st.integers(0, len(real) - 1).map(lambda n: real[:n]),
            st.binary(max_size=200),
        )
    )
    with _replaced(path, content):
        for split in ("test", "val"):
            _survives(lambda s=split: load_yto_v1(trees / "v1", s))


@FUZZ
@given(data=st.data())
def test_yto_v2_mat_files(trees: Path, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["ranges", "test", "training"]))
    root = trees / "v2"
    path = {
        "ranges": root / "Ranges" / "ranges_cat.mat",
        "test": root / "GroundTruth" / "cat" / "bb_gtTest_cat.mat",
        "training": root / "GroundTruth" / "cat" / "bb_gtTraining_cat.mat",
    }[kind]
    variable = {"ranges": "ranges", "test": "bb_gtTest", "training": "bb_gtTraining"}[kind]

    def struct(entries: list[tuple[Any, Any]]) -> np.ndarray:
        arr = np.empty((1, len(entries)), dtype=[("id", object), ("bb", object)])
        for i, entry in enumerate(entries):
            arr[0, i] = entry
        return arr

    ident = st.one_of(
        st.sampled_from(["cat00000007", "cat00000002", "cat1", "cat", "dog00000001", "cat-1"]),
        st.text(max_size=12),
        _arrays(max_dims=1, max_side=3),
    )
    ranges = hnp.arrays(
        st.sampled_from([np.float64, np.int64]),
        st.integers(0, 5).flatmap(lambda k: st.sampled_from([(3, k), (k, 3)])),
        elements=st.one_of(st.integers(0, 12), st.sampled_from([10**15, 2**62])),
    )
    value = st.one_of(
        _mat_value(),
        st.lists(st.tuples(ident, _mat_value()), max_size=3).map(struct),
        ranges,
    )
    real = path.read_bytes()
    content = data.draw(
        st.one_of(
            value.map(lambda v: _savemat(path, {variable: v})),
            st.integers(0, len(real) - 1).map(lambda n: real[:n]),
            st.binary(max_size=120),
        )
    )
    with _replaced(path, content):
        for split in ("train", "val", "test"):
            _survives(lambda s=split: load_yto_v2(root, s))


@FUZZ
@given(value=_mat_value())
def test_boxes_from_array(value: Any) -> None:
    boxes = _survives(lambda: io.boxes_from_array(value, "f.mat: variable 'coor'"))
    if boxes is not None:
        assert boxes.dtype == np.float64 and boxes.ndim == 2 and boxes.shape[1] == 4
        assert np.isfinite(boxes).all()


# ----------------------------------------------------------------------------- images


@FUZZ
@given(data=st.data())
def test_image_readers(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    suffix = data.draw(st.sampled_from([".jpg", ".png"]))
    base = tmp_path_factory.getbasetemp()
    real = write_image(base / f"fuzz_real{suffix}", size=(9, 7)).read_bytes()
    content = data.draw(
        st.one_of(
            st.integers(0, len(real)).map(lambda n: real[:n]),
            st.tuples(st.integers(0, len(real) - 1), st.binary(min_size=1, max_size=4)).map(
                lambda t: real[: t[0]] + t[1] + real[t[0] + len(t[1]) :]
            ),
            st.binary(max_size=300).map(lambda b: b"\xff\xd8" + b),
            st.binary(max_size=300),
        )
    )
    path = base / f"fuzz_image{suffix}"
    path.write_bytes(content)
    size = _survives(lambda: io.image_size(path))
    image = _survives(lambda: io.read_image(path))
    _survives(lambda: io.check_image_complete(path))
    if size is not None:
        assert all(isinstance(v, int) and v > 0 for v in size)
    if image is not None:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@FUZZ
@given(data=st.data())
def test_frames_tree_with_broken_frame(trees: Path, data: st.DataObject) -> None:
    path = trees / "frames" / "walk_b" / "a.jpg"
    real = path.read_bytes()
    content = data.draw(
        st.one_of(st.integers(0, len(real) - 1).map(lambda n: real[:n]), st.binary(max_size=64))
    )
    with _replaced(path, content):
        for skip in (False, True):
            _survives(lambda k=skip: load_frames(trees / "frames", "train", skip_unreadable=k))


# ----------------------------------------------------------------------------- npz scorer


def _score_arrays() -> st.SearchStrategy[dict[str, Any]]:
    """Arrays for a score npz: a consistent set with one part swapped for a random array."""

    @st.composite
    def draw(draw: st.DrawFn) -> dict[str, Any]:
        n, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 8))
        cams = draw(hnp.arrays(np.float64, (n, h, w), elements=st.floats(0, 1)))
        labels = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
        m = draw(st.integers(0, 5))
        idx = draw(hnp.arrays(np.int64, (m, 1), elements=st.integers(0, n - 1)))
        x = draw(hnp.arrays(np.int64, (m, 2), elements=st.integers(0, w - 1)))
        y = draw(hnp.arrays(np.int64, (m, 2), elements=st.integers(0, h - 1)))
        xy = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)
        arrays: dict[str, Any] = {"cams": cams, "labels": labels, "boxes": np.hstack([idx, xy])}
        if draw(st.booleans()):
            arrays["masks"] = draw(hnp.arrays(np.bool_, (n, h, w)))
        if draw(st.booleans()):
            arrays["pred_labels"] = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
        broken = draw(st.sampled_from([None, "cams", "labels", "boxes", "masks", "pred_labels"]))
        if broken is not None:
            arrays[broken] = draw(st.one_of(st.none(), _arrays(max_dims=3, max_side=5)))
            if arrays[broken] is None:
                del arrays[broken]
        return arrays

    return draw()


@FUZZ
@given(
    arrays=_score_arrays(),
    thresholds=st.one_of(st.integers(1, 20), st.lists(_THRESHOLD, max_size=4)),
)
def test_score_npz(
    tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, Any], thresholds: Any
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz_scores.npz"
    np.savez(path, **arrays)
    scores = _survives(lambda: score_npz(path, thresholds=thresholds, progress=False))
    if scores is not None and scores["corloc"] is not None:
        assert 0.0 <= scores["corloc"] <= 100.0
        assert 0.0 <= scores["maxboxacc_v2"] <= 100.0


@FUZZ
@given(content=st.binary(max_size=200))
def test_score_npz_garbage_file(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz_garbage.npz"
    path.write_bytes(content)
    _survives(lambda: score_npz(path, thresholds=5, progress=False))


# ----------------------------------------------------------------------------- box extraction


@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(
    cam=st.one_of(
        _arrays(max_dims=3, max_side=9, min_side=1),
        hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12)),
    ),
    thresholds=st.one_of(st.integers(1, 30), st.lists(_THRESHOLD, max_size=4)),
    multi=st.booleans(),
)
def test_cam_to_boxes(cam: np.ndarray, thresholds: Any, multi: bool) -> None:
    out = _survives(lambda: cam_to_boxes(cam, thresholds, multi_contour=multi))
    if out is None:
        return
    h, w = cam.shape
    assert len(out) == (thresholds if isinstance(thresholds, int) else len(thresholds))
    for boxes in out:
        assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) >= 1
        assert (boxes[:, 0] <= boxes[:, 2]).all() and (boxes[:, 1] <= boxes[:, 3]).all()
        assert (boxes >= 0).all() and (boxes[:, 2] <= w - 1).all() and (boxes[:, 3] <= h - 1).all()


def test_fuzz_fixtures_are_valid(trees: Path) -> None:
    """The trees the fuzzers mutate load cleanly (so a mutation is what breaks them)."""
    assert load_yto_v1(trees / "v1", "test").frames
    assert load_wsol_splits(trees / "v1", "val", metadata_root=trees / "v1" / "meta").frames
    assert load_yto_v2(trees / "v2", "val").frames
    assert load_frames(trees / "frames", "test").frames


# ----------------------------------------------------------------------------- regressions

#: crashes and hangs the fuzzers found, fixed in the readers; each input must
#: now give a one-line DataError (or load) within a second


def test_huge_integer_label_is_an_error_not_a_hang(tmp_path: Path) -> None:
    write_frames_tree(tmp_path)
    (tmp_path / "labels.csv").write_text("shot,label\nwalk,99999999999999\nwalk_b,0\n")
    with pytest.raises(ColocamError, match=r"labels.csv:2: label 99999999999999 would make"):
        load_frames(tmp_path, "train")


def test_unicode_digit_label_is_a_name(tmp_path: Path) -> None:
    write_frames_tree(tmp_path)
    (tmp_path / "labels.csv").write_text("shot,label\nwalk,\u00b2\nwalk_b,1\n", "utf-8")
    with pytest.raises(ColocamError, match="integer label among class names"):
        load_frames(tmp_path, "train")


def test_huge_integer_cell_is_not_a_crash() -> None:
    assert io.parse_number("9" * 30, "f:1", integer=True) == int("9" * 30)


def test_complex_boxes_are_refused() -> None:
    with pytest.raises(ColocamError, match="expected real numbers"):
        io.boxes_from_array(np.array([[1 + 2j, 2, 3, 4]]), "f.mat: variable 'coor'")


def test_wide_v2_range_loads_fast(tmp_path: Path) -> None:
    import time

    write_yto_v2_tree(tmp_path)
    scipy.io.savemat(
        str(tmp_path / "Ranges" / "ranges_cat.mat"),
        {"ranges": np.array([[1.0, 1e15, 1.0], [9.0, 10.0, 2.0]])},
    )
    (tmp_path / "cat" / "0000\u00b201.jpg").write_bytes(b"x")  # not a frame number
    t0 = time.perf_counter()
    ds = load_yto_v2(tmp_path, "test", classes=["cat"])  # video 1 holds the test box
    assert time.perf_counter() - t0 < 5.0
    assert ds.stats["missing_frames"] == 10**15 - 8  # counted, not enumerated
    assert [len(s.frames) for s in ds.shots] == [8]


def test_cam_to_boxes_empty_cam() -> None:
    _survives(lambda: cam_to_boxes(np.zeros((0, 0)), 1))
