"""A user's own video files, labelled by class folder ("videos").

Layout read::

    root/<split>/<class>/<name>.<mp4|avi|mkv|webm|mov>   one video = one shot
    root/<split>/boxes.csv                               optional, header
                                                         ``video,frame,x0,y0,x1,y1``

``split`` is ``train``, ``val`` or ``test``. Classes are the sorted class
folder names found in any split folder under ``root`` (so a class index means
the same class in every split), or ``classes`` when given. Videos are decoded
with PyAV (``import av``; FFmpeg underneath), every frame or, with ``fps``,
frames taken at that rate (:func:`sample_video_frames`).

``boxes.csv``: ``video`` is the path relative to the split folder
(``cat/clip01.mp4``), ``frame`` the 0-based index among the decoded
(rate-sampled) frames, ``x0,y0,x1,y1`` pixels of the original frame,
0-based and inclusive; several rows per frame are allowed. Unlike the
YouTube-Objects readers, which repair the public annotations' known defects,
a box here that is reversed or leaves the frame is an error: the user wrote
it, and can fix it.

Splits (as every reader, :class:`~colocam_plugin.data.records.VideoDataset`):
``train`` lists every sampled frame of every video (``boxes.csv`` ignored);
``val``/``test`` need ``boxes.csv`` and list the annotated frames, with the
shots (all their sampled frames) that hold them.

**Frame cache.** Training and scoring read frames by path, in any order
(:func:`colocam_plugin.data.io.read_image`), and a compressed video cannot
be read frame by frame cheaply. Each video is therefore decoded once, as a
stream (memory does not grow with the video's length), into a folder of
JPEG (quality 95) or PNG files under ``cache_dir`` (default
``<cache>/videos``, ``<cache>`` being ``$COLOCAM_CACHE_DIR``, else
``$XDG_CACHE_HOME/colocam``, else ``~/.cache/colocam``). The folder name
carries a hash of the video's absolute path, size and modification time,
the rate and the format, so an edited video or another ``fps`` is decoded
again and a later run reuses the decoded frames. A 720p frame costs about
100-200 KB as JPEG; delete the folder to reclaim the space. Frames are
written to a temporary folder renamed into place when complete, so an
interrupted decode is never read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colocam_plugin.data.info import log_summary
from colocam_plugin.data.io import new_stats, parse_number, read_csv_rows
from colocam_plugin.data.records import FrameRecord, Shot, VideoDataset
from colocam_plugin.data.yto_v1 import check_split
from colocam_plugin.errors import DataError

__all__ = [
    "BOXES_HEADER",
    "VIDEO_EXTENSIONS",
    "VIDEO_SPLITS",
    "DecodedFrame",
    "VideoWriter",
    "decode_video_to_folder",
    "load_videos",
    "sample_video_frames",
    "video_rate",
]

logger = logging.getLogger("colocam_plugin.data")

#: file name suffixes (lower case) read as videos
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov")
#: splits the "videos" dataset has
VIDEO_SPLITS: tuple[str, ...] = ("train", "val", "test")
#: header of ``<split>/boxes.csv``
BOXES_HEADER: tuple[str, ...] = ("video", "frame", "x0", "y0", "x1", "y1")
#: bump when the cached frames of a video would differ
_CACHE_VERSION = 1
_META = "frames.json"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0][:117] + "..." if text and len(text[0]) > 120 else (text[0] if text else "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DecodedFrame:
    """One frame taken from a video.

    Attributes:
        index: 0-based index among the taken (rate-sampled) frames.
        time_s: presentation time in seconds from the first frame.
        image: ``(H, W, 3)`` ``uint8`` RGB.
    """

    index: int
    time_s: float
    image: np.ndarray


def sample_video_frames(path: str | Path, fps: float | None = None) -> Iterator[DecodedFrame]:
    """Decode a video as a stream of RGB frames, optionally at a lower rate.

    Frame times are the decoder's presentation times (``frame.time``) minus
    the first frame's; a frame without one gets ``n / average_rate``. With
    ``fps``, a frame is taken when ``floor(t * fps)`` exceeds that of the last
    frame taken: the first frame of every ``1/fps`` interval, so a rate at or
    above the video's takes every frame. One frame is held at a time.

    Args:
        path: video file (any container and codec FFmpeg decodes).
        fps: frames per second to take; ``None``: every frame.

    Yields:
        :class:`DecodedFrame` in presentation order.

    Raises:
        DataError: missing or undecodable file, no video stream, no frame;
            the message starts with the path.
        ValueError: ``fps`` not positive.
    """
    import av

    if fps is not None and not fps > 0:
        raise ValueError(f"fps: expected a positive rate, got {fps}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.FFmpegError and friends
        raise DataError(f"{path}: cannot open video ({_short(exc)})") from None
    with container:
        if not container.streams.video:
            raise DataError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        t0: float | None = None
        last_bucket = -1
        taken = 0
        try:
            for n, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else n / rate
                t0 = t if t0 is None else t0
                t -= t0
                if fps is not None:
                    bucket = int(np.floor(t * fps + 1e-6))
                    if bucket <= last_bucket:
                        continue
                    last_bucket = bucket
                yield DecodedFrame(taken, float(t), frame.to_ndarray(format="rgb24"))
                taken += 1
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: cannot decode video ({_short(exc)})") from None
    if taken == 0:
        raise DataError(f"{path}: no frame could be decoded")


def video_rate(path: str | Path) -> float:
    """The video's average frame rate (25 when the container does not say).

    Raises:
        DataError: missing or unreadable file, no video stream.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: no video stream")
            stream = container.streams.video[0]
            return float(stream.average_rate or stream.guessed_rate or 25)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot open video ({_short(exc)})") from None


