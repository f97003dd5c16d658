"""The "videos" reader on a class-folder tree of real video files written with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from colocam_plugin.api import create_dataset
from colocam_plugin.data.io import read_image
from colocam_plugin.data.videos import VideoWriter, load_videos, sample_video_frames
from colocam_plugin.errors import DataError

W, H = 64, 48


def moving_square(i: int, colour: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """Frame ``i``: a 16x20 square at x = 2 i on a grey background."""
    img = np.full((H, W, 3), 90, dtype=np.uint8)
    img[10:30, 2 * i : 2 * i + 16] = colour
    return img


def write_video(path: Path, n: int, fps: float = 10.0, colour=(255, 0, 0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, fps) as w:
        for i in range(n):
            w.write(moving_square(i, colour))
    return path


def write_tree(root: Path) -> None:
    """train: cat/a.mp4 (12), dog/b.avi (8); test: cat/c.mkv (10, boxes), dog/d.mov (10)."""
    write_video(root / "train" / "cat" / "a.mp4", 12)
    write_video(root / "train" / "dog" / "b.avi", 8, colour=(0, 0, 255))
    write_video(root / "test" / "cat" / "c.mkv", 10)
    write_video(root / "test" / "dog" / "d.mov", 10, colour=(0, 0, 255))
    (root / "test" / "boxes.csv").write_text(
        "video,frame,x0,y0,x1,y1\n"
        "cat/c.mkv,0,0,10,15,29\n"
        "cat/c.mkv,0,40,1,50,8\n"
        "cat/c.mkv,4,8,10,23,29\n"
    )


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "data"
    write_tree(root)
    return root, tmp_path / "cache"


def test_train_split_reads_every_frame(tree):
    root, cache = tree
    ds = load_videos(root, "train", cache_dir=cache)
    assert ds.name == "videos" and ds.classes == ["cat", "dog"]
    assert [(s.shot_id, s.label, len(s)) for s in ds.shots] == [
        ("cat/a.mp4", 0, 12),
        ("dog/b.avi", 1, 8),
    ]
    assert len(ds.frames) == 20 and all(len(f.boxes) == 0 for f in ds.frames)
    # a record points at a decoded frame of the original size, in order
    f = ds.shots[0].frames[5]
    img = read_image(f.path)
    assert f.size == (W, H) and img.shape == (H, W, 3) and f.frame_index == 5
    # the square of frame 5 starts at x = 10: red there, grey at x = 5
    assert img[20, 12, 0] > 200 and img[20, 12, 2] < 60 and abs(int(img[20, 5, 0]) - 90) < 20


def test_second_load_reuses_the_cache(tree):
    root, cache = tree
    first = load_videos(root, "train", cache_dir=cache)
    stamp = first.frames[0].path.stat().st_mtime_ns
    second = load_videos(root, "train", cache_dir=cache)
    assert second.frames[0].path == first.frames[0].path
    assert second.frames[0].path.stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left


def test_fps_sampling(tree):
    root, cache = tree
    # 10 fps video at 5 fps: every other frame; at 3 fps: frames 0, 4, 7 (t = 0, .4, .7)
    every_other = [fr.time_s for fr in sample_video_frames(root / "test" / "cat" / "c.mkv", 5)]
    assert every_other == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    three = [fr.time_s for fr in sample_video_frames(root / "test" / "cat" / "c.mkv", 3)]
    assert three == pytest.approx([0.0, 0.4, 0.7])
    ds = load_videos(root, "train", cache_dir=cache, fps=5)
    assert [len(s) for s in ds.shots] == [6, 4]
    # the sampled frame 2 is the video's frame 4: square at x = 8
    img = read_image(ds.shots[0].frames[2].path)
    assert img[20, 9, 0] > 200 and abs(int(img[20, 6, 0]) - 90) < 20


def test_test_split_boxes(tree):
    root, cache = tree
    ds = load_videos(root, "test", cache_dir=cache)
    got = {(f.shot_id, f.frame_index): f.boxes.tolist() for f in ds.frames}
    assert got == {
        ("cat/c.mkv", 0): [[0.0, 10.0, 15.0, 29.0], [40.0, 1.0, 50.0, 8.0]],
        ("cat/c.mkv", 4): [[8.0, 10.0, 23.0, 29.0]],
    }
    # only the video with boxes is a scored shot, holding all its frames
    assert [(s.shot_id, len(s)) for s in ds.shots] == [("cat/c.mkv", 10)]
    # frame indices count the rate-sampled frames: at 5 fps, frame 4 does not exist
    with pytest.raises(DataError, match=r"boxes\.csv:4: frame 4 out of range"):
        load_videos(root, "test", cache_dir=cache, fps=2)


def test_registered_and_class_indices_shared_across_splits(tree):
    root, cache = tree
    (root / "val" / "horse").mkdir(parents=True)  # a class only in val still counts
    ds = create_dataset("videos", root, "train", cache_dir=cache)
    assert ds.classes == ["cat", "dog", "horse"]


@pytest.mark.parametrize(
    ("csv_text", "match"),
    [
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,0,1,2,3\n", r"boxes\.csv:2: expected 6 cells"),
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,zero,1,2,3,4\n", r"boxes\.csv:2: expected an integer"),
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,0,1,2,x,4\n", r"boxes\.csv:2: expected a number"),
        ("video,frame,x0,y0,x1,y1\ncat/zz.mkv,0,1,2,3,4\n", r"boxes\.csv:2: video 'cat/zz\.mkv'"),
        ("video,frame,x0,y0,x1,y1\n\ncat/c.mkv,0,9,2,3,4\n", r"boxes\.csv:3: box .* x0 > x1"),
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,0,0,0,64,10\n", r"boxes\.csv:2: box .* outside"),
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,0,-1,0,6,10\n", r"boxes\.csv:2: box .* outside"),
        ("video,frame,x0,y0,x1,y1\ncat/c.mkv,-2,0,0,6,10\n", r"boxes\.csv:2: frame -2"),
        ("shot,frame,x0,y0,x1,y1\n", r"boxes\.csv:1: expected header"),
    ],
)
def test_malformed_boxes_csv(tree, csv_text, match):
    root, cache = tree
    (root / "test" / "boxes.csv").write_text(csv_text)
    with pytest.raises(DataError, match=match) as info:
        load_videos(root, "test", cache_dir=cache)
    assert "\n" not in str(info.value) and str(root / "test" / "boxes.csv") in str(info.value)


def test_unknown_extension(tree):
    root, cache = tree
    (root / "train" / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes\.txt: unknown video extension '\.txt'"):
        load_videos(root, "train", cache_dir=cache)


def test_unreadable_video(tree):
    root, cache = tree
    bad = root / "train" / "cat" / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    with pytest.raises(DataError, match=r"broken\.mp4: cannot (open|decode) video") as info:
        load_videos(root, "train", cache_dir=cache)
    assert "\n" not in str(info.value)
    ds = load_videos(root, "train", cache_dir=cache, skip_unreadable=True)
    assert ds.stats["unreadable_videos"] == 1 and len(ds.shots) == 2
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]


def test_empty_and_missing_splits(tree):
    root, cache = tree
    (root / "val" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match=r"val: no videos"):
        load_videos(root, "val", cache_dir=cache)
    (root / "test" / "boxes.csv").unlink()
    with pytest.raises(DataError, match=r"boxes\.csv: file not found; the test split needs"):
        load_videos(root, "test", cache_dir=cache)
    with pytest.raises(DataError, match=r"nowhere: dataset folder not found"):
        load_videos(root / "nowhere", "train", cache_dir=cache)
    with pytest.raises(ValueError, match="unknown split"):
        load_videos(root, "dev", cache_dir=cache)


def test_every_extension_decodes(tmp_path):
    for ext in (".mp4", ".avi", ".mkv", ".webm", ".mov"):
        frames = list(sample_video_frames(write_video(tmp_path / f"v{ext}", 3)))
        assert [f.index for f in frames] == [0, 1, 2]
        assert frames[0].image.shape == (H, W, 3)


def test_odd_sized_frames_are_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 5) as w:
        w.write(np.zeros((7, 9, 3), dtype=np.uint8))
    (frame,) = sample_video_frames(path)
    assert frame.image.shape == (8, 10, 3)
