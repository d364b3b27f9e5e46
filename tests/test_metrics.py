"""Coherence metrics: neutral on seamless images, sensitive to seams."""

import pytest
import torch
import torch.nn.functional as F

from refmodel.metrics import (adjacent_crop_distance, adjacent_crop_pairs, boundaries_from_windows, layout_score,
                              seam_score, ssim)


def _smooth_noise(shape, seed, blur=3):
    """A stationary, smooth random image in about [0, 1] (a stand-in photo)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    k = torch.ones(1, 1, 2 * blur + 1, 2 * blur + 1, dtype=torch.float64) / (2 * blur + 1) ** 2
    x = F.conv2d(F.pad(x.reshape(-1, 1, *shape[-2:]), [blur] * 4, mode="circular"), k).reshape(shape)
    return 0.5 + 0.5 * x / x.abs().max()


def _ramp(height, width):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height, dtype=torch.float64),
                            torch.linspace(0, 1, width, dtype=torch.float64), indexing="ij")
    return torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 * (xx + yy)])


def test_seam_score_is_one_without_a_seam():
    ramp = _ramp(32, 128)   # constant gradients: exactly 1
    assert float(seam_score(ramp, [32, 64, 96], [16])) == pytest.approx(1.0, abs=1e-9)
    noise = _smooth_noise((3, 256, 1024), seed=0)   # stationary: close to 1
    assert float(seam_score(noise, [128, 256, 384, 512, 640, 768, 896])) == pytest.approx(1.0, abs=0.1)


def test_seam_score_flags_a_brightness_step():
    image = _smooth_noise((3, 128, 256), seed=1) * 0.8
    image[..., 128:] += 0.1
    score = seam_score(image, [128])
    assert float(score) > 3.0
    # Off the step, the same boundary list gives no seam.
    assert float(seam_score(image, [64])) == pytest.approx(1.0, abs=0.5)
    # A wider band dilutes the seam but still flags it.
    assert 1.5 < float(seam_score(image, [128], band=3)) < float(score)


def test_seam_score_wraps_around():
    image = _ramp(16, 64)   # a horizontal ramp jumps from 0.8 back to 0.2 across the wrap
    assert float(seam_score(image, [0], wrap=True)) > 10
    assert float(seam_score(image, [32], wrap=True)) < 1.0   # the jump is now in the background
    with pytest.raises(ValueError):
        seam_score(image, [0])  # an image edge is not a seam without wrap


def test_seam_score_batches():
    a = _smooth_noise((3, 64, 128), seed=2)
    b = a.clone()
    b[..., 64:] += 0.2
    batch = seam_score(torch.stack([a, b]), [64])
    assert batch.shape == (2,)
    assert torch.allclose(batch, torch.stack([seam_score(a, [64]), seam_score(b, [64])]))


def test_boundaries_from_windows():
    assert boundaries_from_windows([0, 8, 16, 24], 16, 40) == [8, 16, 24, 32]
    assert boundaries_from_windows([0, 16, 32], 16, 48, wrap=True) == [0, 16, 32]


def test_ssim_identity_and_reference():
    a = _smooth_noise((3, 48, 64), seed=3)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-12)
    b = (a + 0.05 * torch.randn(a.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)).clamp(0, 1)
    value = float(ssim(a, b))
    assert 0.0 < value < 1.0
    metrics = pytest.importorskip("skimage.metrics")
    expected = metrics.structural_similarity(a.numpy(), b.numpy(), channel_axis=0, data_range=1.0,
                                             gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert value == pytest.approx(expected, abs=1e-6)


def test_adjacent_crop_pairs_follow_the_paper():
    pairs, size = adjacent_crop_pairs(512, 2048, 512, 128)
    assert size == (512, 512) and len(pairs) == 9
    assert pairs[0] == ((0, 0), (0, 512)) and pairs[-1] == ((0, 1024), (0, 1536))
    pairs, _ = adjacent_crop_pairs(64, 64, 32, 32)   # a 2-D grid: horizontal and vertical neighbours
    assert sorted(pairs) == sorted([((0, 0), (0, 32)), ((32, 0), (32, 32)), ((0, 0), (32, 0)), ((0, 32), (32, 32))])


def test_adjacent_crop_distance():
    flat = torch.full((3, 32, 128), 0.4, dtype=torch.float64)
    assert float(adjacent_crop_distance(flat, 32, 16)) == pytest.approx(0.0, abs=1e-12)
    periodic = _smooth_noise((3, 32, 32), seed=5).repeat(1, 1, 4)   # every crop identical
    assert float(adjacent_crop_distance(periodic, 32, 32)) == pytest.approx(0.0, abs=1e-12)
    assert float(adjacent_crop_distance(periodic, 32, 32, metric="histogram")) == pytest.approx(0.0, abs=1e-12)
    # Halves of different brightness: the pairs that straddle the change differ.
    halves = _smooth_noise((3, 32, 128), seed=6) * 0.5
    halves[..., 64:] += 0.4
    for metric in ("ssim", "histogram"):
        coherent = adjacent_crop_distance(_smooth_noise((3, 32, 128), seed=6) * 0.5, 32, 16, metric=metric)
        assert float(adjacent_crop_distance(halves, 32, 16, metric=metric)) > float(coherent)
    batch = adjacent_crop_distance(torch.stack([flat, halves]), 32, 16)
    assert batch.shape == (2,) and float(batch[0]) == pytest.approx(0.0, abs=1e-12)


def test_layout_score():
    high = _smooth_noise((4, 32, 128), seed=7, blur=6)
    low = F.interpolate(high[None], scale_factor=0.5, mode="area")[0]
    assert float(layout_score(high, low)) == pytest.approx(0.0, abs=1e-12)
    assert float(layout_score(high, low, metric="ssim")) == pytest.approx(0.0, abs=1e-12)
    assert float(layout_score(high.flip(-1), low)) > 1e-3
    assert layout_score(torch.stack([high, high]), torch.stack([low, low])).shape == (2,)