#: encoder per container suffix (first available wins)
_CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"),
    ".avi": ("mpeg4",),
    ".webm": ("libvpx", "libvpx-vp9"),
}


class VideoWriter:
    """Encode RGB frames into a video file with PyAV, one frame at a time.

    The encoder is chosen by the file's suffix (``.mp4``/``.mov``/``.mkv``:
    H.264 when FFmpeg has libx264, else MPEG-4 part 2; ``.avi``: MPEG-4;
    ``.webm``: VP8), pixel format yuv420p, which needs even sides: a frame of
    odd width or height is padded by repeating its last column or row.

    Args:
        path: output file; ``container_format`` (e.g. ``"mp4"``) overrides
            the suffix for the container, and ``suffix`` for the codec
            (to write ``clip.mp4.tmp`` as an mp4).
        fps: frame rate of the output.
        quality: constant-quality factor for H.264 (``crf``, lower is
            better); MPEG-4 and VP8 get a fixed high bit rate instead.

    Examples:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> with VideoWriter(Path(tmp.name) / "v.mp4", fps=10) as w:
        ...     for i in range(3):
        ...         w.write(np.full((9, 16, 3), 40 * i, dtype=np.uint8))
        >>> [f.image.shape for f in sample_video_frames(Path(tmp.name) / "v.mp4")]
        [(10, 16, 3), (10, 16, 3), (10, 16, 3)]
        >>> tmp.cleanup()
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        *,
        quality: int = 18,
        container_format: str | None = None,
        suffix: str | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        ext = (suffix or self.path.suffix).lower()
        if ext not in _CODECS:
            raise ValueError(f"{self.path}: expected one of {', '.join(_CODECS)}")
        codec = next((c for c in _CODECS[ext] if c in av.codecs_available), None)
        if codec is None:
            raise DataError(f"{self.path}: this FFmpeg build has none of {_CODECS[ext]}")
        from fractions import Fraction

        self._rate = Fraction(fps).limit_denominator(1001)
        self._codec = codec
        self._quality = quality
        self._container = av.open(str(self.path), "w", format=container_format)
        self._stream: Any = None
        self.frames = 0

    def _open_stream(self, width: int, height: int) -> Any:
        options = {"crf": str(self._quality)} if self._codec == "libx264" else {}
        stream: Any = self._container.add_stream(self._codec, rate=self._rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if self._codec == "mpeg4":
            # bits enough for near-lossless frames (x264 is not in every FFmpeg build)
            stream.codec_context.bit_rate = max(2_000_000, int(width * height * self._rate * 2))
        elif self._codec.startswith("libvpx"):
            stream.codec_context.bit_rate = 4_000_000
        return stream

    def write(self, image: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` ``uint8`` RGB frame (all frames the first one's size)."""
        import av

        img = np.asarray(image, dtype=np.uint8)
        h, w = img.shape[:2]
        if h % 2 or w % 2:
            img = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        if self._stream is None:
            self._stream = self._open_stream(img.shape[1], img.shape[0])
        stream = self._stream
        if (stream.width, stream.height) != (img.shape[1], img.shape[0]):
            raise ValueError(
                f"{self.path}: frame {img.shape[1]}x{img.shape[0]} after "
                f"{stream.width}x{stream.height} frames"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
        for packet in stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        stream = self._stream
        if stream is not None:
            for packet in stream.encode():
                self._container.mux(packet)
            self._stream = None
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cache_key(path: Path, fps: float | None, fmt: str) -> str:
    st = path.stat()
    h = hashlib.sha256(
        json.dumps(
            [_CACHE_VERSION, str(path.resolve()), st.st_size, st.st_mtime_ns, fps, fmt]
        ).encode()
    )
    return h.hexdigest()[:16]


def decode_video_to_folder(
    path: str | Path,
    cache_dir: str | Path,
    *,
    fps: float | None = None,
    image_format: str = "jpg",
) -> tuple[Path, list[float], tuple[int, int]]:
    """Decode ``path`` once into numbered image files under ``cache_dir`` (or reuse them).

    Args:
        path: the video.
        cache_dir: parent folder of the per-video frame folders.
        fps: frames per second to take (see :func:`sample_video_frames`).
        image_format: ``"jpg"`` (quality 95) or ``"png"`` (lossless, ~5x larger).

    Returns:
        ``(folder, times, (width, height))``: frame ``i`` is
        ``folder / f"{i:06d}.{image_format}"``, taken at ``times[i]`` seconds.

    Raises:
        DataError: unreadable video, frames of changing size, or a cache
            folder that cannot be written.
    """
    from PIL import Image

    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format: expected 'jpg' or 'png', got {image_format!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    cache_dir = Path(cache_dir)
    folder = cache_dir / f"{path.stem[:40]}-{_cache_key(path, fps, image_format)}"
    meta_path = folder / _META
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            return folder, [float(t) for t in meta["times"]], (meta["width"], meta["height"])
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("%s: damaged frame cache; decoding %s again", folder, path)
            shutil.rmtree(folder, ignore_errors=True)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
    except OSError as exc:
        raise DataError(f"{cache_dir}: cannot write the frame cache ({_short(exc)})") from None
    try:
        times: list[float] = []
        size: tuple[int, int] | None = None
        for fr in sample_video_frames(path, fps):
            h, w = fr.image.shape[:2]
            if size is None:
                size = (w, h)
            elif size != (w, h):
                raise DataError(
                    f"{path}: frame {fr.index} is {w}x{h}, the first was {size[0]}x{size[1]}"
                )
            out = tmp / f"{fr.index:06d}.{image_format}"
            if image_format == "jpg":
                Image.fromarray(fr.image).save(out, quality=95)
            else:
                Image.fromarray(fr.image).save(out, compress_level=1)
            times.append(fr.time_s)
        assert size is not None  # sample_video_frames raises on an empty video
        meta = {"video": str(path), "fps": fps, "width": size[0], "height": size[1]}
        (tmp / _META).write_text(json.dumps({**meta, "times": times}))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same video first
            if not (folder / _META).is_file():
                raise
    except OSError as exc:
        raise DataError(f"{cache_dir}: cannot write the frame cache ({_short(exc)})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("decoded %s: %d frames into %s", path, len(times), folder)
    return folder, times, size


# ----------------------------------------------------------------------------- layout


def _class_names(root: Path) -> list[str]:
    names: set[str] = set()
    for split in VIDEO_SPLITS:
        d = root / split
        if d.is_dir():
            names |= {p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return sorted(names)


def _list_videos(split_dir: Path, classes: Sequence[str]) -> list[tuple[str, int, Path]]:
    """``[(relative path, label, file)]`` of a split folder, sorted by path."""
    out: list[tuple[str, int, Path]] = []
    for cls_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if cls_dir.name.startswith("."):
            continue
        if cls_dir.name not in classes:
            raise DataError(f"{cls_dir}: class folder {cls_dir.name!r} is not one of {classes}")
        label = list(classes).index(cls_dir.name)
        for f in sorted(cls_dir.iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue
            if f.suffix.lower() not in VIDEO_EXTENSIONS:
                raise DataError(
                    f"{f}: unknown video extension {f.suffix!r}; "
                    f"expected one of {', '.join(VIDEO_EXTENSIONS)}"
                )
            out.append((f"{cls_dir.name}/{f.name}", label, f))
    return out


@dataclass
class _BoxRow:
    lineno: int
    frame: int
    box: list[float]


def _read_boxes(path: Path, videos: set[str]) -> dict[str, list[_BoxRow]]:
    """``{video: rows}`` from ``boxes.csv``; checks syntax and names, not sizes."""
    out: dict[str, list[_BoxRow]] = {}
    for lineno, r in read_csv_rows(path, BOXES_HEADER):
        where = f"{path}:{lineno}"
        video = r["video"].replace("\\", "/").strip("/")
        if video not in videos:
            raise DataError(f"{where}: video {video!r} is not a video of this split")
        frame = int(parse_number(r["frame"], where, integer=True))
        if frame < 0:
            raise DataError(f"{where}: frame {frame} is negative")
        box = [parse_number(r[k], where) for k in BOXES_HEADER[2:]]
        if box[0] > box[2] or box[1] > box[3]:
            raise DataError(f"{where}: box {box} has x0 > x1 or y0 > y1")
        out.setdefault(video, []).append(_BoxRow(lineno, frame, box))
    return out


def _check_boxes(
    path: Path, rows: list[_BoxRow], n_frames: int, size: tuple[int, int]
) -> dict[int, np.ndarray]:
    w, h = size
    acc: dict[int, list[list[float]]] = {}
    for row in rows:
        where = f"{path}:{row.lineno}"
        if row.frame >= n_frames:
            raise DataError(
                f"{where}: frame {row.frame} out of range; the video gives {n_frames} frames"
                " at this rate (0-based)"
            )
        x0, y0, x1, y1 = row.box
        if x0 < 0 or y0 < 0 or x1 > w - 1 or y1 > h - 1:
            raise DataError(
                f"{where}: box {row.box} is outside the {w}x{h} frame "
                f"(0-based inclusive: x in 0..{w - 1}, y in 0..{h - 1})"
            )
        acc.setdefault(row.frame, []).append(row.box)
    return {k: np.asarray(v, dtype=np.float64) for k, v in acc.items()}


def load_videos(
    root: str | Path,
    split: str,
    *,
    fps: float | None = None,
    cache_dir: str | Path | None = None,
    image_format: str = "jpg",
    classes: Sequence[str] | None = None,
    skip_unreadable: bool = False,
) -> VideoDataset:
    """Read a folder of class-labelled video files (see the module docstring).

    Args:
        root: folder holding ``train``/``val``/``test`` folders.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fps: frames per second to take from each video; ``None``: every frame.
        cache_dir: where decoded frames are kept; default ``<cache>/videos``.
        image_format: cached frame files, ``"jpg"`` or ``"png"``.
        classes: class names (their order gives the labels); default the
            sorted class folder names of all splits.
        skip_unreadable: skip (and count in ``stats["unreadable_videos"]``)
            videos that cannot be decoded instead of raising.

    Returns:
        :class:`VideoDataset` named ``"videos"``; one shot per video, video
        and shot id ``<class>/<file name>``.

    Raises:
        DataError: missing folder, unknown extension, unreadable video,
            malformed ``boxes.csv`` line or a box outside its frame
            (``path:line``), empty split.
        ValueError: unknown split, ``fps`` not positive.
    """
    check_split(split, VIDEO_SPLITS)
    if fps is not None and not fps > 0:
        raise ValueError(f"fps: expected a positive rate, got {fps}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found (expected {root}/{split}/<class>/)")
    names = [str(c) for c in classes] if classes is not None else _class_names(root)
    videos = _list_videos(split_dir, names)
    if not videos:
        raise DataError(
            f"{split_dir}: no videos; expected <class>/<name>.{{{','.join(VIDEO_EXTENSIONS)}}}"
        )
    boxes_path = split_dir / "boxes.csv"
    rows: dict[str, list[_BoxRow]] = {}
    if split != "train":
        if not boxes_path.is_file():
            raise DataError(
                f"{boxes_path}: file not found; the {split} split needs boxes "
                f"(header {','.join(BOXES_HEADER)})"
            )
        rows = _read_boxes(boxes_path, {rel for rel, _, _ in videos})
        if not rows:
            raise DataError(f"{boxes_path}: no boxes; the {split} split scores annotated frames")
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    stats = new_stats("unreadable_videos")
    shots: list[Shot] = []
    frames: list[FrameRecord] = []
    for rel, label, file in videos:
        if split != "train" and rel not in rows:
            continue  # a val/test video without boxes is not scored
        try:
            folder, times, size = decode_video_to_folder(
                file, cache, fps=fps, image_format=image_format
            )
        except DataError:
            if not skip_unreadable:
                raise
            stats["unreadable_videos"] += 1
            logger.warning("skipping unreadable video %s", file)
            continue
        boxes = _check_boxes(boxes_path, rows.get(rel, []), len(times), size)
        records = tuple(
            FrameRecord(
                video_id=rel,
                shot_id=rel,
                frame_index=i,
                path=folder / f"{i:06d}.{image_format}",
                label=label,
                size=size,
                boxes=boxes.get(i, np.zeros((0, 4), dtype=np.float64)),
            )
            for i in range(len(times))
        )
        shots.append(Shot(video_id=rel, shot_id=rel, label=label, frames=records))
        frames.extend(records if split == "train" else (r for r in records if len(r.boxes)))
    if not shots:
        raise DataError(f"{split_dir}: no readable videos")
    ds = VideoDataset(
        name="videos",
        root=root,
        split=split,
        classes=names,
        shots=shots,
        frames=frames,
        stats=stats,
    )
    log_summary(ds)
    return ds


def _default_cache() -> Path:
    from colocam_plugin.data.yto_writer import cache_root

    return cache_root() / "videos"
