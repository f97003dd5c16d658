"""CRF and co-localisation energies: contract, gradients, and accuracy vs the exact dense kernel."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from skimage import data

from colocam_plugin.errors import ShapeError
from colocam_plugin.losses import (
    CoLocEnergy,
    CoLocLoss,
    CRFEnergy,
    CRFLoss,
    coloc_energy,
    coloc_loss,
    crf_energy,
    crf_loss,
    dense_coloc_energy,
    dense_crf_energy,
    dense_gaussian_energy,
    gaussian_grid_energy,
)

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]

PHOTOS = {"chelsea": data.chelsea, "astronaut": data.astronaut, "coffee": data.coffee}


def photo_crops(names: tuple[str, str], size: int = 48) -> torch.Tensor:
    """(2, 3, size, size) float64 crops of real photos, 0..255."""
    crops = []
    for i, name in enumerate(names):
        img = torch.from_numpy(PHOTOS[name]().copy()).permute(2, 0, 1).double()
        y0, x0 = 100 + 30 * i, 150 + 20 * i
        crops.append(img[:, y0 : y0 + size, x0 : x0 + size])
    return torch.stack(crops)


def smooth_probs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Softmax over dim -3 of Gaussian-blurred random logits (smooth, K = shape[-3])."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, generator=g, dtype=torch.float64)
    flat = logits.reshape(-1, *shape[-3:])
    kernel = torch.exp(-(torch.arange(-7, 8, dtype=torch.float64) ** 2) / 32)
    kernel = (kernel / kernel.sum()).view(1, 1, 1, -1)
    k = shape[-3]
    flat = F.conv2d(flat, kernel.expand(k, 1, 1, 15), padding=(0, 7), groups=k)
    flat = F.conv2d(flat, kernel.transpose(2, 3).expand(k, 1, 15, 1), padding=(7, 0), groups=k)
    flat = flat / flat.std() * 2
    return flat.reshape(shape).softmax(-3)


def naive_energy(values: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Textbook -sum_k s_k^T W s_k with the full W (tiny inputs only)."""
    w = torch.exp(-0.5 * ((features[:, :, None] - features[:, None]) ** 2).sum(-1))
    return -torch.einsum("gki,gij,gkj->g", values, w, values)


# ---------------------------------------------------------------- dense reference


def test_dense_matches_naive_formula() -> None:
    g = torch.Generator().manual_seed(0)
    values = torch.rand(2, 3, 50, generator=g, dtype=torch.float64)
    feats = torch.rand(2, 50, 4, generator=g, dtype=torch.float64) * 3
    torch.testing.assert_close(
        dense_gaussian_energy(values, feats, chunk=7), naive_energy(values, feats)
    )


def test_dense_crf_uses_pixel_positions_and_colour() -> None:
    probs = smooth_probs((1, 2, 6, 5), seed=1)
    images = torch.rand(1, 3, 6, 5, dtype=torch.float64) * 255
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(5.0), indexing="ij")
    pos = torch.stack([ys, xs], -1).reshape(1, 30, 2).double() / 100.0
    rgb = images.reshape(1, 3, 30).transpose(1, 2) / 15.0
    expected = naive_energy(probs.reshape(1, 2, 30), torch.cat([pos, rgb], 2))
    torch.testing.assert_close(dense_crf_energy(probs, images), expected)


# ---------------------------------------------------------------- accuracy bars

CASES = [("chelsea", "astronaut"), ("astronaut", "coffee"), ("coffee", "chelsea")]


@pytest.mark.parametrize("names", CASES)
def test_coloc_energy_accuracy_on_real_photos(names: tuple[str, str]) -> None:
    images = photo_crops(names)[None]  # (1, 2, 3, 48, 48)
    probs = smooth_probs((1, 2, 2, 48, 48), seed=len(names[0])).requires_grad_()
    exact = dense_coloc_energy(probs, images)
    (g_exact,) = torch.autograd.grad(exact.sum(), probs)
    approx = coloc_energy(probs, images)
    (g_approx,) = torch.autograd.grad(approx.sum(), probs)
    assert (approx / exact - 1).abs().max().item() <= 0.02
    assert F.cosine_similarity(g_exact.flatten(), g_approx.flatten(), 0).item() >= 0.995


