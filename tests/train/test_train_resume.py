"""A run killed mid-epoch and resumed ends with the weights of an uninterrupted run.

The kill is an exception raised inside the second epoch (after the first
epoch's checkpoint landed), which leaves the disk as SIGKILL would: the
checkpoint of the last finished epoch, and log rows of the unfinished one.
Resuming must give bitwise-equal weights (CPU) and a log without the repeated
epoch's rows counted twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
from colocam_plugin.data.yto_v1 import load_yto_v1
from colocam_plugin.models.classifier import WGAPClassifier
from colocam_plugin.train import stage2
from colocam_plugin.train.config import Stage1Config
from colocam_plugin.train.stage1 import train_classifier
from colocam_plugin.train.stage2 import Stage2Config, train_localizer


class _Killed(RuntimeError):
    pass


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ after resume: {different[:5]}"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> list:
    root = generate_synthyto(tmp_path_factory.mktemp("d"), SynthYTOConfig.tiny())
    return load_yto_v1(root, "train").shots


def _classifier() -> WGAPClassifier:
    torch.manual_seed(0)
    return WGAPClassifier("resnet18", 10, weights=None)


def test_stage1_resume_after_kill_is_bitwise_equal(shots: list, tmp_path: Path) -> None:
    frames = [f for s in shots for f in s.frames][:16]
    cfg = Stage1Config(epochs=3, batch_size=8, image_size=32, resize=36, lr_step=1, amp="none")
    cfg.colour_jitter, cfg.hue_jitter = 0.3, 0.2

    def loader(fs, train, gen):  # type: ignore[no-untyped-def]
        from colocam_plugin.pipeline import make_frame_loader

        return make_frame_loader(32, 36)(fs, train, gen)

    ref = _classifier()
    train_classifier(ref, frames, loader, tmp_path / "ref.pt", config=cfg, progress=False)

    calls = {"n": 0}

    def dying_loader(fs, train, gen):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2 (2 batches per epoch), second batch
            raise _Killed
        return loader(fs, train, gen)

    with pytest.raises(_Killed):
        train_classifier(
            _classifier(), frames, dying_loader, tmp_path / "run.pt", config=cfg, progress=False
        )
    assert torch.load(tmp_path / "run.pt", weights_only=False)["epoch"] == 1
    resumed = _classifier()
    train_classifier(resumed, frames, loader, tmp_path / "run.pt", config=cfg, progress=False)
    _assert_same_weights(ref.state_dict(), resumed.state_dict())


def test_stage2_resume_after_kill_is_bitwise_equal(
    shots: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n_frames = sum(len(s) for s in shots)
    cams = torch.rand(n_frames, 8, 8, generator=torch.Generator().manual_seed(1))
    cfg = Stage2Config(
        method="colocam",
        n_frames=2,
        epochs=3,
        batch_frames=4,
        image_size=32,
        resize=36,
        lr_step=1,
        crf_step=0.5,
        amp="none",
        colour_jitter=0.2,
    )
    clf = _classifier()
    ref = train_localizer(clf, shots, cams, tmp_path / "ref.pt", config=cfg, progress=False)
    steps_per_epoch = ref["history"][0]["steps"]
    assert steps_per_epoch >= 2

    real = stage2._loss_terms
    calls = {"n": 0}

    def dying(*args, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:  # second step of epoch 2
            raise _Killed
        return real(*args, **kw)

    monkeypatch.setattr(stage2, "_loss_terms", dying)
    with pytest.raises(_Killed):
        train_localizer(clf, shots, cams, tmp_path / "run.pt", config=cfg, progress=False)
    monkeypatch.setattr(stage2, "_loss_terms", real)
    resumed = train_localizer(clf, shots, cams, tmp_path / "run.pt", config=cfg, progress=False)
    _assert_same_weights(ref["state_dict"], resumed["state_dict"])
    assert resumed["size_loss"] == ref["size_loss"]
    with (tmp_path / "run.pt.log.csv").open() as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == list(range(1, 3 * steps_per_epoch + 1))


def test_stage2_dataloader_workers_and_frame_cache_do_not_change_the_result(
    shots: list, tmp_path: Path
) -> None:
    """Frames built in worker processes (any prefetch order) train the same weights."""
    n_frames = sum(len(s) for s in shots)
    cams = torch.rand(n_frames, 8, 8, generator=torch.Generator().manual_seed(2))
    base = {
        "method": "colocam",
        "n_frames": 2,
        "epochs": 1,
        "batch_frames": 4,
        "image_size": 32,
        "resize": 36,
        "crf_step": 0.5,
        "amp": "none",
    }
    clf = _classifier()
    ref = train_localizer(
        clf, shots, cams, tmp_path / "w0.pt", config=Stage2Config(**base), progress=False
    )
    two = train_localizer(
        clf,
        shots,
        cams,
        tmp_path / "w2.pt",
        config=Stage2Config(**base, workers=2, cache_frames=8),
        progress=False,
    )
    _assert_same_weights(ref["state_dict"], two["state_dict"])
    assert "workers" not in two["config"]  # loading is not part of the run's identity
