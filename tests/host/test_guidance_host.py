"""Other nodes' guidance with panorama windows, measured in a real ComfyUI.

Each guidance node patches the model; on a panorama of two windows that do
not overlap, our result is compared per window with ComfyUI's KSampler on
that window alone through the same node.  Zero difference: the node works
per window as it works on an image.  A difference: the node reads
statistics of the whole latent in its CFG function (a norm, a std), which
the panorama gives it over the whole panorama instead of one window:
it works, on the panorama's statistics.  Self-Attention Guidance records
its attention inside one model call, which sees one window batch: refused.
The README's table of guidance nodes is this test's output.

Also here: a stage of a staged run without the model patch's schedule is
said in the console.
"""

from __future__ import annotations

import logging

import pytest
import torch

import harness

pytestmark = pytest.mark.host

W, H = 32, 16  # latent pixels: two 16-pixel windows side by side

# node -> (inputs besides the model, expected: "per window" | "whole panorama" | "refused")
GUIDANCE = {
    "PerturbedAttentionGuidance": ({"scale": 3.0}, "per window"),
    "FreeU_V2": ({"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}, "per window"),
    "CFGZeroStar": ({}, "whole panorama"),
    "RescaleCFG": ({"multiplier": 0.7}, "whole panorama"),
    "APG": ({"eta": 1.0, "norm_threshold": 5.0, "momentum": -0.5}, "whole panorama"),
    "TCFG": ({}, "whole panorama"),
    "Mahiro": ({}, "whole panorama"),
    "SelfAttentionGuidance": ({"scale": 0.5, "blur_sigma": 2.0}, "refused"),
}


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sd15"])
        positive = nodes.CLIPTextEncode().encode(clip, "a wide mountain panorama")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "blurry")[0]
    return model, positive, negative


def patched(model, stride=128, schedule=None, mode="multidiffusion", cross_count=1):
    windows = harness.call_node("CrossSamplingScheduler", window_size=128, view_stride=stride,
                                cross_count=cross_count, cross_stride=0, wrap_around=False)[0]
    return harness.call_node("TwinDiffusionModel", model=model, mode=mode, lam=1.0, tau=0.5,
                             view_batch_size=1, windows=windows, schedule=schedule)[0]


def sample(model, positive, negative, latent, steps=3):
    import nodes
    with torch.inference_mode():
        return nodes.common_ksampler(model, 0, steps, 5.0, "euler", "normal", positive, negative,
                                     {"samples": latent}, disable_noise=True, start_step=0, last_step=steps,
                                     force_full_denoise=True)[0]["samples"]


RESULTS: dict = {}


@pytest.mark.parametrize("name", list(GUIDANCE))
def test_guidance_node_with_panorama_windows(name, comfy, sd15):
    import nodes
    if name not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip(f"{name} is not in this ComfyUI")
    model, positive, negative = sd15
    inputs, expected = GUIDANCE[name]
    with torch.inference_mode():
        guided = harness.call_node(name, model=model, **harness.node_defaults(name, inputs))[0]
    start = torch.randn(1, 4, H, W, generator=torch.Generator().manual_seed(0)) * 40.0
    if expected == "refused":
        with pytest.raises(ValueError, match="cannot be used with panorama windows.*Perturbed-Attention"):
            sample(patched(guided), positive, negative, start)
        RESULTS[name] = "refused"
        return
    ours = sample(patched(guided), positive, negative, start)
    difference = 0.0
    for window in (0, 1):
        columns = slice(window * 16, (window + 1) * 16)
        alone = sample(guided, positive, negative, start[..., columns].clone())
        difference = max(difference, float((ours[..., columns] - alone).abs().max() / alone.abs().max()))
    unguided = sample(patched(model), positive, negative, start)
    assert (ours - unguided).abs().max() > 0, f"{name} changed nothing: the test would prove nothing"
    RESULTS[name] = f"max relative difference to the same node on each window alone: {difference:.2e}"
    print(f"{name}: {RESULTS[name]}")
    if expected == "per window":
        assert difference == 0, f"{name} should act per window exactly"
    else:
        assert difference > 0 and torch.isfinite(ours).all()


def test_a_stage_without_the_schedule_is_said_in_the_console(comfy, sd15, caplog):
    """KSamplerAdvanced in two stages on the model patch without 'schedule':
    both stages warn, naming the input; with it, and for the panorama
    sampler's img2img (denoise < 1, one run), nothing is said.  Prints how
    far the unaware stages are from one run."""
    import comfy.samplers
    import nodes
    model, positive, negative = sd15
    steps, split = 6, 3
    schedule = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "karras", steps)
    latent = {"samples": torch.zeros(1, 4, H, 48)}

    def advanced(m, latent, add_noise, start, end, leftover):
        with torch.inference_mode():
            return nodes.KSamplerAdvanced().sample(m, add_noise, 7, steps, 4.0, "euler", "karras", positive, negative,
                                                   latent, start, end, leftover)[0]

    def warnings():
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "stage" in r.getMessage()]

    unaware, aware = patched(model, 64, None, "twindiffusion", 2), patched(model, 64, schedule, "twindiffusion", 2)
    with caplog.at_level(logging.WARNING):
        one = advanced(aware, latent, "enable", 0, steps, "disable")["samples"]
        assert warnings() == []
        first = advanced(aware, latent, "enable", 0, split, "enable")
        advanced(aware, first, "disable", split, steps, "disable")
        assert warnings() == []
        first = advanced(unaware, latent, "enable", 0, split, "enable")
        two = advanced(unaware, first, "disable", split, steps, "disable")["samples"]
        said = warnings()
        assert len(said) == 2 and all("'schedule'" in m for m in said), said
        caplog.clear()
        harness.call_node("TwinCropFusionSampler", model=model, seed=1, steps=2, cfg=4.0, sampler_name="euler",
                          scheduler="normal", positive=positive, negative=negative, latent_image={"samples": one},
                          denoise=0.5, mode="twindiffusion", lam=1.0, tau=0.5, view_batch_size=4)
        assert warnings() == []
    print(f"two stages without 'schedule': {float((two - one).norm() / one.norm()):.1%} away from one run")
