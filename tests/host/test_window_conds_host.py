"""Conditioning per window, in a real ComfyUI: regional prompts (Set Area,
Set Mask), ControlNet chains, GLIGEN boxes, the staged-sampling schedule,
model loading sized for a window batch, and bad input on the model-patch
path.

The strongest check is an equivalence: on a panorama of two windows that do
not overlap, each window of our result equals ComfyUI's plain KSampler run
on that window alone with the conditioning a user would give it there (the
area, mask, hint and boxes moved into the window by hand), bit for bit.
"""

from __future__ import annotations
import inspect

import collections
import sys

import pytest
import torch

import harness
import tiny_models

pytestmark = pytest.mark.host

W = 32  # panorama width in latent pixels: two 16-pixel windows
H = 16


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sd15"])
        positive = nodes.CLIPTextEncode().encode(clip, "a wide mountain panorama")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "blurry")[0]
    return model, clip, positive, negative


@pytest.fixture(scope="module")
def controlnet(comfy, tmp_path_factory):
    """A random-weight ControlNet of ComfyUI's class, loaded from a file by
    ComfyUI's own loader (as ControlNetLoader does)."""
    import comfy.controlnet
    directory = tmp_path_factory.mktemp("controlnet")
    name = tiny_models.ensure_controlnet(directory, "sd15")
    return comfy.controlnet.load_controlnet(str(directory / name))


@pytest.fixture(scope="module")
def gligen(sd15):
    return tiny_models.build_gligen(sd15[0].model.diffusion_model)


def node(name):
    import nodes
    return harness.node(name)


def window_plan(window=128, stride=128, c=1, wrap=False):
    return node("CrossSamplingScheduler").plan(window, stride, c, 0, wrap)[0]


def patched(model, plan, mode="multidiffusion", view_batch_size=1, schedule=None, multiscale=None):
    return node("TwinDiffusionModel").patch(model, mode, 1.0, 0.5, view_batch_size, plan, multiscale, schedule)[0]


def sample(model, positive, negative, latent, steps=3, cfg=4.0, sampler="euler", scheduler="normal"):
    """KSamplerAdvanced with add_noise off: the latent is the noisy start, so
    a window of the panorama and the same window alone start alike."""
    import nodes
    with torch.inference_mode():
        return nodes.common_ksampler(model, 0, steps, cfg, sampler, scheduler, positive, negative,
                                     {"samples": latent}, disable_noise=True, start_step=0, last_step=steps,
                                     force_full_denoise=True)[0]["samples"]


def start_latent(width=W, height=H, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, height, width, generator=generator) * 40.0


def set_area(cond, width, height, x, y, strength=1.0):
    return node("ConditioningSetArea").append(cond, width, height, x, y, strength)[0]


def combine(*conds):
    out = []
    for cond in conds:
        out = out + cond
    return out


def encode(clip, text):
    return node("CLIPTextEncode").encode(clip, text)[0]


def apply_control(positive, negative, control, hint, strength=0.9, start=0.0, end=1.0):
    return node("ControlNetApplyAdvanced").apply_controlnet(positive, negative, control, hint, strength, start, end)


CASES = ["global", "area", "mask", "controlnet", "controlnet_chain", "gligen", "area_past_edge",
         "controlnet_area_past_edge"]


