"""Shifted windows (SpotDiffusion) and a 360 in one window, in a real
ComfyUI: the plan node through the executor, the window evaluations the
model actually gets, and the circle turned from the second step on.

The model is the tiny random-weight SD1.5 of ``tiny_models``: 128 px
windows on small latents, so each case runs in seconds on two CPU cores."""

from __future__ import annotations

import pytest
import torch

import harness

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sd15"])
        import nodes
        encode = nodes.CLIPTextEncode()
        return model, encode.encode(clip, "a wide valley")[0], encode.encode(clip, "blurry")[0]


def shifted_plan(window=128, stride=0, shift="golden", seed=0, wrap=False):
    return harness.node("PanoramaShiftedWindows").execute(window, stride, shift, seed, wrap)[0]


def cross_plan(window=128, stride=32, c=1, wrap=False):
    return harness.node("CrossSamplingScheduler").execute(window, stride, c, 0, wrap)[0]


def sample(model, positive, negative, latent, windows, steps=3, counter=None, seed=3):
    import comfy.patcher_extension
    if counter is not None:
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", counter)
    with torch.inference_mode():
        return harness.node("TwinCropFusionSampler").execute(
            model, seed, steps, 4.0, "euler", "normal", positive, negative, {"samples": latent}, 1.0,
            "twindiffusion", 1.0, 0.5, 4, windows, None)[0]["samples"]


def test_shifted_windows_cost_what_the_plan_says(comfy, sd15):
    """Non-overlapping windows: 4 windows a step on a 512 px strip (+1 where
    the grid is off the edges), against 13 for MultiDiffusion at stride 32
    px; cond and uncond are two batch items each."""
    from fusion import latent_plan, window_count
    from fusion.windows import WindowSettings
    model, positive, negative = sd15
    latent = torch.zeros(1, 4, 16, 64)
    counts = {}
    for name, windows in (("shifted", shifted_plan()), ("md", cross_plan())):
        counter = harness.WindowCounter()
        out = sample(model, positive, negative, latent, windows, steps=4, counter=counter)
        assert torch.isfinite(out).all() and out.std() > 0
        assert counter.shapes == {(16, 16)}
        counts[name] = counter.items // 2
    plan = latent_plan(shifted_plan(), harness.pack_module("nodes.adapter").latent_grid(model))
    assert counts["shifted"] == window_count(plan, 16, 64, 4)
    assert counts["md"] == 13 * 4 and counts["shifted"] <= 5 * 4


def test_one_window_without_wrap_is_the_plain_ksampler(comfy, sd15):
    import nodes
    model, positive, negative = sd15
    latent = torch.zeros(1, 4, 16, 16)
    ours = sample(model, positive, negative, latent, shifted_plan(shift="random", seed=7))
    with torch.inference_mode():
        plain = nodes.common_ksampler(model, 3, 3, 4.0, "euler", "normal", positive, negative,
                                      {"samples": latent})[0]["samples"]
    torch.testing.assert_close(ours, plain, rtol=0, atol=0)


@pytest.mark.parametrize("make_plan", [lambda: cross_plan(window=256, wrap=True),
                                       lambda: shifted_plan(window=256, wrap=True)],
                         ids=["cross_sampling_node", "shifted_node"])
def test_a_360_in_one_window_is_turned_from_the_second_step(make_plan, comfy, sd15):
    """wrap_around on a latent no wider than the window is no longer dropped:
    step 0 is the plain single window (offset 0), later steps turn the
    circle, so the result parts from the plain sampler once there is a
    second step."""
    import nodes
    model, positive, negative = sd15
    latent = torch.zeros(1, 4, 16, 32)

    def plain(steps):
        with torch.inference_mode():
            return nodes.common_ksampler(model, 3, steps, 4.0, "euler", "normal", positive, negative,
                                         {"samples": latent})[0]["samples"]

    counter = harness.WindowCounter()
    one_step = sample(model, positive, negative, latent, make_plan(), steps=1)
    three = sample(model, positive, negative, latent, make_plan(), steps=3, counter=counter)
    torch.testing.assert_close(one_step, plain(1), rtol=0, atol=0)
    assert (three - plain(3)).abs().max() > 1e-4
    assert counter.shapes == {(16, 32)} and counter.items == 3 * 2  # one window per step, no extra call


def test_the_shifted_node_through_the_executor(comfy, tiny_checkpoints):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a coast", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 384, "height": 128,
                                                         "batch_size": 1}},
        "5": {"class_type": "PanoramaShiftedWindows", "inputs": {"window_size": 128, "view_stride": 0,
                                                                 "shift": "random", "shift_seed": 1,
                                                                 "wrap_around": True}},
        "6": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 5, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["5", 0]}},
    }
    result = harness.run_prompt(prompt, outputs=["6"])
    assert result.success, result.errors
    out = result.output("6")["samples"]
    assert out.shape == (1, 4, 16, 48) and torch.isfinite(out).all()
    prompt["5"]["inputs"]["view_stride"] = 256
    bad = harness.run_prompt(prompt, outputs=["6"], check=False)
    assert not bad.success, "a stride past the window ran"
    assert "view stride 256 px is larger than the window 128 px" in str(bad.errors), bad.errors
