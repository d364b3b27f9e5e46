import math

import pytest
import torch

from fusion import FusionSettings, MultiScaleDenoiser, MultiScaleSettings, PanoramaDenoiser, WindowPlan, resolve_plan
from fusion.multiscale import downsample, guided_windows, noisy_pyramid, lower_crop, omega_at, validate_multiscale
from fusion.windows import plan_views
from toy_models import conv_denoiser, karras_sigmas


def euler_msd(msd, model_fn, x, sigmas):
    n = len(sigmas) - 1
    for i in range(n):
        sigma = sigmas[i]
        d = msd(model_fn, x, sigma.expand(x.shape[0]), i, n, float(sigmas[i + 1]))
        x = x + (x - d) / sigma * (sigmas[i + 1] - sigma)
    return x


def euler_md(panorama, model_fn, x, sigmas):
    n = len(sigmas) - 1
    for i in range(n):
        sigma = sigmas[i]
        d = panorama(model_fn, x, sigma.expand(x.shape[0]), i, n)
        x = x + (x - d) / sigma * (sigmas[i + 1] - sigma)
    return x


@pytest.fixture
def problem():
    plan = resolve_plan(WindowPlan(window=16, stride=8), 16)
    x = torch.randn(1, 4, 32, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 14.6
    return plan, x, karras_sigmas(6), conv_denoiser(seed=7)


@pytest.mark.parametrize("crop_fusion", [False, True])
def test_omega_zero_is_multidiffusion(problem, crop_fusion):
    plan, x, sigmas, model_fn = problem
    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=crop_fusion))
    md = euler_md(panorama, model_fn, x, sigmas)
    msd = MultiScaleDenoiser(panorama, MultiScaleSettings(omega=0.0))
    assert torch.equal(euler_msd(msd, model_fn, x, sigmas), md)
    # the full algorithm with a zero step, not the short cut, lands on the same result
    full = lambda f, z, s, i, n, s_next: msd.multiscale_step(f, z, s, i, n, s_next, 0.0, torch.enable_grad)
    torch.testing.assert_close(euler_msd(full, model_fn, x, sigmas), md, rtol=1e-10, atol=1e-10)


