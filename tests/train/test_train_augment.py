"""Crop and flip on the device: one draw per sequence, the CAMs moved with their frames.

Frames here encode their own pixel coordinates (channel 0: row, channel 1:
column, channel 2: frame id), so the crop window and the flip of every output
frame can be read back from its pixels.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from colocam_plugin.data.transforms import ClipTransform
from colocam_plugin.errors import ShapeError
from colocam_plugin.train import augment, stage1, stage2
from colocam_plugin.train.augment import ColourJitter, crop_flip

R, S = 20, 12  # resized side, crop side


def _coordinate_frames(b: int, side: int = R) -> torch.Tensor:
    """``(b, 3, side, side)``: row index, column index, frame index."""
    rows = torch.arange(side, dtype=torch.float32)[:, None].expand(side, side)
    cols = torch.arange(side, dtype=torch.float32)[None, :].expand(side, side)
    return torch.stack(
        [torch.stack([rows, cols, torch.full((side, side), float(i))]) for i in range(b)]
    )


def _draw(frame: torch.Tensor) -> tuple[int, int, bool]:
    """``(top, left, flipped)`` of a cropped coordinate frame; checks it is one window."""
    rows, cols = frame[0], frame[1]
    top, left = int(rows.min()), int(cols.min())
    side = rows.shape[-1]
    flipped = bool(cols[0, 0] > cols[0, -1])
    want_cols = torch.arange(left, left + side, dtype=frame.dtype)
    want_cols = want_cols.flip(0) if flipped else want_cols
    assert torch.equal(
        rows, torch.arange(top, top + side, dtype=frame.dtype)[:, None].expand_as(rows)
    )
    assert torch.equal(cols, want_cols[None, :].expand_as(cols))
    return top, left, flipped


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_frames_of_a_sequence_share_one_crop_and_flip() -> None:
    n, seqs = 4, 12
    x = _coordinate_frames(n * seqs)
    out, _ = crop_flip(x, S, _gen(), sequence_length=n)
    assert out.shape == (n * seqs, 3, S, S) and out.dtype == x.dtype
    draws = [_draw(f) for f in out]
    for i in range(seqs):
        assert len(set(draws[i * n : (i + 1) * n])) == 1, (
            f"sequence {i}: {draws[i * n : i * n + n]}"
        )
    assert torch.equal(out[:, 2, 0, 0], torch.arange(n * seqs, dtype=torch.float32))  # order kept
    for top, left, _ in draws:
        assert 0 <= top <= R - S and 0 <= left <= R - S


def test_sequences_get_different_draws() -> None:
    n, seqs = 2, 32
    out, _ = crop_flip(_coordinate_frames(n * seqs), S, _gen(3), sequence_length=n)
    per_seq = [_draw(out[i * n]) for i in range(seqs)]
    assert len(set(per_seq)) > seqs // 2
    assert {f for _, _, f in per_seq} == {False, True}  # both flips occur
    assert len({t for t, _, _ in per_seq}) > 1 and len({left for _, left, _ in per_seq}) > 1


def test_single_frames_draw_independently() -> None:
    out, _ = crop_flip(_coordinate_frames(32), S, _gen(1))  # stage 1: n = 1
    assert len({_draw(f) for f in out}) > 16


@pytest.mark.parametrize("n", [1, 3])
def test_cam_gets_exactly_its_frames_transform(n: int) -> None:
    x = _coordinate_frames(6 * n)
    cams = x[:, 0] * R + x[:, 1] + 1000 * x[:, 2]  # each pixel's own id, per frame
    out, cams_out = crop_flip(x, S, _gen(5), maps=cams, sequence_length=n)
    assert cams_out.shape == (6 * n, S, S) and cams_out.dtype == cams.dtype
    assert torch.equal(cams_out, out[:, 0] * R + out[:, 1] + 1000 * out[:, 2])


def test_maps_of_other_dtypes_and_channels_move_exactly() -> None:
    x = _coordinate_frames(8).half()
    masks = (x[:, 0] + x[:, 1]) % 3 == 0  # bool (B, H, W)
    out, masks_out = crop_flip(x, S, _gen(2), maps=masks, sequence_length=2)
    assert masks_out.dtype == torch.bool and out.dtype == torch.float16
    assert torch.equal(masks_out, (out[:, 0] + out[:, 1]) % 3 == 0)
    many = torch.stack([x[:, 0] * R + x[:, 1], -x[:, 1]], 1).double()  # (B, 2, H, W)
    out, many_out = crop_flip(x, S, _gen(2), maps=many, sequence_length=2)
    assert many_out.shape == (8, 2, S, S) and many_out.dtype == torch.float64
    assert torch.equal(many_out[:, 0], (out[:, 0] * R + out[:, 1]).double())
    assert torch.equal(many_out[:, 1], -out[:, 1].double())


def test_same_seed_same_draw_and_one_draw_from_the_generator() -> None:
    x = _coordinate_frames(8)
    g1, g2 = _gen(7), _gen(7)
    a, _ = crop_flip(x, S, g1, sequence_length=4)
    b, _ = crop_flip(x, S, g2, sequence_length=4)
    assert torch.equal(a, b)
    probe = _gen(7)
    torch.randint(0, 2**62, (1,), generator=probe)
    assert torch.equal(g1.get_state(), probe.get_state())
    state = torch.random.get_rng_state()
    crop_flip(x, S, _gen(8))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched


def test_no_flip_and_full_size_crop() -> None:
    x = _coordinate_frames(16)
    out, _ = crop_flip(x, S, _gen(0), hflip=False)
    assert not any(_draw(f)[2] for f in out)
    same, _ = crop_flip(x, R, _gen(0), hflip=False)  # crop side = frame side: identity
    assert torch.equal(same, x)


@pytest.mark.parametrize(
    ("x", "kw", "match"),
    [
        (torch.zeros(2, 3, R), {}, r"frames: expected \(B, C, H, W\), got \(2, 3, 20\)"),
        (torch.zeros(2, 3, 8, 8), {}, "frames of 8x8 cannot be cropped to 12x12; resize"),
        (torch.zeros(3, 3, R, R), {"sequence_length": 2}, "batch of 3 frames is not a multiple"),
        (torch.zeros(2, 3, R, R), {"maps": torch.zeros(2, 8, 8)}, r"maps: expected \(2, 20, 20\)"),
        (torch.zeros(2, 3, R, R), {"maps": torch.zeros(3, R, R)}, r"got \(3, 20, 20\)"),
    ],
)
def test_bad_inputs_say_what_is_wrong(x: torch.Tensor, kw: dict, match: str) -> None:
    with pytest.raises(ShapeError, match=match):
        crop_flip(x, S, _gen(), **kw)


def test_stage2_augments_frames_and_cams_together() -> None:
    n = 2
    x = _coordinate_frames(4 * n) * 10.0  # 0..255-ish values
    cams = (x[:, 0] * R + x[:, 1]) / (10.0 * R * R)
    jitter = ColourJitter()
    out, cams_out = stage2._augment_sequences(x, cams, [n] * 4, S, jitter, _gen(4))
    assert out.shape == (4 * n, 3, S, S) and cams_out.shape == (4 * n, S, S)
    assert torch.equal(cams_out, (out[:, 0] * R + out[:, 1]) / (10.0 * R * R))
    draws = [_draw(f / 10.0) for f in out]
    assert all(draws[i] == draws[i + 1] for i in range(0, 4 * n, n))
    # unequal sequences (split path): still one draw per sequence
    out, cams_out = stage2._augment_sequences(x[:5], cams[:5], [3, 2], S, jitter, _gen(4))
    draws = [_draw(f / 10.0) for f in out]
    assert len(set(draws[:3])) == 1 and len(set(draws[3:])) == 1
    assert torch.equal(cams_out, (out[:, 0] * R + out[:, 1]) / (10.0 * R * R))


def test_stage2_colour_jitter_keeps_the_cam_geometry() -> None:
    x = _coordinate_frames(8) * 10.0
    cams = x[:, 0] * R + x[:, 1]
    jitter = ColourJitter(brightness=0.3, contrast=0.3)
    out, cams_out = stage2._augment_sequences(x, cams, [4, 4], S, jitter, _gen(6))
    plain, plain_cams = stage2._augment_sequences(x, cams, [4, 4], S, ColourJitter(), _gen(6))
    assert torch.equal(cams_out, plain_cams)  # same seed: same crop and flip
    assert not torch.equal(out, plain)  # the colours did change


class _FakeShot:
    def __init__(self, paths: list[Path]) -> None:
        self.frames = [type("F", (), {"path": p})() for p in paths]

    def __len__(self) -> int:
        return len(self.frames)


def test_stage2_workers_only_resize(tmp_path: Path) -> None:
    """The loader's batch is the same whatever its seed: no crop, no flip there."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(paths[-1])
    cams = torch.rand(3, 5, 5, generator=_gen(0))
    transform = ClipTransform(resize=R, crop=R, hflip=False, train=False)
    data = stage2._SequenceData([_FakeShot(paths)], cams, np.array([0, 3]), transform, 0)
    a = data[(1, [(0, [0, 1]), (0, [1, 2])])]
    b = data[(2, [(0, [0, 1]), (0, [1, 2])])]
    assert a[0].shape == (4, 3, R, R) and a[1].shape == (4, R, R)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[2] == [2, 2] and (a[3], b[3]) == (1, 2)  # the seed goes on to the device


