"""Panoramas on ComfyUI's MultiGPU (v0.23+): the window batches of a step
spread over every device, the result the single-device one, ControlNet
hints per window on every device, Multi-Scale Guidance refused with a
message.

There is no GPU here, but ComfyUI's MultiGPU runs on several CPU "devices":
torch.device("cpu"), ("cpu", 0) and ("cpu", 1) are distinct devices to
ComfyUI (dict keys, load devices) and the same memory to torch.  With
``get_all_torch_devices`` reporting them while the node runs, ComfyUI's own
"MultiGPU CFG Split" node makes its per-device model copies (re-loading the
checkpoint), and sampling goes through ComfyUI's ``_calc_cond_batch_multigpu``
and its per-device thread pool, as on GPUs.  The tests skip on ComfyUI
without MultiGPU (v0.3.64).
"""

from __future__ import annotations

import collections
import importlib.util

import pytest
import torch

import harness

pytestmark = pytest.mark.host

DEVICES = (torch.device("cpu"), torch.device("cpu", 0), torch.device("cpu", 1))
H, W = 16, 48  # latent: windows of 16 at stride 8 -> five windows


def node(name):
    import nodes
    return harness.node(name)


@pytest.fixture(scope="module", autouse=True)
def multigpu(comfy):
    """ComfyUI's MultiGPU CFG Split node; the module skips without it."""
    import nodes
    if importlib.util.find_spec("comfy.multigpu") is None or "MultiGPU_WorkUnits" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip(f"the ComfyUI at {comfy.comfyui_path} has no MultiGPU (comfy/multigpu.py and the "
                    f"'MultiGPU CFG Split' node came with v0.23): nothing to spread the windows over")
    return nodes.NODE_CLASS_MAPPINGS["MultiGPU_WorkUnits"]


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints["sd15"])
        positive = nodes.CLIPTextEncode().encode(clip, "a wide mountain panorama")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "blurry")[0]
    return model, positive, negative


def split_over_devices(multigpu, model, devices=DEVICES):
    """What the MultiGPU CFG Split node makes of ``model`` on a machine with ``devices``."""
    import comfy.model_management
    # ComfyUI 0.33's node reads the patcher of every loaded model and fails
    # on an entry whose patcher is gone while its base model lives on
    # (LoadedModel.is_dead(); unloading skips those, cleanup_models keeps
    # them): earlier tests' clones of the shared fixture model leave such
    # entries, which a fresh server would not have
    mm = comfy.model_management
    mm.current_loaded_models[:] = [entry for entry in mm.current_loaded_models if entry.model is not None]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comfy.model_management, "get_all_torch_devices", lambda exclude_current=False: list(devices))
        with torch.inference_mode():
            out = multigpu.execute(model, len(devices))[0]
    assert [m.load_device for m in out.get_additional_models_with_key("multigpu")] == list(devices[1:])
    return out


@pytest.fixture(scope="module")
def split_model(multigpu, sd15):
    return split_over_devices(multigpu, sd15[0])


def counting(model):
    """A clone of ``model`` that records, per device ComfyUI runs a forward
    on, the number of latents of each forward."""
    calls = collections.defaultdict(list)

    def wrapper(apply_model, args):
        device = args["c"]["transformer_options"].get("multigpu_thread_device")
        calls[device].append(args["input"].shape[0])
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted = model.clone()
    counted.set_model_unet_function_wrapper(wrapper)
    return counted, calls


def window_plan(window=128, stride=64):
    return node("CrossSamplingScheduler").plan(window, stride, 1, 0, False)[0]


def start_latent(seed=0):
    return torch.randn(1, 4, H, W, generator=torch.Generator().manual_seed(seed)) * 40.0


def sample(model, positive, negative, latent, steps=2):
    """KSamplerAdvanced without added noise: the latent is the noisy start."""
    import nodes
    with torch.inference_mode():
        return nodes.common_ksampler(model, 0, steps, 4.0, "euler", "normal", positive, negative, {"samples": latent},
                                     disable_noise=True, start_step=0, last_step=steps,
                                     force_full_denoise=True)[0]["samples"]


