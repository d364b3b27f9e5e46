"""Sphere views (Panorama Windows (Sphere)) on the image families besides
SD1.5 (test_sphere_windows_host): SDXL, Flux, Flux.2, Z-Image and
Qwen-Image, tiny random-weight models of ComfyUI's own classes
(``tiny_models`` / ``tiny_dits``), loaded by ComfyUI's loaders.  A family
this host's ComfyUI lacks (Flux.2 and Z-Image on 0.3.64) skips, saying so.

Per family: KSampler (Panorama) on a 2:1 latent 48 latent pixels high
with views 16 latent pixels across (8 tokens of a DiT with 2x2 patches,
16 of Flux.2's 1x1 patches; SDXL's tiny U-Net, the costly one, gets views
of 8 on a latent 28 high), which keeps the views' noise native (more than
2.75 views high): the output is finite and of the latent's shape, and the
model was called once per view of the plan per step, for cond and uncond,
on view-sized inputs.  A latent two views high is refused with the size it
needs, in the family's pixels, and a 360 of that size is taken.  For Flux
also: alternating view sets of the user's count under MultiDiffusion, and
the model patch under ComfyUI's own KSampler through the executor, which
gives the latent KSampler (Panorama) gives.
"""

from __future__ import annotations

import re

import pytest
import torch

import harness
import tiny_dits

pytestmark = pytest.mark.host

# (kind, where its model comes from): "checkpoint" = tiny_models' checkpoint, "dit" = tiny_dits' file.
FAMILIES = [("sdxl", "checkpoint"), ("flux_dev", "dit"), ("flux2_klein", "dit"), ("z_image", "dit"),
            ("qwen_image", "dit")]
# Latent pixels across a view, and the 360's height in latent pixels: 3 to 3.5 views high, with room
# above the least the noise check takes (about 2.75 views; for views this small a single shared pixel
# pair moves it).  SDXL's tiny U-Net is the costly one: half-size views.
VIEW_LATENT = {"sdxl": 8}
HEIGHT_LATENT = {"sdxl": 28}
STEPS = 2
CFG = 2.0


def view_latent(kind: str) -> int:
    return VIEW_LATENT.get(kind, 16)


def height_latent(kind: str) -> int:
    return HEIGHT_LATENT.get(kind, 48)


def pixels_per_latent(kind: str) -> int:
    return 8 if kind == "sdxl" else tiny_dits.expected_geometry(kind)["pixels_per_latent"]


def latent_dimensions(kind: str) -> int:
    return 2 if kind == "sdxl" else tiny_dits.expected_geometry(kind)["latent_dimensions"]


@pytest.fixture(scope="module", params=FAMILIES, ids=[kind for kind, _ in FAMILIES])
def family(request, comfy, tiny_checkpoints):
    """(kind, MODEL, positive, negative), the model as ComfyUI's loader gives it."""
    import nodes
    kind, source = request.param
    if source == "checkpoint":
        with torch.inference_mode():
            model, clip, _ = harness.load_checkpoint(tiny_checkpoints[kind])
            encode = nodes.CLIPTextEncode()
            return kind, model, encode.encode(clip, "a mountain lake")[0], encode.encode(clip, "blurry")[0]
    reason = tiny_dits.unavailable_reason(kind)
    if reason:
        pytest.skip(reason)
    files = request.getfixturevalue("dit_files")
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(files[kind], "default")[0]
    return kind, model, tiny_dits.conditioning(kind, "a mountain lake"), tiny_dits.conditioning(kind, "blurry")


def sphere_windows(kind: str, **settings):
    inputs = {"window_size": view_latent(kind) * pixels_per_latent(kind), "fov": 0.0, "overlap": 0.25, "view_count": 0,
              "rotation": "golden", "cross_count": 2, **settings}
    return harness.node("PanoramaSphereWindows").execute(**inputs)[0]


def empty_360(kind: str, model) -> dict:
    return harness.node("Panorama360Latent").execute(model, height_latent(kind) * pixels_per_latent(kind), 1)[0]


def sample(model, positive, negative, latent, windows, mode="twindiffusion", counter=None):
    import comfy.patcher_extension
    if counter is not None:
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", counter)
    with torch.inference_mode():
        return harness.node("TwinCropFusionSampler").execute(
            model, 7, STEPS, CFG, "euler", "simple", positive, negative, latent, 1.0, mode, 1.0, 0.5, 4, windows,
            None)[0]["samples"]


def planned_views(model, windows, height, steps=STEPS) -> int:
    """The views the plan has over the run's steps, on the model's grid."""
    from fusion import latent_plan
    plan = latent_plan(windows, harness.pack_module("nodes.adapter").latent_grid(model))
    return sum(len(plan.views(height, 2 * height, step)) for step in range(steps))


