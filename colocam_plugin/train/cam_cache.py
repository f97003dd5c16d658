"""Pseudo-label CAMs: computed once per frame, cached on disk, no manual step.

The cache file name carries a fingerprint of the classifier's weights, the
CAM method, the input size and the frame list, so a retrained classifier (or
another method) never reads stale CAMs. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from colocam_plugin.atomic import atomic_write
from colocam_plugin.data.loading import load_eval_batch
from colocam_plugin.data.records import FrameRecord
from colocam_plugin.train.checkpoint import state_fingerprint

__all__ = ["cached_cams", "temporal_max_cams"]

log = logging.getLogger("colocam_plugin.train")


def _key(model: nn.Module, method: str, size: int, frames: Sequence[FrameRecord]) -> str:
    h = hashlib.sha1()
    h.update(state_fingerprint(model.state_dict()).encode())
    h.update(f"{method}|{size}".encode())
    for f in frames:
        h.update(str(f.path).encode())
    return h.hexdigest()[:20]


def cached_cams(
    model: nn.Module,
    frames: Sequence[FrameRecord],
    *,
    method: str = "layercam",
    image_size: int = 224,
    cache_dir: str | Path,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> torch.Tensor:
    """CAMs ``(N, S, S)`` float16 in [0, 1] of ``frames`` for their labels.

    Computed with the registered CAM method ``method`` on the frames resized
    to ``image_size`` (the evaluation input), or read from ``cache_dir``.
    """
    from colocam_plugin.api import create_cam_method

    cache_dir = Path(cache_dir)
    path = cache_dir / f"cams-{method}-{image_size}-{_key(model, method, image_size, frames)}.pt"
    if path.is_file():
        try:
            cams = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged cache file is recomputed, not fatal
            log.warning("%s: unreadable CAM cache (%s); computing it again", path, exc)
            cams = None
        if isinstance(cams, torch.Tensor) and cams.shape == (
            len(frames),
            image_size,
            image_size,
        ):
            log.info("pseudo-label CAMs read from %s", path)
            return cams
    cam_method = create_cam_method(method)
    model = model.to(device)
    out = torch.empty(len(frames), image_size, image_size, dtype=torch.float16)
    bar = tqdm(
        range(0, len(frames), batch_size), desc=f"{method} CAMs", disable=not progress, leave=False
    )
    for start in bar:
        chunk = frames[start : start + batch_size]
        images, _ = load_eval_batch(chunk, image_size)
        labels = torch.tensor([f.label for f in chunk], device=device)
        res = cam_method(model, images.to(device), labels)
        out[start : start + len(chunk)] = res.cams.detach().cpu().to(torch.float16)
    with atomic_write(path, "wb") as fh:
        torch.save(out, fh)
    log.info("pseudo-label CAMs (%d frames) cached in %s", len(frames), path)
    return out


def temporal_max_cams(cams: torch.Tensor, shot_of: Sequence[int], k: int) -> torch.Tensor:
    """TCAM's CAM-TMP: element-wise max over frame t and its ``k`` previous frames.

    Args:
        cams: ``(N, S, S)`` CAMs of frames listed shot by shot, in frame order.
        shot_of: shot index of every frame (frames of one shot contiguous).
        k: number of neighbours (frames t-1 ... t-k of the same shot).

    Examples:
        >>> c = torch.tensor([[[0.0]], [[1.0]], [[0.5]], [[0.25]]])
        >>> temporal_max_cams(c, [0, 0, 0, 1], k=1).flatten().tolist()
        [0.0, 1.0, 1.0, 0.25]
    """
    if cams.shape[0] != len(shot_of):
        raise ValueError(f"cams has {cams.shape[0]} frames but shot_of has {len(shot_of)}")
    out = cams.clone()
    for t in range(len(shot_of)):
        for d in range(1, k + 1):
            if t - d < 0 or shot_of[t - d] != shot_of[t]:
                break
            out[t] = torch.maximum(out[t], cams[t - d])
    return out
