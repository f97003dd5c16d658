"""Frame-sequence sampler: one training sample is ``n`` frames of one shot.

Only a shot's central window may be drawn (METHOD.md): with ``L`` frames,
``c = L // 2``, ``p = floor(window * L)``, ``h = p // 2`` and the allowed indices
are ``[c - h, c + h]`` clipped to ``[0, L - 1]``. The window always holds at
least one index (``c`` itself), and holds ``2h + 1`` indices, so it is one frame
longer than ``p`` when ``p`` is even (``L = 10`` -> ``[2, 8]``, 7 frames).

Styles (``n`` frames; ``m`` = window length, ``[lo, hi]`` = window):

- ``before`` (reference, the paper's "adjacent"): anchor ``r`` uniform in
  ``[lo + n - 1, hi]``, frames ``(r, r-1, ..., r-n+1)``: consecutive,
  decreasing, inside the window. If ``m < n`` the anchor is ``hi`` and the run
  is clamped at ``lo`` (``lo`` repeats).
- ``after``: mirror image, ``r`` uniform in ``[lo, hi - n + 1]``, frames
  ``(r, ..., r + n - 1)``; clamped at ``hi`` when ``m < n``.
- ``random``: ``n`` distinct indices uniform over the window, sorted; when
  ``m < n`` every window index once, plus ``n - m`` drawn with replacement.
- ``gaussian``: ``n`` distinct indices drawn without replacement with weights
  ``exp(-(i - mu)^2 / (2 s^2))``, ``mu`` the window's centre, ``s =
  gaussian_std * m`` (default 0.25 of the window), sorted; as ``random`` when
  ``m < n``.
- ``interval``: the window cut into ``n`` equal chunks (boundaries
  ``lo + floor(k m / n)``), one uniform index per chunk, increasing; when
  ``m < n`` chunk ``k`` is the single index ``lo + floor(k m / n)`` (repeats).

Randomness comes only from ``numpy.random.default_rng([seed, epoch])``, so an
epoch is reproducible on any worker.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

from colocam_plugin.data.records import Shot

__all__ = [
    "STYLES",
    "FrameSequenceSampler",
    "SequenceBatches",
    "batch_sequences",
    "central_window",
    "sample_sequence",
]

Style = Literal["before", "after", "random", "gaussian", "interval"]
STYLES: tuple[str, ...] = ("before", "after", "random", "gaussian", "interval")


def central_window(length: int, window: float = 0.6) -> tuple[int, int]:
    """Inclusive ``(lo, hi)`` of the frames a shot of ``length`` frames may give.

    Args:
        length: frames in the shot, >= 1.
        window: share of the shot, in ``(0, 1]`` (ref 0.6).

    Returns:
        ``(lo, hi)`` with ``0 <= lo <= L // 2 <= hi <= L - 1``.

    Raises:
        ValueError: ``length < 1`` or ``window`` outside ``(0, 1]``.

    Examples:
        >>> central_window(10)
        (2, 8)
        >>> central_window(1), central_window(2), central_window(100)
        ((0, 0), (1, 1), (20, 80))
    """
    if length < 1:
        raise ValueError(f"length: expected a shot of >= 1 frames, got {length}")
    if not 0.0 < window <= 1.0:
        raise ValueError(f"window: expected a share in (0, 1], got {window}")
    centre = length // 2
    half = math.floor(window * length + 1e-9) // 2  # 1e-9: 0.6 * 5 must floor to 3
    return max(0, centre - half), min(length - 1, centre + half)


def sample_sequence(
    length: int,
    n_frames: int,
    rng: np.random.Generator,
    *,
    style: Style = "before",
    window: float = 0.6,
    gaussian_std: float = 0.25,
) -> tuple[int, ...]:
    """Draw the frame indices of one sequence from a shot of ``length`` frames.

    Args:
        length: frames in the shot, >= 1.
        n_frames: frames per sequence ``n``, >= 1.
        rng: the only source of randomness.
        style: one of :data:`STYLES` (see the module docstring).
        window: central share of the shot allowed (ref 0.6).
        gaussian_std: std of ``gaussian`` as a share of the window length.

    Returns:
        ``n_frames`` indices inside :func:`central_window`.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> seq = sample_sequence(20, 4, rng, style="before")
        >>> [a - b for a, b in zip(seq, seq[1:])]
        [1, 1, 1]
        >>> sample_sequence(20, 3, rng, style="interval")[0] < 10
        True
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: expected >= 1, got {n_frames}")
    if style not in STYLES:
        raise ValueError(f"style: unknown sampling style {style!r}; valid: {', '.join(STYLES)}")
    if gaussian_std <= 0:
        raise ValueError(f"gaussian_std: expected > 0, got {gaussian_std}")
    lo, hi = central_window(length, window)
    m = hi - lo + 1
    n = n_frames
    if style in ("before", "after"):
        if m >= n:
            r = (
                int(rng.integers(lo + n - 1, hi + 1))
                if style == "before"
                else int(rng.integers(lo, hi - n + 2))
            )
        else:
            r = hi if style == "before" else lo
        step = -1 if style == "before" else 1
        return tuple(min(max(r + step * i, lo), hi) for i in range(n))
    idx = np.arange(lo, hi + 1)
    if style == "interval":
        bounds = [lo + (k * m) // n for k in range(n + 1)]
        return tuple(int(rng.integers(a, b)) if b > a else a for a, b in itertools.pairwise(bounds))
    if m < n:
        extra = rng.choice(idx, n - m, replace=True)
        return tuple(sorted(int(i) for i in np.concatenate([idx, extra])))
    p = None
    if style == "gaussian":
        mu, s = (lo + hi) / 2, gaussian_std * m
        w = np.exp(-((idx - mu) ** 2) / (2 * s * s)) + 1e-12
        p = w / w.sum()
    return tuple(sorted(int(i) for i in rng.choice(idx, n, replace=False, p=p)))


class FrameSequenceSampler:
    """Yield one sequence ``(shot_index, frame_indices)`` per shot per epoch.

    Every shot appears exactly once per epoch (in a random order when
    ``shuffle``); a sequence never straddles shots. The draw depends only on
    ``(seed, epoch)``: call :meth:`set_epoch` before each epoch, as with
    ``torch.utils.data.DistributedSampler``.

    With ``num_replicas > 1`` each rank yields every ``num_replicas``-th entry
    of the epoch's shot order, starting at ``rank``; the frame draws are those
    of the unsharded epoch, so the ranks together yield exactly its sequences.
    Like ``DistributedSampler``, the order is padded by wrapping around to a
    multiple of ``num_replicas`` (so every rank runs the same number of steps)
    unless ``drop_last``, which drops the tail instead.

    Args:
        shots: :class:`~colocam_plugin.data.records.Shot` records or their lengths.
        n_frames: frames per sequence ``n`` (ref 4), >= 1.
        style: one of :data:`STYLES`.
        window: central share of every shot allowed (ref 0.6).
        seed: base seed.
        shuffle: visit shots in a random order (else in input order).
        gaussian_std: std of the ``gaussian`` style, share of the window.
        num_replicas: processes sharing the epoch (distributed training).
        rank: this process's rank, in ``[0, num_replicas)``.
        drop_last: with ``num_replicas > 1``, drop the tail instead of padding.

    Examples:
        >>> sampler = FrameSequenceSampler([10, 3, 7], 2, seed=1)
        >>> len(sampler), sorted(i for i, _ in sampler)
        (3, [0, 1, 2])
        >>> ranks = [FrameSequenceSampler([10, 3, 7], 2, num_replicas=2, rank=r) for r in (0, 1)]
        >>> [len(r) for r in ranks], sorted({i for r in ranks for i, _ in r})  # one shot padded
        ([2, 2], [0, 1, 2])
        >>> dict(FrameSequenceSampler([10], 2, shuffle=False))[0][0] in range(3, 9)
        True
    """

    def __init__(
        self,
        shots: Sequence[Shot] | Sequence[int],
        n_frames: int,
        *,
        style: Style = "before",
        window: float = 0.6,
        seed: int = 0,
        shuffle: bool = True,
        gaussian_std: float = 0.25,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas: expected an int >= 1, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"rank: expected an int in [0, {num_replicas}), got {rank!r}")
        lengths = []
        for i, shot in enumerate(shots):
            length = len(shot) if isinstance(shot, Shot) else shot
            if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
                name = f" ({shot.shot_id})" if isinstance(shot, Shot) else ""
                raise ValueError(
                    f"shots[{i}]{name}: expected a non-empty shot, got length {length!r}"
                )
            lengths.append(int(length))
        sample_sequence(
            max(lengths, default=1),
            n_frames,
            np.random.default_rng(0),
            style=style,
            window=window,
            gaussian_std=gaussian_std,
        )  # validates the arguments
        self.lengths = tuple(lengths)
        self.n_frames = int(n_frames)
        self.style: Style = style
        self.window = float(window)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.gaussian_std = float(gaussian_std)
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draw the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Sequences this rank yields per epoch."""
        n, r = len(self.lengths), self.num_replicas
        return n // r if self.drop_last else -(-n // r)

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.lengths)
        order = rng.permutation(n).tolist() if self.shuffle else list(range(n))
        # one draw per shot, in the unsharded order, whatever the rank
        draws = [
            sample_sequence(
                self.lengths[i],
                self.n_frames,
                rng,
                style=self.style,
                window=self.window,
                gaussian_std=self.gaussian_std,
            )
            for i in order
        ]
        slots = range(len(self) * self.num_replicas)  # padded or cut to a multiple of ranks
        for k in slots[self.rank :: self.num_replicas]:
            yield int(order[k % n]), draws[k % n]


class SequenceBatches:
    """Re-iterable batches of ``B // n`` sequences; see :func:`batch_sequences`."""

    def __init__(
        self, sampler: FrameSequenceSampler, batch_frames: int, *, drop_last: bool = False
    ):
        per_batch = batch_frames // sampler.n_frames
        if per_batch < 1:
            raise ValueError(
                f"batch_frames: {batch_frames} frames cannot hold one sequence of "
                f"{sampler.n_frames} frames; use batch_frames >= {sampler.n_frames}"
            )
        self.sampler = sampler
        self.sequences_per_batch = per_batch
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        """Forward to the sampler."""
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.sequences_per_batch)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self) -> Iterator[list[tuple[int, tuple[int, ...]]]]:
        batch: list[tuple[int, tuple[int, ...]]] = []
        for item in self.sampler:
            batch.append(item)
            if len(batch) == self.sequences_per_batch:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch


def batch_sequences(
    sampler: FrameSequenceSampler, batch_frames: int, *, drop_last: bool = False
) -> SequenceBatches:
    """Group a sampler's sequences into batches of ``B // n`` sequences.

    The result is re-iterable, has ``len`` and ``set_epoch``, so it works as a
    ``torch.utils.data.DataLoader(batch_sampler=...)`` over a dataset indexed
    by ``(shot_index, frame_indices)``.

    Args:
        sampler: the sequence sampler (``n = sampler.n_frames``).
        batch_frames: frames per batch ``B`` (ref 32), ``>= n``.
        drop_last: drop a final batch with fewer sequences.

    Returns:
        A :class:`SequenceBatches`.

    Examples:
        >>> batches = batch_sequences(FrameSequenceSampler([5] * 10, 4), 8)
        >>> [len(b) for b in batches]
        [2, 2, 2, 2, 2]
    """
    return SequenceBatches(sampler, batch_frames, drop_last=drop_last)
