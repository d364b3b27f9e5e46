import math

import pytest
import torch

from fusion import (FusionSettings, PanoramaDenoiser, WindowPlan, crop_fusion, cut_windows, fusion_links,
                    merge_windows, plan_views, resolve_plan, schedule_step)
from toy_models import conv_denoiser, euler_sample, karras_sigmas


def _panorama(plan, settings, model_fn):
    denoiser = PanoramaDenoiser(plan, settings)
    return lambda x, sigma, step, n: denoiser(model_fn, x, sigma, step, n)


def _least_squares_window(windows, links, i, lam):
    """x* for window i by a dense least-squares solve of
    sum_n m_n ||x_n* - x||^2 + lam ||x_i - x||^2 over all its pixels (m_n the
    link's 0/1 or feathered weights)."""
    x_i = windows[i].flatten()
    rows, rhs = [math.sqrt(lam) * torch.eye(x_i.numel(), dtype=x_i.dtype)], [math.sqrt(lam) * x_i]
    for link in links[i]:
        neighbour = windows[link.neighbour].flatten(-2)[..., link.index]
        root = link.mask.expand_as(windows[i]).flatten().sqrt()
        rows.append(torch.diag(root))
        rhs.append(root * neighbour.flatten())
    solution = torch.linalg.lstsq(torch.cat(rows), torch.cat(rhs)[:, None]).solution
    return solution.view_as(windows[i])


@pytest.mark.parametrize("height,width,wrap", [(8, 40, False), (24, 24, False), (8, 40, True)])
@pytest.mark.parametrize("lam", [0.3, 1.0, 5.0])
@pytest.mark.parametrize("feather", [False, True])
def test_closed_form_is_the_least_squares_minimiser(height, width, wrap, lam, feather):
    plan = WindowPlan(window=8 if height == 8 else 12, stride=4 if height == 8 else 6, wrap_x=wrap)
    views = plan_views(plan, height, width)
    x = torch.randn(1, 2, height, width, dtype=torch.float64)
    windows = cut_windows(x, views) + 0.3 * torch.randn(len(views), 1, 2, views.window_h, views.window_w,
                                                        dtype=torch.float64)
    links = fusion_links(views, torch.float64, feather)
    fused = crop_fusion(windows, links, lam)
    for i in range(len(views)):
        # window i's minimiser uses its neighbours' *fused* values
        reference = fused.clone()
        reference[i] = windows[i]
        expected = _least_squares_window(reference, links, i, lam)
        torch.testing.assert_close(fused[i], expected, rtol=1e-9, atol=1e-9)


