"""The pack in a real ComfyUI: example workflows through ComfyUI's executor,
equivalences on real model classes, samplers, interrupt, bad input.

Models are the tiny random-weight checkpoints of ``tiny_models`` (real SD1.5,
SD2-v and SDXL-family architectures, reduced in depth), loaded by
CheckpointLoaderSimple.  Workflows are shrunk (steps, size, window) so the
tier runs in minutes on two CPU cores; the graph is the example's own.
"""

from __future__ import annotations

import json

import pytest
import torch

import harness
import test_templates_host

pytestmark = pytest.mark.host

# The templates with checks of their own run in test_templates_host.py instead (photo input, LoRA, tiled VAE).
WORKFLOWS = sorted(p for p in (harness.REPO_ROOT / "example_workflows").glob("*.json")
                   if p.stem not in test_templates_host.TESTED_HERE)
# The templates as saved with the V1 nodes (before the V3 schema, pack 0.2.0): they must load and run unchanged.
SAVED_V1 = sorted((harness.HERE / "v1_nodes" / "templates").glob("*.json"))
SMALL_PLAN = {"window_size": 128, "view_stride": 32, "cross_stride": 0}


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    with torch.inference_mode():
        model, clip, vae = harness.load_checkpoint(tiny_checkpoints["sd15"])
        import nodes
        encode = nodes.CLIPTextEncode()
        positive = encode.encode(clip, "a wide mountain panorama")[0]
        negative = encode.encode(clip, "blurry")[0]
    return model, positive, negative


def sampler(comfy):
    import nodes
    return harness.node("TwinCropFusionSampler")


def run_panorama(comfy, model, positive, negative, latent, *, steps=2, sampler_name="euler",
                 scheduler="normal", mode="twindiffusion", windows=None, multiscale=None, seed=3, denoise=1.0,
                 lam=1.0, tau=0.5, view_batch_size=4):
    with torch.inference_mode():
        return sampler(comfy).sample(model, seed, steps, 4.0, sampler_name, scheduler, positive, negative, latent,
                                     denoise, mode, lam, tau, view_batch_size, windows, multiscale)[0]["samples"]


def plan(comfy, window=128, stride=32, c=1, cross=0, wrap=False):
    import nodes
    return harness.node("CrossSamplingScheduler").plan(window, stride, c, cross, wrap)[0]


def test_pack_registers_its_nodes_with_tooltips_and_descriptions(comfy):
    import nodes
    assert comfy.pack_loaded, comfy.pack_error
    expected = {"PanoramaLatent", "CrossSamplingScheduler", "TwinCropFusionSampler", "TwinDiffusionModel",
                "MultiScaleGuidance", "Panorama360Latent", "PanoramaSeamlessDecode", "PanoramaSeamlessEncode",
                "SavePanorama360", "PreviewPanorama360"}
    assert expected <= set(comfy.pack_nodes)
    for name in expected:
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        assert cls.CATEGORY.startswith("sampling/panorama") and cls.DESCRIPTION
        assert name in nodes.NODE_DISPLAY_NAME_MAPPINGS
        for kind, group in cls.INPUT_TYPES().items():
            if kind == "hidden":
                continue
            for input_name, spec in group.items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"


@pytest.fixture(scope="module")
def workflow_inputs(comfy, tmp_path_factory):
    """What the example workflows load besides the checkpoint: a ControlNet
    (ComfyUI's class, random weights) in a ``controlnet`` folder, and a
    reference image in ComfyUI's input folder."""
    import folder_paths
    import numpy
    import tiny_models
    from PIL import Image
    directory = tmp_path_factory.mktemp("controlnet")
    controlnet = tiny_models.ensure_controlnet(directory, "sd15")
    folder_paths.add_model_folder_path("controlnet", str(directory), is_default=True)
    folder_paths.filename_list_cache.pop("controlnet", None)
    pixels = numpy.random.default_rng(0).integers(0, 255, (128, 512, 3), dtype=numpy.uint8)
    Image.fromarray(pixels).save(f"{folder_paths.get_input_directory()}/panorama_test_reference.png")
    return {"ControlNetLoader": {"control_net_name": controlnet}, "LoadImage": {"image": "panorama_test_reference.png"}}


