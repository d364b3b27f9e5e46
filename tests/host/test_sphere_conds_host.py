"""Conditioning on sphere views (Panorama Windows (Sphere)) in a real
ComfyUI: a ControlNet hint of the whole 360 reaches every view projected
as the view reads the latent (nearest neighbour, at the hint's
resolution); a masked or area prompt reaches only the views it falls in,
and a view it misses gets no entry (no model call for it).

Tiny random-weight SD1.5 and ControlNet (``tiny_models``), 128 px views on
a 384x768 px 360 (48x96 latent), two steps.
"""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_models

pytestmark = pytest.mark.host

H, W = 48, 96  # latent
SCALE = 8  # image pixels per latent pixel
STEPS = 2


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sd15"])
        encode = nodes.CLIPTextEncode()
        return model, clip, encode.encode(clip, "a mountain lake")[0], encode.encode(clip, "blurry")[0]


@pytest.fixture(scope="module")
def controlnet(comfy, tmp_path_factory):
    import comfy.controlnet
    directory = tmp_path_factory.mktemp("controlnet")
    name = tiny_models.ensure_controlnet(directory, "sd15")
    return comfy.controlnet.load_controlnet(str(directory / name))


def sphere_windows(window=128, **settings):
    inputs = {"window_size": window, "fov": 0.0, "overlap": 0.25, "view_count": 0, "rotation": "golden",
              "cross_count": 2, **settings}
    return harness.node("PanoramaSphereWindows").execute(**inputs)[0]


def step_views(model, windows, steps=STEPS) -> list:
    from fusion import latent_plan
    plan = latent_plan(windows, harness.pack_module("nodes.adapter").latent_grid(model))
    return [plan.views(H, W, step) for step in range(steps)]


def sample(model, positive, negative, windows, counter=None, mode="multidiffusion"):
    import comfy.patcher_extension
    if counter is not None:
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", counter)
    with torch.inference_mode():
        return harness.node("TwinCropFusionSampler").execute(
            model, 3, STEPS, 4.0, "euler", "normal", positive, negative, {"samples": torch.zeros(1, 4, H, W)}, 1.0,
            mode, 1.0, 0.5, 4, windows, None)[0]["samples"]


def test_each_view_gets_the_hint_projected_as_it_reads_the_latent(sd15, controlnet, monkeypatch):
    """The hint of the whole 360 (384x768 px, random per pixel so that every
    view's part is its own), through Apply ControlNet: what each ControlNet
    call is handed is, view by view, the hint read at the view's
    nearest-neighbour places at 8x the latent's resolution
    (``views.read_at(8)``), and every view of every step gets its own."""
    import comfy.controlnet
    model, _, positive, negative = sd15
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, H * SCALE, W * SCALE, 3, generator=generator)  # an IMAGE: (B, H, W, C)
    with torch.inference_mode():
        positive, negative = harness.node("ControlNetApplyAdvanced").apply_controlnet(
            positive, negative, controlnet, image, 0.9, 0.0, 1.0)[:2]
    handed = []
    get_control = comfy.controlnet.ControlNet.get_control

    def recording(self, x_noisy, *args, **kwargs):
        handed.append(self.cond_hint_original.detach().float().cpu().clone())
        return get_control(self, x_noisy, *args, **kwargs)

    monkeypatch.setattr(comfy.controlnet.ControlNet, "get_control", recording)
    windows = sphere_windows()
    out = sample(model, positive, negative, windows, mode="twindiffusion")
    assert torch.isfinite(out).all()

    hint = image.movedim(-1, 1).contiguous()  # as Apply ControlNet hands it to the control: (B, C, H, W)
    expected = {}
    for step, views in enumerate(step_views(model, windows)):
        read = views.read_at(SCALE)
        assert read.shape == (len(views), views.window_h * SCALE, views.window_w * SCALE)
        for i in range(len(views)):
            part = hint.flatten(-2)[:, :, read[i]][0]  # (C, h, w)
            expected[part.numpy().tobytes()] = (step, i)
    seen = set()
    assert handed, "the ControlNet was never called"
    for batch in handed:
        assert batch.shape[1:] == (3, 128, 128)
        for picture in batch:
            found = expected.get(picture.contiguous().numpy().tobytes())
            assert found is not None, "a view got a hint that is no view's nearest-neighbour projection"
            seen.add(found)
    assert seen == set(expected.values()), f"views without their hint: {sorted(set(expected.values()) - seen)}"


def region(kind: str, conditioning):
    """A prompt on a 60x60 degree patch at the horizon, in front (latent rows
    16..32 of 48, columns 40..56 of 96): as a mask at the latent's size, or
    as an area in pixels."""
    with torch.inference_mode():
        if kind == "mask":
            mask = torch.zeros(1, H, W)
            mask[:, 16:32, 40:56] = 1.0
            return harness.node("ConditioningSetMask").append(conditioning, mask, "default", 1.0)[0]
        return harness.node("ConditioningSetArea").append(conditioning, 16 * SCALE, 16 * SCALE, 40 * SCALE,
                                                          16 * SCALE, 1.0)[0]


@pytest.mark.parametrize("kind", ["mask", "area"])
def test_a_region_prompt_reaches_only_the_views_it_falls_in(kind, sd15):
    import nodes
    model, clip, positive, negative = sd15
    with torch.inference_mode():
        tower = nodes.CLIPTextEncode().encode(clip, "a lighthouse")[0]
    combined = positive + region(kind, tower)
    windows = sphere_windows()
    counter = harness.WindowCounter()
    out = sample(model, combined, negative, windows, counter)
    assert torch.isfinite(out).all() and out.shape == (1, 4, H, W)
    where = torch.zeros(1, 1, H, W)
    where[..., 16:32, 40:56] = 1.0
    items = 0
    for views in step_views(model, windows):
        reached = (views.cut(where)[:, 0, 0] != 0).flatten(1).any(1)
        hits = int(reached.sum())
        # the zenith and nadir views (first and last) do not see the horizon patch; the views facing it do
        assert 0 < hits < len(views) and not reached[0] and not reached[-1]
        # the whole-360 prompt and the negative on every view, the region on its own; for an area ComfyUI's
        # sampler adds the negative once more with the same area (create_cond_with_same_area_if_none)
        items += 2 * len(views) + hits * (2 if kind == "area" else 1)
    assert counter.items == items


def test_a_region_the_views_never_see_costs_nothing(sd15):
    """A mask of zeros: no view gets the entry, so the run costs what the
    prompt without it costs."""
    model, _, positive, negative = sd15
    with torch.inference_mode():
        empty = harness.node("ConditioningSetMask").append(positive, torch.zeros(1, H, W), "default", 1.0)[0]
    windows = sphere_windows()
    counter = harness.WindowCounter()
    sample(model, positive + empty, negative, windows, counter)
    assert counter.items == 2 * sum(len(views) for views in step_views(model, windows))