def patched(model, view_batch_size=2, multiscale=None, mode="twindiffusion"):
    return node("TwinDiffusionModel").patch(model, mode, 1.0, 0.5, view_batch_size, window_plan(), multiscale,
                                            None)[0]


def panorama_sampler(model, positive, negative, latent, view_batch_size=2, multiscale=None):
    with torch.inference_mode():
        return node("TwinCropFusionSampler").sample(model, 3, 2, 4.0, "euler", "normal", positive, negative,
                                                    {"samples": latent}, 1.0, "twindiffusion", 1.0, 0.5,
                                                    view_batch_size, window_plan(), multiscale)[0]["samples"]


@pytest.mark.parametrize("order", ["sampler_node", "patch_then_split", "split_then_patch"])
def test_a_panorama_on_multigpu_is_the_single_device_panorama(order, multigpu, sd15, split_model):
    """Five windows in batches of two: three window batches a step, one per
    device; the panorama one device makes, whichever way the graph puts the
    MultiGPU node and the panorama patch together.  Bit for bit when the
    tier runs alone; to float rounding after other tests, where ComfyUI may
    load a fresh device copy only partly (weights cast per layer)."""
    import comfy.model_management
    comfy.model_management.unload_all_models()
    model, positive, negative = sd15
    latent = start_latent()
    if order == "sampler_node":
        ours = panorama_sampler(split_model, positive, negative, latent.clone())
        single = panorama_sampler(model, positive, negative, latent.clone())
    else:
        single = sample(patched(model), positive, negative, latent.clone())
        spread = split_over_devices(multigpu, patched(model)) if order == "patch_then_split" else patched(split_model)
        ours = sample(spread, positive, negative, latent.clone())
    assert torch.isfinite(ours).all() and ours.std() > 0
    torch.testing.assert_close(ours, single, rtol=1e-5, atol=1e-5 * float(single.abs().max()))


@pytest.mark.parametrize("view_batch_size, batches", [(1, 5), (2, 3), (8, 1)])
def test_b_every_device_gets_window_batches(view_batch_size, batches, sd15, split_model):
    """Per step, every device runs window batches (cond and uncond of a
    batch together where a lane has one device).  With fewer window batches
    than devices (one batch of five windows) the batch is split so that
    every device still gets windows; the result then agrees with one device
    up to the float rounding of other batch sizes."""
    model, positive, negative = sd15
    steps, windows, branches = 2, 5, 2
    counted, calls = counting(patched(split_model, view_batch_size))
    ours = sample(counted, positive, negative, start_latent(), steps)
    assert set(calls) == set(DEVICES), f"forwards per device: {dict(calls)}"
    assert all(len(calls[device]) >= steps for device in DEVICES), dict(calls)
    assert sum(map(sum, calls.values())) == steps * windows * branches  # every window once per step and branch
    single = sample(patched(model, view_batch_size), positive, negative, start_latent(), steps)
    if batches >= len(DEVICES):  # each device ran whole window batches, cond and uncond in one forward
        assert sum(len(c) for c in calls.values()) == steps * batches
        assert torch.equal(ours, single)
    else:
        torch.testing.assert_close(ours, single, rtol=1e-4, atol=1e-3)


def test_c_multiscale_on_multigpu_says_what_to_disconnect(sd15, split_model):
    adapter = harness.pack_module("nodes.adapter")
    multigpu = harness.pack_module("nodes.multigpu")
    _, positive, negative = sd15
    ms = node("MultiScaleGuidance").configure(2, 10.0, "cosine", "bilinear")[0]
    latent = torch.zeros(1, 4, 32, 48)
    for run in (lambda: panorama_sampler(split_model, positive, negative, latent, multiscale=ms),
                lambda: sample(patched(split_model, multiscale=ms), positive, negative, latent)):
        with pytest.raises(ValueError) as error:
            run()
        message = str(error.value)
        assert "MultiGPU CFG Split" in message and "Panorama Layout Guidance (MSD)" in message
        assert "Disconnect the Panorama Layout Guidance (MSD) input" in message and "MultiGPU CFG Split node out" in message
    # where a sampler never let the patch see the run begin, the evaluation refuses it too
    handler = patched(split_model, multiscale=ms).model_options["context_handler"]
    assert isinstance(handler, adapter.PanoramaContextHandler)
    with pytest.raises(ValueError, match="MultiGPU CFG Split"):
        multigpu.device_lanes(handler.multiscale, None, [], torch.ones(1), {"multigpu_clones": {DEVICES[0]: None}})


