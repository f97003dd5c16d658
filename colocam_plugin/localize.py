"""Boxes and heat maps on a user's own videos or frame folders (``colocam localize``).

The pipeline streams: frames are decoded one at a time (PyAV for a video,
PIL for a folder of frames), resized to the network input as evaluation does
(:func:`~colocam_plugin.data.loading.resize_frame`) in a background thread,
batched, sent to the device, and their CAMs and class probabilities come
back once per batch. What a frame leaves behind is one row (and, with an
overlay, one encoded frame), so memory does not grow with the video's length.

Per frame:

- **class**: the one asked for (``class_name``), else the classifier's top-1
  class; **score**: the classifier's softmax probability of that class. With
  a localizer, its own frozen copy of the classifier gives the logits (the
  same network the localizer was trained on, as ``colocam evaluate`` scores
  it).
- **box**: wsolevaluation's single box (:func:`~colocam_plugin.metrics.cam_boxes.cam_to_boxes`:
  min-max normalised CAM, foreground ``u8 > int(threshold * u8.max())``,
  bounding rectangle of the largest contour) at one fixed ``threshold``
  (there is no ground truth to pick one at inference), mapped from the
  ``S x S`` input grid to the original frame: input pixel ``c`` covers
  original pixels ``[c W/S, (c+1) W/S)``, so ``x0 = floor(x0 W/S)`` and
  ``x1 = ceil((x1 + 1) W/S) - 1``; 0-based, inclusive, inside the frame.

**Temporal mode** (``temporal=True``) uses the ``window`` frames centred on
each frame (fewer at the ends of an input):

1. the CAM is the mean of the window's min-max normalised CAMs and the class
   probabilities the mean of the window's (so a one-frame flicker of the map
   or of the class does not move the box);
2. the box is the per-coordinate median of the window's boxes (of frames
   not marked absent), which removes one-frame jumps;
3. a frame is marked absent when the classifier sees no object it knows
   there: the window-mean probability of the class is below
   ``absent_below`` AND no class's window-mean probability reaches
   ``absent_top``. Its class and score are written, its box fields are left
   empty. The defaults: ``absent_below`` (:data:`ABSENT_BELOW` = ``None``)
   is chance level, ``1 / K`` for a classifier of ``K`` classes, and
   ``absent_top`` (:data:`ABSENT_TOP`) is 0.5, a majority. A class the
   classifier is sure of means something it knows is in view, if not the
   class asked for: on a shot it misclassifies, the object is there and
   keeps its box. (The class test alone, ``absent_top=1``, marked 10% of
   the SynthYTO test frames, which all hold the object, with a 76%-accurate
   classifier, 13 of those 15 frames held by another class at >= 0.5;
   with both tests, 2: ``benchmarks/results/temporal_synthyto_layercam.md``,
   docs/videos.md.) Without a class, each frame's top class is used, which
   is never below chance: raise ``absent_below`` to mark frames there.

Frames of one input are never mixed with another input's.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from colocam_plugin.data.videos import (
    VIDEO_EXTENSIONS,
    DecodedFrame,
    VideoWriter,
    sample_video_frames,
    video_rate,
)
from colocam_plugin.errors import ColocamError, DataError

__all__ = [
    "ABSENT_BELOW",
    "BOX_THRESHOLD",
    "ROW_FIELDS",
    "TEMPORAL_WINDOW",
    "CAMEngine",
    "FrameResult",
    "LocalizeSummary",
    "folder_frames",
    "input_frames",
    "localize",
    "localize_stream",
]

log = logging.getLogger("colocam_plugin.localize")

#: columns of ``boxes.csv`` and keys of each ``boxes.json`` row
ROW_FIELDS: tuple[str, ...] = ("video", "frame", "time_s", "class", "score", "x0", "y0", "x1", "y1")
#: temporal mode: a frame whose window-mean class probability is below this is
#: "absent"; None: chance level, 1 / number of classes
ABSENT_BELOW: float | None = None
#: temporal mode: a frame is absent only if no class's window-mean probability
#: reaches this (a class the classifier is sure of means an object is in view);
#: 1 (or more): the class probability alone decides
ABSENT_TOP: float = 0.5
#: CAM threshold of the box, a fraction of the normalised CAM's maximum
BOX_THRESHOLD = 0.5
#: temporal mode: frames in the centred window (odd)
TEMPORAL_WINDOW = 5
#: frame rate assumed for a folder of frames (times and overlay), frames per second
FOLDER_FPS = 25.0

T = TypeVar("T")


# ----------------------------------------------------------------------------- inputs


def _sample(
    items: Iterable[tuple[float, Callable[[], np.ndarray]]], fps: float | None
) -> Iterator[DecodedFrame]:
    last, taken = -1, 0
    for t, read in items:
        if fps is not None:
            bucket = int(np.floor(t * fps + 1e-6))
            if bucket <= last:
                continue
            last = bucket
        yield DecodedFrame(taken, t, read())
        taken += 1


def folder_frames(
    paths: Sequence[Path], *, fps: float | None = None, folder_fps: float = FOLDER_FPS
) -> Iterator[DecodedFrame]:
    """Frames of image files in order, frame ``i`` at ``i / folder_fps`` s, sampled at ``fps``.

    Raises:
        DataError: an image that cannot be decoded (names the file).
    """
    from colocam_plugin.data.io import read_image

    def reader(p: Path) -> Callable[[], np.ndarray]:
        return lambda: read_image(p)

    yield from _sample(((i / folder_fps, reader(p)) for i, p in enumerate(paths)), fps)


def input_frames(
    path: str | Path, *, fps: float | None = None, folder_fps: float = FOLDER_FPS
) -> tuple[Iterator[DecodedFrame], float, int | None]:
    """``(frames, frame rate, expected frame count or None)`` of a video file or frame folder.

    Raises:
        DataError: missing input, a file that is not a video, an empty folder.
    """
    from colocam_plugin.data.io import IMAGE_EXTENSIONS, list_frames

    p = Path(path)
    if p.is_dir():
        files = list_frames(p)
        if not files:
            raise DataError(f"{p}: no frames ({'/'.join(IMAGE_EXTENSIONS)} files) in the folder")
        n = len(files) if fps is None else int(np.ceil(len(files) * min(1.0, fps / folder_fps)))
        return folder_frames(files, fps=fps, folder_fps=folder_fps), fps or folder_fps, n
    if not p.exists():
        raise DataError(f"{p}: input not found")
    if p.suffix.lower() not in VIDEO_EXTENSIONS:
        raise DataError(f"{p}: not a video ({', '.join(VIDEO_EXTENSIONS)}) nor a folder of frames")
    rate = video_rate(p)
    total = _frame_count(p)
    if total is not None and fps is not None:
        total = int(np.ceil(total * min(1.0, fps / rate)))
    return sample_video_frames(p, fps), fps or rate, total


def _frame_count(path: Path) -> int | None:
    import av

    try:
        with av.open(str(path)) as c:
            n = int(c.streams.video[0].frames)
    except Exception:  # only for the progress bar
        return None
    return n or None


def _prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``items`` in a thread, ``depth`` items ahead; errors re-raised here."""
    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((0, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((1, None))
        except BaseException as exc:  # handed to the consumer
            q.put((2, exc))

    thread = threading.Thread(target=work, daemon=True, name="colocam-decode")
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 1:
                return
            if kind == 2:
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def _centred(items: Iterable[T], radius: int) -> Iterator[tuple[T, list[T]]]:
    """Each item with the items within ``radius`` of it (fewer at the ends), streaming."""
    buf: deque[T] = deque()
    centre = 0  # index in buf of the next item to emit
    for item in items:
        buf.append(item)
        if len(buf) - 1 - centre >= radius:
            yield buf[centre], list(buf)[max(0, centre - radius) : centre + radius + 1]
            centre += 1
            if centre > radius:
                buf.popleft()
                centre -= 1
    while centre < len(buf):
        yield buf[centre], list(buf)[max(0, centre - radius) : centre + radius + 1]
        centre += 1


# ----------------------------------------------------------------------------- model


class CAMEngine:
    """A classifier with a CAM method or a trained localizer, run on batches.

    With a localizer, the frozen classifier inside the stage-2 checkpoint
    gives both the logits and the CAM from ONE encoder pass per batch
    (:class:`~colocam_plugin.cam.localizer.LocalizerCAM`); the ``classifier``
    checkpoint is read for its classes and input size only. The localizer
    runs under ``torch.inference_mode``, in ``channels_last`` and, with
    ``amp``, under autocast. A CAM method (e.g. LayerCAM, which needs a
    backward pass) gets the classifier frozen (``requires_grad=False``: no
    autograd graph through the encoder; the grad-cam adapters cut the graph
    at the target layer) and in ``channels_last``; pytorch-grad-cam works in
    numpy float32, so ``amp`` does not apply to it.

    Args:
        classifier: stage-1 checkpoint.
        localizer: stage-2 checkpoint (CoLo-CAM / F-CAM / TCAM), or ``None``.
        method: registered CAM method name (``colocam methods``), or ``None``.
        device: torch device.
        image_size: network input side; default the classifier's training size.
        amp: localizer precision: ``"auto"`` (bf16 where the device has fast
            bf16 kernels), ``"bf16"`` or ``"none"`` (float32).

    Raises:
        ColocamError: neither or both of ``localizer`` and ``method``, an
            unreadable checkpoint, or a localizer trained on other classes.
    """

    def __init__(
        self,
        classifier: str | Path,
        *,
        localizer: str | Path | None = None,
        method: str | None = None,
        device: str | torch.device = "cpu",
        image_size: int | None = None,
        amp: str = "none",
    ) -> None:
        from colocam_plugin.api import create_cam_method
        from colocam_plugin.cam.localizer import AMP_MODES
        from colocam_plugin.train.checkpoint import check_classes, load_checkpoint
        from colocam_plugin.train.precision import amp_dtype
        from colocam_plugin.train.stage1 import load_classifier

        if (localizer is None) == (method is None):
            raise ColocamError("give one of --localizer CHECKPOINT or --method NAME")
        if amp not in AMP_MODES:
            raise ColocamError(f"--amp {amp}: expected one of {', '.join(AMP_MODES)}")
        self.device = torch.device(device)
        self.model: torch.nn.Module | None = None
        if localizer is not None:
            ckpt = load_checkpoint(classifier, kind="classifier")
            config: dict[str, Any] = dict(ckpt["config"])
            classes = list(ckpt.get("classes", []))
            del ckpt
        else:
            self.model = load_classifier(classifier, device=self.device)
            for p in self.model.parameters():  # no autograd graph through the encoder
                p.requires_grad_(False)
            self.model.to(memory_format=torch.channels_last)
            config, classes = dict(self.model.checkpoint_config), list(self.model.classes)
        self.classes: list[str] = classes or [str(i) for i in range(int(config["num_classes"]))]
        self.image_size = int(image_size or config.get("image_size", 224))
        self.localizer = localizer is not None
        #: autocast dtype of the model (None: float32)
        self.dtype: torch.dtype | None = None
        if localizer is not None:
            self.method = create_cam_method(
                "localizer", checkpoint=localizer, device=self.device, amp=amp, channels_last=True
            )
            check_classes(
                self.method.classes, self.classes, checkpoint=localizer, data=str(classifier)
            )
            self.name = str(self.method.name)
            self.dtype = amp_dtype(amp, self.device)
        else:
            self.method = create_cam_method(str(method))
            self.name = str(method)

    @property
    def precision(self) -> str:
        """``"bf16"``/``"float16"`` under autocast, else ``"float32"``."""
        if self.dtype is None:
            return "float32"
        return "bf16" if self.dtype == torch.bfloat16 else str(self.dtype).removeprefix("torch.")

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """CAMs and class probabilities of a batch.

        Args:
            images: ``(B, 3, S, S)`` float in 0..255 (on any device).
            targets: ``(B,)`` class indices, or ``None`` for the top-1 class.

        Returns:
            ``(cams (B, S, S) float32 in [0, 1], probs (B, K) float32)`` on the CPU;
            one host-to-device and one device-to-host copy per batch, no sync per frame.
        """
        if self.device.type == "cuda" and images.device.type == "cpu":
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True)
        if self.localizer:  # targets do not change a localizer's map
            with torch.inference_mode():
                out = self.method(None, x, None)
                cams = out.cams.float()
                probs = out.logits.float().softmax(1)
        else:
            x = x.contiguous(memory_format=torch.channels_last)
            t = targets.to(self.device) if targets is not None else None
            out = self.method(self.model, x, t)
            cams = out.cams.detach().float()
            probs = out.logits.detach().float().softmax(1)
        both = torch.cat([cams.flatten(1), probs], dim=1).cpu().numpy()  # one copy back
        n = cams.shape[1] * cams.shape[2]
        return np.ascontiguousarray(both[:, :n]).reshape(cams.shape), both[:, n:]


# ----------------------------------------------------------------------------- per frame


@dataclass
class FrameResult:
    """What localize found in one frame.

    Attributes:
        video: the input as given.
        frame: 0-based index among the input's decoded (sampled) frames.
        time_s: presentation time in seconds.
        class_index: class index; ``class_name`` its name.
        score: the classifier's probability of the class (window mean in
            temporal mode).
        box: ``(x0, y0, x1, y1)`` original pixels, 0-based inclusive, or
            ``None`` (temporal mode: object absent).
        size: ``(width, height)`` of the original frame.
        cam_u8: ``(S, S)`` uint8 CAM used for the box (for overlays).
        image: the original frame, kept only for overlays.
    """

    video: str
    frame: int
    time_s: float
    class_index: int
    class_name: str
    score: float
    box: tuple[int, int, int, int] | None
    size: tuple[int, int]
    cam_u8: np.ndarray = field(repr=False)
    image: np.ndarray | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The ``boxes.csv``/``boxes.json`` row (``None`` box fields when absent)."""
        x0, y0, x1, y1 = self.box if self.box is not None else (None,) * 4
        return {
            "video": self.video,
            "frame": self.frame,
            "time_s": round(self.time_s, 6),
            "class": self.class_name,
            "score": round(self.score, 6),
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
        }


@dataclass
class _Raw:
    frame: DecodedFrame
    size: tuple[int, int]
    cam: np.ndarray  # (S, S) float32, min-max normalised
    probs: np.ndarray  # (K,)
    image: np.ndarray | None


def _to_original(box: np.ndarray, size: tuple[int, int], s: int) -> tuple[int, int, int, int]:
    w, h = size
    x0, y0, x1, y1 = (int(v) for v in box)
    return (
        min(w - 1, int(np.floor(x0 * w / s))),
        min(h - 1, int(np.floor(y0 * h / s))),
        min(w - 1, int(np.ceil((x1 + 1) * w / s)) - 1),
        min(h - 1, int(np.ceil((y1 + 1) * h / s)) - 1),
    )


def _batches(
    frames: Iterator[DecodedFrame], size: int, batch_size: int, keep_images: bool
) -> Iterator[tuple[list[tuple[DecodedFrame, tuple[int, int], np.ndarray | None]], torch.Tensor]]:
    from colocam_plugin.data.loading import resize_frame

    metas: list[tuple[DecodedFrame, tuple[int, int], np.ndarray | None]] = []
    tensors: list[torch.Tensor] = []
    for fr in frames:
        h, w = fr.image.shape[:2]
        tensors.append(resize_frame(fr.image, size))
        light = DecodedFrame(fr.index, fr.time_s, np.empty((0, 0, 3), np.uint8))
        metas.append((light, (w, h), fr.image if keep_images else None))
        if len(metas) == batch_size:
            yield metas, torch.stack(tensors)
            metas, tensors = [], []
    if metas:
        yield metas, torch.stack(tensors)


def localize_stream(
    frames: Iterator[DecodedFrame],
    engine: CAMEngine,
    *,
    video: str,
    class_index: int | None = None,
    temporal: bool = False,
    threshold: float = BOX_THRESHOLD,
    window: int = TEMPORAL_WINDOW,
    absent_below: float | None = ABSENT_BELOW,
    absent_top: float = ABSENT_TOP,
    batch_size: int = 16,
    keep_images: bool = False,
) -> Iterator[FrameResult]:
    """Localize every frame of one input, streaming (see the module docstring).

    Args:
        frames: the input's frames, in order.
        engine: the model.
        video: the ``video`` field of the rows.
        class_index: the class to localize; ``None``: each frame's top-1.
        temporal: smooth over ``window`` frames and mark absent frames.
        threshold: CAM threshold of the box (fraction of the CAM's max).
        window: odd number of frames of the temporal window.
        absent_below: temporal mode: class probability under which the
            object is absent (``None``: chance level, ``1 / K``).
        absent_top: temporal mode: a frame is not absent when some class's
            probability reaches this (``>= 1``: the class test alone).
        batch_size: frames per model call.
        keep_images: keep the original frame in each result (overlays).

    Yields:
        :class:`FrameResult` in frame order.
    """
    from colocam_plugin.metrics.cam_boxes import cam_to_boxes, cams_to_uint8, normalize_cams

    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: expected an odd number of frames >= 1, got {window}")
    s = engine.image_size

    def raw() -> Iterator[_Raw]:
        for metas, images in _prefetch(_batches(frames, s, batch_size, keep_images)):
            targets = None
            if class_index is not None:
                targets = torch.full((len(metas),), class_index, dtype=torch.long)
            cams, probs = engine(images, targets)
            cams = normalize_cams(cams)
            for (fr, size, image), cam, p in zip(metas, cams, probs):
                yield _Raw(fr, size, cam, p, image)

    def decide(r: _Raw, cam: np.ndarray, probs: np.ndarray) -> FrameResult:
        k = int(probs.argmax()) if class_index is None else class_index
        score = float(probs[k])
        limit = 1.0 / len(probs) if absent_below is None else absent_below
        # absent_top >= 1: the class test alone (a float32 softmax can reach 1.0)
        sure = absent_top < 1 and float(probs.max()) >= absent_top
        absent = temporal and score < limit and not sure
        box = None
        if not absent:
            box = _to_original(cam_to_boxes(cam, [threshold])[0][0], r.size, s)
        return FrameResult(
            video=video,
            frame=r.frame.index,
            time_s=r.frame.time_s,
            class_index=k,
            class_name=engine.classes[k],
            score=score,
            box=box,
            size=r.size,
            cam_u8=cams_to_uint8(cam),
            image=r.image,
        )

    if not temporal:
        for r in raw():
            yield decide(r, r.cam, r.probs)
        return
    radius = window // 2
    smoothed = (
        decide(
            r,
            np.mean([n.cam for n in near], axis=0),
            np.mean([n.probs for n in near], axis=0),
        )
        for r, near in _centred(raw(), radius)
    )
    for res, near_res in _centred(smoothed, radius):
        if res.box is None:
            yield res
            continue
        boxes = np.array([n.box for n in near_res if n.box is not None], dtype=np.float64)
        med = np.floor(np.median(boxes, axis=0)).astype(int)
        yield replace(res, box=(int(med[0]), int(med[1]), int(med[2]), int(med[3])))


# ----------------------------------------------------------------------------- writing


def _draw(res: FrameResult) -> np.ndarray:
    import cv2

    from colocam_plugin.gallery import overlay

    if res.image is None:
        raise ValueError("overlay needs keep_images=True")
    w, h = res.size
    cam = cv2.resize(res.cam_u8, (w, h), interpolation=cv2.INTER_LINEAR)
    img = overlay(res.image, cam, alpha=0.4)
    thick = max(1, round(min(w, h) / 160))
    if res.box is not None:
        x0, y0, x1, y1 = res.box
        cv2.rectangle(img, (x0, y0), (x1, y1), (255, 255, 255), thick + 2)
        cv2.rectangle(img, (x0, y0), (x1, y1), (255, 40, 40), thick)
    text = f"{res.class_name} {res.score:.2f}" + ("" if res.box is not None else " absent")
    scale = max(0.35, min(w, h) / 600)
    cv2.putText(
        img,
        text,
        (4, int(18 * scale * 2)),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        max(1, thick),
        cv2.LINE_AA,
    )
    return img


@dataclass
class LocalizeSummary:
    """What :func:`localize` wrote.

    Attributes:
        frames: frames per input (as given).
        seconds: wall time of the whole run.
        load_s: of which loading the checkpoints and building the model.
        csv: ``boxes.csv``; ``json``: ``boxes.json``.
        overlays: overlay video per input (``--overlay``).
        method: the CAM method or the localizer's method name.
        absent: frames marked absent (temporal mode).
        precision: the model's compute precision (``"float32"``, ``"bf16"``).
    """

    frames: dict[str, int]
    seconds: float
    csv: Path
    json: Path
    overlays: dict[str, Path]
    method: str
    load_s: float = 0.0
    absent: int = 0
    precision: str = "float32"

    @property
    def frames_per_second(self) -> float:
        """Frames per wall-clock second after loading (decode, resize, model, boxes, writing)."""
        return sum(self.frames.values()) / max(self.seconds - self.load_s, 1e-9)


def _overlay_name(inp: str, taken: set[str]) -> str:
    base = Path(inp.rstrip("/\\")).name or "input"
    stem = Path(base).stem if Path(base).suffix.lower() in VIDEO_EXTENSIONS else base
    name, i = f"{stem}_overlay.mp4", 2
    while name in taken:
        name, i = f"{stem}-{i}_overlay.mp4", i + 1
    taken.add(name)
    return name


def _tmp_in(directory: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    return Path(tmp)


def localize(
    inputs: Sequence[str | Path],
    *,
    classifier: str | Path,
    out_dir: str | Path,
    localizer: str | Path | None = None,
    method: str | None = None,
    class_name: str | None = None,
    overlay: bool = False,
    temporal: bool = False,
    device: str = "cpu",
    batch_size: int = 16,
    fps: float | None = None,
    image_size: int | None = None,
    threshold: float = BOX_THRESHOLD,
    window: int = TEMPORAL_WINDOW,
    absent_below: float | None = ABSENT_BELOW,
    absent_top: float = ABSENT_TOP,
    folder_fps: float = FOLDER_FPS,
    progress: bool = True,
    amp: str = "auto",
) -> LocalizeSummary:
    """Localize the object in every frame of each input; write the rows (and overlays).

    Writes ``out_dir/boxes.csv`` (header :data:`ROW_FIELDS`, one row per
    decoded frame, empty box fields for absent frames), ``out_dir/boxes.json``
    (a list of the same rows as objects, ``null`` for empty fields) and, with
    ``overlay``, ``out_dir/<input name>_overlay.mp4`` per input (CAM heat map
    and box drawn). Every file is written to a temporary file in ``out_dir``
    and renamed into place when complete.

    Args:
        inputs: video files and/or folders of frames; ``video`` in the rows
            is each as given.
        classifier: stage-1 checkpoint.
        out_dir: output folder (created).
        localizer: stage-2 checkpoint; exclusive with ``method``.
        method: registered CAM method (e.g. ``"layercam"``).
        class_name: localize this class in every frame; default each frame's
            top-1 class.
        overlay: also write an overlay video per input.
        temporal: temporal smoothing and absent frames (module docstring).
        device: torch device (``"cpu"``, ``"cuda"``...).
        batch_size: frames per model call.
        fps: frames per second to take; ``None``: every frame.
        image_size: network input side; default the classifier's.
        threshold: CAM threshold of the box.
        window: temporal window (odd).
        absent_below: temporal mode: class probability of an absent object
            (``None``: chance level, ``1 / K``).
        absent_top: temporal mode: no class of an absent frame reaches this.
        folder_fps: frame rate of a folder of frames.
        progress: show a tqdm progress bar per input.
        amp: localizer precision: ``"auto"`` (bf16 where the device has fast
            bf16 kernels: CUDA with bf16, CPUs with AVX-512-bf16/AMX),
            ``"bf16"`` or ``"none"`` (float32). CAMs and scores are float32;
            CAM methods always run in float32 (pytorch-grad-cam is numpy).

    Returns:
        :class:`LocalizeSummary`.

    Raises:
        ColocamError: bad arguments, unknown class, unreadable checkpoint.
        DataError: a missing or undecodable input.
    """
    from tqdm.auto import tqdm

    if not inputs:
        raise ColocamError("no INPUT given: pass video files or folders of frames")
    if batch_size < 1:
        raise ColocamError(f"--batch-size {batch_size}: expected >= 1")
    if not 0 <= threshold < 1:
        raise ColocamError(f"--threshold {threshold}: expected a value in [0, 1)")
    if window < 1 or window % 2 == 0:
        raise ColocamError(f"--window {window}: expected an odd number of frames")
    if fps is not None and not fps > 0:
        raise ColocamError(f"--fps {fps}: expected a positive rate")
    for inp in inputs:  # fail before any work on a bad later input
        p = Path(inp)
        if not p.exists():
            raise DataError(f"{inp}: input not found")
        if not p.is_dir() and p.suffix.lower() not in VIDEO_EXTENSIONS:
            raise DataError(
                f"{inp}: not a video ({', '.join(VIDEO_EXTENSIONS)}) nor a folder of frames"
            )
    t0 = time.perf_counter()
    engine = CAMEngine(
        classifier,
        localizer=localizer,
        method=method,
        device=device,
        image_size=image_size,
        amp=amp,
    )
    load_s = time.perf_counter() - t0
    class_index = None
    if class_name is not None:
        if class_name not in engine.classes:
            raise ColocamError(f"--class {class_name!r}: not one of {engine.classes}")
        class_index = engine.classes.index(class_name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_tmp, json_tmp = _tmp_in(out, "boxes.csv"), _tmp_in(out, "boxes.json")
    pending: list[tuple[Path, Path]] = [
        (csv_tmp, out / "boxes.csv"),
        (json_tmp, out / "boxes.json"),
    ]
    counts: dict[str, int] = {}
    overlays: dict[str, Path] = {}
    names: set[str] = set()
    absent = 0
    try:
        with csv_tmp.open("w", newline="") as fc, json_tmp.open("w") as fj:
            writer = csv.writer(fc)
            writer.writerow(ROW_FIELDS)
            fj.write("[")
            first = True
            for inp in inputs:
                key = str(inp)
                frames, rate, total = input_frames(inp, fps=fps, folder_fps=folder_fps)
                video_out: VideoWriter | None = None
                if overlay:
                    target = out / _overlay_name(key, names)
                    tmp = _tmp_in(out, target.name)
                    pending.append((tmp, target))
                    overlays[key] = target
                    video_out = VideoWriter(tmp, rate, container_format="mp4", suffix=".mp4")
                bar = tqdm(total=total, desc=Path(key).name, unit="frame", disable=not progress)
                n = 0
                try:
                    for res in localize_stream(
                        frames,
                        engine,
                        video=key,
                        class_index=class_index,
                        temporal=temporal,
                        threshold=threshold,
                        window=window,
                        absent_below=absent_below,
                        absent_top=absent_top,
                        batch_size=batch_size,
                        keep_images=overlay,
                    ):
                        row = res.row()
                        writer.writerow(["" if row[k] is None else row[k] for k in ROW_FIELDS])
                        fj.write(("\n" if first else ",\n") + json.dumps(row))
                        first = False
                        absent += res.box is None
                        if video_out is not None:
                            video_out.write(_draw(res))
                        n += 1
                        bar.update(1)
                finally:
                    bar.close()
                    if video_out is not None:
                        video_out.close()
                counts[key] = n
                log.info("%s: %d frames localized", key, n)
            fj.write("\n]\n")
        for tmp, target in pending:
            os.replace(tmp, target)
    finally:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
    return LocalizeSummary(
        frames=counts,
        seconds=time.perf_counter() - t0,
        csv=out / "boxes.csv",
        json=out / "boxes.json",
        overlays=overlays,
        method=engine.name,
        load_s=load_s,
        absent=absent,
        precision=engine.precision,
    )
