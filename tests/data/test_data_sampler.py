"""Frame-sequence sampler: window, styles, epochs, batching."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colocam_plugin.data.records import FrameRecord, Shot
from colocam_plugin.data.sampler import (
    STYLES,
    FrameSequenceSampler,
    batch_sequences,
    central_window,
    sample_sequence,
)

lengths_st = st.lists(st.integers(1, 60), min_size=1, max_size=12)
n_st = st.integers(1, 8)
style_st = st.sampled_from(STYLES)
seed_st = st.integers(0, 2**31)


@given(length=st.integers(1, 500), window=st.floats(0.05, 1.0))
def test_central_window_matches_method_formula(length, window):
    lo, hi = central_window(length, window)
    c, h = length // 2, math.floor(window * length + 1e-9) // 2
    assert (lo, hi) == (max(0, c - h), min(length - 1, c + h))
    assert 0 <= lo <= c <= hi <= length - 1  # never empty


def test_central_window_reference_values():
    assert central_window(10) == (2, 8)
    assert central_window(5) == (1, 3)  # floor(0.6*5) = 3 exactly, h = 1
    assert central_window(1) == (0, 0)
    assert central_window(3) == (1, 1)


@pytest.mark.parametrize("bad", [0, -3])
def test_central_window_rejects_empty_shots(bad):
    with pytest.raises(ValueError, match="length"):
        central_window(bad)


def test_central_window_rejects_bad_share():
    with pytest.raises(ValueError, match="window"):
        central_window(10, 1.5)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 80), n=n_st, style=style_st, seed=seed_st)
def test_sequences_stay_in_the_window(length, n, style, seed):
    seq = sample_sequence(length, n, np.random.default_rng(seed), style=style)
    lo, hi = central_window(length)
    assert len(seq) == n
    assert all(isinstance(i, int) and lo <= i <= hi for i in seq)
    if hi - lo + 1 >= n:
        assert len(set(seq)) == n  # distinct whenever the window allows it


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 80), n=n_st, seed=seed_st)
def test_before_is_consecutive_decreasing_and_after_increasing(length, n, seed):
    lo, hi = central_window(length)
    before = sample_sequence(length, n, np.random.default_rng(seed), style="before")
    after = sample_sequence(length, n, np.random.default_rng(seed), style="after")
    if hi - lo + 1 >= n:
        assert all(a - b == 1 for a, b in itertools.pairwise(before))
        assert all(b - a == 1 for a, b in itertools.pairwise(after))
    else:  # clamped at the window's edge: the edge frame repeats
        assert before[0] == hi and before[-1] == lo
        assert after[0] == lo and after[-1] == hi


def test_before_anchor_covers_the_whole_allowed_range():
    rng = np.random.default_rng(0)
    anchors = {sample_sequence(20, 3, rng, style="before")[0] for _ in range(400)}
    lo, hi = central_window(20)  # (4, 16)
    assert anchors == set(range(lo + 2, hi + 1))


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 80), n=n_st, seed=seed_st)
def test_interval_puts_one_frame_per_chunk(length, n, seed):
    lo, hi = central_window(length)
    m = hi - lo + 1
    seq = sample_sequence(length, n, np.random.default_rng(seed), style="interval")
    bounds = [lo + (k * m) // n for k in range(n + 1)]
    for k, i in enumerate(seq):
        assert bounds[k] <= i < max(bounds[k + 1], bounds[k] + 1)


def test_gaussian_concentrates_on_the_window_centre():
    rng = np.random.default_rng(0)
    lo, hi = central_window(101)
    draws = np.array([sample_sequence(101, 1, rng, style="gaussian")[0] for _ in range(2000)])
    uniform = np.array([sample_sequence(101, 1, rng, style="random")[0] for _ in range(2000)])
    centre = (lo + hi) / 2
    assert abs(draws.mean() - centre) < 1.0
    assert draws.std() < 0.8 * uniform.std()  # std 0.25 m vs m / sqrt(12) = 0.29 m
    idx = np.arange(lo, hi + 1)  # std of the discrete Gaussian truncated to the window
    w = np.exp(-((idx - centre) ** 2) / (2 * (0.25 * idx.size) ** 2))
    assert abs(draws.std() - math.sqrt((w * (idx - centre) ** 2).sum() / w.sum())) < 0.6


def test_unknown_style_is_named():
    with pytest.raises(ValueError, match=r"'adjacent'.*before"):
        sample_sequence(10, 2, np.random.default_rng(0), style="adjacent")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_st, n=n_st, style=style_st, seed=seed_st, epoch=st.integers(0, 50))
def test_every_shot_once_per_epoch_and_deterministic(lengths, n, style, seed, epoch):
    sampler = FrameSequenceSampler(lengths, n, style=style, seed=seed)
    sampler.set_epoch(epoch)
    first = list(sampler)
    assert len(first) == len(sampler) == len(lengths)
    assert sorted(i for i, _ in first) == list(range(len(lengths)))
    for i, frames in first:  # one shot per sequence, inside that shot's window
        lo, hi = central_window(lengths[i])
        assert len(frames) == n and all(lo <= f <= hi for f in frames)
    again = FrameSequenceSampler(lengths, n, style=style, seed=seed)
    again.set_epoch(epoch)
    assert list(again) == first == list(sampler)


def test_epochs_and_seeds_differ():
    lengths = [30] * 20
    sampler = FrameSequenceSampler(lengths, 4, seed=0)
    draws = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        draws.append(list(sampler))
    assert draws[0] != draws[1] != draws[2]
    assert list(FrameSequenceSampler(lengths, 4, seed=1)) != draws[0]


def test_no_shuffle_keeps_the_input_order():
    order = [i for i, _ in FrameSequenceSampler([5, 6, 7, 8], 2, shuffle=False)]
    assert order == [0, 1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(
    lengths=lengths_st,
    n=n_st,
    style=style_st,
    seed=seed_st,
    epoch=st.integers(0, 50),
    replicas=st.integers(1, 5),
    drop_last=st.booleans(),
)
def test_ranks_split_the_unsharded_epoch(lengths, n, style, seed, epoch, replicas, drop_last):
    whole = FrameSequenceSampler(lengths, n, style=style, seed=seed)
    whole.set_epoch(epoch)
    expected = list(whole)
    ranks = []
    for rank in range(replicas):
        sampler = FrameSequenceSampler(
            lengths,
            n,
            style=style,
            seed=seed,
            num_replicas=replicas,
            rank=rank,
            drop_last=drop_last,
        )
        sampler.set_epoch(epoch)
        ranks.append(list(sampler))
        assert len(ranks[-1]) == len(sampler)  # every rank runs the same number of steps
    assert len({len(r) for r in ranks}) == 1
    # interleaving the ranks gives back the unsharded epoch, cut or wrapped around
    merged = [r[k] for k in range(len(ranks[0])) for r in ranks]
    per_rank = len(lengths) // replicas if drop_last else math.ceil(len(lengths) / replicas)
    assert len(merged) == per_rank * replicas
    assert merged == [expected[k % len(expected)] for k in range(len(merged))]


@pytest.mark.parametrize("bad", [{"num_replicas": 0}, {"rank": 2}, {"rank": -1}])
def test_rejects_bad_ranks(bad):
    kwargs = {"num_replicas": 2} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        FrameSequenceSampler([10], 2, **kwargs)


def _shot(n_frames: int, name: str) -> Shot:
    frames = tuple(
        FrameRecord(name, f"{name}/001", i, Path(f"{name}/{i}.jpg"), 0) for i in range(n_frames)
    )
    return Shot(name, f"{name}/001", 0, frames)


def test_accepts_shot_records_and_names_an_empty_one():
    sampler = FrameSequenceSampler([_shot(9, "cat/0001"), _shot(4, "cat/0002")], 2)
    assert sampler.lengths == (9, 4)
    with pytest.raises(ValueError, match=r"shots\[1\] \(cat/0002/001\)"):
        FrameSequenceSampler([_shot(9, "cat/0001"), _shot(0, "cat/0002")], 2)


@pytest.mark.parametrize("bad", [{"n_frames": 0}, {"window": 0.0}, {"gaussian_std": 0.0}])
def test_rejects_bad_arguments(bad):
    kwargs = {"n_frames": 2} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        FrameSequenceSampler([10], **kwargs)


@given(n_shots=st.integers(1, 40), n=st.integers(1, 8), batch=st.integers(1, 40))
def test_batches_hold_b_over_n_sequences(n_shots, n, batch):
    sampler = FrameSequenceSampler([12] * n_shots, n, seed=3)
    if batch < n:
        with pytest.raises(ValueError, match="batch_frames"):
            batch_sequences(sampler, batch)
        return
    batches = batch_sequences(sampler, batch)
    got = list(batches)
    assert len(got) == len(batches)
    assert all(len(b) == batch // n for b in got[:-1]) and 1 <= len(got[-1]) <= batch // n
    assert [item for b in got for item in b] == list(sampler)  # same epoch, same order
    dropped = list(batch_sequences(sampler, batch, drop_last=True))
    assert all(len(b) == batch // n for b in dropped)
    assert len(dropped) == n_shots // (batch // n)


def test_batches_follow_set_epoch():
    batches = batch_sequences(FrameSequenceSampler([12] * 8, 2), 4)
    first = list(batches)
    batches.set_epoch(1)
    assert list(batches) != first
