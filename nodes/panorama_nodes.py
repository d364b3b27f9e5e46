"""Panorama nodes: thin classes over ``fusion`` and the adapter."""

from __future__ import annotations

import torch

import comfy.model_management
import comfy.samplers
import nodes as comfy_nodes  # ComfyUI's top-level module, not this package

from ..fusion import (FusionSettings, LatentGrid, MultiScaleSettings, WindowSettings, on_grid, validate_multiscale,
                      validate_plan)
from ..fusion.multiscale import DECAYS, DOWNSAMPLE_MODES
from .adapter import check_latent, latent_grid, patch_model

CATEGORY = "sampling/panorama"
WINDOW_PLAN = "PANORAMA_WINDOWS"
MULTISCALE = "PANORAMA_MULTISCALE"
MAX_RESOLUTION = comfy_nodes.MAX_RESOLUTION
MODES = ["twindiffusion", "twindiffusion_feathered", "multidiffusion"]


def fusion_inputs() -> dict:
    """The TwinDiffusion settings shared by the sampler and the model patch."""
    return {
        "mode": (MODES, {"default": "twindiffusion", "tooltip":
                 "twindiffusion: Crop Fusion pulls each window towards its already-fused left and upper "
                 "neighbours (the paper). twindiffusion_feathered: the same, with the neighbour's weight "
                 "fading out across the overlap, which avoids a step where the neighbour ends (not in the "
                 "paper; fewer seams on the reference model). multidiffusion: plain averaging of "
                 "overlapping windows, for comparison."}),
        "lam": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1000.0, "step": 0.05, "tooltip":
                "Crop Fusion's lambda: weight of a window's own prediction against its neighbours' on "
                "their overlap. Paper: 1. Larger is closer to MultiDiffusion."}),
        "tau": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05, "tooltip":
                "Fraction of the steps (from the start) with Crop Fusion; plain merging after. Paper: 0.5. "
                "0 gives MultiDiffusion."}),
        "view_batch_size": ("INT", {"default": 4, "min": 1, "max": 256, "tooltip":
                            "Windows evaluated per model call. Larger is faster on a big GPU and uses more memory."}),
    }


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


class PanoramaLatent:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model the panorama is for: sets the latent's channels and how many "
                                           "pixels one latent pixel covers (4 channels at 8 px for SD1.x/SD2.x/SDXL, "
                                           "16 at 8 px for SD3/Flux/Qwen-Image, 64 at 32 px for HunyuanImage 2.1)."}),
            "width": ("INT", {"default": 2048, "min": 64, "max": MAX_RESOLUTION, "step": 8, "tooltip":
                              "Panorama width in pixels, a multiple of the model's token: 8 px for SD, 16 for "
                              "SD3/Flux and other DiTs with 2x2 patches, 32 for HunyuanImage 2.1."}),
            "height": ("INT", {"default": 512, "min": 64, "max": MAX_RESOLUTION, "step": 8, "tooltip":
                               "Panorama height in pixels, a multiple of the model's token (as width)."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                   "tooltip": "Number of panoramas, each with its own noise."}),
        }}

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("An empty panorama latent for the panorama samplers.",)
    FUNCTION = "generate"
    CATEGORY = CATEGORY
    DESCRIPTION = "An empty latent of panorama size with the channel count of the connected model."

    def generate(self, model, width, height, batch_size=1):
        grid = latent_grid(model)
        return (empty_latent(model, batch_size, grid.to_latent(height, "height"), grid.to_latent(width, "width")),)


class CrossSamplingScheduler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "window_size": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8, "tooltip":
                            "Window size in pixels. 0 = the model's native size (512 for SD1.5/SD2-base, "
                            "768 for SD2-v, 1024 for SDXL/SD3/Flux/Chroma/HiDream/Lumina 2, 1328 for Qwen-Image, "
                            "2048 for HunyuanImage 2.1). Sizes and strides are whole tokens of the model "
                            "(8 px for SD, 16 px for DiTs with 2x2 patches)."}),
            "view_stride": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8, "tooltip":
                            "Distance between neighbouring windows in pixels. 0 = a quarter of the window "
                            "(the paper's 128 px for 512 px windows, 256 px for 1024). Smaller: more "
                            "overlap, better blending, more model calls."}),
            "cross_count": ("INT", {"default": 2, "min": 1, "max": 16, "tooltip":
                            "Cross Sampling's c: the number of interleaved window groups; step i uses group "
                            "i mod c. 1 switches Cross Sampling off. Paper: 2."}),
            "cross_stride": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 8, "tooltip":
                             "Shift between groups in pixels. 0 = view_stride / cross_count (paper)."}),
            "wrap_around": ("BOOLEAN", {"default": False, "tooltip":
                            "360-degree panorama: windows run over the right edge into the left, so both "
                            "ends join without a seam."}),
        }}

    RETURN_TYPES = (WINDOW_PLAN,)
    RETURN_NAMES = ("windows",)
    OUTPUT_TOOLTIPS = ("The window plan for the panorama sampler or model patch.",)
    FUNCTION = "plan"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Plans the windows of a panorama: size, view stride and TwinDiffusion's Cross Sampling "
                   "(c groups shifted by the cross stride, used in turn), optionally wrapping around for 360 degrees.")

    def plan(self, window_size, view_stride, cross_count, cross_stride, wrap_around):
        settings = WindowSettings(window_size, view_stride, cross_count, cross_stride, wrap_around)
        # Pixels until a sampler puts them on its model's grid.  Checked now on
        # the finest grid of any family (8 px tokens), again on the model's.
        validate_plan(on_grid(settings, LatentGrid()))
        return (settings,)


