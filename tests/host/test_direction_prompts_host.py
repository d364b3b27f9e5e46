"""Prompts by direction on sphere views (SphereDiff's multi-prompt) with
ComfyUI's own conditioning nodes: 360° Direction Mask -> Conditioning (Set
Mask) -> Conditioning (Combine).  Sphere views cut the mask per view, so the
view looking at the zenith gets the sky prompt and the one looking at the
nadir does not; the run goes through ComfyUI's executor."""

from __future__ import annotations

import pytest
import torch

import harness

pytestmark = pytest.mark.host


def test_the_sky_mask_reaches_the_views_that_look_up(comfy):
    from fusion import SpherePlan
    WindowConditioning = harness.pack_module("nodes.window_conds").WindowConditioning
    mask = harness.node("PanoramaDirectionMask").execute(96, 45.0, 90.0, 0.0, 360.0, 0.0)[0]  # at the latent's size
    assert mask.shape == (1, 48, 96)
    views = SpherePlan(16).views(48, 96, 0)
    pitch = torch.rad2deg(torch.asin(views.cameras[:, 1, 2]))
    conditioning = WindowConditioning.__new__(WindowConditioning)
    conditioning.sdxl_embedder, conditioning._cache = None, {}
    masks, reached = conditioning.mask_windows({"mask": mask, "model_conds": {}}, views, (48, 96), 1)
    assert reached[0] and not reached[-1]  # zenith view, nadir view
    assert all(hit for hit, p in zip(reached, pitch.tolist()) if p > 60)
    assert not any(hit for hit, p in zip(reached, pitch.tolist()) if p < 0)
    # the zenith view: sky but in its corners, which reach down to 35 degrees at 90 degrees across
    zenith = masks[0, 0]
    assert zenith[6:10, 6:10].min() == 1 and zenith[0, 0] == 0 and 0.7 < float(zenith.mean()) < 0.9


def test_direction_prompts_through_the_executor(comfy, tiny_checkpoints):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a meadow", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "a blue sky with clouds", "clip": ["1", 1]}},
        "5": {"class_type": "PanoramaDirectionMask", "inputs": {"width": 768, "pitch_from": 45.0, "pitch_to": 90.0,
                                                                "yaw": 0.0, "yaw_span": 360.0, "feather": 10.0}},
        "6": {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["4", 0], "mask": ["5", 0],
                                                              "set_cond_area": "default", "strength": 1.0}},
        "7": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["2", 0],
                                                              "conditioning_2": ["6", 0]}},
        "8": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 768, "height": 384,
                                                         "batch_size": 1}},
        "9": {"class_type": "PanoramaSphereWindows", "inputs": {"window_size": 128, "fov": 0.0, "overlap": 0.25,
                                                                "view_count": 0, "rotation": "golden",
                                                                "cross_count": 2}},
        "10": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 1, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["7", 0], "negative": ["3", 0], "latent_image": ["8", 0], "denoise": 1.0,
            "mode": "multidiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["9", 0]}},
    }
    with_sky = harness.run_prompt(prompt, outputs=["10"])
    assert with_sky.success, with_sky.errors
    prompt["10"]["inputs"]["positive"] = ["2", 0]
    plain = harness.run_prompt(prompt, outputs=["10"])
    top = slice(0, 8)  # latent rows above ~60 degrees
    a, b = with_sky.output("10")["samples"], plain.output("10")["samples"]
    assert torch.isfinite(a).all()
    assert (a[..., top, :] - b[..., top, :]).abs().mean() > 10 * (a[..., -8:, :] - b[..., -8:, :]).abs().mean()


@pytest.mark.parametrize("inputs,message", [
    ({"pitch_from": 50.0, "pitch_to": 40.0}, "use -90 <= pitch_from < pitch_to <= 90"),
    ({"width": 101}, "width = 101: use an even width"),
])
def test_bad_direction_masks_are_refused_by_name(inputs, message, comfy):
    values = {"width": 768, "pitch_from": 45.0, "pitch_to": 90.0, "yaw": 0.0, "yaw_span": 360.0, "feather": 10.0}
    with pytest.raises(ValueError, match=message):
        harness.node("PanoramaDirectionMask").execute(**{**values, **inputs})