# The DiT templates' models, as tiny_dits writes them: {stem: (conditioning kind, loader overrides)}.
DIT_TEMPLATES = {
    "flux_panorama": ("flux_dev", lambda files: {"UNETLoader": {"unet_name": files["flux_dev"]},
                                                 "VAELoader": {"vae_name": files["flux_vae"]}}),
    "sd35_panorama": ("sd35", lambda files: {"CheckpointLoaderSimple": {"ckpt_name": files["sd35_checkpoint"]}}),
}


@pytest.mark.parametrize("path", WORKFLOWS + SAVED_V1,
                         ids=[p.stem for p in WORKFLOWS] + [f"saved_v1-{p.stem}" for p in SAVED_V1])
def test_example_workflow_executes(path, comfy, tiny_checkpoints, workflow_inputs, request):
    workflow = json.loads(path.read_text())
    kind = "sdxl" if "sdxl" in path.stem else "sd15"
    msd = "msd" in path.stem
    overrides = {
        "CheckpointLoaderSimple": {"ckpt_name": tiny_checkpoints[kind]},
        "PanoramaLatent": {"width": 512, "height": 256 if msd else 128},
        "Panorama360Latent": {"height": 128},
        "CrossSamplingScheduler": SMALL_PLAN,
        "TwinCropFusionSampler": {"steps": 2},
        "BasicScheduler": {"steps": 2},
        **workflow_inputs,
    }
    dit = DIT_TEMPLATES.get(path.stem)
    if dit is not None:
        overrides.update(dit[1](request.getfixturevalue("dit_files")))
    types = {node["type"] for node in workflow["nodes"]}
    prompt = harness.ui_to_api(workflow, {name: values for name, values in overrides.items() if name in types})
    if dit is not None:
        prompt = harness.replace_text_encoders(prompt, dit[0])
    ids = {entry["class_type"]: node_id for node_id, entry in prompt.items()}
    decode = ids.get("VAEDecode") or ids["PanoramaSeamlessDecode"]
    sampler = ids.get("TwinCropFusionSampler") or ids["SamplerCustomAdvanced"]
    result = harness.run_prompt(prompt, outputs=[decode, sampler])
    assert result.success, result.errors
    image = result.output(decode)
    expected = (1, 128, 256, 3) if "Panorama360Latent" in ids else (1, 256 if msd else 128, 512, 3)
    assert image.shape == expected and torch.isfinite(image).all()
    latent = result.output(sampler)["samples"]
    assert torch.isfinite(latent).all() and latent.std() > 0
    assert result.events_named("progress"), "the sampler reported no progress"
    if "SavePanorama360" in ids:
        assert result.ui[ids["SavePanorama360"]]["images"][0]["filename"].endswith(".png")
    if msd:
        layers = [m for m in harness.load_checkpoint(tiny_checkpoints[kind])[0].model.diffusion_model.modules()
                  if hasattr(m, "weight_function")]
        assert all(not any(getattr(f, "__name__", "") in ("keep_grad_path", "own_copy") for f in m.weight_function)
                   for m in layers), "the gradient pass left weight functions behind"


def test_one_window_covering_the_latent_is_the_plain_ksampler(comfy, sd15):
    import nodes
    model, positive, negative = sd15
    latent = {"samples": torch.zeros(1, 4, 16, 16)}
    ours = run_panorama(comfy, model, positive, negative, latent, steps=3, sampler_name="dpmpp_2m",
                        scheduler="karras", windows=plan(comfy, window=128))
    with torch.inference_mode():
        plain = nodes.common_ksampler(model, 3, 3, 4.0, "dpmpp_2m", "karras", positive, negative, latent)[0]["samples"]
    torch.testing.assert_close(ours, plain, rtol=0, atol=0)


def test_same_seed_same_panorama(comfy, sd15):
    model, positive, negative = sd15
    latent = {"samples": torch.zeros(1, 4, 16, 48)}
    a = run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy, c=2))
    b = run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy, c=2))
    assert torch.equal(a, b)
    c = run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy, c=2), seed=4)
    assert not torch.equal(a, c)


