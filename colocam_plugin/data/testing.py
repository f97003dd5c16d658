"""Builders of tiny dataset trees in the original layouts, for tests.

Each ``write_*`` function writes real JPEG/PNG frames (64x48 random pixels),
real ``.mat`` files (:func:`scipy.io.savemat`) and text files, including the
defects the readers must repair (swapped x0/x1, negative coordinates, a box
beyond the image, an empty shot folder, a frame with several boxes, the
shared horse boundary frame of v2.2), and returns the counts a correct
reader finds, so tests can check exact numbers::

    {"train": {"videos": 3, "shots": 4, "frames": 9, "boxes": 0, "shot_frames": 9},
     "val": {...}, "test": {...},
     "stats": {"train": {"empty_shots": 1, ...}, ...},
     "boxes": {"cat/data/0003/shots/001/frame0001.jpg": [[10.0, 5.0, 30.0, 20.0]], ...}}

``shot_frames`` is the number of frames in the split's shots; ``boxes`` maps a
frame path relative to the root to its repaired boxes.

This is a public testing module, as pytest's ``pytester`` is: nothing here
runs in a command, but a plugin's test suite imports it to check its own
reader or metric against trees whose right answers are known
(docs/testing.md). Its API is kept as stable as the rest of the package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "FRAME_SIZE",
    "write_frames_tree",
    "write_image",
    "write_v1_boxes",
    "write_wsol_metadata",
    "write_yto_v1_tree",
    "write_yto_v2_tree",
]

#: ``(width, height)`` of every frame the builders write
FRAME_SIZE: tuple[int, int] = (64, 48)


def write_image(path: str | Path, *, size: tuple[int, int] = FRAME_SIZE, seed: int = 0) -> Path:
    """Write a random RGB image (format from the suffix) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_v1_boxes(path: str | Path, boxes: Any, *, form: str = "cell_row") -> Path:
    """Write a v1.0 ``*_sticks.mat`` file with variable ``coor``.

    Args:
        path: file to write.
        boxes: ``(k, 4)`` boxes (``k`` may be 0).
        form: ``"cell_row"`` (1, k) cell of (1, 4); ``"cell_col"`` (k, 1)
            cell of (4,) and (4, 1) elements alternately; ``"numeric"`` plain
            (k, 4) array.
    """
    import scipy.io

    path = Path(path)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if form == "numeric":
        value: Any = b
    elif form == "cell_row":
        value = np.empty((1, len(b)), dtype=object)
        for i, row in enumerate(b):
            value[0, i] = row.reshape(1, 4)
    elif form == "cell_col":
        value = np.empty((len(b), 1), dtype=object)
        for i, row in enumerate(b):
            value[i, 0] = row.copy() if i % 2 == 0 else row.reshape(4, 1)
    else:
        raise ValueError(f"unknown form {form!r}; expected cell_row, cell_col or numeric")
    scipy.io.savemat(str(path), {"coor": value})
    return path


def _counts(videos: int, shots: int, frames: int, boxes: int, shot_frames: int) -> dict[str, int]:
    return {
        "videos": videos,
        "shots": shots,
        "frames": frames,
        "boxes": boxes,
        "shot_frames": shot_frames,
    }


# (cls, video, shot, frame names, {frame: (raw boxes, form)})
_V1_SHOTS: list[tuple[str, str, str, list[str], dict[str, tuple[list[list[float]], str]]]] = [
    ("cat", "0001", "001", ["frame0001", "frame0002", "frame0003"],
     {"frame0002": ([[10, 5, 30, 20]], "cell_row")}),
    ("cat", "0001", "002", [], {}),
    ("cat", "0001", "003", ["frame0001", "frame0002"], {}),
    ("cat", "0002", "001", ["frame0001", "frame0002"],
     {"frame0001": ([[1, 2, 10, 12], [20, 10, 40, 30]], "cell_col")}),
    ("cat", "0003", "001", ["frame0001", "frame0002", "frame0003"],
     {"frame0001": ([[30, 5, 10, 20]], "numeric"),
      "frame0003": ([[-3, -1, 20, 20], [5, 5, 15, 15]], "numeric")}),
    ("cat", "0003", "002", ["frame0001"], {"frame0001": ([[50, 40, 70, 60]], "cell_row")}),
    ("horse", "0001", "001", ["frame0001", "frame0002"],
     {"frame0001": ([[0, 0, 63, 47], [5, 6, 7, 8]], "cell_row")}),
    ("horse", "0002", "055", ["frame0019", "frame0020", "frame0021"],
     {"frame0020": ([[40, 10, 20, 30]], "cell_row"), "frame0021": ([], "cell_row")}),
    ("horse", "0002", "056", ["frame0001"], {}),
    ("horse", "0003", "001", ["frame0001"], {}),  # listed in no sets file
]  # fmt: skip
_V1_SETS = {"cat": ("0001\n\n2\n", "0003\n"), "horse": ("1\n", "0002\n")}


