"""Panorama Window Positions (RoPE): each window of a DiT gets its place in
the panorama as its token positions, through ComfyUI's own ``rope_options``
(what its ScaleROPE node sets), on ComfyUI's Flux class with random weights.

Checked: the offset every model call gets is its window's place in tokens;
one window covering the latent is unchanged; without the node nothing
changes; families and hosts whose code takes no offsets are refused by
name.  Whether it helps on trained DiT weights is not measured here."""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_dits

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def flux(comfy, dit_files):
    import nodes
    reason = tiny_dits.unavailable_reason("flux_dev")
    if reason:
        pytest.skip(reason)
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files["flux_dev"], "default")[0]
    return model, tiny_dits.conditioning("flux_dev", "a wide valley"), tiny_dits.conditioning("flux_dev", "blurry")


class RopeRecorder:
    """DIFFUSION_MODEL wrapper: the rope_options and width of every call."""

    def __init__(self):
        self.calls = []

    def __call__(self, executor, x, *args, **kwargs):
        options = kwargs.get("transformer_options") or next(
            (a for a in args if isinstance(a, dict) and "sigmas" in a), {})
        rope = options.get("rope_options") or {}
        self.calls.append((x.shape[0], rope.get("shift_y", 0.0), rope.get("shift_x", 0.0)))
        return executor(x, *args, **kwargs)


def sample(model, positive, negative, latent, window_px, steps=2, recorder=None):
    import comfy.patcher_extension
    if recorder is not None:
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_rope", recorder)
    windows = harness.node("CrossSamplingScheduler").execute(window_px, window_px // 2, 1, 0, False)[0]
    with torch.inference_mode():
        return harness.node("TwinCropFusionSampler").execute(
            model, 3, steps, 1.0, "euler", "simple", positive, negative, {"samples": latent}, 1.0,
            "twindiffusion", 1.0, 0.5, 4, windows, None)[0]["samples"]


def test_each_window_sees_its_place_in_the_panorama(comfy, flux):
    from fusion import latent_plan, plan_views
    from fusion.windows import WindowSettings
    model, positive, negative = flux
    if not harness.pack_module("nodes.host_versions").takes_rope_offsets(model.model):
        pytest.skip("this ComfyUI's Flux takes no rope_options (before v0.3.68): the node refuses it, tested below")
    grid = harness.pack_module("nodes.adapter").latent_grid(model)
    window_px = 8 * grid.token_px
    latent = torch.zeros(1, 16, grid.to_latent(window_px, "h"), grid.to_latent(3 * window_px, "w"))
    placed = harness.node("PanoramaRopePositions").execute(model)[0]
    recorder = RopeRecorder()
    ours = sample(placed, positive, negative, latent, window_px, recorder=recorder)
    plain = sample(model, positive, negative, latent, window_px)
    assert torch.isfinite(ours).all() and (ours - plain).abs().max() > 1e-5
    plan = latent_plan(WindowSettings(window_px, window_px // 2, 1, 0, False), grid)
    views = plan_views(plan, *latent.shape[-2:])
    expected = [(0.0, left / grid.patch) for left in views.lefts]
    per_step = [(y, x) for _, y, x in recorder.calls]
    assert per_step == expected * 2  # two steps, one window per call, in raster order
    assert {n for n, _, _ in recorder.calls} == {1}  # cond and uncond of one window (cfg 1: cond only)
    assert model.model_options.get("transformer_options", {}).get("panorama_rope_positions") is None


def test_one_window_covering_the_latent_is_unchanged(comfy, flux):
    model, positive, negative = flux
    if not harness.pack_module("nodes.host_versions").takes_rope_offsets(model.model):
        pytest.skip("this ComfyUI's Flux takes no rope_options (before v0.3.68)")
    grid = harness.pack_module("nodes.adapter").latent_grid(model)
    window_px = 8 * grid.token_px
    latent = torch.zeros(1, 16, grid.to_latent(window_px, "h"), grid.to_latent(window_px, "w"))
    placed = harness.node("PanoramaRopePositions").execute(model)[0]
    torch.testing.assert_close(sample(placed, positive, negative, latent, window_px),
                               sample(model, positive, negative, latent, window_px), rtol=0, atol=0)


def test_models_without_rope_offsets_are_refused_by_name(comfy, flux, tiny_checkpoints):
    sd15 = harness.load_checkpoint(tiny_checkpoints["sd15"])[0]
    with pytest.raises(ValueError, match="takes no RoPE position offsets.*Remove Panorama Window Positions"):
        harness.node("PanoramaRopePositions").execute(sd15)
    model = flux[0]
    if not harness.pack_module("nodes.host_versions").takes_rope_offsets(model.model):
        with pytest.raises(ValueError, match="Flux on this ComfyUI takes no RoPE position offsets"):
            harness.node("PanoramaRopePositions").execute(model)
