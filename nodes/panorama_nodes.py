"""Panorama nodes in ComfyUI's V3 schema: thin classes over ``fusion`` and
the adapter.  Node ids, inputs, their order and defaults are those of the
V1 nodes before them, so saved workflows load and run unchanged."""

from __future__ import annotations

import torch

import comfy.model_management
import comfy.samplers
import nodes as comfy_nodes  # ComfyUI's top-level module, not this package
from comfy_api.latest import io

from ..fusion import (FusionSettings, LatentGrid, MultiScaleSettings, SphereSettings, WindowSettings, on_grid,
                      validate_multiscale, validate_plan, validate_sphere)
from ..fusion.sphere_views import DEFAULT_FOV, FOV_RANGE, MAX_VIEWS, ROTATIONS
from ..fusion.multiscale import DECAYS, DOWNSAMPLE_MODES
from ..fusion.windows import BLENDS
from .adapter import check_latent, latent_grid, patch_model, with_rope_positions
from .host_versions import schema

CATEGORY = "sampling/panorama"
WindowPlanType = io.Custom("PANORAMA_WINDOWS")
MultiScaleType = io.Custom("PANORAMA_MULTISCALE")
MAX_RESOLUTION = comfy_nodes.MAX_RESOLUTION
# What users type into node search; every node also has its own.
SEARCH = ["panorama", "wide", "multidiffusion", "twindiffusion", "tiled diffusion", "seamless"]
MODES = ["twindiffusion", "twindiffusion_feathered", "multidiffusion"]


def fusion_inputs() -> list:
    """The TwinDiffusion settings shared by the sampler and the model patch."""
    return [
        io.Combo.Input("mode", options=MODES, default="twindiffusion", tooltip=(
            "twindiffusion: Crop Fusion pulls each window towards its already-fused left and upper "
            "neighbours (the paper). twindiffusion_feathered: the same, with the neighbour's weight "
            "fading out across the overlap, which avoids a step where the neighbour ends (not in the "
            "paper; fewer seams on the reference model). multidiffusion: plain averaging of "
            "overlapping windows, for comparison.")),
        io.Float.Input("lam", default=1.0, min=0.0, max=1000.0, step=0.05, tooltip=(
            "Crop Fusion's lambda: weight of a window's own prediction against its neighbours' on "
            "their overlap. Paper: 1. Larger is closer to MultiDiffusion.")),
        io.Float.Input("tau", default=0.5, min=0.0, max=1.0, step=0.05, tooltip=(
            "Fraction of the steps (from the start) with Crop Fusion; plain merging after. Paper: 0.5. "
            "0 gives MultiDiffusion.")),
        io.Int.Input("view_batch_size", default=4, min=1, max=256, tooltip=(
            "Windows evaluated per model call. Larger is faster on a big GPU and uses more memory.")),
    ]


def fusion_settings(mode: str, lam: float, tau: float, view_batch_size: int) -> FusionSettings:
    if mode not in MODES:
        raise ValueError(f"mode = {mode!r}: use one of {MODES}")
    return FusionSettings(lam=lam, tau=tau, crop_fusion=mode != "multidiffusion", view_batch_size=view_batch_size,
                          feather=mode == "twindiffusion_feathered")


def empty_latent(model, batch_size: int, latent_h: int, latent_w: int) -> dict:
    """Zeros of the panorama's size with the model's latent channels, where
    ComfyUI keeps latents between nodes."""
    channels = model.get_model_object("latent_format").latent_channels
    return {"samples": torch.zeros([batch_size, channels, latent_h, latent_w],
                                   device=comfy.model_management.intermediate_device())}


class PanoramaLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaLatent",
            display_name="Empty Panorama Latent",
            category=CATEGORY,
            search_aliases=[*SEARCH, "empty latent", "panorama latent", "wide latent"],
            description="An empty latent of panorama size with the channel count of the connected model.",
            inputs=[
                io.Model.Input("model", tooltip=(
                    "The model the panorama is for: sets the latent's channels and how many pixels one latent "
                    "pixel covers (4 channels at 8 px for SD1.x/SD2.x/SDXL, 16 at 8 px for SD3/Flux/Qwen-Image, "
                    "64 at 32 px for HunyuanImage 2.1).")),
                io.Int.Input("width", default=2048, min=64, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Panorama width in pixels, a multiple of the model's token: 8 px for SD, 16 for SD3/Flux "
                    "and other DiTs with 2x2 patches, 32 for HunyuanImage 2.1.")),
                io.Int.Input("height", default=512, min=64, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Panorama height in pixels, a multiple of the model's token (as width).")),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="Number of panoramas, each with its own noise."),
            ],
            outputs=[io.Latent.Output(tooltip="An empty panorama latent for the panorama samplers.")],
        )

    @classmethod
    def execute(cls, model, width, height, batch_size=1) -> io.NodeOutput:
        grid = latent_grid(model)
        return io.NodeOutput(empty_latent(model, batch_size, grid.to_latent(height, "height"),
                                          grid.to_latent(width, "width")))