def write_yto_v1_tree(root: str | Path) -> dict[str, Any]:
    """Write a YTO v1.0 tree (classes cat and horse) and return expected counts.

    Defects: an empty shot folder (cat/0001/002), an unpadded id (``2``) and
    a blank line in ``cat/sets/train.txt``, x0/x1 swapped (cat/0003/001
    frame0001, horse/0002/055 frame0020), negative coordinates (cat/0003/001
    frame0003), a box beyond the 64x48 image (cat/0003/002 frame0001), an
    empty ``coor`` cell (horse/0002/055 frame0021), several boxes on a frame,
    and each accepted ``coor`` form (cell rows, cell columns, numeric).
    """
    root = Path(root)
    seed = 0
    for cls, vid, shot, names, boxes in _V1_SHOTS:
        shot_dir = root / cls / "data" / vid / "shots" / shot
        shot_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            seed += 1
            write_image(shot_dir / f"{name}.jpg", seed=seed)
        for name, (raw, form) in boxes.items():
            write_v1_boxes(shot_dir / f"{name}.jpg_sticks.mat", raw, form=form)
    for cls, (train, test) in _V1_SETS.items():
        (root / cls / "sets").mkdir(parents=True, exist_ok=True)
        (root / cls / "sets" / "train.txt").write_text(train)
        (root / cls / "sets" / "test.txt").write_text(test)
    return _v1_expected()


def _v1_expected() -> dict[str, Any]:
    zero = {"boxes_swapped": 0, "boxes_clamped": 0, "boxes_clipped": 0, "unreadable_frames": 0}
    return {
        "train": _counts(3, 4, 9, 0, 9),
        "val": _counts(3, 3, 3, 5, 7),
        "test": _counts(2, 3, 4, 5, 7),
        "stats": {
            "train": {**zero, "empty_shots": 1, "annotated_frames_without_boxes": 0},
            "val": {**zero, "empty_shots": 1, "annotated_frames_without_boxes": 0},
            "test": {
                **zero,
                "empty_shots": 0,
                "boxes_swapped": 2,
                "boxes_clamped": 1,
                "boxes_clipped": 1,
                "annotated_frames_without_boxes": 1,
            },
        },
        "boxes": {
            "cat/data/0001/shots/001/frame0002.jpg": [[10.0, 5.0, 30.0, 20.0]],
            "cat/data/0002/shots/001/frame0001.jpg": [
                [1.0, 2.0, 10.0, 12.0],
                [20.0, 10.0, 40.0, 30.0],
            ],
            "horse/data/0001/shots/001/frame0001.jpg": [
                [0.0, 0.0, 63.0, 47.0],
                [5.0, 6.0, 7.0, 8.0],
            ],
            "cat/data/0003/shots/001/frame0001.jpg": [[10.0, 5.0, 30.0, 20.0]],
            "cat/data/0003/shots/001/frame0003.jpg": [
                [0.0, 0.0, 20.0, 20.0],
                [5.0, 5.0, 15.0, 15.0],
            ],
            "cat/data/0003/shots/002/frame0001.jpg": [[50.0, 40.0, 63.0, 47.0]],
            "horse/data/0002/shots/055/frame0020.jpg": [[20.0, 10.0, 40.0, 30.0]],
        },
    }