def test_tau_zero_and_huge_lambda_are_multidiffusion(comfy, sd15):
    model, positive, negative = sd15
    latent = {"samples": torch.zeros(1, 4, 16, 48)}
    md = run_panorama(comfy, model, positive, negative, latent, mode="multidiffusion", windows=plan(comfy))
    assert torch.equal(run_panorama(comfy, model, positive, negative, latent, tau=0.0, windows=plan(comfy)), md)
    big = run_panorama(comfy, model, positive, negative, latent, lam=1e9, tau=1.0, windows=plan(comfy))
    torch.testing.assert_close(big, md, rtol=1e-4, atol=1e-4)
    twin = run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy))
    assert (twin - md).abs().max() > 1e-3
    feathered = run_panorama(comfy, model, positive, negative, latent, mode="twindiffusion_feathered",
                             windows=plan(comfy))
    assert (feathered - md).abs().max() > 1e-3 and (feathered - twin).abs().max() > 1e-4
    big = run_panorama(comfy, model, positive, negative, latent, mode="twindiffusion_feathered", lam=1e9, tau=1.0,
                       windows=plan(comfy))
    torch.testing.assert_close(big, md, rtol=1e-4, atol=1e-4)


def test_omega_zero_is_multidiffusion_on_a_real_model(comfy, sd15):
    import nodes
    model, positive, negative = sd15
    latent = {"samples": torch.zeros(1, 4, 32, 48)}
    ms = harness.node("MultiScaleGuidance").configure(2, 0.0, "cosine", "bilinear")[0]
    md = run_panorama(comfy, model, positive, negative, latent, mode="multidiffusion", windows=plan(comfy))
    msd0 = run_panorama(comfy, model, positive, negative, latent, mode="multidiffusion", windows=plan(comfy),
                        multiscale=ms)
    assert torch.equal(md, msd0)


def test_msd_over_no_part_of_the_run_is_multidiffusion_and_costs_as_much(comfy, sd15):
    """end_percent = start_percent = 1 guides no step: neither the
    half-resolution pass nor the gradient pass runs, and the picture is
    MultiDiffusion's bit for bit, for as many model calls."""
    import comfy.patcher_extension
    model, positive, negative = sd15
    latent = {"samples": torch.zeros(1, 4, 32, 48)}
    calls = []

    def count(executor, x, *args, **kwargs):
        calls.append(x.shape[0])
        return executor(x, *args, **kwargs)

    counted = model.clone()
    counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", count)
    none = harness.node("MultiScaleGuidance").execute(2, 10.0, "cosine", "bilinear", 1.0, 1.0)[0]
    md = run_panorama(comfy, counted, positive, negative, latent, mode="multidiffusion", windows=plan(comfy))
    md_calls = sum(calls)
    calls.clear()
    unguided = run_panorama(comfy, counted, positive, negative, latent, mode="multidiffusion", windows=plan(comfy),
                            multiscale=none)
    assert torch.equal(md, unguided) and sum(calls) == md_calls
    calls.clear()
    first = harness.node("MultiScaleGuidance").execute(2, 10.0, "cosine", "bilinear", 0.0, 0.3)[0]
    early = run_panorama(comfy, counted, positive, negative, latent, mode="multidiffusion", windows=plan(comfy),
                         multiscale=first)
    assert (early - md).abs().max() > 1e-4 and md_calls < sum(calls) < 2.5 * md_calls


def test_msd_gradient_through_a_comfyui_model_in_inference_mode(comfy, sd15):
    """The MSD gradient step on a model loaded by CheckpointLoaderSimple,
    taken where ComfyUI runs nodes (under inference mode), agrees with
    central finite differences of eq. 9's loss along random directions, and
    leaves the model's layers and weights as they were."""
    from comfy import model_management
    adapter = harness.pack_module("nodes.adapter")
    windows_mod = harness.pack_module("fusion.windows")
    model, positive, _ = sd15
    model_management.load_models_gpu([model])
    base, unet = model.model, model.model.diffusion_model
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    functions_before = layer_functions(unet)
    views = windows_mod.plan_views(windows_mod.resolve_plan(windows_mod.WindowPlan(16, 8), 16), 16, 32)
    ids = [0, 1]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=generator) * 3.0
    target = torch.randn(2, 4, 8, 8, generator=generator)
    sigma = torch.full((2,), 3.0)

    def model_fn(xw, sw, views_=None, ids_=None, branch=None):
        context = adapter.keep_grad_path(positive[0][0]).repeat(xw.shape[0], 1, 1)
        return base.apply_model(xw, adapter.keep_grad_path(sw), c_crossattn=context)  # as the handler does

    with torch.inference_mode():
        x, target, sigma = x.clone(), target.clone(), sigma.clone()  # inference tensors, as in a ComfyUI run
        errors = harness.msd_gradient_errors(model_fn, x, target, sigma, views, ids,
                                             lambda: adapter.gradients_through([unet]), generator)
    print(f"directional derivative, autograd vs central differences: max relative error {max(errors):.1e}")
    assert max(errors) < 2e-3, errors
    after = unet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in unet.parameters())
    assert layer_functions(unet) == functions_before