class CrossSamplingScheduler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="CrossSamplingScheduler",
            display_name="Panorama Windows (Cross Sampling)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "cross sampling", "window size", "stride", "tiles", "360", "wrap around",
                            "equirectangular"],
            description=("Plans the windows of a panorama: size, view stride and TwinDiffusion's Cross Sampling "
                         "(c groups shifted by the cross stride, used in turn), optionally wrapping around for "
                         "360 degrees."),
            inputs=[
                io.Int.Input("window_size", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Window size in pixels. 0 = the model's native size (512 for SD1.5/SD2-base, 768 for SD2-v, "
                    "1024 for SDXL/SD3/Flux/Chroma/HiDream/Lumina 2, 1328 for Qwen-Image, 2048 for HunyuanImage "
                    "2.1). Sizes and strides are whole tokens of the model (8 px for SD, 16 px for DiTs with 2x2 "
                    "patches).")),
                io.Int.Input("view_stride", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Distance between neighbouring windows in pixels. 0 = a quarter of the window (the paper's "
                    "128 px for 512 px windows, 256 px for 1024). Smaller: more overlap, better blending, more "
                    "model calls.")),
                io.Int.Input("cross_count", default=2, min=1, max=16, tooltip=(
                    "Cross Sampling's c: the number of interleaved window groups; step i uses group i mod c. "
                    "1 switches Cross Sampling off. Paper: 2.")),
                io.Int.Input("cross_stride", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Shift between groups in pixels. 0 = view_stride / cross_count (paper).")),
                io.Boolean.Input("wrap_around", default=False, tooltip=(
                    "360-degree panorama: windows run over the right edge into the left, so both ends join "
                    "without a seam.")),
                io.Combo.Input("blend", options=list(BLENDS), default="mean", optional=True, tooltip=(
                    "How overlapping windows are merged. mean: the plain average (MultiDiffusion). feathered: each "
                    "window fades out over its overlap with the next, so that no window edge leaves a step; "
                    "helps most at few steps (LCM, Turbo, Lightning).")),
            ],
            outputs=[WindowPlanType.Output(display_name="windows",
                                           tooltip="The window plan for the panorama sampler or model patch.")],
        )

    @classmethod
    def execute(cls, window_size, view_stride, cross_count, cross_stride, wrap_around, blend="mean") -> io.NodeOutput:
        settings = WindowSettings(window_size, view_stride, cross_count, cross_stride, wrap_around, blend=blend)
        # Pixels until a sampler puts them on its model's grid.  Checked now on
        # the finest grid of any family (8 px tokens), again on the model's.
        validate_plan(on_grid(settings, LatentGrid()))
        return io.NodeOutput(settings)


