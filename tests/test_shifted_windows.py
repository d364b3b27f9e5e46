"""Shifted window plans (SpotDiffusion) and a 360 no wider than one window:
where the windows go each step, that they cover the latent, and that moving
them changes nothing for a model that cannot see where its window is."""

import pytest
import torch

from fusion import (FusionSettings, LatentGrid, PanoramaDenoiser, WindowPlan, WindowSettings, latent_plan, plan_views,
                    resolve_plan, shifted_starts, validate_plan, window_count)
from fusion.crop_fusion import coverage
from toy_models import conv_denoiser, euler_sample, karras_sigmas


def shifted(window=32, stride=None, wrap=False, shift="golden", seed=0, unit=1):
    return resolve_plan(WindowPlan(window=window, stride=stride, wrap_x=wrap, shift=shift, shift_seed=seed),
                        LatentGrid(patch=unit, native=window))


@pytest.mark.parametrize("length,offset", [(128, 0), (128, 5), (128, 31), (100, 17), (33, 1), (32, 0)])
def test_shifted_starts_cover_a_straight_axis_with_edges_pinned(length, offset):
    starts = shifted_starts(length, 32, 32, offset)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s:s + 32] = True
    assert covered.all() and starts[0] == 0 and starts[-1] == max(length - 32, 0)
    assert len(starts) <= -(-length // 32) + 1  # one more than the grid at most


@pytest.mark.parametrize("size", [(32, 128), (64, 160), (96, 96), (40, 200)])
@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("shift", ["golden", "random"])
def test_every_step_covers_every_pixel(size, wrap, shift):
    plan = shifted(wrap=wrap, shift=shift)
    for step in range(12):
        views = plan_views(plan, *size, step)
        assert (coverage(views, torch.float32) > 0).all(), (step, views.tops, views.lefts)


def test_golden_offsets_spread_over_the_stride_and_start_unshifted():
    plan = shifted(window=32, stride=32, wrap=True)
    lefts = [plan_views(plan, 32, 128, step).lefts[0] for step in range(32)]
    assert lefts[0] == 0
    assert all(a != b for a, b in zip(lefts, lefts[1:]))
    assert len(set(lefts)) >= 24  # near-uniform: most of the 32 offsets within 32 steps


def test_offsets_are_whole_tokens():
    plan = shifted(window=32, stride=32, wrap=True, unit=2)
    assert all(left % 2 == 0 for step in range(20) for left in plan_views(plan, 32, 96, step).lefts)


def test_random_shifts_follow_the_seed():
    def lefts(seed):
        plan = shifted(shift="random", seed=seed, wrap=True)
        return [plan_views(plan, 32, 128, step).lefts[0] for step in range(10)]
    assert lefts(1) == lefts(1) and lefts(1) != lefts(2)


def test_non_overlapping_windows_cost_about_one_evaluation_per_area():
    """SpotDiffusion's point: a quarter of MultiDiffusion's windows, and a
    circle needs no extra window at all."""
    md = resolve_plan(WindowPlan(window=32), 32)  # stride 8
    assert window_count(shifted(wrap=True), 32, 128, 20) == 4 * 20
    straight = window_count(shifted(), 32, 128, 20)
    assert 4 * 20 <= straight <= 5 * 20
    assert straight / window_count(md, 32, 128, 20) < 0.4


def test_a_circle_no_wider_than_the_window_is_turned_every_step():
    """wrap_around with one window: the window starts at a new column of the
    circle every step and reads every column once; never dropped."""
    plan = resolve_plan(WindowPlan(window=64, wrap_x=True), 64)  # Cross Sampling's plan, no shift asked
    seen = set()
    for step in range(8):
        views = plan_views(plan, 32, 64, step)
        assert len(views) == 1 and views.wrap_x
        assert sorted(views.cols[0].tolist()) == list(range(64))
        seen.add(views.lefts[0])
    assert len(seen) == 8 and plan_views(plan, 32, 64, 0).covers_whole_latent


def test_without_wrap_one_window_is_the_plain_model():
    for plan in (shifted(window=64), resolve_plan(WindowPlan(window=64), 64)):
        assert all(plan_views(plan, 64, 64, step).covers_whole_latent for step in range(5))


def circular_model(x, sigma, *window_info):
    """Sees no window edge: a circular convolution is the same at every turn."""
    kernel = torch.tensor([0.25, 0.5, 0.25], dtype=x.dtype).view(1, 1, 1, 3).repeat(x.shape[1], 1, 1, 1)
    padded = torch.cat([x[..., -1:], x, x[..., :1]], dim=-1)
    return torch.nn.functional.conv2d(padded, kernel, groups=x.shape[1]) / (1 + sigma.view(-1, 1, 1, 1) ** 2)


def test_turning_the_circle_changes_nothing_for_a_model_blind_to_edges():
    x = torch.randn(2, 4, 16, 64, dtype=torch.float64)
    sigmas = karras_sigmas(6)
    turned = PanoramaDenoiser(resolve_plan(WindowPlan(window=64, wrap_x=True), 64), FusionSettings())
    plain = PanoramaDenoiser(resolve_plan(WindowPlan(window=64), 64), FusionSettings())
    run = lambda d: euler_sample(lambda z, s, i, n: d(circular_model, z, s, i, n), x, sigmas)
    torch.testing.assert_close(run(turned), run(plain), rtol=1e-12, atol=1e-12)


def test_turning_moves_the_edge_a_window_model_sees():
    """The model of the core tests sees its window's edges: turning the
    circle must reach it (else the seam would stay where it was)."""
    x = torch.randn(1, 4, 16, 64, dtype=torch.float64)
    sigmas = karras_sigmas(4)
    model_fn = conv_denoiser()
    turned = PanoramaDenoiser(resolve_plan(WindowPlan(window=64, wrap_x=True), 64), FusionSettings())
    plain = PanoramaDenoiser(resolve_plan(WindowPlan(window=64), 64), FusionSettings())
    run = lambda d: euler_sample(lambda z, s, i, n: d(model_fn, z, s, i, n), x, sigmas)
    assert (run(turned) - run(plain)).abs().max() > 1e-3


@pytest.mark.parametrize("plan", [WindowPlan(window=32, stride=8, wrap_x=True, shift="golden"),
                                  WindowPlan(window=32, stride=32, shift="random", shift_seed=3)])
def test_shifted_plans_run_with_crop_fusion(plan):
    x = torch.randn(1, 4, 48, 96, dtype=torch.float64)
    denoiser = PanoramaDenoiser(resolve_plan(plan, 32), FusionSettings(lam=1.0, tau=1.0, view_batch_size=3))
    out = euler_sample(lambda z, s, i, n: denoiser(conv_denoiser(), z, s, i, n), x, karras_sigmas(5))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(shift="spiral"), "shift = 'spiral'"),
    (dict(shift="golden", cross_count=2), "c = 1 with a shift"),
])
def test_bad_shift_settings_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_plan(WindowPlan(window=32, stride=16, **kwargs))