def _reference_twin_loop(model_fn, x, sigmas, window, view_stride, cross_time, lam, tau):
    """The paper's reference algorithm (1-D, Euler instead of DDIM), written
    with slices as in its code: windows visited left to right, each pulled
    towards the fused left neighbour on their overlap, then averaged."""
    W = x.shape[-1]
    num = (W - window) // view_stride + 1
    base = [i * view_stride for i in range(num)]
    groups = [base]
    for k in range(1, cross_time):
        shift = k * (view_stride // cross_time)
        groups.append([base[0]] + [s + shift for s in base[1:-1]] + [base[-1]])
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma = sigmas[i]
        value, count = torch.zeros_like(x), torch.zeros_like(x)
        previous, previous_start = None, None
        for idx, start in enumerate(groups[i % cross_time]):
            d = model_fn(x[..., start:start + window], sigma.expand(x.shape[0]))
            if idx > 0 and i < math.floor(tau * steps):
                overlap = window - (start - previous_start)
                d = d.clone()
                d[..., :overlap] = (previous[..., window - overlap:] + lam * d[..., :overlap]) / (1 + lam)
            value[..., start:start + window] += d
            count[..., start:start + window] += 1
            previous, previous_start = d, start
        denoised = value / count
        x = x + (x - denoised) / sigma * (sigmas[i + 1] - sigma)
    return x


@pytest.mark.parametrize("cross_count", [1, 2])
def test_matches_the_reference_algorithm_in_1d(cross_count):
    model_fn = conv_denoiser(seed=1)
    sigmas = karras_sigmas(10)
    x = torch.randn(2, 4, 16, 112, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * sigmas[0]
    plan = resolve_plan(WindowPlan(window=16, stride=8, cross_count=cross_count), 16)
    ours = euler_sample(_panorama(plan, FusionSettings(lam=1.0, tau=0.5, view_batch_size=3), model_fn), x, sigmas)
    ref = _reference_twin_loop(lambda z, s: model_fn(z, s), x, sigmas, 16, 8, cross_count, 1.0, 0.5)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10)


def _run(settings, plan, x, sigmas, model_fn):
    return euler_sample(_panorama(plan, settings, model_fn), x, sigmas)


@pytest.fixture
def setup():
    plan = resolve_plan(WindowPlan(window=16, stride=4, cross_count=2), 16)
    x = torch.randn(1, 4, 24, 80, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 14.6
    return plan, x, karras_sigmas(8), conv_denoiser(seed=2)


def test_tau_zero_is_multidiffusion(setup):
    plan, x, sigmas, model_fn = setup
    md = _run(FusionSettings(crop_fusion=False), plan, x, sigmas, model_fn)
    torch.testing.assert_close(_run(FusionSettings(tau=0.0), plan, x, sigmas, model_fn), md, rtol=0, atol=0)


def test_lambda_to_infinity_is_multidiffusion(setup):
    plan, x, sigmas, model_fn = setup
    md = _run(FusionSettings(crop_fusion=False), plan, x, sigmas, model_fn)
    torch.testing.assert_close(_run(FusionSettings(lam=1e12, tau=1.0), plan, x, sigmas, model_fn), md,
                               rtol=1e-9, atol=1e-9)
    assert torch.equal(_run(FusionSettings(lam=math.inf, tau=1.0), plan, x, sigmas, model_fn), md)


def test_crop_fusion_changes_the_result(setup):
    plan, x, sigmas, model_fn = setup
    md = _run(FusionSettings(crop_fusion=False), plan, x, sigmas, model_fn)
    assert (_run(FusionSettings(lam=1.0, tau=0.5), plan, x, sigmas, model_fn) - md).abs().max() > 1e-3


def test_view_batch_size_does_not_change_the_result(setup):
    plan, x, sigmas, model_fn = setup
    one = _run(FusionSettings(view_batch_size=1), plan, x, sigmas, model_fn)
    many = _run(FusionSettings(view_batch_size=64), plan, x, sigmas, model_fn)
    torch.testing.assert_close(one, many, rtol=1e-12, atol=1e-12)


def test_single_window_is_the_plain_denoiser():
    model_fn = conv_denoiser()
    x = torch.randn(2, 4, 16, 16, dtype=torch.float64)
    denoiser = PanoramaDenoiser(resolve_plan(WindowPlan(), 16), FusionSettings())
    sigma = torch.full((2,), 3.0, dtype=torch.float64)
    assert torch.equal(denoiser(model_fn, x, sigma, 0, 10), model_fn(x, sigma))


def test_wrap_around_joins_the_ends():
    """On a circle the panorama rolled by a multiple of the stride is the
    same panorama: no column is an edge."""
    model_fn = conv_denoiser(seed=4)
    plan = resolve_plan(WindowPlan(window=16, stride=8, wrap_x=True), 16)
    sigmas = karras_sigmas(6)
    x = torch.randn(1, 4, 16, 64, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * sigmas[0]
    md = FusionSettings(crop_fusion=False)
    out = _run(md, plan, x, sigmas, model_fn)
    rolled = _run(md, plan, x.roll(16, dims=-1), sigmas, model_fn)
    torch.testing.assert_close(rolled, out.roll(16, dims=-1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtype_is_kept(dtype):
    views = plan_views(WindowPlan(window=8, stride=4), 8, 24)
    x = torch.randn(2, 4, 8, 24).to(dtype)
    windows = cut_windows(x, views)
    fused = crop_fusion(windows, fusion_links(views, dtype), 1.0)
    assert fused.dtype == dtype and merge_windows(fused, views).dtype == dtype


def test_schedule_step_places_intermediate_sigmas_in_their_step():
    sigmas = [10.0, 5.0, 2.0, 1.0, 0.0]
    assert [schedule_step(s, sigmas) for s in (10.0, 7.0, 5.0, 3.0, 2.0, 1.0, 0.5)] == [0, 0, 1, 1, 2, 3, 3]


@pytest.mark.parametrize("kwargs,match", [(dict(lam=-1.0), "lambda"), (dict(tau=1.5), "tau"),
                                          (dict(tau=-0.1), "tau"), (dict(view_batch_size=0), "view_batch_size")])
def test_bad_settings_name_the_setting(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PanoramaDenoiser(WindowPlan(window=8, stride=4), FusionSettings(**kwargs))


def test_feathered_weights_fade_out_where_the_neighbour_ends():
    """1-D, window 8, stride 2: window 1 shares 6 columns with window 0; the
    neighbour's weight is 1 at window 1's own left edge and 1/6 at window 0's
    last column, 0 beyond; the upper/lower axis (no offset) keeps 1."""
    views = plan_views(WindowPlan(window=8, stride=2), 8, 16)
    paper, feathered = fusion_links(views, torch.float64), fusion_links(views, torch.float64, feather=True)
    expected = torch.tensor([6, 5, 4, 3, 2, 1, 0, 0], dtype=torch.float64) / 6
    assert torch.equal(paper[1][0].mask[0], (expected > 0).double())
    torch.testing.assert_close(feathered[1][0].mask, expected.expand(8, 8), rtol=0, atol=1e-15)


def test_feathered_fusion_leaves_no_step_where_the_neighbour_ends():
    """A window pulled towards a neighbour that disagrees by a constant:
    the paper's weights leave a jump of d / (1 + lam) at the neighbour's
    edge, the feathered ones only d / (6 (1 + lam))-sized steps."""
    views = plan_views(WindowPlan(window=8, stride=2), 8, 10)
    windows = torch.zeros(len(views), 1, 1, 8, 8, dtype=torch.float64)
    windows[0] += 1.0
    jumps = {}
    for feather in (False, True):
        fused = crop_fusion(windows, fusion_links(views, torch.float64, feather), 1.0)[1, 0, 0, 0]
        jumps[feather] = fused.diff().abs().max().item()
    assert math.isclose(jumps[False], 0.5)
    assert jumps[True] < 0.5 / 3


def test_feathered_fusion_with_huge_lambda_is_multidiffusion():
    plan = resolve_plan(WindowPlan(window=16, stride=4, cross_count=2), 16)
    x = torch.randn(1, 4, 32, 80, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 14.6
    sigmas, model_fn = karras_sigmas(6), conv_denoiser(seed=5)
    md = euler_sample(_panorama(plan, FusionSettings(crop_fusion=False), model_fn), x, sigmas)
    big = euler_sample(_panorama(plan, FusionSettings(lam=1e12, tau=1.0, feather=True), model_fn), x, sigmas)
    feathered = euler_sample(_panorama(plan, FusionSettings(feather=True), model_fn), x, sigmas)
    torch.testing.assert_close(big, md, rtol=1e-9, atol=1e-9)
    assert (feathered - md).abs().max() > 1e-3


def test_lambda_zero_takes_the_neighbours_on_their_overlap_and_stays_finite():
    views = plan_views(WindowPlan(window=8, stride=4), 8, 24)
    windows = torch.randn(len(views), 1, 2, 8, 8, dtype=torch.float64)
    fused = crop_fusion(windows, fusion_links(views, torch.float64), 0.0)
    assert torch.isfinite(fused).all()
    torch.testing.assert_close(fused[1][..., :4], fused[0][..., 4:], rtol=0, atol=0)  # the overlap is the left one's
    torch.testing.assert_close(fused[1][..., 4:], windows[1][..., 4:], rtol=0, atol=0)  # the rest its own


def test_any_grouping_of_windows_into_model_calls_gives_the_same_panorama():
    """The adapter batches windows by what conditioning reaches them, not in
    raster order; the panorama must not depend on it."""
    model_fn = conv_denoiser(seed=2)
    plan = resolve_plan(WindowPlan(window=16, stride=4, cross_count=2), 16)
    x = torch.randn(2, 4, 24, 64, dtype=torch.float64)
    denoiser = PanoramaDenoiser(plan, FusionSettings(view_batch_size=3))
    raster = denoiser(model_fn, x, torch.full((2,), 3.0, dtype=torch.float64), 1, 10)

    def scattered(views, size):
        ids = list(range(len(views)))[::-1]
        return [ids[i::3] for i in range(3)]

    other = denoiser(model_fn, x, torch.full((2,), 3.0, dtype=torch.float64), 1, 10, scattered)
    torch.testing.assert_close(other, raster, rtol=1e-12, atol=1e-12)


def test_branches_are_denoised_and_fused_each_on_their_own():
    """A model function answering K branches per window (ComfyUI's cond,
    uncond...) gives, per branch, the panorama of that branch's model."""
    cond, uncond = conv_denoiser(seed=3), conv_denoiser(seed=4)

    def both(x, sigma, *window_info):
        # (windows * B) in, (windows * 2 branches * B) out, window-major; B = 2
        c, u = cond(x, sigma).view(-1, 2, *x.shape[1:]), uncond(x, sigma).view(-1, 2, *x.shape[1:])
        return torch.stack([c, u], dim=1).flatten(0, 2)

    plan = resolve_plan(WindowPlan(window=16, stride=8, cross_count=2), 16)
    denoiser = PanoramaDenoiser(plan, FusionSettings())
    x, sigma = torch.randn(2, 4, 16, 48, dtype=torch.float64), torch.full((2,), 2.0, dtype=torch.float64)
    out = denoiser(both, x, sigma, 0, 10)
    torch.testing.assert_close(out[:2], denoiser(cond, x, sigma, 0, 10), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[2:], denoiser(uncond, x, sigma, 0, 10), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("wrap", [False, True])
def test_cutting_at_a_finer_scale_cuts_the_same_windows(wrap):
    """A ControlNet hint (8x the latent) is cut under the same windows."""
    views = plan_views(WindowPlan(window=8, stride=6, wrap_x=wrap), 8, 20)
    x = torch.randn(1, 3, 8, 20)
    fine = x.repeat_interleave(8, -2).repeat_interleave(8, -1)
    expected = cut_windows(x, views).repeat_interleave(8, -2).repeat_interleave(8, -1)
    assert torch.equal(cut_windows(fine, views, scale=8), expected)
    assert torch.equal(cut_windows(fine, views, [2, 0], scale=8), expected[[2, 0]])