class PanoramaShiftedWindows(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaShiftedWindows",
            display_name="Panorama Windows (Shifted, SpotDiffusion)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "spotdiffusion", "spot diffusion", "shifted windows", "fast", "window size",
                            "tiles", "360", "wrap around"],
            description=("Plans windows that move by a new offset every step (SpotDiffusion): no pixel stays on a "
                         "window edge, so the windows need not overlap, which costs about one model call per "
                         "window-sized area per step instead of MultiDiffusion's four or more. Works with Crop "
                         "Fusion, wrap-around and layout guidance (MSD)."),
            inputs=[
                io.Int.Input("window_size", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Window size in pixels. 0 = the model's native size (512 for SD1.5, 1024 for SDXL/SD3/Flux...). "
                    "For a 360 LoRA, the whole width of the image it was trained on (one window, turned around the "
                    "circle every step).")),
                io.Int.Input("view_stride", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Distance between neighbouring windows in pixels. 0 = the window size (SpotDiffusion: windows "
                    "side by side, no overlap). Smaller adds overlap: more model calls, softer joins.")),
                io.Combo.Input("shift", options=["golden", "random"], default="golden", tooltip=(
                    "How the windows move each step. golden: steps of the golden ratio times the stride, spread "
                    "evenly over the stride within a few steps and far apart from one step to the next, the same "
                    "every run. random: uniform offsets drawn from the "
                    "seed below (the SpotDiffusion paper).")),
                io.Int.Input("shift_seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="The seed of the random shifts (shift = random only)."),
                io.Boolean.Input("wrap_around", default=False, tooltip=(
                    "360-degree panorama: windows run over the right edge into the left and move around the "
                    "circle, so both ends join without a seam, at any width.")),
                io.Combo.Input("blend", options=list(BLENDS), default="mean", optional=True, tooltip=(
                    "How overlapping windows are merged. mean: the plain average (MultiDiffusion). feathered: each "
                    "window fades out over its overlap with the next, so that no window edge leaves a step; "
                    "helps most at few steps (LCM, Turbo, Lightning).")),
            ],
            outputs=[WindowPlanType.Output(display_name="windows",
                                           tooltip="The window plan for the panorama sampler or model patch.")],
        )

    @classmethod
    def execute(cls, window_size, view_stride, shift, shift_seed, wrap_around, blend="mean") -> io.NodeOutput:
        settings = WindowSettings(window_size, view_stride, 1, 0, wrap_around, shift, shift_seed, blend)
        validate_plan(on_grid(settings, LatentGrid()))
        return io.NodeOutput(settings)


class PanoramaSphereWindows(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaSphereWindows",
            display_name="Panorama Windows (Sphere)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "360", "sphere", "spherediff", "equirectangular", "zenith", "nadir", "poles",
                            "vr", "perspective views", "skybox"],
            description=("Samples a 360 panorama through perspective views of the sphere instead of crops of the "
                         "equirectangular latent (SphereDiff): every view, the ones looking straight up and down "
                         "too, is an ordinary picture for the model, so the zenith and the nadir come out as in a "
                         "photo, not pinched, with any model and no 360 LoRA. Takes a 2:1 latent; needs a latent "
                         "about 2.75 windows high (1408x2816 px for SD1.5 at 512 px views), or says what to change."),
            inputs=[
                io.Int.Input("window_size", default=0, min=0, max=MAX_RESOLUTION, step=8, tooltip=(
                    "Size of each square view in pixels. 0 = the model's native size (512 for SD1.5, 1024 for "
                    "SDXL/Flux). A smaller view lets a smaller 360 keep the model's noise (the node says when).")),
                io.Float.Input("fov", default=0.0, min=0.0, max=FOV_RANGE[1], step=1.0, tooltip=(
                    f"Field of view of each view in degrees ({FOV_RANGE[0]:.0f} to {FOV_RANGE[1]:.0f}). "
                    f"0 = {DEFAULT_FOV:.0f}, a normal wide-angle photo. Narrower views need more of them and a "
                    f"larger latent; wider ones stretch their corners.")),
                io.Float.Input("overlap", default=0.25, min=0.0, max=0.49, step=0.01, tooltip=(
                    "How much of each view's frame is shared with its neighbours and faded out towards the edge. "
                    "More overlap: more views, softer joins.")),
                io.Int.Input("view_count", default=0, min=0, max=MAX_VIEWS, tooltip=(
                    "Number of views, spread from the zenith to the nadir on a spiral. 0 = as many as cover the "
                    "sphere with the overlap (16 at 90 degrees). Too few to cover the sphere is refused, naming "
                    "the directions left out.")),
                io.Combo.Input("rotation", options=list(ROTATIONS), default="golden", tooltip=(
                    "How the whole set of views turns about the vertical axis between steps, so that no "
                    "direction stays on a view's edge. golden: a new turn every step (golden-ratio offsets). "
                    "alternate: cross_count sets of views used in turn (Cross Sampling's idea). none: fixed.")),
                io.Int.Input("cross_count", default=2, min=1, max=16, tooltip=(
                    "rotation = alternate only: the number of turned view sets used in turn.")),
            ],
            outputs=[WindowPlanType.Output(display_name="windows", tooltip=(
                "Sphere views for KSampler (Panorama) or Sample as Panorama (model patch), with a 2:1 latent."))],
        )

    @classmethod
    def execute(cls, window_size, fov, overlap, view_count, rotation, cross_count) -> io.NodeOutput:
        settings = SphereSettings(window_size, fov, overlap, view_count, rotation, cross_count)
        validate_sphere(settings)
        return io.NodeOutput(settings)


