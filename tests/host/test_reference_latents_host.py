"""Edit models' reference latents through panorama windows: Flux Kontext,
Flux.2 and Qwen-Image-Edit take the image to edit as ``reference_latents``
on the conditioning (ComfyUI's ReferenceLatent node), which their model
reads whole, beside the noisy latent.  A window is a part of the noisy
latent only: the reference must reach every window batch unchanged, with
crops and with sphere views (photo to 360 with an edit model)."""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_dits

pytestmark = pytest.mark.host

KINDS = [kind for kind in ("flux_dev", "flux2_klein", "qwen_image") if kind in tiny_dits.DIT_KINDS]


class ReferenceSpy:
    """APPLY_MODEL wrapper: the ref_latents every model call gets (as the
    model prepared them from the conditioning)."""

    def __init__(self):
        self.seen = []

    def __call__(self, executor, x, *args, **kwargs):
        self.seen.append((tuple(x.shape), [r.clone() for r in kwargs.get("ref_latents") or []]))
        return executor(x, *args, **kwargs)


@pytest.mark.parametrize("windows", ["crops", "sphere"])
@pytest.mark.parametrize("kind", KINDS)
def test_reference_latents_reach_every_window_unchanged(kind, windows, comfy, dit_files):
    import comfy.patcher_extension
    import nodes
    reason = tiny_dits.unavailable_reason(kind)
    if reason:
        pytest.skip(reason)
    geometry = tiny_dits.expected_geometry(kind)
    scale = geometry["pixels_per_latent"]
    token_px = scale * geometry["patch"]
    frames = (1,) if geometry.get("latent_dimensions", 2) == 3 else ()  # Qwen-Image's latent is one video frame
    window = 8 * token_px
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files[kind], "default")[0]
    channels = model.get_model_object("latent_format").latent_channels
    reference = torch.randn(1, channels, *frames, 2 * window // scale, 2 * window // scale,
                            generator=torch.Generator().manual_seed(4))
    positive = harness.node("ReferenceLatent").execute(tiny_dits.conditioning(kind, "a lake at noon"),
                                                       {"samples": reference})[0]
    negative = tiny_dits.conditioning(kind, "")
    if windows == "sphere":
        plan = harness.node("PanoramaSphereWindows").execute(window, 0.0, 0.25, 0, "golden", 2)[0]
        rows = -(-7 * window // 2 // token_px) * token_px  # 3.5 views high (room above the least), whole tokens
        latent = torch.zeros(1, channels, *frames, rows // scale, 2 * rows // scale)
    else:
        plan = harness.node("CrossSamplingScheduler").execute(window, window // 2, 1, 0, False)[0]
        latent = torch.zeros(1, channels, *frames, window // scale, 3 * window // scale)
    spy = ReferenceSpy()
    spied = model.clone()
    spied.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_spy", spy)
    with torch.inference_mode():
        out = harness.node("TwinCropFusionSampler").execute(
            spied, 1, 2, 2.0, "euler", "simple", positive, negative, {"samples": latent}, 1.0,
            "multidiffusion", 1.0, 0.5, 4, plan, None)[0]["samples"]
    assert torch.isfinite(out).all() and out.shape == latent.shape
    window_latent = window // scale
    with_reference = [refs for shape, refs in spy.seen if refs]
    assert with_reference, "no model call got the reference"
    assert all(shape[-1] == window_latent for shape, _ in spy.seen)
    expected = model.get_model_object("latent_format").process_in(reference)
    for refs in with_reference:
        assert len(refs) == 1
        # ComfyUI repeats the reference to the call's batch (windows x cond/uncond): each one whole
        for one in refs[0].float():
            torch.testing.assert_close(one, expected[0].float(), rtol=0, atol=0)