def write_wsol_metadata(metadata_root: str | Path) -> dict[str, Any]:
    """Write wsolevaluation-format split files for the tree of :func:`write_yto_v1_tree`.

    ``metadata_root/{train,val,test}/{image_ids,class_labels,image_sizes,localization}.txt``
    with raw (unrepaired) boxes; train lists the shot folders of train videos
    (the empty one included), val/test the frames with boxes of train/test
    videos. A correct reader finds the counts :func:`write_yto_v1_tree`
    returns, and the same ids and repaired boxes as ``load_yto_v1``.
    """
    meta = Path(metadata_root)
    from colocam_plugin.data.yto_v1 import YTO_CLASSES as classes

    train_videos = {("cat", "0001"), ("cat", "0002"), ("horse", "0001")}
    test_videos = {("cat", "0003"), ("horse", "0002")}
    lines: dict[str, dict[str, list[str]]] = {
        s: {"image_ids": [], "class_labels": [], "image_sizes": [], "localization": []}
        for s in ("train", "val", "test")
    }
    w, h = FRAME_SIZE
    for cls, vid, shot, _names, boxes in _V1_SHOTS:
        label = classes.index(cls)
        shot_path = f"{cls}/data/{vid}/shots/{shot}"
        if (cls, vid) in train_videos:
            t = lines["train"]
            t["image_ids"].append(shot_path)
            t["class_labels"].append(f"{shot_path},{label}")
            t["image_sizes"].append(f"{shot_path},{w},{h}")
        split = "val" if (cls, vid) in train_videos else "test" if (cls, vid) in test_videos else ""
        for name, (raw, _form) in boxes.items():
            if not split or not raw:
                continue
            path = f"{shot_path}/{name}.jpg"
            s = lines[split]
            s["image_ids"].append(path)
            s["class_labels"].append(f"{path},{label}")
            s["image_sizes"].append(f"{path},{w},{h}")
            s["localization"].extend(f"{path},{','.join(str(v) for v in b)}" for b in raw)
    for split, files in lines.items():
        (meta / split).mkdir(parents=True, exist_ok=True)
        for stem, rows in files.items():
            (meta / split / f"{stem}.txt").write_text("".join(r + "\n" for r in rows))
    expected = _v1_expected()
    zero = {"boxes_swapped": 0, "boxes_clamped": 0, "boxes_clipped": 0, "unreadable_frames": 0}
    expected["stats"] = {
        "train": {**zero, "empty_shots": 1},
        "val": {**zero, "empty_shots": 0},
        "test": {
            **zero,
            "empty_shots": 0,
            "boxes_swapped": 2,
            "boxes_clamped": 1,
            "boxes_clipped": 1,
        },
    }
    return expected


def _write_gt(path: Path, variable: str, entries: list[tuple[str, list[list[float]]]]) -> None:
    import scipy.io

    arr = np.empty((1, len(entries)), dtype=[("id", object), ("bb", object)])
    for i, (ident, boxes) in enumerate(entries):
        arr[0, i] = (ident, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {variable: arr})


# cls: (ranges columns (start, end, video), frame numbers on disk,
#       bb_gtTest entries, bb_gtTraining entries)
_V2: dict[str, tuple[list[tuple[int, int, int]], range, list[Any], list[Any]]] = {
    "cat": (
        [(1, 3, 1), (4, 5, 1), (6, 8, 2), (9, 10, 3)],
        range(1, 9),
        [("cat00000007", [[2, 3, 20, 30], [30, 5, 50, 40]])],
        [
            ("cat00000002", [[30, 5, 10, 20]]),
            ("cat00000004", [[-2, 3, 10, 10]]),
            ("cat00000008", [[1, 1, 5, 5]]),
        ],
    ),
    "horse": (
        [(1, 3, 1), (3, 5, 1), (6, 7, 2)],
        range(1, 8),
        [("horse00000006", [[10, 10, 80, 60]])],
        [("horse00000003", [[5, 5, 20, 20]]), ("horse00000004", [[1, 2, 3, 4], [5, 6, 7, 8]])],
    ),
}