def test_node_settings_default_to_non_overlapping_windows():
    plan = latent_plan(WindowSettings(shift="golden"), LatentGrid(native=64))
    assert (plan.window, plan.stride, plan.cross_count, plan.shift) == (64, 64, 1, "golden")
    dit = latent_plan(WindowSettings(shift="random", wrap_x=True), LatentGrid(patch=2, native=128))
    assert dit.unit == 2 and dit.stride == 128


def test_shifted_windows_with_multiscale_guidance():
    """MSD on a shifted plan: omega = 0 is the shifted plan's own
    MultiDiffusion, and guidance runs (finite, and moves the result)."""
    from fusion import MultiScaleDenoiser, MultiScaleSettings
    plan = resolve_plan(WindowPlan(window=16, shift="golden"), 16)
    x = torch.randn(1, 4, 32, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 14.6
    sigmas, model_fn = karras_sigmas(4), conv_denoiser(seed=7)
    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False))

    def run(omega):
        msd = MultiScaleDenoiser(panorama, MultiScaleSettings(omega=omega))
        z = x
        for i in range(len(sigmas) - 1):
            d = msd(model_fn, z, sigmas[i].expand(1), i, len(sigmas) - 1, float(sigmas[i + 1]))
            z = z + (z - d) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return z

    plain = euler_sample(lambda z, s, i, n: panorama(model_fn, z, s, i, n), x, sigmas)
    assert torch.equal(run(0.0), plain)
    guided = run(10.0)
    assert torch.isfinite(guided).all() and (guided - plain).abs().max() > 1e-6