def conditioning(case, window, sd15, controlnet, gligen):
    """(positive, negative) for the whole panorama (window None) or as a user
    would write them for window 0 / 1 alone (coordinates moved by hand)."""
    _, clip, positive, negative = sd15
    shift = 0 if window is None else window * 128  # pixels
    generator = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        if case == "area":
            # a castle at x 96..192 px, y 32..96 px: 4 columns in window 0, 8 in window 1
            castle = encode(clip, "a castle")
            if window is None:
                return combine(positive, set_area(castle, 96, 64, 96, 32)), negative
            return combine(positive, set_area(castle, 32, 64, 96, 32) if window == 0
                           else set_area(castle, 64, 64, 0, 32)), negative
        if case in ("area_past_edge", "controlnet_area_past_edge"):
            # a castle at x 192..320 px of a 256 px panorama: ComfyUI clips the area at the right edge,
            # and scales a ControlNet hint on it to what is left (64 px, all in window 1)
            castle = encode(clip, "a castle")
            area = set_area(castle, 128, 64, 192, 32) if window is None else set_area(castle, 128, 64, 64, 32)
            if case == "controlnet_area_past_edge":
                hint = torch.rand(1, 64, 128, 3, generator=generator)
                area = node("ControlNetApply").apply_controlnet(area, controlnet, hint, 0.9)[0]
            return combine(positive, area if window != 0 else []), negative
        if case == "mask":
            mask = torch.zeros(H, W)
            mask[2:12, 10:28] = torch.rand(10, 18, generator=generator)
            if window is not None:
                mask = mask[:, window * 16:(window + 1) * 16]
            lake = node("ConditioningSetMask").append(encode(clip, "a lake"), mask, "default", 0.8)[0]
            return combine(positive, lake), negative
        if case in ("controlnet", "controlnet_chain"):
            hint = torch.rand(1, H * 8, W * 8, 3, generator=generator)
            second = torch.rand(1, H * 8, W * 8, 3, generator=generator)
            if window is not None:
                hint, second = (h[:, :, shift:shift + 128] for h in (hint, second))
            positive, negative = apply_control(positive, negative, controlnet, hint)
            if case == "controlnet_chain":  # a second control, only for the first half of the steps
                positive, negative = apply_control(positive, negative, controlnet, second, 0.5, 0.0, 0.5)
            return positive, negative
        if case == "gligen":
            # a box at x 64..160 px, y 32..96 px: 8 columns in window 0, 4 in window 1
            apply = node("GLIGENTextBoxApply").append
            if window is None:
                return apply(positive, clip, gligen, "a red barn", 96, 64, 64, 32)[0], negative
            return (apply(positive, clip, gligen, "a red barn", 64, 64, 64, 32)[0] if window == 0
                    else apply(positive, clip, gligen, "a red barn", 32, 64, 0, 32)[0]), negative
        return positive, negative


@pytest.mark.parametrize("case", CASES)
def test_each_window_is_the_plain_ksampler_on_that_window(case, comfy, sd15, controlnet, gligen):
    model = sd15[0]
    start = start_latent()
    ours = sample(patched(model, window_plan()), *conditioning(case, None, sd15, controlnet, gligen), start)
    for window in (0, 1):
        columns = slice(window * 16, (window + 1) * 16)
        plain = sample(model, *conditioning(case, window, sd15, controlnet, gligen), start[..., columns].clone())
        torch.testing.assert_close(ours[..., columns], plain, rtol=0, atol=0,
                                   msg=lambda m: f"{case}, window {window}: {m}")
    if case != "global":  # the conditioning did something
        alone = sample(patched(model, window_plan()), sd15[2], sd15[3], start)
        assert (ours - alone).abs().max() > 1e-3


@pytest.mark.parametrize("case", CASES[1:])
def test_windows_batched_together_agree_with_one_at_a_time(case, comfy, sd15, controlnet, gligen):
    """Four overlapping windows per model call (GLIGEN used to fail here)
    give what one window per call gives, up to float reordering."""
    model = sd15[0]
    start = start_latent()
    conds = conditioning(case, None, sd15, controlnet, gligen)
    one = sample(patched(model, window_plan(stride=64), "twindiffusion", 1), *conds, start)
    four = sample(patched(model, window_plan(stride=64), "twindiffusion", 4), *conds, start)
    torch.testing.assert_close(four, one, rtol=0, atol=1e-5 * float(one.abs().max()))


def test_one_window_covering_the_latent_is_the_plain_ksampler_with_control_and_regions(comfy, sd15, controlnet):
    import nodes
    model, clip, positive, negative = sd15
    with torch.inference_mode():
        hint = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(2))
        positive, negative = apply_control(positive, negative, controlnet, hint)
        positive = combine(positive, set_area(encode(clip, "a castle"), 64, 64, 32, 32))
        tower = set_area(encode(clip, "a tower"), 96, 64, 96, 32)  # runs 64 px past the right edge
        tower = node("ControlNetApply").apply_controlnet(tower, controlnet, hint[:, :64, :96], 0.9)[0]
        positive = combine(positive, tower)
        latent = {"samples": torch.zeros(1, 4, 16, 16)}
        ours = node("TwinCropFusionSampler").sample(model, 3, 3, 4.0, "euler", "normal", positive, negative, latent,
                                                    1.0, "twindiffusion", 1.0, 0.5, 4, window_plan(), None)[0]
        plain = nodes.common_ksampler(model, 3, 3, 4.0, "euler", "normal", positive, negative, latent)[0]
    assert torch.equal(ours["samples"], plain["samples"])


