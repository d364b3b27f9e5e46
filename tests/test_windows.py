import pytest
import torch

from fusion import LatentGrid, WindowPlan, WindowSettings, axis_starts, latent_plan, plan_views, resolve_plan, window_count
from fusion.crop_fusion import coverage


@pytest.mark.parametrize("length,window,stride", [
    (256, 64, 16), (250, 64, 16), (257, 64, 13), (65, 64, 64), (100, 64, 60), (64, 64, 16), (40, 64, 16),
    (129, 32, 7), (300, 64, 1),
])
def test_every_pixel_covered_and_last_window_snapped(length, window, stride):
    starts = axis_starts(length, window, stride)
    covered = torch.zeros(length, dtype=torch.bool)
    for s in starts:
        covered[s:s + window] = True
    assert covered.all()
    assert starts[0] == 0
    assert starts[-1] == max(length - window, 0)
    assert all(b - a <= stride for a, b in zip(starts, starts[1:]))


@pytest.mark.parametrize("stride", [8, 16, 24, 28, 31, 32])
@pytest.mark.parametrize("cross_count", [1, 2, 3, 5])
@pytest.mark.parametrize("size", [(32, 128), (70, 130), (96, 96)])
def test_every_group_covers_every_pixel(stride, cross_count, size):
    """Shifted groups too: with stride + shift beyond the window, the window
    at the edge and the first shifted one would leave a gap."""
    if cross_count > stride:
        pytest.skip("c > stride is refused")
    plan = resolve_plan(WindowPlan(window=32, stride=stride, cross_count=cross_count), 32)
    for step in range(cross_count):
        views = plan_views(plan, *size, step)
        assert (coverage(views, torch.float32) > 0).all(), (step, views.tops, views.lefts)


def test_axis_no_longer_than_window_gets_one_window():
    assert axis_starts(64, 64, 16) == [0]
    assert axis_starts(40, 64, 16) == [0]
    views = plan_views(resolve_plan(WindowPlan(), 64), 40, 48)
    assert len(views) == 1 and views.covers_whole_latent
    assert (views.window_h, views.window_w) == (40, 48)


def test_two_dimensional_grid_covers_everything():
    plan = resolve_plan(WindowPlan(stride=24, cross_count=2), 64)
    for step in range(2):
        views = plan_views(plan, 130, 200, step)
        assert views.grid[0] > 1 and views.grid[1] > 1
        assert (coverage(views, torch.float32) > 0).all()


def test_cross_sampling_shifts_interior_windows_like_the_reference():
    plan = resolve_plan(WindowPlan(stride=16, cross_count=2), 64)
    assert plan.cross_stride == 8
    g0 = plan_views(plan, 64, 256, 0).lefts
    g1 = plan_views(plan, 64, 256, 1).lefts
    assert g0 == [0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192]
    assert g1 == [0] + [s + 8 for s in g0[1:-1]] + [192]
    assert plan_views(plan, 64, 256, 2).lefts == g0  # group = step mod c


def test_cross_sampling_halves_window_evaluations():
    base = resolve_plan(WindowPlan(stride=16, cross_count=1), 64)
    twin = resolve_plan(WindowPlan(stride=32, cross_count=2), 64)
    ratio = window_count(twin, 64, 256, 50) / window_count(base, 64, 256, 50)
    assert ratio <= 0.55


def test_c_equal_one_is_no_cross_sampling():
    plan = resolve_plan(WindowPlan(stride=16, cross_count=1), 64)
    assert all(plan_views(plan, 64, 256, i).lefts == plan_views(plan, 64, 256, 0).lefts for i in range(5))


def test_wrap_around_windows_straddle_the_right_edge():
    plan = resolve_plan(WindowPlan(stride=16, wrap_x=True), 64)
    views = plan_views(plan, 64, 256)
    assert views.lefts == list(range(0, 256, 16))
    last = views.cols[-1].tolist()
    assert last[:16] == list(range(240, 256)) and last[16:] == list(range(0, 48))
    assert (coverage(views, torch.float32) == 4).all()  # uniform on a circle