@pytest.mark.parametrize("sigma_xy", [100.0, 10.0])
@pytest.mark.parametrize("names", CASES)
def test_crf_energy_accuracy_on_real_photos(names: tuple[str, str], sigma_xy: float) -> None:
    images = photo_crops(names)
    probs = smooth_probs((2, 2, 48, 48), seed=len(names[1])).requires_grad_()
    exact = dense_crf_energy(probs, images, sigma_xy=sigma_xy)
    (g_exact,) = torch.autograd.grad(exact.sum(), probs)
    approx = crf_energy(probs, images, sigma_xy=sigma_xy)
    (g_approx,) = torch.autograd.grad(approx.sum(), probs)
    assert (approx / exact - 1).abs().max().item() <= 0.02  # per frame
    for t in range(2):
        cos = F.cosine_similarity(g_exact[t].flatten(), g_approx[t].flatten(), 0)
        assert cos.item() >= 0.995


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_energies_shapes_device_dtype(device: str, dtype: torch.dtype) -> None:
    probs = torch.rand(3, 2, 2, 16, 12, device=device, dtype=dtype).softmax(2)
    images = torch.randint(0, 256, (3, 2, 3, 16, 12), device=device)
    e = coloc_energy(probs, images)
    assert e.shape == (3,) and e.dtype == dtype and e.device.type == device
    assert (e < 0).all()
    c = crf_energy(probs[:, 0], images[:, 0])
    assert c.shape == (3,) and c.dtype == dtype and c.device.type == device
    assert (c < 0).all()


def test_uniform_colour_is_exact_up_to_peak() -> None:
    # all pixels share one colour: the colour kernel is 1 for every pair
    probs = torch.full((1, 2, 2, 4, 4), 0.5, dtype=torch.float64)
    images = torch.full((1, 2, 3, 4, 4), 80.0, dtype=torch.float64)
    torch.testing.assert_close(
        coloc_energy(probs, images), dense_coloc_energy(probs, images), rtol=0.03, atol=0
    )


def test_groups_are_independent() -> None:
    probs = smooth_probs((2, 2, 2, 12, 12), seed=3)
    images = torch.rand(2, 2, 3, 12, 12, dtype=torch.float64) * 255
    both = coloc_energy(probs, images)
    torch.testing.assert_close(both[1:], coloc_energy(probs[1:], images[1:]))