def test_gradient_matches_finite_differences():
    model_fn = conv_denoiser(seed=3)
    views = plan_views(resolve_plan(WindowPlan(window=8, stride=4), 8), 8, 16)
    z = torch.randn(1, 4, 8, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z_low = torch.randn(1, 4, 4, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ids = [1]
    x = z[..., 4:12].clone()
    target = lower_crop(z_low, views, ids).flatten(0, 1)
    sigma, r, omega = torch.tensor([2.0], dtype=torch.float64), 0.6, 1.0
    grad = x - guided_windows(model_fn, x, target, sigma, views, ids, r, omega, "bilinear", torch.enable_grad)

    def loss(v):
        phi = model_fn(v, sigma) * (1 - r) + r * v
        return ((downsample(phi) - target) ** 2).sum((2, 3)).mean()

    eps = 1e-6
    numeric = torch.zeros_like(x).flatten()
    for k in range(x.numel()):
        e = torch.zeros_like(x).flatten()
        e[k] = eps
        numeric[k] = (loss(x + e.view_as(x)) - loss(x - e.view_as(x))) / (2 * eps)
    error = (grad.flatten() - numeric).abs().max() / numeric.abs().max()
    assert error < 1e-7, error


def test_a_model_that_overwrites_saved_activations_gets_the_same_gradient():
    """A block adding its residual in place into the tensor its norm saved
    (Flux's, Chroma's) breaks backward; a context that offers it keeps
    copies of what autograd saves, and the gradient is the plain model's."""
    views = plan_views(resolve_plan(WindowPlan(window=8, stride=4), 8), 8, 16)
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(4, 4, dtype=torch.float64, generator=generator)

    def block(v, in_place):
        h = v * 1.5
        normed = torch.nn.functional.layer_norm(h.movedim(1, -1), (4,)).movedim(-1, 1)
        update = torch.einsum("oc,bchw->bohw", weight, normed)
        if in_place:
            h += update
            return h
        return h + update

    class Context:
        copies_saved_tensors = True
        calls = []

        def __call__(self, copy_saved=False):
            self.calls.append(copy_saved)
            if not copy_saved:
                return torch.enable_grad()
            hooks = torch.autograd.graph.saved_tensors_hooks(
                lambda t: t.clone() if t.requires_grad and t.grad_fn is not None else t, lambda t: t)
            return hooks

    x = torch.randn(1, 4, 8, 8, dtype=torch.float64, generator=generator)
    target = torch.randn(1, 4, 4, 4, dtype=torch.float64, generator=generator)
    sigma = torch.tensor([2.0], dtype=torch.float64)
    args = (x, target, sigma, views, [0], 0.5, 1.0, "bilinear")
    plain = guided_windows(lambda v, *_: block(v, False), *args, torch.enable_grad)
    context = Context()
    with torch.enable_grad():
        overwriting = guided_windows(lambda v, *_: block(v, True), *args, context)
    assert context.calls == [False, True]
    torch.testing.assert_close(overwriting, plain, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="inplace"):  # a context that cannot keep copies fails as before
        guided_windows(lambda v, *_: block(v, True), *args, torch.enable_grad)


def test_lower_crop_is_the_region_under_the_window():
    views = plan_views(resolve_plan(WindowPlan(window=8, stride=4), 8), 8, 24)
    z_low = torch.arange(4 * 12, dtype=torch.float64).view(1, 1, 4, 12)
    crops = lower_crop(z_low, views, range(len(views)))
    for i, left in enumerate(views.lefts):
        assert torch.equal(crops[i, 0], z_low[0, :, :, left // 2:left // 2 + 4])


def test_cosine_decay_schedule():
    s = MultiScaleSettings(omega=10.0)
    assert omega_at(s, 0, 50) == 10.0
    assert math.isclose(omega_at(s, 25, 50), 5.0)
    assert 0 < omega_at(s, 49, 50) < 0.01
    values = [omega_at(s, i, 50) for i in range(50)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert omega_at(MultiScaleSettings(omega=3.0, decay="constant"), 40, 50) == 3.0


def test_guidance_pulls_the_layout_towards_the_low_resolution_pass(problem):
    """With omega > 0 the result down-sampled is closer to a low-resolution
    MultiDiffusion pass from the down-sampled noise than with omega = 0."""
    plan, x, sigmas, model_fn = problem
    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False))
    low = euler_md(panorama, model_fn, noisy_pyramid(x, float(sigmas[0]), 2, "bilinear")[0][0], sigmas)

    def distance(omega):
        msd = MultiScaleDenoiser(panorama, MultiScaleSettings(omega=omega))
        return ((downsample(euler_msd(msd, model_fn, x, sigmas)) - low) ** 2).mean().item()

    assert distance(10.0) < 0.9 * distance(0.0)


def test_memory_is_bounded_by_the_view_batch():
    """The gradient pass only ever sees view_batch_size windows."""
    seen = []
    base = conv_denoiser(seed=1)

    def model_fn(x, sigma, *window_info):
        seen.append(x.shape[0])
        return base(x, sigma)

    plan = resolve_plan(WindowPlan(window=16, stride=4), 16)
    msd = MultiScaleDenoiser(PanoramaDenoiser(plan, FusionSettings(view_batch_size=3)), MultiScaleSettings())
    x = torch.randn(2, 4, 32, 128, dtype=torch.float64)
    msd(model_fn, x, torch.full((2,), 5.0, dtype=torch.float64), 0, 10, 4.0)
    assert max(seen) == 3 * 2


@pytest.mark.parametrize("kwargs,size,match", [
    (dict(omega=-1.0), None, "omega"),
    (dict(levels=0), None, "levels"),
    (dict(levels=6), (128, 512), "below"),
    (dict(levels=2), (64, 64), "fits in one window"),
    (dict(levels=3), (102, 512), "multiples"),
    (dict(decay="linear"), None, "decay"),
])
def test_bad_multiscale_settings_name_the_setting(kwargs, size, match):
    with pytest.raises(ValueError, match=match):
        validate_multiscale(MultiScaleSettings(**kwargs), *(size or (None, None)), 64 if size else None)


@pytest.mark.parametrize("mode,gain", [("bilinear", 0.25), ("nearest", 1.0)])
def test_pyramid_levels_carry_the_noise_the_model_is_told(mode, gain):
    """ds() of pure noise at sigma has std sigma * sqrt(gain); every level of
    the noisy pyramid is back at sigma, the top level untouched."""
    z = torch.randn(1, 4, 128, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5.0
    assert math.isclose(downsample(z, mode).std().item(), 5.0 * math.sqrt(gain), rel_tol=0.03)
    levels, added = noisy_pyramid(z, 5.0, 3, mode)
    assert levels[-1] is z and not added[-1].any()
    for level in levels[:-1]:
        assert math.isclose(level.std().item(), 5.0, rel_tol=0.03)
    again, _ = noisy_pyramid(z, 5.0, 3, mode)
    assert all(torch.equal(a, b) for a, b in zip(levels, again))  # a fixed field: deterministic


def test_each_branch_takes_its_own_gradient_step():
    """With K branches (cond, uncond) each is guided by its own lower-level
    pass: the same as running MSD with that branch's model alone."""
    cond, uncond = conv_denoiser(seed=5), conv_denoiser(seed=6)

    def both(x, sigma, views=None, ids=None, branch=None):
        if branch is not None:
            return (cond, uncond)[branch](x, sigma)
        c, u = cond(x, sigma).view(-1, 1, *x.shape[1:]), uncond(x, sigma).view(-1, 1, *x.shape[1:])
        return torch.cat([c, u], dim=1).flatten(0, 1)  # window-major, B = 1

    plan = resolve_plan(WindowPlan(window=16, stride=8), 16)
    msd = MultiScaleDenoiser(PanoramaDenoiser(plan, FusionSettings()), MultiScaleSettings())
    x, sigma = torch.randn(1, 4, 32, 48, dtype=torch.float64) * 5.0, torch.full((1,), 5.0, dtype=torch.float64)
    out = msd(both, x, sigma, 0, 10, 4.0)
    torch.testing.assert_close(out[:1], msd(cond, x, sigma, 0, 10, 4.0), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(out[1:], msd(uncond, x, sigma, 0, 10, 4.0), rtol=1e-10, atol=1e-10)


def test_steps_outside_the_guided_range_are_multidiffusion(problem):
    """Guided only while sigma_range[1] <= sigma <= sigma_range[0]: a run
    guided on its first two steps equals MSD's first two steps followed by
    MultiDiffusion's, and a range that holds no step is MultiDiffusion."""
    plan, x, sigmas, model_fn = problem
    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False))
    msd = MultiScaleDenoiser(panorama, MultiScaleSettings())
    msd.guide_between(float(sigmas[0]), float(sigmas[1]))
    n = len(sigmas) - 1
    early = euler_msd(msd, model_fn, x, sigmas)
    full = MultiScaleDenoiser(panorama, MultiScaleSettings())
    z = x
    for i in range(n):
        sigma = sigmas[i]
        if i < 2:
            d = full(model_fn, z, sigma.expand(z.shape[0]), i, n, float(sigmas[i + 1]))
        else:
            d = panorama(model_fn, z, sigma.expand(z.shape[0]), i, n)
        z = z + (z - d) / sigma * (sigmas[i + 1] - sigma)
    assert torch.equal(early, z)
    msd.guide_between(0.0, 0.0)
    assert torch.equal(euler_msd(msd, model_fn, x, sigmas), euler_md(panorama, model_fn, x, sigmas))


@pytest.mark.parametrize("start,end", [(-0.1, 1.0), (0.6, 0.4), (0.0, 1.5)])
def test_a_guided_range_out_of_order_is_refused_by_name(start, end):
    with pytest.raises(ValueError, match="use 0 <= start_percent <= end_percent <= 1"):
        validate_multiscale(MultiScaleSettings(start_percent=start, end_percent=end))


def test_reusing_the_prediction_is_exact_where_it_does_not_depend_on_the_input(problem):
    """reuse_prediction steps a guided window from the gradient pass's D(x)
    instead of D(x - omega grad): the same wherever the prediction does not
    depend on its input (which high noise makes nearly so), with one model
    pass fewer per guided window."""
    plan, x, sigmas, _ = problem
    calls = []

    def blind(z, sigma, *rest):  # a prediction of the noise level alone, not of z
        calls.append(z.shape[0])
        return torch.full_like(z, 0.1) * torch.arange(z.shape[1], dtype=z.dtype).view(1, -1, 1, 1) / sigma.view(-1, 1, 1, 1)

    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False))
    runs = {}
    for reuse in (False, True):
        calls.clear()
        msd = MultiScaleDenoiser(panorama, MultiScaleSettings(reuse_prediction=reuse))
        runs[reuse] = euler_msd(msd, blind, x, sigmas), sum(calls)
    (exact, exact_calls), (reused, reused_calls) = runs[False], runs[True]
    torch.testing.assert_close(reused, exact, rtol=1e-12, atol=1e-12)
    windows = len(plan_views(plan, *x.shape[-2:]))
    assert exact_calls - reused_calls == windows * (len(sigmas) - 1)  # one forward per guided window and step


def test_reusing_the_prediction_stays_near_the_paper_on_a_first_step(problem):
    """On a model whose prediction does depend on its input, the first,
    high-noise step with reuse_prediction stays within a few per cent of the
    paper's step (measured against the guidance's own size)."""
    plan, x, sigmas, model_fn = problem
    panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False))
    n, sigma = len(sigmas) - 1, sigmas[0].expand(x.shape[0])
    md = panorama(model_fn, x, sigma, 0, n)
    steps = {reuse: MultiScaleDenoiser(panorama, MultiScaleSettings(reuse_prediction=reuse))(
        model_fn, x, sigma, 0, n, float(sigmas[1])) for reuse in (False, True)}
    guidance = (steps[False] - md).norm()
    assert guidance > 0
    assert (steps[True] - steps[False]).norm() < 0.1 * guidance
