"""Spatial windows on video latents (B, C, T, H, W): the window maps of
``fusion.windows`` cut along H and W only, the frames riding along as one
more leading axis, so every window keeps all of them.  Cut, merge, Crop
Fusion and the whole-latent denoiser on a video are checked against the
same operations frame by frame, and MultiDiffusion against a re-derivation
with slices; the image (4-D) path against the formulas it had before."""

import pytest
import torch

from fusion import (FusionSettings, LatentGrid, PanoramaDenoiser, Views, WindowPlan, crop_fusion, cut_windows,
                    fusion_links, merge_windows, plan_views, resolve_plan)
from fusion.crop_fusion import coverage

GRID = LatentGrid(scale=8, patch=2, native=16)  # Wan 2.1: 8x latent, 1x2x2 patches
HEIGHT, WIDTH, FRAMES = 16, 48, 3

PLANS = {
    "multidiffusion": WindowPlan(window=16, stride=8),
    "cross sampling": WindowPlan(window=16, stride=8, cross_count=2),
    "wrap-around": WindowPlan(window=16, stride=8, wrap_x=True),
    "shifted": WindowPlan(window=16, shift="golden"),
    "shifted wrap-around": WindowPlan(window=16, shift="random", shift_seed=3, wrap_x=True),
    "feathered": WindowPlan(window=16, stride=8, blend="feathered"),
    "2-D grid": WindowPlan(window=12, stride=6),
}


def plan(name):
    return resolve_plan(PLANS[name], GRID)


def video(batch=2, channels=4, frames=FRAMES, height=HEIGHT, width=WIDTH, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, frames, height, width, generator=g, dtype=torch.float64)


def frames_of(fn, x, dim, out_dim):
    """``fn`` applied to every frame of ``x`` (frame axis ``dim``), stacked on ``out_dim``."""
    return torch.stack([fn(frame) for frame in x.unbind(dim)], dim=out_dim)


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("step", [0, 1, 2])
def test_a_video_window_is_the_image_window_of_every_frame(name, step):
    x = video(height=24 if name == "2-D grid" else HEIGHT)
    views = plan_views(plan(name), *x.shape[-2:], step)
    windows = cut_windows(x, views)
    assert windows.shape == (len(views), 2, 4, FRAMES, views.window_h, views.window_w)
    torch.testing.assert_close(windows, frames_of(lambda f: cut_windows(f, views), x, 2, 3), rtol=0, atol=0)
    ids = [len(views) - 1, 0]
    torch.testing.assert_close(cut_windows(x, views, ids), windows[ids], rtol=0, atol=0)
    # the flat-index gather every kind of window has (sphere views use it) agrees with the crops'
    torch.testing.assert_close(Views.cut(views, x, ids), windows[ids], rtol=0, atol=0)


def test_a_hint_at_twice_the_resolution_is_cut_per_frame_too():
    views = plan_views(plan("wrap-around"), HEIGHT, WIDTH)
    hint = video(channels=3, height=2 * HEIGHT, width=2 * WIDTH)
    torch.testing.assert_close(cut_windows(hint, views, scale=2),
                               frames_of(lambda f: cut_windows(f, views, scale=2), hint, 2, 3), rtol=0, atol=0)


@pytest.mark.parametrize("name", list(PLANS))
def test_merging_video_windows_is_merging_every_frame(name):
    height = 24 if name == "2-D grid" else HEIGHT
    views = plan_views(plan(name), height, WIDTH, 1)
    g = torch.Generator().manual_seed(1)
    windows = torch.randn(len(views), 2, 4, FRAMES, views.window_h, views.window_w, generator=g, dtype=torch.float64)
    merged = merge_windows(windows, views)
    assert merged.shape == (2, 4, FRAMES, height, WIDTH)
    torch.testing.assert_close(merged, frames_of(lambda f: merge_windows(f, views), windows, 3, 2), rtol=0, atol=0)


def test_windows_that_blend_back_with_their_own_weights_merge_a_video_per_frame():
    """The weighted map back of windows that are not crops (sphere views),
    here built from crops so the plain average is the expected result."""
    crops = plan_views(plan("wrap-around"), HEIGHT, WIDTH)
    target = crops.read.flatten()
    weight = 1.0 / coverage(crops, torch.float64).flatten()[target]
    views = Views(HEIGHT, WIDTH, crops.window_h, crops.window_w, crops.read, True, ("blend",),
                  (target, torch.arange(target.numel()), weight))
    windows = cut_windows(video(), crops) * 1.5 + 0.25
    torch.testing.assert_close(merge_windows(windows, views), merge_windows(windows, crops), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["multidiffusion", "wrap-around", "2-D grid", "cross sampling"])