def test_gradcheck_coloc_and_crf() -> None:
    # small colour range and coarse steps keep the grids (and gradcheck) tiny
    probs = torch.rand(1, 2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    images = torch.rand(1, 2, 3, 4, 4, dtype=torch.float64) * 40
    assert torch.autograd.gradcheck(lambda p: coloc_energy(p, images, step=0.5), (probs,))
    probs2 = torch.rand(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    frames = images[0, :, :, :, :3]
    assert torch.autograd.gradcheck(
        lambda p: crf_energy(p, frames, sigma_xy=2.0, step=0.5), (probs2,)
    )


def test_grid_energy_chunks_groups_consistently(monkeypatch: pytest.MonkeyPatch) -> None:
    import colocam_plugin.losses.bilateral_grid as grid

    values = torch.rand(5, 2, 300, dtype=torch.float64)
    feats = [torch.rand(5, 300, dtype=torch.float64) * 255 for _ in range(3)]
    whole = gaussian_grid_energy(values, feats, [15.0] * 3)
    monkeypatch.setattr(grid, "_MAX_CELLS", 1)  # one group per autograd call
    torch.testing.assert_close(gaussian_grid_energy(values, feats, [15.0] * 3), whole)


def test_modules_equal_functionals() -> None:
    probs = torch.rand(2, 3, 2, 10, 10).softmax(2)
    images = torch.rand(2, 3, 3, 10, 10) * 255
    torch.testing.assert_close(CoLocEnergy()(probs, images), coloc_energy(probs, images))
    torch.testing.assert_close(
        CoLocLoss(weight=9.0)(probs, images), coloc_loss(probs, images, weight=9.0)
    )
    frames, rgb = probs[:, 0], images[:, 0]
    torch.testing.assert_close(
        CRFEnergy(sigma_xy=5.0)(frames, rgb), crf_energy(frames, rgb, sigma_xy=5.0)
    )
    torch.testing.assert_close(CRFLoss(weight=2.0)(frames, rgb), crf_loss(frames, rgb, weight=2.0))
    assert "weight" in dict(CRFLoss().named_buffers())
    assert "weight" in dict(CoLocLoss().named_buffers())


def test_coloc_loss_is_adaptive() -> None:
    probs = torch.rand(2, 2, 2, 8, 8, dtype=torch.float64).softmax(2).requires_grad_()
    images = torch.rand(2, 2, 3, 8, 8, dtype=torch.float64) * 255
    loss = coloc_loss(probs, images, weight=4.0)
    assert loss.item() == pytest.approx(-4.0)
    (grad,) = torch.autograd.grad(loss, probs)
    energy = coloc_energy(probs, images)
    expected = [
        torch.autograd.grad(energy[i], probs, retain_graph=True)[0][i]
        * 4.0
        / energy[i].abs().item()
        / 2
        for i in range(2)
    ]
    torch.testing.assert_close(grad, torch.stack(expected))


def test_crf_loss_is_weighted_mean() -> None:
    probs = torch.rand(3, 2, 8, 8).softmax(1)
    images = torch.rand(3, 3, 8, 8) * 255
    torch.testing.assert_close(
        crf_loss(probs, images, weight=0.5), 0.5 * crf_energy(probs, images).mean()
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: coloc_energy(torch.rand(2, 3, 64), torch.rand(2, 3, 64)),
            "probs: expected (B, n, K, H, W), got (2, 3, 64)",
        ),
        (
            lambda: crf_energy(torch.rand(2, 3, 64), torch.rand(2, 3, 8, 8)),
            "probs: expected (B, K, H, W), got (2, 3, 64)",
        ),
        (
            lambda: crf_energy(torch.rand(2, 2, 8, 8), torch.rand(2, 4, 8, 8)),
            "images: expected (B, 3, H, W), got (2, 4, 8, 8)",
        ),
        (
            lambda: crf_energy(torch.rand(2, 2, 8, 8), torch.rand(2, 3, 8, 9)),
            "images: expected the batch and spatial sizes of probs (2, 2, 8, 8), got (2, 3, 8, 9)",
        ),
        (
            lambda: coloc_energy(torch.rand(1, 2, 2, 8, 8), torch.rand(1, 3, 3, 8, 8)),
            "images: expected the batch and spatial sizes of probs",
        ),
        (
            lambda: crf_energy(torch.ones(1, 2, 4, 4, dtype=torch.long), torch.rand(1, 3, 4, 4)),
            "probs: expected a floating-point tensor, got dtype torch.int64",
        ),
        (
            lambda: gaussian_grid_energy(torch.rand(2, 5), [torch.rand(1, 5)], [1.0]),
            "values: expected (G, K, N), got (2, 5)",
        ),
    ],
)
def test_shape_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ShapeError) as info:
        call()
    assert message in str(info.value)


def test_bad_step_raises() -> None:
    with pytest.raises(ValueError, match=r"step: expected a grid spacing in \(0, 1.5\]"):
        coloc_energy(torch.rand(1, 1, 2, 4, 4), torch.rand(1, 1, 3, 4, 4), step=2.0)


# ---------------------------------------------------------------- per-frame grids (no cliff)


def narrow_and_wide_frames(size: int = 24) -> torch.Tensor:
    """(3, 3, size, size) float64 frames: wide colour range, narrow (40..80), wide."""
    g = torch.Generator().manual_seed(5)
    wide = torch.rand(2, 3, size, size, generator=g, dtype=torch.float64) * 255
    narrow = 40 + torch.rand(1, 3, size, size, generator=g, dtype=torch.float64) * 40
    return torch.cat([wide[:1], narrow, wide[1:]])


