"""The panorama nodes on every image family ComfyUI ships: DiT and flow
models (Flux dev/schnell, Chroma, Chroma Radiance, SD3, SD3.5, Qwen-Image,
Lumina 2, HunyuanImage 2.1, HiDream, AuraFlow, PixArt, HunyuanDiT, OmniGen2)
and those of newer ComfyUI (Flux.2 dev / Klein, Z-Image, Z-Image pixel
space, LongCat-Image, Kandinsky 5 Image, Anima, ERNIE-Image, Krea 2), which
skip, saying so, on a host whose ComfyUI lacks their class.

Models are ``tiny_dits``' reduced random-weight models of ComfyUI's own
classes, loaded by UNETLoader (ComfyUI's detection, then a test config that
cuts the width); conditioning has the shapes each model reads.  Per family:
the grid the windows are planned on (pixels per latent pixel, patch, native
window), TwinDiffusion with Cross Sampling, wrap-around, Multi-Scale
Guidance, the model patch under SamplerCustomAdvanced through ComfyUI's
executor, and one window covering the latent against the plain KSampler.
"""

from __future__ import annotations

import pytest
import torch

import harness
import tiny_dits

pytestmark = pytest.mark.host

KINDS = tiny_dits.DIT_KINDS
# Families whose blocks add their residual in place into a tensor their norm
# saved: MSD's gradient pass keeps copies of saved activations for them only.
OVERWRITE_SAVED_ACTIVATIONS = {"flux_dev", "flux_schnell", "chroma", "chroma_radiance", "hunyuan_image21",
                               "flux2_dev", "flux2_klein", "longcat_image"}


@pytest.fixture(scope="module", params=KINDS)
def family(request, dit_files):
    """(kind, MODEL, positive, negative) with the model as UNETLoader gives it."""
    import nodes
    kind = request.param
    reason = tiny_dits.unavailable_reason(kind)
    if reason:
        pytest.skip(reason)
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files[kind], "default")[0]
    positive = tiny_dits.conditioning(kind, "a wide valley at dawn")
    negative = tiny_dits.conditioning(kind, "blurry")
    return kind, model, positive, negative


def node(name):
    import nodes
    return harness.node(name)


def geometry(kind):
    return tiny_dits.expected_geometry(kind)