@pytest.mark.parametrize("feather", [False, True])
def test_crop_fusion_on_a_video_is_crop_fusion_of_every_frame(name, feather):
    height = 24 if name == "2-D grid" else HEIGHT
    views = plan_views(plan(name), height, WIDTH, 1)
    links = fusion_links(views, torch.float64, feather)
    g = torch.Generator().manual_seed(2)
    windows = torch.randn(len(views), 2, 4, FRAMES, views.window_h, views.window_w, generator=g, dtype=torch.float64)
    fused = crop_fusion(windows, links, 0.7)
    torch.testing.assert_close(fused, frames_of(lambda f: crop_fusion(f, links, 0.7), windows, 3, 3), rtol=0, atol=0)


def video_denoiser(channels=4, seed=0):
    """A toy video model: a 3x3x3 convolution mixes neighbouring frames and
    pixels, and a term along the window's width makes overlapping windows
    disagree, as a real model's do."""
    g = torch.Generator().manual_seed(seed)
    kernel = torch.randn(channels, channels, 3, 3, 3, generator=g, dtype=torch.float64) * 0.2

    def model_fn(x, sigma, *window_info):
        s = sigma.view(-1, 1, 1, 1, 1).to(x.dtype)
        mixed = torch.tanh(torch.nn.functional.conv3d(x, kernel.to(x), padding=1))
        ramp = torch.linspace(-1, 1, x.shape[-1], dtype=x.dtype)
        return (x + s * mixed) / (1 + s ** 2) + 0.1 * s / (1 + s) * ramp

    return model_fn


def multidiffusion_by_slices(model_fn, x, sigma, views):
    """MultiDiffusion re-derived: every window sliced out (columns modulo
    the width on a circle), denoised on its own, and the predictions
    averaged per pixel."""
    total, count = torch.zeros_like(x), torch.zeros(x.shape[-2:], dtype=x.dtype)
    for i in range(len(views)):
        top, left = views.origin(i)
        cols = [(left + j) % views.width for j in range(views.window_w)]
        rows = slice(top, top + views.window_h)
        out = model_fn(x[..., rows, :][..., cols], sigma)
        for j, c in enumerate(cols):
            total[..., rows, c] += out[..., j]
            count[rows, c] += 1
    return total / count


@pytest.mark.parametrize("name", ["multidiffusion", "cross sampling", "wrap-around", "shifted",
                                  "shifted wrap-around", "2-D grid"])
@pytest.mark.parametrize("step", [0, 1])
def test_multidiffusion_on_a_video_is_the_average_of_its_windows(name, step):
    x = video(height=24 if name == "2-D grid" else HEIGHT)
    sigma = torch.full((2,), 1.7, dtype=torch.float64)
    model_fn = video_denoiser()
    denoiser = PanoramaDenoiser(plan(name), FusionSettings(crop_fusion=False, view_batch_size=3))
    out = denoiser(lambda windows, s, views, ids: model_fn(windows, s), x, sigma, step, 4)
    expected = multidiffusion_by_slices(model_fn, x, sigma, denoiser.views(x, step))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_twindiffusion_on_a_video_fuses_the_windows_it_denoised():
    x = video()
    sigma = torch.full((2,), 1.7, dtype=torch.float64)
    model_fn = video_denoiser()
    settings = FusionSettings(lam=1.0, tau=0.5, crop_fusion=True, view_batch_size=2)
    denoiser = PanoramaDenoiser(plan("cross sampling"), settings)
    out = denoiser(lambda windows, s, views, ids: model_fn(windows, s), x, sigma, 0, 4)
    views = denoiser.views(x, 0)
    windows = torch.stack([model_fn(w, sigma) for w in cut_windows(x, views)])
    expected = merge_windows(crop_fusion(windows, fusion_links(views, x.dtype), 1.0), views)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out, multidiffusion_by_slices(model_fn, x, sigma, views))  # fusion did something


def test_image_windows_gather_and_merge_as_before():
    """The 4-D path is the one it was, bit for bit: rows-by-columns gather
    moved window-first, merge by index_add over (B, C, N*h*w)."""
    x = torch.randn(2, 4, HEIGHT, WIDTH)
    views = plan_views(plan("wrap-around"), HEIGHT, WIDTH)
    before = x[:, :, views.rows[:, :, None], views.cols[:, None, :]].permute(2, 0, 1, 3, 4)
    assert torch.equal(cut_windows(x, views), before)
    assert torch.equal(Views.cut(views, x), x.flatten(-2)[:, :, views.read].permute(2, 0, 1, 3, 4))
    n, b, c = before.shape[:3]
    total = before.new_zeros(b, c, HEIGHT * WIDTH)
    total.index_add_(2, views.read.flatten(), before.permute(1, 2, 0, 3, 4).reshape(b, c, -1))
    assert torch.equal(merge_windows(before, views), total.view(b, c, HEIGHT, WIDTH) / coverage(views, x.dtype))