def test_zero_strength_controlnet_is_no_controlnet(comfy, sd15, controlnet):
    """Through the per-window path (overlapping windows, Cross Sampling): a
    control at strength 0 changes nothing.  (ComfyUI's apply node returns the
    conditioning untouched at 0, so the control is attached by hand.)"""
    model, _, positive, negative = sd15
    hint = torch.rand(1, 3, H * 8, 48 * 8, generator=torch.Generator().manual_seed(3))
    control = controlnet.copy().set_cond_hint(hint, 0.0, (0.0, 1.0))
    with_control = [[c, {**d, "control": control, "control_apply_to_uncond": True}] for c, d in positive]
    start = start_latent(48)
    plan = window_plan(stride=64, c=2)
    assert torch.equal(sample(patched(model, plan, "twindiffusion", 4), with_control, negative, start),
                       sample(patched(model, plan, "twindiffusion", 4), positive, negative, start))


class EvaluationCounter:
    """A unet wrapper under the panorama (another node's, as far as the pack
    knows): counts, per conditioning entry, the windows it is evaluated on."""

    def __init__(self):
        self.windows = collections.Counter()
        self.entries = {}

    def __deepcopy__(self, memo):  # ModelPatcher.clone() deep-copies model options
        return self

    def __call__(self, apply_model, args):
        options = args["c"]["transformer_options"]
        per_chunk = args["input"].shape[0] // len(options["uuids"])
        for uuid, branch in zip(options["uuids"], options["cond_or_uncond"]):
            self.windows[uuid, branch] += per_chunk
        return apply_model(args["input"], args["timestep"], **args["c"])

    def remember_entries(self, executor, *args, **kwargs):
        """OUTER_SAMPLE: which uuid is which entry (uuids are made per run)."""
        for name, entries in executor.class_obj.original_conds.items():
            for i, entry in enumerate(entries):
                self.entries[entry["uuid"]] = (name, i)
        return executor(*args, **kwargs)

    def per_entry(self):
        """{(list, index, branch evaluated): windows}"""
        return {(*self.entries[uuid], ("cond", "uncond")[branch]): count
                for (uuid, branch), count in self.windows.items()}


def test_a_regional_prompt_costs_only_the_windows_it_reaches(comfy, sd15):
    """48 latent columns, windows of 16 at stride 8 (five windows): an area
    over columns 0-11 reaches two windows, a mask over columns 40-47 one.
    (ComfyUI gives an area prompt a twin with the same area on the uncond
    side; it costs the same two windows.)"""
    import comfy.patcher_extension
    model, clip, positive, negative = sd15
    counter = EvaluationCounter()
    counted = model.clone()
    counted.set_model_unet_function_wrapper(counter)
    counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "test", counter.remember_entries)
    mask = torch.zeros(H, 48)
    mask[:, 40:] = 1.0
    with torch.inference_mode():
        area = set_area(encode(clip, "snowy peaks"), 96, 128, 0, 0)
        masked = node("ConditioningSetMask").append(encode(clip, "a forest"), mask, "default", 1.0)[0]
    steps = 2
    sample(patched(counted, window_plan(stride=64), "twindiffusion", 4), combine(positive, area, masked),
           negative, start_latent(48), steps=steps)
    assert counter.per_entry() == {
        ("positive", 0, "cond"): 5 * steps, ("negative", 0, "uncond"): 5 * steps,  # global: every window
        ("positive", 1, "cond"): 2 * steps, ("positive", 1, "uncond"): 2 * steps,  # the area and its twin
        ("positive", 2, "cond"): 1 * steps,  # the mask
    }