def test_each_group_gets_a_grid_sized_by_its_own_range() -> None:
    import colocam_plugin.losses.bilateral_grid as grid

    images = narrow_and_wide_frames()
    colours = [images[:, c] for c in range(3)]
    calls = grid._group_grids(colours, [5.0] * 3, 3, 24 * 24, 2)
    shapes = {g: sizes for members, sizes, _ in calls for g in members}
    assert sorted(shapes) == [0, 1, 2]
    # the narrow frame's grid (40 levels / 5 = 9 nodes, rounded to 12) is not the wide one's
    assert all(n <= 12 for n in shapes[1])
    assert all(n >= 48 for n in shapes[0]) and shapes[0] == shapes[2]
    for members, sizes, nodes in calls:
        assert nodes.shape == (len(members) * 24 * 24,)
        assert 0 <= int(nodes.min()) and int(nodes.max()) < math.prod(sizes) * len(members)


def test_crf_energy_of_a_frame_does_not_depend_on_its_batch() -> None:
    images = narrow_and_wide_frames()
    probs = smooth_probs((3, 2, 24, 24), seed=7).requires_grad_()
    batch = crf_energy(probs, images)
    (g_batch,) = torch.autograd.grad(batch.sum(), probs)
    for t in range(3):  # order kept, and each frame as if alone
        p = probs[t : t + 1].detach().requires_grad_()
        alone = crf_energy(p, images[t : t + 1])
        (g_alone,) = torch.autograd.grad(alone.sum(), p)
        torch.testing.assert_close(batch[t : t + 1], alone)
        torch.testing.assert_close(g_batch[t : t + 1], g_alone)


def test_padded_grids_leave_the_energy_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    import colocam_plugin.losses.bilateral_grid as grid

    images = narrow_and_wide_frames()
    probs = smooth_probs((3, 2, 24, 24), seed=8)
    exact_sizes = crf_energy(probs, images)
    monkeypatch.setattr(grid, "_SIZE_QUANTUM", 1000)  # every grid padded to the largest
    padded = crf_energy(probs, images)
    torch.testing.assert_close(padded, exact_sizes, rtol=1e-10, atol=0)
    monkeypatch.setattr(grid, "_SIZE_QUANTUM", 1)  # every grid at its exact size
    torch.testing.assert_close(crf_energy(probs, images), exact_sizes, rtol=1e-10, atol=0)


def test_coloc_keeps_one_grid_over_all_frames_of_a_sequence() -> None:
    # cross-frame pairs add (W > 0, probs > 0): the sequence's energy is below the
    # sum of its frames' energies, and matches the dense energy over all n*H*W pixels
    images = narrow_and_wide_frames(16)[None]  # (1, 3, 3, 16, 16)
    images[:, 1] = images[:, 0] + 5.0  # frame 1 shares frame 0's colours (nearly)
    probs = smooth_probs((1, 3, 2, 16, 16), seed=9)
    sequence = coloc_energy(probs, images)
    frames = sum(coloc_energy(probs[:, t : t + 1], images[:, t : t + 1]) for t in range(3))
    assert (sequence < 1.5 * frames).all()  # frames 0 and 1 interact: far below the sum
    exact = dense_coloc_energy(probs, images)
    assert (sequence / exact - 1).abs().max().item() <= 0.02


@pytest.mark.parametrize("step", [None, (0.5,) * 5])  # low-rank colour grids; the 5-D grid
def test_skipping_empty_grid_lines_is_exact(
    monkeypatch: pytest.MonkeyPatch, step: tuple[float, ...] | None
) -> None:
    import colocam_plugin.losses.bilateral_grid as grid

    images = narrow_and_wide_frames()
    probs = smooth_probs((3, 2, 24, 24), seed=10).requires_grad_()
    results = []
    for skip in (True, False):
        monkeypatch.setattr(grid, "_SKIP_EMPTY", skip)
        energy = crf_energy(probs, images, sigma_xy=10.0, step=step)
        results.append((energy, *torch.autograd.grad(energy.sum(), probs)))
    for sparse, dense in zip(*results):
        torch.testing.assert_close(sparse, dense, rtol=1e-10, atol=1e-12)
    assert (results[0][0] < 0).all()