class PanoramaRopePositions(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaRopePositions",
            display_name="Panorama Window Positions (RoPE)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "rope", "positions", "dit", "flux", "position embedding", "global positions"],
            description=("For DiTs with rotary position embeddings (Flux, Flux.2, Z-Image, ERNIE-Image): each "
                         "panorama window sees its place in the whole panorama as its token positions, instead of "
                         "starting at 0 like a separate image. Windows then run one per model call. Off unless this "
                         "node is in the graph; not measured on trained DiT weights."),
            inputs=[io.Model.Input("model", tooltip=(
                "The DiT to sample panoramas with (before or after Sample as Panorama (model patch), or into "
                "KSampler (Panorama)). UNets and DiTs whose ComfyUI code takes no RoPE offsets are refused."))],
            outputs=[io.Model.Output(tooltip="The model, its panorama windows placed by RoPE position.")],
        )

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(with_rope_positions(model))


def optional_inputs() -> list:
    return [WindowPlanType.Input("windows", optional=True, tooltip=(
                "A window plan from Panorama Windows (Cross Sampling). Without one: native-size windows, the "
                "paper's view stride, c = 2.")),
            MultiScaleType.Input("multiscale", optional=True, tooltip=(
                "Panorama Layout Guidance (MSD): a low-resolution pass guides every window, for panoramas larger "
                "than the model in both directions."))]


class MultiScaleGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="MultiScaleGuidance",
            display_name="Panorama Layout Guidance (MSD)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "msd", "multi-scale diffusion", "multiscale", "layout", "2d panorama",
                            "large image"],
            description=("Multi-Scale Diffusion: each step, a lower-resolution MultiDiffusion pass sets the layout "
                         "and every full-resolution window takes one gradient step (through the model) towards it, "
                         "so panoramas extended in both directions stay one coherent scene. About 4x the model "
                         "time."),
            inputs=[
                io.Int.Input("levels", default=2, min=1, max=5, tooltip=(
                    "Resolution levels S: 2 guides the panorama with a half-resolution pass, 3 adds a "
                    "quarter-resolution one. 1 switches guidance off.")),
                io.Float.Input("omega", default=10.0, min=0.0, max=100.0, step=0.5, tooltip=(
                    "Gradient weight: how strongly each window is pulled towards the lower level's layout. "
                    "Paper: 10; 0 is plain MultiDiffusion; 20 and more can collapse the image.")),
                io.Combo.Input("decay", options=list(DECAYS), default="cosine", tooltip=(
                    "cosine: omega (1 + cos(pi t/T)) / 2, strong early when the layout forms, fading out "
                    "(paper). constant: omega at every step.")),
                io.Combo.Input("downsample", options=list(DOWNSAMPLE_MODES), default="bilinear",
                               tooltip="The down-sampling ds between levels (paper: bilinear)."),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.01, optional=True, tooltip=(
                    "Where the guidance starts, as a fraction of the denoising (ComfyUI's percent, as ControlNet's "
                    "start_percent). 0 = from the first step.")),
                io.Float.Input("end_percent", default=0.1, min=0.0, max=1.0, step=0.01, optional=True, tooltip=(
                    "Where it ends. The layout forms in the first steps: 0.1 guides only those, which keeps the "
                    "layout as well as guiding every step (measured, see the README) at a fraction of the cost; "
                    "the later steps are plain MultiDiffusion. 1 = every step (the paper; the only choice "
                    "before 0.5).")),
                io.Boolean.Input("reuse_prediction", default=False, optional=True, tooltip=(
                    "Step each guided window from the prediction its gradient pass already made, instead of "
                    "predicting again after the gradient step (the paper). At the high noise of the first steps "
                    "the two agree closely; saves one of a guided window's three model passes. Keep off when "
                    "guiding late steps.")),
            ],
            outputs=[MultiScaleType.Output(display_name="multiscale", tooltip=(
                "Multi-Scale Diffusion settings for the panorama sampler or model patch."))],
        )

    @classmethod
    def execute(cls, levels, omega, decay, downsample, start_percent=0.0, end_percent=0.1,
                reuse_prediction=False) -> io.NodeOutput:
        settings = MultiScaleSettings(levels=levels, omega=omega, decay=decay, downsample=downsample,
                                      start_percent=start_percent, end_percent=end_percent,
                                      reuse_prediction=reuse_prediction)
        validate_multiscale(settings)
        return io.NodeOutput(settings)


DEFAULT_PLAN = WindowSettings(cross_count=2)