def assert_unpatched(model):
    assert "context_handler" not in model.model_options
    assert not any(key == "comfyui_panorama_diffusion" for wrappers in model.wrappers.values() for key in wrappers)


def layer_functions(module):
    return [(name, list(m.weight_function), list(m.bias_function), "weight_function" in m.__dict__)
            for name, m in module.named_modules() if hasattr(m, "weight_function")]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_multiscale_in_half_precision(dtype, comfy, sd15, tiny_checkpoints):
    """The gradient pass in the dtypes a GPU runs (here on the CPU): the
    UNet loaded in bf16 / fp16, MSD with Crop Fusion, finite output."""
    import comfy.sd
    import folder_paths
    import nodes
    _, positive, negative = sd15
    path = folder_paths.get_full_path_or_raise("checkpoints", tiny_checkpoints["sd15"])
    with torch.inference_mode():
        model = comfy.sd.load_checkpoint_guess_config(path, output_vae=False, output_clip=False,
                                                      model_options={"dtype": dtype})[0]
    assert model.model.get_dtype() == dtype
    ms = harness.node("MultiScaleGuidance").configure(2, 10.0, "cosine", "bilinear")[0]
    latent = {"samples": torch.zeros(1, 4, 32, 48)}
    out = run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy), multiscale=ms)
    assert out.shape == (1, 4, 32, 48) and torch.isfinite(out).all() and out.std() > 0


def test_latent_previews_every_step(comfy, tiny_checkpoints):
    from comfy.cli_args import LatentPreviewMethod, args
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "mountains", "clip": ["1", 1]}},
        "4": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 384, "height": 128,
                                                         "batch_size": 1}},
        "3": {"class_type": "CrossSamplingScheduler", "inputs": {**SMALL_PLAN, "cross_count": 2,
                                                                 "wrap_around": False}},
        "6": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 1, "steps": 3, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["3", 0]}},
    }
    saved = args.preview_method
    args.preview_method = LatentPreviewMethod.Latent2RGB
    try:
        result = harness.run_prompt(prompt, outputs=["6"])
    finally:
        args.preview_method = saved
    assert result.success, result.errors
    assert [d["value"] for d in result.events_named("progress") if d["node"] == "6"] == [1, 2, 3]
    assert len([d for d in result.events_named("preview_image") if d["node"] == "6"]) == 3


@pytest.mark.parametrize("scheduler", ["normal", "karras", "simple"])
@pytest.mark.parametrize("sampler_name", ["euler", "euler_ancestral", "dpmpp_2m", "heun", "ddim", "uni_pc"])
def test_samplers_and_schedulers(sampler_name, scheduler, comfy, sd15):
    model, positive, negative = sd15
    out = run_panorama(comfy, model, positive, negative, {"samples": torch.zeros(1, 4, 16, 40)},
                       sampler_name=sampler_name, scheduler=scheduler, windows=plan(comfy, c=2))
    assert out.shape == (1, 4, 16, 40) and torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ["sd2v", "sdxl"])
def test_other_model_families(kind, comfy, tiny_checkpoints):
    import nodes
    with torch.inference_mode():
        model, clip, _ = harness.load_checkpoint(tiny_checkpoints[kind])
        positive = nodes.CLIPTextEncode().encode(clip, "a panorama")[0]
        negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    out = run_panorama(comfy, model, positive, negative, {"samples": torch.zeros(1, 4, 16, 40)},
                       windows=plan(comfy, c=2))
    assert torch.isfinite(out).all()


def test_img2img_and_batches(comfy, sd15):
    model, positive, negative = sd15
    start = torch.randn(2, 4, 16, 40)
    out = run_panorama(comfy, model, positive, negative, {"samples": start}, denoise=0.5, windows=plan(comfy))
    assert out.shape == (2, 4, 16, 40) and torch.isfinite(out).all()
    assert not torch.equal(out[0], out[1])


