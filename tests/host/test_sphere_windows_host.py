"""Sphere views (Panorama Windows (Sphere)) in a real ComfyUI: the node
through the executor, the views the model actually gets, and the refusals,
each naming the input and the fix.

The model is the tiny random-weight SD1.5 of ``tiny_models``: 128 px
views (16 latent px) on a 384x768 px 360 (48x96 latent), which keeps the
views' noise native (2.75 views high) and runs in seconds."""

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
        return model, encode.encode(clip, "a mountain lake")[0], encode.encode(clip, "blurry")[0]


def sphere_plan(window=128, fov=0.0, overlap=0.25, count=0, rotation="golden", c=2):
    return harness.node("PanoramaSphereWindows").execute(window, fov, overlap, count, rotation, c)[0]


def sample(model, positive, negative, latent, windows, steps=2, counter=None, mode="multidiffusion",
           multiscale=None, seed=3):
    import comfy.patcher_extension
    if counter is not None:
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", counter)
    with torch.inference_mode():
        return harness.node("TwinCropFusionSampler").execute(
            model, seed, steps, 4.0, "euler", "normal", positive, negative, {"samples": latent}, 1.0,
            mode, 1.0, 0.5, 4, windows, multiscale)[0]["samples"]


@pytest.mark.parametrize("mode", ["multidiffusion", "twindiffusion"])
def test_sphere_views_cost_what_the_plan_says(mode, comfy, sd15):
    from fusion import latent_plan
    model, positive, negative = sd15
    latent = torch.zeros(1, 4, 48, 96)
    counter = harness.WindowCounter()
    out = sample(model, positive, negative, latent, sphere_plan(), steps=2, counter=counter, mode=mode)
    assert out.shape == latent.shape and torch.isfinite(out).all() and out.std() > 0
    plan = latent_plan(sphere_plan(), harness.pack_module("nodes.adapter").latent_grid(model))
    views = sum(len(plan.views(48, 96, step)) for step in range(2))
    assert counter.shapes == {(16, 16)}
    assert counter.items == 2 * views  # cond and uncond: two batch items a view


def test_the_sphere_node_through_the_executor(comfy, tiny_checkpoints):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a forest clearing", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 768, "height": 384,
                                                         "batch_size": 1}},
        "5": {"class_type": "PanoramaSphereWindows", "inputs": {"window_size": 128, "fov": 0.0, "overlap": 0.25,
                                                                "view_count": 0, "rotation": "golden",
                                                                "cross_count": 2}},
        "6": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 5, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["5", 0]}},
    }
    result = harness.run_prompt(prompt, outputs=["6"])
    assert result.success, result.errors
    out = result.output("6")["samples"]
    assert out.shape == (1, 4, 48, 96) and torch.isfinite(out).all()


@pytest.mark.parametrize("size,plan,message", [
    ((48, 128), {}, "sphere views sample a whole 360 degree sphere"),
    ((32, 64), {}, r"too small for sphere views of 128 px \(window_size\) and 90 degrees"),
    ((48, 96), {"count": 4}, "of the sphere uncovered, around yaw"),
], ids=["not-2to1", "too-coarse", "too-few-views"])
def test_bad_latents_are_refused_by_name(size, plan, message, comfy, sd15):
    model, positive, negative = sd15
    with pytest.raises(ValueError, match=message):
        sample(model, positive, negative, torch.zeros(1, 4, *size), sphere_plan(**plan), steps=1)


def test_layout_guidance_is_refused_on_sphere_views(comfy, sd15):
    model, positive, negative = sd15
    msd = harness.node("MultiScaleGuidance").execute(2, 10.0, "cosine", "bilinear")[0]
    with pytest.raises(ValueError, match="Panorama Layout Guidance \\(MSD\\) guides crops"):
        sample(model, positive, negative, torch.zeros(1, 4, 48, 96), sphere_plan(), steps=1, multiscale=msd)


def test_fov_out_of_range_is_refused_by_the_node(comfy):
    with pytest.raises(ValueError, match="fov = 20.0 degrees is out of range: use 30 to 120"):
        sphere_plan(fov=20.0)