def check_noise_mask(mask) -> None:
    """A latent's noise mask is (height, width), (batch, height, width) or,
    from Set Latent Noise Mask, (batch, 1, height, width); four axes with
    more than one channel are an image where the mask belongs, which
    ComfyUI would stretch into a wrong mask without a word."""
    if isinstance(mask, torch.Tensor) and mask.ndim == 4 and mask.shape[1] != 1:
        raise ValueError(f"latent_image carries a noise mask of shape {tuple(mask.shape)}, an image where a mask "
                         f"(batch, height, width) belongs: convert it with 'Convert Image to Mask' before "
                         f"'Set Latent Noise Mask'")


class TwinDiffusionModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="TwinDiffusionModel",
            display_name="Sample as Panorama (model patch)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "model patch", "tiled sampling", "crop fusion", "360"],
            description=("Patches a model so that every sampler (KSampler, KSamplerAdvanced, SamplerCustomAdvanced) "
                         "samples the latent as a TwinDiffusion panorama: overlapping windows with Crop Fusion and "
                         "Cross Sampling, or plain MultiDiffusion. Regional prompts, ControlNet and GLIGEN are cut "
                         "per window."),
            inputs=[
                io.Model.Input("model", tooltip="The model to patch."),
                *fusion_inputs(),
                *optional_inputs(),
                io.Sigmas.Input("schedule", optional=True, tooltip=(
                    "Only for sampling in stages (KSamplerAdvanced with start/end steps, SplitSigmas): the sigmas "
                    "of the whole run, e.g. from BasicScheduler with the samplers' model, scheduler and steps. "
                    "tau and Cross Sampling then count the steps of the whole run, so the stages give what one "
                    "run gives. Without it a stage counts its own steps (about 1 % off one run; the console says "
                    "so). Leave it empty when one sampler takes all steps.")),
            ],
            outputs=[io.Model.Output(tooltip="The model, sampling any latent as a panorama of windows.")],
        )

    @classmethod
    def execute(cls, model, mode, lam, tau, view_batch_size, windows=None, multiscale=None,
                schedule=None) -> io.NodeOutput:
        settings = fusion_settings(mode, lam, tau, view_batch_size)
        if schedule is not None and (schedule.ndim != 1 or len(schedule) < 2):
            raise ValueError(f"schedule has shape {tuple(schedule.shape)}: connect the sigmas of the whole run "
                             f"(BasicScheduler), at least one step")
        whole = None if schedule is None else schedule.tolist()
        return io.NodeOutput(patch_model(model, windows or DEFAULT_PLAN, settings, multiscale, whole))


class TwinCropFusionSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="TwinCropFusionSampler",
            display_name="KSampler (Panorama)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "ksampler", "panorama sampler", "crop fusion", "360", "equirectangular"],
            description=("KSampler for panoramas with TwinDiffusion: overlapping native-size windows, Crop Fusion "
                         "(each window pulled towards its fused neighbours for the first tau of the steps) and "
                         "Cross Sampling (interleaved window groups). mode = multidiffusion gives the baseline."),
            inputs=[
                io.Model.Input("model", tooltip="The model used for denoising the panorama."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="The random seed used for creating the noise."),
                io.Int.Input("steps", default=50, min=1, max=10000, tooltip="Number of denoising steps."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler",
                               tooltip="Any ComfyUI sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="normal",
                               tooltip="Any ComfyUI scheduler."),
                io.Conditioning.Input("positive", tooltip="What the panorama should show."),
                io.Conditioning.Input("negative", tooltip="What it should not show."),
                io.Latent.Input("latent_image", tooltip="An Empty Panorama Latent, or an encoded image for img2img."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Below 1 keeps part of the input latent (img2img)."),
                *fusion_inputs(),
                *optional_inputs(),
            ],
            outputs=[io.Latent.Output(tooltip="The denoised panorama latent.")],
        )

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                denoise, mode, lam, tau, view_batch_size, windows=None, multiscale=None) -> io.NodeOutput:
        check_latent(model, latent_image["samples"])
        check_noise_mask(latent_image.get("noise_mask"))
        settings = fusion_settings(mode, lam, tau, view_batch_size)
        patched = patch_model(model, windows or DEFAULT_PLAN, settings, multiscale, one_run=True)
        return io.NodeOutput(*comfy_nodes.common_ksampler(patched, seed, steps, cfg, sampler_name, scheduler,
                                                          positive, negative, latent_image, denoise=denoise))