def test_staged_ksampler_advanced_equals_one_run(comfy, sd15):
    """Two KSamplerAdvanced stages (start/end step, leftover noise) with the
    whole schedule given to the model patch equal one run: tau and Cross
    Sampling's groups count the steps of the whole run (the split at an odd
    step would flip every group otherwise).  Repeated, since a stale
    schedule used to leak from one prompt into the next."""
    import comfy.samplers
    import nodes
    model, _, positive, negative = sd15
    steps, split = 6, 3
    plan = window_plan(stride=64, c=2)
    schedule = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "karras", steps)
    latent = {"samples": torch.zeros(1, 4, H, 48)}

    def advanced(m, latent, add_noise, start, end, leftover):
        with torch.inference_mode():
            return nodes.KSamplerAdvanced().sample(m, add_noise, 7, steps, 4.0, "euler", "karras", positive, negative,
                                                   latent, start, end, leftover)[0]

    staged_model = patched(model, plan, "twindiffusion", 4, schedule)
    one = advanced(staged_model, latent, "enable", 0, steps, "disable")["samples"]
    for _ in range(3):
        first = advanced(staged_model, latent, "enable", 0, split, "enable")
        two = advanced(staged_model, first, "disable", split, steps, "disable")["samples"]
        torch.testing.assert_close(two, one, rtol=1e-5, atol=1e-5)
    unaware = patched(model, plan, "twindiffusion", 4)
    first = advanced(unaware, latent, "enable", 0, split, "enable")
    assert (advanced(unaware, first, "disable", split, steps, "disable")["samples"] - one).abs().max() > 1e-3


def test_a_schedule_that_does_not_hold_the_run_is_refused(comfy, sd15):
    import comfy.samplers
    model, _, positive, negative = sd15
    schedule = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 10)
    with pytest.raises(ValueError, match="not part of the schedule"):
        sample(patched(model, window_plan(stride=64), schedule=schedule), positive, negative, start_latent(),
               scheduler="karras")


def test_model_loading_is_sized_for_a_window_batch(comfy, tiny_checkpoints):
    """ComfyUI is told the latent of one window batch, not the panorama's:
    a PREPARE_SAMPLING wrapper after the pack's sees it."""
    import comfy.patcher_extension
    import comfy.sampler_helpers
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sdxl"])
        positive = nodes.CLIPTextEncode().encode(clip, "a panorama")[0]
    seen, passed = [], []

    def record(executor, model, noise_shape, conds, *args, **kwargs):
        seen.append(list(noise_shape))
        passed.append(sorted(kwargs))
        return executor(model, noise_shape, conds, *args, **kwargs)

    ours = patched(model, window_plan(window=256, stride=64), "twindiffusion", 4)
    ours.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "test", record)
    with torch.inference_mode():
        nodes.common_ksampler(ours, 0, 1, 4.0, "euler", "normal", positive, positive,
                              {"samples": torch.zeros(1, 4, 32, 96)})
    assert seen == [[4, 4, 32, 32]]  # a batch of 4 windows of 256 px, not the 256x768 px panorama
    # the pack's wrapper passes on what it does not read (v0.14 added force_full_load, force_offload)
    signature = inspect.signature(comfy.sampler_helpers.prepare_sampling).parameters
    assert set(passed[0]) == {"model_options"} | ({"force_full_load", "force_offload"} & set(signature))
    conds = {"positive": comfy.sampler_helpers.convert_cond(positive)}
    whole = comfy.sampler_helpers.estimate_memory(model, [1, 4, 128, 1024], conds)[0]
    batch = comfy.sampler_helpers.estimate_memory(model, [4, 4, 128, 128], conds)[0]
    print(f"ComfyUI's memory estimate, SDXL 1024x8192: {whole / 2**20:.0f} MiB for the panorama, "
          f"{batch / 2**20:.0f} MiB for a batch of 4 windows")
    assert batch < whole


@pytest.mark.parametrize("case,match", [
    ("nan", "NaN"),
    ("channels", "channels but the model expects 4"),
    ("video", "image latents"),
])
def test_bad_latents_on_the_model_patch_path_name_the_input(case, match, comfy, sd15):
    model, _, positive, negative = sd15
    latent = {"nan": torch.full((1, 4, H, W), float("nan")), "channels": torch.randn(1, 16, H, W),
              "video": torch.randn(1, 4, 3, H, W)}[case]
    import nodes
    with pytest.raises(ValueError, match=match), torch.inference_mode():
        nodes.common_ksampler(patched(model, window_plan(stride=64)), 0, 2, 4.0, "euler", "normal", positive,
                              negative, {"samples": latent})