@pytest.mark.parametrize("kwargs,match", [
    (dict(window=4), "too small"),
    (dict(window=64, stride=80), "larger than the window"),
    (dict(window=64, stride=0), None),  # 0 means the default, not an error
    (dict(window=64, stride=4, cross_count=5), "cross count"),
    (dict(window=64, stride=16, cross_count=2, cross_stride=16), "cross stride"),
])
def test_bad_plans_name_the_setting(kwargs, match):
    if match is None:
        assert resolve_plan(WindowPlan(**kwargs), 64).stride == 16
        return
    with pytest.raises(ValueError, match=match):
        resolve_plan(WindowPlan(**kwargs), 64)


FLUX = LatentGrid(scale=8, patch=2, native=128)  # 16 px tokens, 1024 px windows
HUNYUAN_IMAGE = LatentGrid(scale=32, patch=1, native=64)  # 32x latent, 2048 px windows
RADIANCE = LatentGrid(scale=1, patch=16, native=1024)  # pixel space, 16 px patches


@pytest.mark.parametrize("grid", [LatentGrid(), FLUX, HUNYUAN_IMAGE, RADIANCE], ids=["sd", "flux", "hunyuan", "radiance"])
def test_pixel_settings_land_on_whole_tokens(grid):
    """The paper's defaults from the native size, in whole tokens; the same
    pixel settings give the same image-space plan on every grid."""
    plan = latent_plan(WindowSettings(cross_count=2), grid)
    assert plan.window == grid.native
    assert plan.stride * grid.scale == grid.native * grid.scale // 4
    assert plan.stride % grid.patch == 0 and plan.cross_stride % grid.patch == 0
    explicit = latent_plan(WindowSettings(1024, 256, 2, 128), grid)
    assert (explicit.window * grid.scale, explicit.stride * grid.scale, explicit.cross_stride * grid.scale) == (
        1024, 256, 128)


@pytest.mark.parametrize("settings,match", [
    (WindowSettings(window=1000), r"window_size = 1000 px is not a multiple of 16 px.*use 992 or 1008"),
    (WindowSettings(window=1024, stride=200), r"view_stride = 200 px .* 16 px"),
    (WindowSettings(window=1024, stride=16, cross_count=2), r"cross count c = 2 .* view_stride / 16 px"),
    (WindowSettings(window=32), r"window size 32 px .* at least 64 px"),
])
def test_settings_off_the_token_grid_name_the_input_and_the_fix(settings, match):
    with pytest.raises(ValueError, match=match):
        latent_plan(settings, FLUX)


def test_messages_speak_pixels_of_the_model():
    with pytest.raises(ValueError, match=r"view stride 2048 px is larger than the window 1024 px"):
        latent_plan(WindowSettings(window=1024, stride=2048), HUNYUAN_IMAGE)


def test_feathered_crops_merge_agreeing_windows_exactly_and_fade_between_others():
    """Feathered merge weights: windows that agree merge to what they agree
    on (weights normalised per pixel, the latent's edges included); windows
    that disagree meet in a ramp across their overlap instead of a step; side
    by side (no overlap) it is the plain mean."""
    from fusion import cut_windows, merge_windows
    plan = resolve_plan(WindowPlan(window=16, stride=8, blend="feathered"), 16)
    views = plan_views(plan, 16, 40)
    x = torch.randn(1, 2, 16, 40, dtype=torch.float64)
    torch.testing.assert_close(merge_windows(cut_windows(x, views), views), x, rtol=0, atol=1e-12)
    # two windows of constant 0 and 1 meeting on 8 columns (stride 8, window 16, width 24)
    two = plan_views(plan, 16, 24)
    values = torch.stack([torch.zeros(1, 1, 16, 16), torch.ones(1, 1, 16, 16)]).double()
    row = merge_windows(values, two)[0, 0, 0]
    assert row[:8].eq(0).all() and row[-8:].eq(1).all()
    steps = row[8:16].diff()
    assert (steps > 0).all() and steps.max() < 0.3  # a ramp, not MultiDiffusion's jump to 0.5
    side = plan_views(resolve_plan(WindowPlan(window=8, stride=8, blend="feathered"), 8), 8, 24)
    assert side.pixel_weight is None
    with pytest.raises(ValueError, match="blend = 'soft': use one of"):
        resolve_plan(WindowPlan(window=16, stride=8, blend="soft"), 16)