def test_d_control_copies_on_every_device_carry_the_window_hint(sd15, split_model, monkeypatch):
    """A ControlNet chain under MultiGPU: every device runs its own copy of
    each control of the chain (ComfyUI's per-device ControlNet model), and
    that copy holds the hint under the windows, not the panorama's; the
    panorama equals the single-device one."""
    import comfy.controlnet
    import tiny_models
    model, positive, negative = sd15
    directory = harness.boot_comfyui().base_dir / "controlnet_multigpu"
    name = tiny_models.ensure_controlnet(directory, "sd15")
    controlnet = comfy.controlnet.load_controlnet(str(directory / name))
    generator = torch.Generator().manual_seed(1)
    hints = [torch.rand(1, H * 8, W * 8, 3, generator=generator) for _ in range(2)]
    apply = node("ControlNetApplyAdvanced").apply_controlnet
    with torch.inference_mode():
        pos, neg = apply(positive, negative, controlnet, hints[0], 0.9, 0.0, 1.0)[:2]
        pos, neg = apply(pos, neg, controlnet, hints[1], 0.7, 0.0, 1.0)[:2]
    single = sample(patched(model), pos, neg, start_latent())

    records = []
    get_control = comfy.controlnet.ControlNet.get_control

    def recording(self, x_noisy, t, cond, batched_number, transformer_options):
        records.append((transformer_options.get("multigpu_thread_device"), self, self.cond_hint_original))
        return get_control(self, x_noisy, t, cond, batched_number, transformer_options)

    monkeypatch.setattr(comfy.controlnet.ControlNet, "get_control", recording)
    ours = sample(patched(split_model), pos, neg, start_latent())
    monkeypatch.undo()
    assert torch.equal(ours, single)

    chain = [pos[0][1]["control"], pos[0][1]["control"].previous_controlnet]
    assert set(chain[0].multigpu_clones) == set(DEVICES[1:]), "ComfyUI made no per-device ControlNet copies"
    models = {device: {id(c.get_instance_for_device(device).control_model) for c in chain} for device in DEVICES}
    crops = [torch.stack([h[0, :, x * 8:x * 8 + 128].movedim(-1, 0) for h in hints]) for x in (0, 8, 16, 24, 32)]
    assert {device for device, _, _ in records} == set(DEVICES), "a device ran no ControlNet"
    for device, control, hint in records:
        assert id(control.control_model) in models[device], f"{device} ran another device's ControlNet"
        assert control not in chain and control not in [c.multigpu_clones[d] for c in chain for d in DEVICES[1:]]
        assert hint.shape[-2:] == (128, 128), f"{device} got a {tuple(hint.shape[-2:])} hint, not the window's"
        for image in hint:  # each window's hint is the panorama hint under one of the windows
            assert any(torch.equal(image, crop[k]) for crop in crops for k in range(2)), device


def test_e_interrupt_on_a_lane_stops_every_lane(sd15, split_model):
    """An interrupt seen by one lane ends the evaluation (ComfyUI's
    exception, raised in the sampling thread); the other lanes stop after
    their current batch and the run ends cleanly."""
    import comfy.model_management
    _, positive, negative = sd15
    counted, calls = counting(patched(split_model, view_batch_size=1))

    def interrupt_at_first_forward(apply_model, args):
        comfy.model_management.interrupt_current_processing(True)
        return apply_model(args["input"], args["timestep"], **args["c"])

    counted.set_model_unet_function_wrapper(interrupt_at_first_forward)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        sample(counted, positive, negative, start_latent())
    comfy.model_management.interrupt_current_processing(False)
    handler = counted.model_options["context_handler"]
    assert handler.position is None and handler.conditioning is None
    assert torch.isfinite(sample(patched(split_model), positive, negative, start_latent())).all()