def window_px(kind, tokens=8):
    """A small window: ``tokens`` tokens across, or the least the family
    takes (ComfyUI's PixArt needs more than 32 latent pixels)."""
    g = geometry(kind)
    tokens = max(tokens, -(-g["min_latent_side"] // g["patch"]))
    return tokens * g["pixels_per_latent"] * g["patch"]


def panorama_latent(model, kind, windows_across=3, tokens=8):
    """A latent one window high, about ``windows_across`` windows wide."""
    window = window_px(kind, tokens)
    return node("PanoramaLatent").generate(model, window * windows_across, window)[0]


def sampled_shape(kind, latent):
    """What ComfyUI's samplers return for the latent: families with a
    video-shaped latent format (Qwen-Image) get a frame axis."""
    shape = latent["samples"].shape
    return (*shape[:2], 1, *shape[2:]) if geometry(kind)["latent_dimensions"] == 3 else shape


def stride_px(kind, window, parts=4):
    """A quarter (1 / ``parts``) of the window, in whole tokens."""
    token = geometry(kind)["pixels_per_latent"] * geometry(kind)["patch"]
    return max(window // parts // token, 1) * token


def plan(kind, c=2, wrap=False, tokens=8, parts=4):
    window = window_px(kind, tokens)
    return node("CrossSamplingScheduler").plan(window, stride_px(kind, window, parts), c, 0, wrap)[0]


def sample(model, positive, negative, latent, *, windows, multiscale=None, mode="twindiffusion", steps=2, cfg=2.0):
    with torch.inference_mode():
        return node("TwinCropFusionSampler").sample(model, 7, steps, cfg, "euler", "simple", positive, negative,
                                                     latent, 1.0, mode, 1.0, 0.5, 4, windows, multiscale)[0]


def test_the_model_is_the_family_comfyui_detects(family):
    kind, model, _, _ = family
    assert type(model.model).__name__ == tiny_dits.model_base_class(kind)
    fixed = tiny_dits.SPECS[kind].fixed_size  # parts ComfyUI builds full size whatever the config
    assert sum(p.numel() for name, p in model.model.diffusion_model.named_parameters()
               if not name.startswith(fixed)) < 20_000_000


def test_the_window_grid_comes_from_the_model(family):
    kind, model, _, _ = family
    grid = harness.pack_module("nodes.adapter").latent_grid(model)
    expected = geometry(kind)
    assert (grid.scale, grid.patch) == (expected["pixels_per_latent"], expected["patch"])
    assert grid.native * grid.scale == expected["native_px"]
    latent = node("PanoramaLatent").generate(model, 4 * grid.token_px * 8, grid.token_px * 8)[0]["samples"]
    assert latent.shape[1:] == (expected["latent_channels"], grid.patch * 8, grid.patch * 32)
    if grid.token_px > 1:  # half a token is refused, naming the input
        with pytest.raises(ValueError, match=f"width = .* multiple of {grid.token_px} px"):
            node("PanoramaLatent").generate(model, grid.token_px * 8 + grid.token_px // 2, grid.token_px * 8)
        half_token_stride = node("CrossSamplingScheduler").plan(grid.token_px * 8, grid.token_px * 5 // 2, 1, 0,
                                                                 False)[0]
        with pytest.raises(ValueError, match="view_stride"):
            sample(model, *family[2:], {"samples": latent}, windows=half_token_stride)


def test_twindiffusion_with_cross_sampling(family):
    kind, model, positive, negative = family
    latent = panorama_latent(model, kind)
    twin = sample(model, positive, negative, latent, windows=plan(kind, c=2))["samples"]
    md = sample(model, positive, negative, latent, windows=plan(kind, c=1), mode="multidiffusion")["samples"]
    assert twin.shape == sampled_shape(kind, latent) and torch.isfinite(twin).all() and twin.std() > 0
    assert (twin - md).abs().max() > 1e-4


def test_wrap_around(family):
    kind, model, positive, negative = family
    out = sample(model, positive, negative, panorama_latent(model, kind), windows=plan(kind, wrap=True))["samples"]
    assert torch.isfinite(out).all() and out.std() > 0


def test_multiscale_guidance(family):
    """MSD's gradient pass runs through the DiT (RMSNorm scales,
    modulation, in-place residuals) and leaves the model as it was.  A 2-D
    grid of windows at half-window stride (15 windows on the top level):
    every window's gradient pass is a forward and a backward."""
    kind, model, positive, negative = family
    window = window_px(kind)
    latent = node("PanoramaLatent").generate(model, 3 * window, 2 * window)[0]
    before = {k: v.clone() for k, v in model.model.diffusion_model.state_dict().items()}
    ms = node("MultiScaleGuidance").configure(2, 10.0, "cosine", "bilinear")[0]
    windows = plan(kind, c=1, parts=2)
    out = sample(model, positive, negative, latent, windows=windows, multiscale=ms, mode="multidiffusion")
    assert torch.isfinite(out["samples"]).all() and out["samples"].std() > 0
    md = sample(model, positive, negative, latent, windows=windows, mode="multidiffusion")
    assert (out["samples"] - md["samples"]).abs().max() > 1e-4
    after = model.model.diffusion_model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].is_inference() for k in before)
    saves_in_place = type(model.model) in harness.pack_module("nodes.adapter").SAVES_IN_PLACE
    assert saves_in_place == (kind in OVERWRITE_SAVED_ACTIVATIONS)


def test_one_window_covering_the_latent_is_the_plain_ksampler(family):
    import nodes
    kind, model, positive, negative = family
    window = window_px(kind)
    latent = node("PanoramaLatent").generate(model, window, window)[0]
    ours = sample(model, positive, negative, latent, windows=plan(kind), steps=3)["samples"]
    with torch.inference_mode():
        plain = nodes.common_ksampler(model, 7, 3, 2.0, "euler", "simple", positive, negative, latent)[0]["samples"]
    torch.testing.assert_close(ours, plain, rtol=0, atol=0)


def test_model_patch_under_sampler_custom_advanced(family, dit_files):
    """UNETLoader -> Panorama model patch -> CFGGuider -> SamplerCustomAdvanced
    through ComfyUI's executor: the same latent as the panorama sampler."""
    kind, model, positive, negative = family
    window = window_px(kind)
    text = {"positive": "a wide valley at dawn", "negative": "blurry"}
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": dit_files[kind], "weight_dtype": "default"}},
        "2": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": text["positive"]}},
        "3": {"class_type": "PanoramaTestConditioning", "inputs": {"kind": kind, "text": text["negative"]}},
        "4": {"class_type": "CrossSamplingScheduler", "inputs": {"window_size": window, "view_stride": stride_px(kind, window),
                                                                 "cross_count": 2, "cross_stride": 0,
                                                                 "wrap_around": False}},
        "5": {"class_type": "TwinDiffusionModel", "inputs": {"model": ["1", 0], "mode": "twindiffusion", "lam": 1.0,
                                                             "tau": 0.5, "view_batch_size": 4, "windows": ["4", 0]}},
        "6": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": 3 * window, "height": window,
                                                         "batch_size": 1}},
        "7": {"class_type": "CFGGuider", "inputs": {"model": ["5", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                    "cfg": 2.0}},
        "8": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}},
        "9": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "10": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "simple", "steps": 2,
                                                          "denoise": 1.0}},
        "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["8", 0], "guider": ["7", 0],
                                                                 "sampler": ["9", 0], "sigmas": ["10", 0],
                                                                 "latent_image": ["6", 0]}},
    }
    result = harness.run_prompt(prompt, outputs=["11"])
    assert result.success, result.errors
    patched = result.output("11")["samples"]
    direct = sample(model, positive, negative, panorama_latent(model, kind), windows=plan(kind))["samples"]
    torch.testing.assert_close(patched, direct, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["flux_dev", "sd35"])