def _optional_inputs() -> dict:
    return {"windows": (WINDOW_PLAN, {"tooltip": "A window plan from Cross Sampling Scheduler. Without one: "
                                                 "native-size windows, the paper's view stride, c = 2."}),
            "multiscale": (MULTISCALE, {"tooltip": "Multi-Scale Guidance: a low-resolution pass guides every "
                                                   "window, for panoramas larger than the model in both "
                                                   "directions."})}


class MultiScaleGuidance:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "levels": ("INT", {"default": 2, "min": 1, "max": 5, "tooltip":
                       "Resolution levels S: 2 guides the panorama with a half-resolution pass, 3 adds a "
                       "quarter-resolution one. 1 switches guidance off."}),
            "omega": ("FLOAT", {"default": 10.0, "min": 0.0, "max": 100.0, "step": 0.5, "tooltip":
                      "Gradient weight: how strongly each window is pulled towards the lower level's layout. "
                      "Paper: 10; 0 is plain MultiDiffusion; 20 and more can collapse the image."}),
            "decay": (list(DECAYS), {"default": "cosine", "tooltip":
                      "cosine: omega (1 + cos(pi t/T)) / 2, strong early when the layout forms, fading out "
                      "(paper). constant: omega at every step."}),
            "downsample": (list(DOWNSAMPLE_MODES), {"default": "bilinear", "tooltip":
                           "The down-sampling ds between levels (paper: bilinear)."}),
        }}

    RETURN_TYPES = (MULTISCALE,)
    RETURN_NAMES = ("multiscale",)
    OUTPUT_TOOLTIPS = ("Multi-Scale Diffusion settings for the panorama sampler or model patch.",)
    FUNCTION = "configure"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Multi-Scale Diffusion: each step, a lower-resolution MultiDiffusion pass sets the layout and "
                   "every full-resolution window takes one gradient step (through the model) towards it, so "
                   "panoramas extended in both directions stay one coherent scene. About 4x the model time.")

    def configure(self, levels, omega, decay, downsample):
        settings = MultiScaleSettings(levels=levels, omega=omega, decay=decay, downsample=downsample)
        validate_multiscale(settings)
        return (settings,)


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


class TwinDiffusionModel:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL", {"tooltip": "The model to patch."}), **fusion_inputs()},
                "optional": {**_optional_inputs(), "schedule": ("SIGMAS", {"tooltip":
                             "Only for sampling in stages (KSamplerAdvanced with start/end steps, SplitSigmas): "
                             "the sigmas of the whole run, e.g. from BasicScheduler with the samplers' model, "
                             "scheduler and steps. tau and Cross Sampling then count the steps of the whole run, "
                             "so the stages give what one run gives. Without it a stage counts its own steps "
                             "(about 1 % off one run; the console says so). Leave it empty when one sampler "
                             "takes all steps."})}}

    RETURN_TYPES = ("MODEL",)
    OUTPUT_TOOLTIPS = ("The model, sampling any latent as a panorama of windows.",)
    FUNCTION = "patch"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Patches a model so that every sampler (KSampler, KSamplerAdvanced, SamplerCustomAdvanced) "
                   "samples the latent as a TwinDiffusion panorama: overlapping windows with Crop Fusion and "
                   "Cross Sampling, or plain MultiDiffusion. Regional prompts, ControlNet and GLIGEN are cut "
                   "per window.")

    def patch(self, model, mode, lam, tau, view_batch_size, windows=None, multiscale=None, schedule=None):
        settings = fusion_settings(mode, lam, tau, view_batch_size)
        if schedule is not None and (schedule.ndim != 1 or len(schedule) < 2):
            raise ValueError(f"schedule has shape {tuple(schedule.shape)}: connect the sigmas of the whole run "
                             f"(BasicScheduler), at least one step")
        whole = None if schedule is None else schedule.tolist()
        return (patch_model(model, windows or DEFAULT_PLAN, settings, multiscale, whole),)


class TwinCropFusionSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "The model used for denoising the panorama."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                                 "tooltip": "The random seed used for creating the noise."}),
                "steps": ("INT", {"default": 50, "min": 1, "max": 10000, "tooltip": "Number of denoising steps."}),
                "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01,
                                  "tooltip": "Classifier-free guidance scale."}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"default": "euler",
                                 "tooltip": "Any ComfyUI sampler."}),
                "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"default": "normal",
                              "tooltip": "Any ComfyUI scheduler."}),
                "positive": ("CONDITIONING", {"tooltip": "What the panorama should show."}),
                "negative": ("CONDITIONING", {"tooltip": "What it should not show."}),
                "latent_image": ("LATENT", {"tooltip": "A Panorama Latent, or an encoded image for img2img."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "Below 1 keeps part of the input latent (img2img)."}),
                **fusion_inputs(),
            },
            "optional": _optional_inputs(),
        }

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The denoised panorama latent.",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY
    DESCRIPTION = ("KSampler for panoramas with TwinDiffusion: overlapping native-size windows, Crop Fusion "
                   "(each window pulled towards its fused neighbours for the first tau of the steps) and "
                   "Cross Sampling (interleaved window groups). mode = multidiffusion gives the baseline.")

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
               denoise, mode, lam, tau, view_batch_size, windows=None, multiscale=None):
        check_latent(model, latent_image["samples"])
        check_noise_mask(latent_image.get("noise_mask"))
        settings = fusion_settings(mode, lam, tau, view_batch_size)
        patched = patch_model(model, windows or DEFAULT_PLAN, settings, multiscale, one_run=True)
        return comfy_nodes.common_ksampler(patched, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                           latent_image, denoise=denoise)