def test_sphere_views_on_the_family(family):
    """TwinDiffusion (Crop Fusion links between views, the costlier path)."""
    kind, model, positive, negative = family
    latent = empty_360(kind, model)
    shape = latent["samples"].shape
    height = height_latent(kind)
    assert shape[-2:] == (height, 2 * height)
    windows = sphere_windows(kind)
    counter = harness.WindowCounter()
    out = sample(model, positive, negative, latent, windows, "twindiffusion", counter)
    expected = (*shape[:2], 1, *shape[2:]) if latent_dimensions(kind) == 3 and len(shape) == 4 else tuple(shape)
    assert tuple(out.shape) == expected
    assert torch.isfinite(out).all() and out.std() > 0
    # every view a batch item, cond and uncond, of the view's size: no more, no less
    assert counter.shapes == {(view_latent(kind), view_latent(kind))}
    assert counter.items == 2 * planned_views(model, windows, height)


def test_the_alternate_sets_cost_what_the_plan_says(comfy, dit_files):
    """rotation = alternate with a view_count of the user's, under
    MultiDiffusion (Flux): that many views every step."""
    import nodes
    kind = "flux_dev"
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files[kind], "default")[0]
    windows = sphere_windows(kind, rotation="alternate", view_count=22)
    counter = harness.WindowCounter()
    out = sample(model, tiny_dits.conditioning(kind, "a mountain lake"), tiny_dits.conditioning(kind, "blurry"),
                 empty_360(kind, model), windows, "multidiffusion", counter)
    assert torch.isfinite(out).all() and out.std() > 0
    assert planned_views(model, windows, height_latent(kind)) == STEPS * 22
    assert counter.items == 2 * STEPS * 22


def test_the_model_patch_under_ksampler_is_the_panorama_sampler(comfy, dit_files):
    """UNETLoader -> Panorama Windows (Sphere) -> Sample as Panorama (model
    patch) -> ComfyUI's KSampler, through the executor: the latent
    KSampler (Panorama) gives."""
    import nodes
    kind = "flux_dev"
    px = pixels_per_latent(kind)
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": dit_files[kind], "weight_dtype": "default"}},
        "2": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": "a mountain lake"}},
        "3": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": "blurry"}},
        "4": {"class_type": "PanoramaSphereWindows", "inputs": {
            "window_size": view_latent(kind) * px, "fov": 0.0, "overlap": 0.25, "view_count": 0, "rotation": "golden",
            "cross_count": 2}},
        "5": {"class_type": "TwinDiffusionModel", "inputs": {"model": ["1", 0], "mode": "twindiffusion", "lam": 1.0,
                                                             "tau": 0.5, "view_batch_size": 4, "windows": ["4", 0]}},
        "6": {"class_type": "Panorama360Latent", "inputs": {"model": ["1", 0], "height": height_latent(kind) * px,
                                                            "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {
            "model": ["5", 0], "seed": 7, "steps": STEPS, "cfg": CFG, "sampler_name": "euler", "scheduler": "simple",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["6", 0], "denoise": 1.0}},
    }
    result = harness.run_prompt(prompt, outputs=["7"])
    assert result.success, result.errors
    patched = result.output("7")["samples"]
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files[kind], "default")[0]
    direct = sample(model, tiny_dits.conditioning(kind, "a mountain lake"), tiny_dits.conditioning(kind, "blurry"),
                    empty_360(kind, model), sphere_windows(kind))
    assert patched.shape == direct.shape == (1, 16, height_latent(kind), 2 * height_latent(kind))
    torch.testing.assert_close(patched, direct, rtol=1e-5, atol=1e-5)


def test_a_latent_too_small_for_the_views_says_what_size_they_need(family):
    """Two views high: refused, in the family's own pixels, naming the size
    that keeps the views' noise (about 2.75 views high), and window_size
    where a smaller view the model takes would fit; a 360 of the size named
    is taken."""
    from fusion import latent_plan
    kind, model, positive, negative = family
    px, view = pixels_per_latent(kind), view_latent(kind)
    windows = sphere_windows(kind)
    small = harness.node("Panorama360Latent").execute(model, 2 * view * px, 1)[0]
    with pytest.raises(ValueError, match=rf"too small for sphere views of {view * px} px \(window_size\) and 90 degrees") as refused:
        sample(model, positive, negative, small, windows)
    message = str(refused.value)
    high, wide = map(int, re.search(r"Make the 360 at least (\d+)x(\d+) px", message).groups())
    assert wide == 2 * high and high % px == 0 and 2 * view * px < high <= 3 * view * px, message
    plan = latent_plan(windows, harness.pack_module("nodes.adapter").latent_grid(model))
    plan.check(high // px, wide // px, px)  # the size named is taken