def test_msd_gradient_matches_finite_differences_on_a_dit(kind, dit_files):
    """MSD's gradient step through a DiT loaded by UNETLoader, taken under
    inference mode as in a ComfyUI run, against central finite differences
    of eq. 9's loss along random directions; the model is left as it was."""
    import comfy.sampler_helpers
    import comfy.samplers
    import nodes
    from comfy import model_management
    adapter = harness.pack_module("nodes.adapter")
    windows_mod = harness.pack_module("fusion.windows")
    with torch.inference_mode():
        model = nodes.UNETLoader().load_unet(dit_files[kind], "default")[0]
    model_management.load_models_gpu([model])
    base = model.model
    base.current_patcher = model  # what a sampler run sets for calc_cond_batch
    before = {k: v.clone() for k, v in base.diffusion_model.state_dict().items()}
    views = windows_mod.plan_views(windows_mod.resolve_plan(windows_mod.WindowPlan(16, 8), 16), 16, 32)
    ids = [0, 1]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 16, 16, generator=generator)
    target = torch.randn(2, 16, 8, 8, generator=generator)
    sigma = torch.full((2,), 0.6)

    with torch.inference_mode():
        conds = comfy.sampler_helpers.convert_cond(tiny_dits.conditioning(kind, "a ridge"))
        conds = comfy.samplers.encode_model_conds(base.extra_conds, conds, x, x.device, "positive")

    def model_fn(xw, sw, views_=None, ids_=None, branch=None):
        entries = conds
        if torch.is_grad_enabled():  # as the context handler does
            entries, sw = [adapter.keep_grad_path_entry(e) for e in conds], adapter.keep_grad_path(sw)
        return comfy.samplers.calc_cond_batch(base, [entries], xw, sw, model.model_options)[0]

    with torch.inference_mode():
        x, target, sigma = x.clone(), target.clone(), sigma.clone()
        errors = harness.msd_gradient_errors(model_fn, x, target, sigma, views, ids, adapter.GradientPass([base]),
                                             generator)
    print(f"{kind}: directional derivative, autograd vs central differences: max relative error {max(errors):.1e}")
    base.current_patcher = None
    assert max(errors) < 2e-3, errors
    after = base.diffusion_model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].is_inference() for k in before)
    assert all(p.grad is None for p in base.parameters())