def test_model_patch_with_core_ksampler_equals_the_panorama_sampler(comfy, tiny_checkpoints):
    """TwinDiffusionModel -> KSampler gives what TwinCropFusionSampler gives."""
    windows = {"class_type": "CrossSamplingScheduler",
               "inputs": {"window_size": 128, "view_stride": 32, "cross_count": 2, "cross_stride": 0,
                          "wrap_around": False}}
    common = {"seed": 5, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
              "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}
    fusion = {"mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["5", 0]}
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "mountains", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 384, "height": 128,
                                                         "batch_size": 1}},
        "5": windows,
        "6": {"class_type": "TwinCropFusionSampler", "inputs": {"model": ["1", 0], **common, **fusion}},
        "7": {"class_type": "TwinDiffusionModel", "inputs": {"model": ["1", 0], **fusion}},
        "8": {"class_type": "KSampler", "inputs": {"model": ["7", 0], **common}},
    }
    result = harness.run_prompt(prompt, outputs=["6", "8", "1"])
    assert result.success, result.errors
    assert torch.equal(result.output("6")["samples"], result.output("8")["samples"])
    assert_unpatched(result.output("1"))  # the input MODEL is untouched


def test_interrupt_stops_cleanly_and_leaves_the_model_unpatched(comfy, tiny_checkpoints):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "mountains", "clip": ["1", 1]}},
        "4": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 512, "height": 256,
                                                         "batch_size": 1}},
        "5": {"class_type": "MultiScaleGuidance", "inputs": {"levels": 2, "omega": 10.0, "decay": "cosine",
                                                             "downsample": "bilinear"}},
        "3": {"class_type": "CrossSamplingScheduler", "inputs": {"window_size": 128, "view_stride": 32,
                                                                 "cross_count": 1, "cross_stride": 0,
                                                                 "wrap_around": False}},
        "6": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 1, "steps": 30, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["4", 0], "denoise": 1.0,
            "mode": "twindiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "multiscale": ["5", 0],
            "windows": ["3", 0]}},
    }

    def interrupt_after_first_step(event, data):
        if event == "progress" and data.get("value", 0) >= 1:
            harness.request_interrupt()

    result = harness.run_prompt(prompt, outputs=["6", "1"], check=False, on_event=interrupt_after_first_step)
    assert result.interrupted and not result.success
    assert "6" not in result.outputs
    model = harness.load_checkpoint(tiny_checkpoints["sd15"])[0]
    assert_unpatched(model)
    for m in model.model.diffusion_model.modules():
        if hasattr(m, "weight_function"):
            assert all(getattr(f, "__name__", "") != "keep_grad_path" for f in m.weight_function + m.bias_function)


@pytest.mark.parametrize("case,match", [
    ("channels", "channels but the model expects 4"),
    ("nan", "NaN"),
    ("width", "not a multiple of 8"),
    ("stride", "larger than the window"),
    ("cross", "cross count"),
    ("lam", "lambda"),
    ("tau", "tau"),
    ("omega", "omega"),
    ("levels", "shrinks"),
    ("one_window_msd", "fits in one window"),
])
def test_bad_input_names_the_input(case, match, comfy, sd15):
    import nodes
    model, positive, negative = sd15
    mapping = nodes.NODE_CLASS_MAPPINGS
    latent = {"samples": torch.zeros(1, 4, 16, 40)}
    kwargs = {}
    with pytest.raises(ValueError, match=match):
        if case == "channels":
            latent = {"samples": torch.randn(1, 16, 16, 40)}
        elif case == "nan":
            latent = {"samples": torch.full((1, 4, 16, 40), float("nan"))}
        elif case == "width":
            harness.node("PanoramaLatent").generate(model, 1001, 512, 1)
        elif case == "stride":
            plan(comfy, window=128, stride=256)
        elif case == "cross":
            plan(comfy, window=128, stride=16, c=3)
        elif case == "lam":
            kwargs["lam"] = -1.0
        elif case == "tau":
            kwargs["tau"] = 2.0
        elif case == "omega":
            harness.node("MultiScaleGuidance").configure(2, -1.0, "cosine", "bilinear")
        elif case == "levels":
            kwargs["multiscale"] = harness.node("MultiScaleGuidance").configure(3, 10.0, "cosine", "bilinear")[0]
        elif case == "one_window_msd":
            latent = {"samples": torch.zeros(1, 4, 16, 16)}
            kwargs["multiscale"] = harness.node("MultiScaleGuidance").configure(2, 10.0, "cosine", "bilinear")[0]
        run_panorama(comfy, model, positive, negative, latent, windows=plan(comfy), **kwargs)
    assert_unpatched(model)