def test_stage2_trains_on_crops_of_image_size(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from colocam_plugin.data.synthyto import SynthYTOConfig, generate_synthyto
    from colocam_plugin.data.yto_v1 import load_yto_v1
    from colocam_plugin.models.classifier import WGAPClassifier

    shots = load_yto_v1(generate_synthyto(tmp_path / "d", SynthYTOConfig.tiny()), "train").shots
    cams = torch.rand(sum(len(s) for s in shots), 8, 8, generator=_gen(1))
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    class _Stop(RuntimeError):
        pass

    def spy(model, x, c, *args, **kw):  # type: ignore[no-untyped-def]
        seen.append((tuple(x.shape), tuple(c.shape)))
        raise _Stop

    monkeypatch.setattr(stage2, "_loss_terms", spy)
    cfg = stage2.Stage2Config(n_frames=2, epochs=1, batch_frames=4, image_size=32, resize=40)
    torch.manual_seed(0)
    clf = WGAPClassifier("resnet18", 10, weights=None)
    with pytest.raises(_Stop):
        stage2.train_localizer(clf, shots, cams, tmp_path / "l.pt", config=cfg, progress=False)
    assert seen == [((4, 3, 32, 32), (4, 32, 32))]


def test_stage1_crops_on_the_device_and_eval_is_not_augmented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from colocam_plugin.models.classifier import WGAPClassifier

    calls: list[tuple[tuple[int, ...], int]] = []
    real = stage1.crop_flip

    def spy(x, size, gen, **kw):  # type: ignore[no-untyped-def]
        calls.append((tuple(x.shape), size))
        return real(x, size, gen, **kw)

    monkeypatch.setattr(stage1, "crop_flip", spy)
    frames = [type("F", (), {"path": None, "label": i % 2})() for i in range(4)]
    loaded: list[bool] = []

    def load_batch(fs, train, gen):  # type: ignore[no-untyped-def]
        loaded.append(train)
        return _coordinate_frames(len(fs), 40) if train else _coordinate_frames(len(fs), 32)

    cfg = stage1.Stage1Config(epochs=1, batch_size=4, image_size=32, resize=40, amp="none")
    torch.manual_seed(0)
    model = WGAPClassifier("resnet18", 2, weights=None)
    stage1.train_classifier(
        model, frames, load_batch, tmp_path / "c.pt", config=cfg, progress=False
    )
    assert calls == [((4, 3, 40, 40), 32)] and loaded == [True]
    calls.clear()
    stage1.evaluate_accuracy(model, frames, load_batch)  # eval: no crop, no flip
    assert calls == [] and loaded[-1] is False


def test_pipeline_loader_resizes_train_frames_and_leaves_eval_alone(tmp_path: Path) -> None:
    from PIL import Image

    from colocam_plugin.pipeline import make_frame_loader

    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "f.png")
    frame = type("F", (), {"path": tmp_path / "f.png"})()
    load = make_frame_loader(S, R)
    train = [load([frame], True, _gen(s)) for s in range(3)]
    assert train[0].shape == (1, 3, R, R)
    assert all(torch.equal(train[0], t) for t in train[1:])  # no random draw in the loader
    evaluated = load([frame], False, _gen(0))
    want = ClipTransform(resize=R, crop=S, hflip=False, train=False)([img]).frames
    assert torch.equal(evaluated, want)


def test_only_the_training_loops_use_the_device_augmentation() -> None:
    """Evaluation and inference code never imports the augmentation."""
    root = Path(augment.__file__).resolve().parents[1]
    users = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "colocam_plugin.train.augment":
                users.add(path.relative_to(root).as_posix())
    assert users == {"train/stage1.py", "train/stage2.py"}