def test_lambda_zero_gives_a_finite_panorama(comfy, sd15):
    model, _, positive, negative = sd15
    out = node("TwinCropFusionSampler").sample(model, 0, 3, 4.0, "euler", "normal", positive, negative,
                                                {"samples": torch.zeros(1, 4, H, 48)}, 1.0, "twindiffusion", 0.0,
                                                1.0, 4, window_plan(stride=64, c=2), None)[0]["samples"]
    assert torch.isfinite(out).all()


def test_multiscale_runs_with_controlnet_and_regions(comfy, sd15, controlnet):
    """The gradient pass runs through the ControlNet too (its weights are
    inference tensors as well) and through area conditioning."""
    model, clip, positive, negative = sd15
    with torch.inference_mode():
        hint = torch.rand(1, 256, 384, 3, generator=torch.Generator().manual_seed(4))
        positive, negative = apply_control(positive, negative, controlnet, hint)
        positive = combine(positive, set_area(encode(clip, "a castle"), 128, 128, 128, 64))
    ms = node("MultiScaleGuidance").configure(2, 10.0, "cosine", "bilinear")[0]
    out = sample(patched(model, window_plan(stride=64), "twindiffusion", 4, multiscale=ms), positive, negative,
                 start_latent(48, 32), steps=2)
    assert torch.isfinite(out).all()
    for m in controlnet.control_model.modules():
        if hasattr(m, "weight_function"):
            assert all(getattr(f, "__name__", "") != "keep_grad_path" for f in m.weight_function)


def test_sdxl_windows_get_their_own_crop_conditioning(comfy, tiny_checkpoints):
    module = sys.modules[f"{comfy.pack_module_name}.nodes.window_conds"]
    fusion = sys.modules[f"{comfy.pack_module_name}.fusion"]
    from comfy import conds as comfy_conds
    with torch.inference_mode():
        model = harness.load_checkpoint(tiny_checkpoints["sdxl"])[0]
        y = torch.randn(1, 2816)
        entry = {"model_conds": {"y": comfy_conds.CONDRegular(y)}, "uuid": "u"}
        views = fusion.plan_views(fusion.WindowPlan(16, 8), 16, 48)
        windows = module.WindowConditioning(model.model)
        out = windows.resize([entry], module.WindowBatch(views, (0, 1, 2), (16, 48), 2))[0]["model_conds"]["y"].cond
    assert out.shape == (6, 2816)
    assert torch.equal(out[:, :module.SDXL_ADM_CROP], y.expand(6, -1)[:, :module.SDXL_ADM_CROP])
    crops = out[:, module.SDXL_ADM_CROP:]
    assert torch.equal(crops[0], crops[1])  # the two latents of one window agree
    assert not torch.equal(crops[0], crops[2])  # windows differ


def test_model_patch_under_sampler_custom_advanced_is_the_ksampler_run(comfy, sd15):
    """SamplerCustomAdvanced (guider, sampler, sigmas, noise as nodes) on the
    patched model gives what KSampler gives on it, regional prompt included."""
    import nodes
    model, clip, positive, negative = sd15
    with torch.inference_mode():
        positive = combine(positive, set_area(encode(clip, "a castle"), 96, 128, 160, 0))
    ours = patched(model, window_plan(stride=64, c=2), "twindiffusion", 4)
    latent = {"samples": torch.zeros(1, 4, H, 48)}
    mapping = nodes.NODE_CLASS_MAPPINGS
    with torch.inference_mode():
        expected = nodes.common_ksampler(ours, 9, 3, 4.0, "euler", "normal", positive, negative, latent)[0]["samples"]
        guider = mapping["CFGGuider"]().get_guider(ours, positive, negative, 4.0)[0]
        noise = mapping["RandomNoise"]().get_noise(9)[0]
        sampler = mapping["KSamplerSelect"]().get_sampler("euler")[0]
        sigmas = mapping["BasicScheduler"]().get_sigmas(ours, "normal", 3, 1.0)[0]
        out = mapping["SamplerCustomAdvanced"]().sample(noise, guider, sampler, sigmas, latent)[0]["samples"]
    assert torch.equal(out, expected)