def test_window_batches_split_and_given_to_lanes(comfy):
    """How the batches of a step are spread: halved while fewer than the
    devices, given to the least loaded lane; lane 0 holds the main device."""
    multigpu = harness.pack_module("nodes.multigpu")
    assert multigpu.spread([(0, 1), (2, 3), (4,)], 3) == [(0, (0, 1)), (1, (2, 3)), (2, (4,))]
    assert multigpu.spread([(0, 1, 2, 3, 4)], 3) == [(0, (0, 1)), (0, (2,)), (0, (3, 4))]
    assert multigpu.spread([(0,)], 4) == [(0, (0,))]
    pieces = multigpu.spread([(0, 1), (2, 3), (4, 5), (6,)], 2)
    assert multigpu.plan_lanes(pieces, ["a", "b"]) == [(["a"], [0, 2]), (["b"], [1, 3])]
    pieces = multigpu.spread([(0, 1)], 4)
    assert multigpu.plan_lanes(pieces, ["a", "b", "c", "d"]) == [(["a", "c"], [0]), (["b", "d"], [1])]


def test_hooks_with_keyframes_run_on_every_device(sd15, split_model):
    """A weight hook on the positive prompt (a model-as-LoRA patch) whose
    strength drops half way through: every device applies it, the keyframe
    change reaches every device's copy, and the panorama is the
    single-device one."""
    import comfy.hooks
    model, positive, negative = sd15
    state = model.model_state_dict()
    keys = [k for k in state if k.startswith("diffusion_model.") and k.endswith(".weight") and state[k].ndim >= 2]
    hooks = comfy.hooks.create_hook_model_as_lora({k: state[k] * 1.5 for k in keys}, None, 1.0, 1.0)
    keyframes = comfy.hooks.HookKeyframeGroup()
    keyframes.add(comfy.hooks.HookKeyframe(1.0, 0.0))
    keyframes.add(comfy.hooks.HookKeyframe(0.2, 0.5))
    hooks.set_keyframes_on_hooks(keyframes)
    with torch.inference_mode():
        hooked = comfy.hooks.set_hooks_for_conditioning(positive, hooks)
    single = sample(patched(model, 1), hooked, negative, start_latent(), steps=3)
    counted, calls = counting(patched(split_model, 1))
    ours = sample(counted, hooked, negative, start_latent(), steps=3)
    assert set(calls) == set(DEVICES)
    assert torch.equal(ours, single)
    plain = sample(patched(model, 1), positive, negative, start_latent(), steps=3)
    assert (single - plain).abs().max() > 1e-3, "the hook changed nothing"


def test_f_sphere_views_on_multigpu_are_the_single_device_panorama(sd15, split_model):
    """Sphere views batch and spread like crops: every device runs view
    batches, and the 360 is the one a single device makes."""
    model, positive, negative = sd15
    sphere = node("PanoramaSphereWindows").execute(128, 0.0, 0.25, 0, "golden", 2)[0]
    latent = torch.randn(1, 4, 48, 96, generator=torch.Generator().manual_seed(2)) * 40.0

    def spherical(m):
        return node("TwinDiffusionModel").patch(m, "multidiffusion", 1.0, 0.5, 2, sphere, None, None)[0]

    counted, calls = counting(spherical(split_model))
    ours = sample(counted, positive, negative, latent.clone())
    assert set(calls) == set(DEVICES), f"forwards per device: {dict(calls)}"
    single = sample(spherical(model), positive, negative, latent.clone())
    torch.testing.assert_close(ours, single, rtol=1e-5, atol=1e-5 * float(single.abs().max()))