def write_yto_v2_tree(root: str | Path) -> dict[str, Any]:
    """Write a YTO v2.2 tree (classes cat and horse) and return expected counts.

    cat: shots 1-3 and 4-5 (video 1, train), 6-8 (video 2, test: frame 7 has
    two test boxes), 9-10 (video 3, frames absent: an empty shot); training
    boxes: frame 2 swapped, frame 4 negative, frame 8 in the test video
    (dropped). horse: shots 1-3 and 3-5 share frame 3 (video 1), 6-7 (video
    2, test, box beyond the image); training boxes on frame 3 and frame 4
    (two boxes). ``ranges`` is stored n x 3 for cat (4 x 3) and 3 x n for horse.
    """
    import scipy.io

    root = Path(root)
    seed = 100
    for cls, (ranges, numbers, test, training) in _V2.items():
        for n in numbers:
            seed += 1
            write_image(root / cls / f"{n:08d}.jpg", seed=seed)
        arr = np.asarray(ranges, dtype=np.float64)
        (root / "Ranges").mkdir(parents=True, exist_ok=True)
        value = arr if cls == "cat" else arr.T
        scipy.io.savemat(str(root / "Ranges" / f"ranges_{cls}.mat"), {"ranges": value})
        _write_gt(root / "GroundTruth" / cls / f"bb_gtTest_{cls}.mat", "bb_gtTest", test)
        _write_gt(
            root / "GroundTruth" / cls / f"bb_gtTraining_{cls}.mat", "bb_gtTraining", training
        )
    zero = {"boxes_swapped": 0, "boxes_clamped": 0, "boxes_clipped": 0, "unreadable_frames": 0}
    return {
        "train": _counts(2, 4, 10, 0, 10),
        "val": _counts(2, 4, 4, 5, 10),
        "test": _counts(2, 2, 2, 3, 5),
        "stats": {
            "train": {**zero, "empty_shots": 1, "shared_boundary_frames": 1, "missing_frames": 2},
            "val": {
                **zero,
                "empty_shots": 1,
                "shared_boundary_frames": 1,
                "missing_frames": 2,
                "boxes_swapped": 1,
                "boxes_clamped": 1,
                "training_boxes_in_test_videos": 1,
            },
            "test": {
                **zero,
                "empty_shots": 0,
                "shared_boundary_frames": 0,
                "missing_frames": 0,
                "boxes_clipped": 1,
            },
        },
        "boxes": {
            "cat/00000002.jpg": [[10.0, 5.0, 30.0, 20.0]],
            "cat/00000004.jpg": [[0.0, 3.0, 10.0, 10.0]],
            "horse/00000003.jpg": [[5.0, 5.0, 20.0, 20.0]],
            "horse/00000004.jpg": [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]],
            "cat/00000007.jpg": [[2.0, 3.0, 20.0, 30.0], [30.0, 5.0, 50.0, 40.0]],
            "horse/00000006.jpg": [[10.0, 10.0, 63.0, 47.0]],
        },
        "shot_ids": {
            "train": ["cat/0001/001", "cat/0001/002", "horse/0001/001", "horse/0001/002"],
            "val": ["cat/0001/001", "cat/0001/002", "horse/0001/001", "horse/0001/002"],
            "test": ["cat/0002/001", "horse/0002/001"],
        },
    }


def write_frames_tree(root: str | Path) -> dict[str, Any]:
    """Write a "frames" tree (a user's own videos) and return expected counts.

    Shots ``walk`` (3 PNG), ``walk_b`` (2 JPEG), ``cats/clip1`` (2 JPEG,
    video ``cats``) and ``unlisted`` (not in ``labels.csv``); classes
    ``cat``, ``person``. ``boxes.csv``: ``walk/002.png`` has two boxes (one
    with x0/x1 swapped), ``cats/clip1/0001.jpg`` one box with a negative
    coordinate and one beyond the image.
    """
    root = Path(root)
    seed = 200
    for shot, names in (
        ("walk", ["001.png", "002.png", "003.png"]),
        ("walk_b", ["a.jpg", "b.jpg"]),
        ("cats/clip1", ["0001.jpg", "0002.jpg"]),
        ("unlisted", ["x.jpg"]),
    ):
        for name in names:
            seed += 1
            write_image(root / shot / name, seed=seed)
    (root / "labels.csv").write_text("shot,label\nwalk,person\n\nwalk_b,person\ncats/clip1,cat\n")
    (root / "boxes.csv").write_text(
        "shot,frame,x0,y0,x1,y1\n"
        "walk,002.png,1,2,10,20\n"
        "walk,002.png,30,5,10,20\n"
        "cats/clip1,0001.jpg,-1,0,70,40\n"
    )
    zero = {"boxes_swapped": 0, "boxes_clamped": 0, "boxes_clipped": 0, "unreadable_frames": 0}
    return {
        "train": _counts(3, 3, 7, 0, 7),
        "test": _counts(2, 2, 2, 3, 5),
        "stats": {
            "train": {**zero, "empty_shots": 0},
            "test": {
                **zero,
                "empty_shots": 0,
                "boxes_swapped": 1,
                "boxes_clamped": 1,
                "boxes_clipped": 1,
            },
        },
        "boxes": {
            "walk/002.png": [[1.0, 2.0, 10.0, 20.0], [10.0, 5.0, 30.0, 20.0]],
            "cats/clip1/0001.jpg": [[0.0, 0.0, 63.0, 40.0]],
        },
    }