def test_a_window_across_the_360_seam_sees_the_hint_from_both_ends(comfy, sd15, controlnet):
    """24 latent columns in 16-wide windows with wrap-around: the second
    window covers columns 16-23 and 0-7.  After one step, where only that
    window reaches (16-23), the panorama is ComfyUI's KSampler on the image
    the window sees: both ends of the latent and of the hint, joined."""
    model, _, positive, negative = sd15
    hint = torch.rand(1, H * 8, 24 * 8, 3, generator=torch.Generator().manual_seed(5))
    start = start_latent(24)
    with torch.inference_mode():
        conds = apply_control(positive, negative, controlnet, hint)
        seam_conds = apply_control(positive, negative, controlnet, torch.cat([hint[:, :, 128:], hint[:, :, :64]], 2))
    ours = sample(patched(model, window_plan(wrap=True)), *conds, start, steps=1)
    seam = sample(model, *seam_conds, torch.cat([start[..., 16:], start[..., :8]], -1), steps=1)
    torch.testing.assert_close(ours[..., 16:], seam[..., :8], rtol=0, atol=0)


def test_an_inpainting_model_sees_its_mask_and_image_per_window(comfy, checkpoint_dir):
    """An inpainting UNet (9 input channels: latent + mask + masked image,
    ComfyUI's c_concat) on a non-overlapping panorama: each window equals the
    plain KSampler on that window with the mask and image cut to it."""
    import node_helpers
    import nodes
    name = tiny_models.ensure_checkpoints(checkpoint_dir, ["sd15_inpaint"])["sd15_inpaint"]
    harness.add_checkpoint_folder(checkpoint_dir)
    generator = torch.Generator().manual_seed(6)
    image = torch.randn(1, 4, H, W, generator=generator)
    mask = (torch.rand(1, 1, H, W, generator=generator) > 0.5).float()
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(name)
        assert model.model.concat_keys == ("mask", "masked_image")
        positive = nodes.CLIPTextEncode().encode(clip, "a garden")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "")[0]

    def inpainting(cond, columns=slice(None)):
        return node_helpers.conditioning_set_values(cond, {"concat_latent_image": image[..., columns].clone(),
                                                           "concat_mask": mask[..., columns].clone()})

    start = start_latent()
    ours = sample(patched(model, window_plan()), inpainting(positive), inpainting(negative), start)
    for window in (0, 1):
        columns = slice(window * 16, (window + 1) * 16)
        plain = sample(model, inpainting(positive, columns), inpainting(negative, columns), start[..., columns].clone())
        torch.testing.assert_close(ours[..., columns], plain, rtol=0, atol=0)


@pytest.mark.parametrize("with_control", [False, True], ids=["area", "area_controlnet"])
def test_an_area_across_the_360_seam_wraps_with_its_hint(with_control, comfy, sd15, controlnet):
    """24 latent columns in 16-wide windows with wrap-around; an area at
    columns 20-27 runs past the right edge, so on a 360 it goes on at
    columns 0-3.  Where only the seam window reaches (16-23), one step of
    the panorama is ComfyUI's KSampler on the image that window sees, with
    the whole area (and its whole hint) placed in it by hand."""
    model, clip, positive, negative = sd15
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(7))
    start = start_latent(24)

    def castle(x):
        with torch.inference_mode():
            area = set_area(encode(clip, "a castle"), 64, 64, x, 32)
            if with_control:
                area = node("ControlNetApply").apply_controlnet(area, controlnet, hint, 0.9)[0]
            return combine(positive, area)

    ours = sample(patched(model, window_plan(wrap=True)), castle(160), negative, start, steps=1)
    seam = sample(model, castle(32), negative, torch.cat([start[..., 16:], start[..., :8]], -1), steps=1)
    torch.testing.assert_close(ours[..., 16:], seam[..., :8], rtol=0, atol=0)
    without = sample(patched(model, window_plan(wrap=True)), positive, negative, start, steps=1)
    assert (ours[..., :4] - without[..., :4]).abs().max() > 1e-3  # the wrapped part reached columns 0-3
