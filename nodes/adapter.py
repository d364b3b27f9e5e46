"""The ComfyUI adapter: the panorama's window loop, where ComfyUI evaluates
conditioning.

ComfyUI's ``calc_cond_batch`` turns the latent being sampled and the
sampler's conds lists (cond, uncond, ...) into one denoised prediction per
list.  A ``context_handler`` in the model options takes that call over, as
ComfyUI's own context windows do along time; PanoramaContextHandler does it
along space.  Per batch of windows it cuts the latent, resizes the
conditioning to the windows (``window_conds``) and hands both back to
ComfyUI's ``calc_cond_batch`` -- so areas, masks, ControlNet, GLIGEN, hooks,
CALC_COND_BATCH and unet wrappers of other nodes all run per window batch --
then fuses and merges the windows with ``fusion`` (Crop Fusion, Cross
Sampling, Multi-Scale Diffusion).

Two sampling wrappers of the patched model frame each run: OUTER_SAMPLE
checks the latent and fixes where the run lies on the schedule, and
PREPARE_SAMPLING sizes ComfyUI's model loading for one window batch instead
of the whole panorama.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from typing import Sequence

import torch

import comfy.context_windows
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
from comfy.patcher_extension import WrappersMP

from ..fusion import (FusionSettings, LatentGrid, MultiScaleDenoiser, MultiScaleSettings, PanoramaDenoiser, SpherePlan,
                      Views, WindowPlan, WindowSettings, latent_plan, plan_views, schedule_step, shifts_circle,
                      validate_multiscale)
from .host_versions import DifferentiableKernels, takes_rope_offsets
from .model_hooks import check_model_hooks
from .multigpu import device_lanes, refuse_multiscale_on_multigpu
from .window_conds import WindowBatch, WindowConditioning, refuse_uncut_on_video

WRAPPER_KEY = "comfyui_panorama_diffusion"
# transformer_options key set by Panorama Window Positions (RoPE): each
# window's RoPE positions start where it sits in the panorama.
ROPE_POSITIONS = "panorama_rope_positions"
# model_options key holding the pack's handler beside ``context_handler``: a
# Context Windows node connected after the panorama patch replaces
# ``context_handler``, and the run takes its time windows from there.
PANORAMA_HANDLER = "panorama_context_handler"


# Image pixels per latent pixel where the latent format does not say: newer
# ComfyUI declares ``spacial_downscale_ratio`` on latent formats, v0.3.64 does
# not (its own empty-latent nodes for these families divide by these).
PIXELS_PER_LATENT = {"HunyuanImage21": 32, "HunyuanImage21Refiner": 16, "ChromaRadiance": 1, "Wan22": 16}

# Training size in image pixels, by ComfyUI's model config class (found
# along the class' bases, so derived configs inherit it); configs do not
# record it.  Unknown families fall back to 1024 px (DiTs) or 512 px.
NATIVE_PIXELS = {
    "SD15": 512, "SD20": 512, "SDXL": 1024, "SDXLRefiner": 1024, "SD3": 1024, "AuraFlow": 1024,
    "PixArtAlpha": 512, "PixArtSigma": 1024, "HunyuanDiT": 1024, "Flux": 1024, "Chroma": 1024,
    "HiDream": 1024, "Lumina2": 1024, "QwenImage": 1328, "HunyuanImage21": 2048, "Omnigen2": 1024,
    # families of newer ComfyUI (1 MP training / default sizes)
    "Flux2": 1024, "ZImage": 1024, "ZImagePixelSpace": 1024, "LongCatImage": 1024, "Kandinsky5Image": 1024,
    "Anima": 1024, "ErnieImage": 1024, "Krea2": 1024,
    # video families: the long side of the training size (Wan 2.1 1.3B / 480p: 832x480, Wan 2.2 TI2V 5B:
    # 1280x704), so that a video of the native height gets windows of the native shape
    "WAN21_T2V": 832, "WAN22_T2V": 1280,
}

# Video families whose (B, C, T, H, W) latents the pack cuts along H and W
# (every window keeps all frames), by ComfyUI's exact model class: a variant
# brings conditioning of its own, which is admitted only once it is cut per
# window.
SPATIAL_VIDEO = {"WAN21": "Wan 2.1 / Wan 2.2 14B", "WAN22": "Wan 2.2 TI2V 5B"}
# Variants refused by name, with the conditioning of theirs the pack cannot cut yet.
UNCUT_VIDEO_VARIANTS = {
    "WAN21_Vace": "VACE (WanVaceToVideo's control video and masks)",
    "WAN21_Camera": "camera controls (WanCameraEmbedding / WanCameraImageToVideo)",
    "WAN21_HuMo": "HuMo's audio and reference images",
    "WAN22_S2V": "sound-to-video's audio and pose video",
    "WAN22_Animate": "Wan Animate's pose and face video",
    "WAN_Animate2": "Wan Animate's pose and face video",
    "WAN21_SCAIL": "SCAIL's pose video",
    "WAN21_SCAIL2": "SCAIL's pose video",
    "WAN22_WanDancer": "WanDancer's motion conditioning",
    "WAN21_CausalAR": "causal (autoregressive) rollout",
}
# Every video family ComfyUI runs, by the model class found first along
# the class' bases; image families whose latent format is a video one
# (Qwen-Image, Anima, Krea 2: one frame) come first, so they are not taken
# for video models.
VIDEO_FAMILIES = {"WAN21": "Wan", "HunyuanVideo": "HunyuanVideo", "LTXV": "LTX-Video", "LTXAV": "LTX-2",
                  "CosmosVideo": "Cosmos", "CosmosPredict2": "Cosmos Predict2", "GenmoMochi": "Mochi",
                  "Kandinsky5": "Kandinsky 5", "CogVideoX": "CogVideoX"}
IMAGE_FAMILIES = ("QwenImage", "Anima", "Krea2", "Kandinsky5Image", "HunyuanImage21")
# Video families that ComfyUI also runs on image latents (Cosmos Predict2's text-to-image models).
VIDEO_FAMILIES_TAKING_IMAGES = ("CosmosPredict2",)
VIDEO_LATENT_NODES = ("ComfyUI's 'EmptyHunyuanLatentVideo' (Wan 2.1 / 2.2 14B), 'Wan22ImageToVideoLatent' "
                      "(Wan 2.2 5B) or 'WanImageToVideo'")


def by_class(table: dict, obj, default=None):
    for cls in type(obj).__mro__:
        if cls.__name__ in table:
            return table[cls.__name__]
    return default


def pixels_per_latent(latent_format) -> int:
    """The first of the format's own classes that declares its ratio, or that
    the table knows, says.  The base ``LatentFormat`` is skipped: from v0.11
    it declares 8 for every family that declares nothing itself."""
    for cls in type(latent_format).__mro__:
        if cls in (comfy.latent_formats.LatentFormat, object):
            break
        if "spacial_downscale_ratio" in vars(cls):
            return int(cls.spacial_downscale_ratio)
        if cls.__name__ in PIXELS_PER_LATENT:
            return PIXELS_PER_LATENT[cls.__name__]
    return 8


# Where configs / diffusion models keep their patch (Cosmos / Anima:
# patch_spatial, Krea 2: patch); the first found is used.
PATCH_NAMES = ("patch_size", "patch_spatial", "patch")


def token_patch(base) -> int:
    """Latent pixels per token along the image axes (1 for UNets)."""
    config = base.model_config.unet_config
    found = [config[name] for name in PATCH_NAMES if config.get(name)]
    found += [getattr(base.diffusion_model, name) for name in PATCH_NAMES
              if isinstance(getattr(base.diffusion_model, name, None), (int, tuple, list))]
    patch = found[0] if found else 1
    return int(patch[-1] if isinstance(patch, (tuple, list)) else patch)


def native_pixels(base) -> int:
    config = base.model_config
    if config.unet_config.get("input_size"):  # PixArt records its training size in latent pixels
        return config.unet_config["input_size"] * pixels_per_latent(config.latent_format)
    if by_class({"SD20": True}, config, False) and base.model_type == comfy.model_base.ModelType.V_PREDICTION:
        return 768  # SD2.x 768-v
    default = 512 if config.latent_format.latent_channels == 4 else 1024
    return by_class(NATIVE_PIXELS, config, default)


def latent_grid(model) -> LatentGrid:
    """Where the model's latent lies on the image: pixels per latent pixel,
    patch size and native window, read from the model's latent format and
    config."""
    scale = pixels_per_latent(model.get_model_object("latent_format"))
    patch = token_patch(model.model)
    native = max(native_pixels(model.model) // scale // patch * patch, patch)
    return LatentGrid(scale, patch, native)


def is_image(shape) -> bool:
    """An image latent: (B, C, H, W), or one frame (B, C, 1, H, W), the
    shape of families whose latent format is a video one (Qwen-Image)."""
    return len(shape) == 4 or (len(shape) == 5 and shape[2] == 1)


def is_video(shape) -> bool:
    """A video latent: (B, C, T, H, W) with more than one frame."""
    return len(shape) == 5 and shape[2] > 1


def as_frame(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """An image-shaped ``x`` in the layout of ``like`` (adds the frame axis
    back for single-frame latents; a video's windows keep theirs)."""
    return x.unsqueeze(2) if like.ndim == 5 and x.ndim == 4 else x


def video_family(base) -> str | None:
    """The video family of a ComfyUI model (``model.model``), None for an
    image model."""
    for cls in type(base).__mro__:
        if cls.__name__ in IMAGE_FAMILIES:
            return None
        if cls.__name__ in VIDEO_FAMILIES:
            return VIDEO_FAMILIES[cls.__name__]
    return None


def check_video_model(base, name: str = "latent_image") -> None:
    """Refuses, by name, a video model whose video latents the pack cannot
    cut into spatial windows: a variant whose own conditioning it cannot cut
    yet, or a family it does not support yet."""
    cls = type(base).__name__
    if cls in SPATIAL_VIDEO:
        return
    if cls in UNCUT_VIDEO_VARIANTS or isinstance(base, comfy.model_base.WAN21):
        what = UNCUT_VIDEO_VARIANTS.get(cls, f"the conditioning of ComfyUI's {cls}")
        raise ValueError(f"model: {cls} conditions its video with {what}, which the panorama sampler cannot cut "
                         f"into spatial windows yet: use a plain Wan 2.1 / 2.2 text- or image-to-video model for "
                         f"wide video, or sample this model without the panorama patch")
    raise ValueError(f"{name} is a video latent and the model is {video_family(base)} ({cls}), whose videos the "
                     f"panorama sampler does not cut into spatial windows yet (supported: Wan 2.1, Wan 2.2 14B and "
                     f"Wan 2.2 TI2V 5B): sample it without the panorama patch, or use a Wan model for wide video")


def check_latent(model, samples: torch.Tensor, name: str = "latent_image") -> None:
    """Refuses a latent the panorama sampler cannot use, saying which input
    and what to do."""
    latent_format = model.get_model_object("latent_format")
    family = video_family(model.model)
    if is_video(samples.shape) and family is None:
        raise ValueError(f"{name} has shape {tuple(samples.shape)}, a video latent of {samples.shape[2]} frames, "
                         f"but the model ({type(model.model).__name__}) is an image model, which samples image "
                         f"latents (batch, channels, height, width): connect an Empty Panorama Latent for this model "
                         f"or an image encoded with its VAE, or load a video model (Wan) for wide video")
    takes_images = any(cls.__name__ in VIDEO_FAMILIES_TAKING_IMAGES for cls in type(model.model).__mro__)
    if samples.ndim == 4 and family is not None and not takes_images:
        raise ValueError(f"{name} has shape {tuple(samples.shape)}, an image latent, but the model is a video "
                         f"model ({family}), which samples (batch, channels, frames, height, width) latents: make "
                         f"the latent with {VIDEO_LATENT_NODES} at the panorama's width (length 1 for a single "
                         f"frame)")
    if is_video(samples.shape):
        check_video_model(model.model, name)
    elif samples.ndim not in (4, 5) or (samples.ndim == 5 and getattr(latent_format, "latent_dimensions", 2) == 2):
        raise ValueError(f"{name} has shape {tuple(samples.shape)}: the panorama sampler takes image latents "
                         f"(batch, channels, height, width), one frame of a video-shaped latent where the model "
                         f"uses them (Qwen-Image), or the video latents of Wan (batch, channels, frames, height, "
                         f"width); audio latents are not supported: connect a Panorama Latent or an image encoded "
                         f"with this model's VAE")
    channels = latent_format.latent_channels
    if samples.shape[1] != channels and torch.count_nonzero(samples) > 0:
        raise ValueError(f"{name} has {samples.shape[1]} channels but the model expects {channels}: "
                         f"the latent comes from another model family; encode the image with this model's VAE "
                         f"or make a new Empty Panorama Latent for it")
    if not torch.isfinite(samples).all():
        raise ValueError(f"{name} contains NaN or infinite values: check the node that produced it "
                         f"(a VAE in fp16 can overflow; try --fp32-vae or a fresh Empty Panorama Latent)")


def check_conditioning(model, conds: dict, model_options: dict) -> None:
    """Refuses conditioning a run cannot use, naming the input (positive,
    negative...) and what to do: text embeddings of another family's encoder
    where the UNet declares its width (unless a model wrapper may translate
    them), or an image where a mask belongs."""
    config = getattr(getattr(model.model, "model_config", None), "unet_config", None) or {}
    width = config.get("context_dim")
    if ("image_model" in config or not config.get("use_spatial_transformer") or not isinstance(width, int)
            or width <= 1 or "model_function_wrapper" in model_options):
        width = None
    dims = getattr(model.get_model_object("latent_format"), "latent_dimensions", 2)
    for name, entries in conds.items():
        for entry in entries or []:
            text, mask = entry.get("cross_attn"), entry.get("mask")
            if width and isinstance(text, torch.Tensor) and text.ndim == 3 and text.shape[-1] != width:
                raise ValueError(f"{name} holds text embeddings {text.shape[-1]} wide, but the model takes {width}: "
                                 f"the prompt was encoded by another model family's text encoder; encode it with "
                                 f"the CLIP of this model's checkpoint")
            if isinstance(mask, torch.Tensor) and mask.ndim > dims + 1:
                raise ValueError(f"{name} carries a mask of shape {tuple(mask.shape)}, an image where a mask "
                                 f"(batch, height, width) belongs: convert it with 'Convert Image to Mask' before "
                                 f"the conditioning node")


class SchedulePosition:
    """Where a sampling run lies on the schedule whose steps Crop Fusion's
    tau and Cross Sampling's groups count.

    That schedule is the run's own sigmas, or, for a run that is one stage of
    several (KSamplerAdvanced's start/end steps, SplitSigmas), the whole
    schedule the user gave the model patch; the run is found inside it, so
    the stages together take the steps one run would."""

    def __init__(self, run_sigmas: Sequence[float], whole: Sequence[float] | None = None):
        self.run = list(run_sigmas)
        self.whole = list(whole) if whole is not None else self.run
        self.offset = 0 if whole is None else locate_run(self.run, self.whole)

    @property
    def num_steps(self) -> int:
        return len(self.whole) - 1

    def at(self, sigma: float) -> tuple[int, float]:
        """(step on the whole schedule, sigma the sampler steps to next)."""
        run_step = schedule_step(sigma, self.run)
        sigma_next = min(self.run[min(run_step + 1, len(self.run) - 1)], sigma)
        return self.offset + run_step, sigma_next


def locate_run(run: Sequence[float], whole: Sequence[float]) -> int:
    """The step of ``whole`` where ``run`` starts.  A stage's last sigma may
    be 0 where the whole schedule goes on (KSamplerAdvanced's
    force_full_denoise)."""
    def close(a, b):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-8)

    for offset in range(len(whole) - len(run) + 1):
        body = all(close(run[j], whole[offset + j]) for j in range(len(run) - 1))
        if body and (close(run[-1], whole[offset + len(run) - 1]) or run[-1] == 0):
            return offset
    raise ValueError(
        f"the sampler's sigmas ({run[0]:.4g} to {run[-1]:.4g}, {len(run) - 1} steps) are not part of the "
        f"schedule given to the panorama model patch ({whole[0]:.4g} to {whole[-1]:.4g}, {len(whole) - 1} steps): "
        f"connect the sigmas of the whole run (same model, scheduler and steps as the samplers), or disconnect "
        f"'schedule' when one sampler takes all steps")


class PanoramaContextHandler(comfy.context_windows.ContextHandlerABC):
    """Samples any latent as a panorama of windows; ComfyUI calls it through
    ``model_options["context_handler"]`` for every evaluation.  With ``time``
    (ComfyUI's Context Windows, which set the same slot) ComfyUI's handler
    windows the frames and ours each time window in space."""

    def __init__(self, plan: WindowPlan, settings: FusionSettings, multiscale: MultiScaleSettings | None = None,
                 schedule: Sequence[float] | None = None, grid: LatentGrid = LatentGrid(), one_run: bool = False,
                 time: comfy.context_windows.ContextHandlerABC | None = None):
        super().__init__()
        # ComfyUI's time windows (a Context Windows node), outside ours: each time window is cut in space
        self.time = time
        self.grid = grid
        self.one_run = one_run  # a node that always samples all steps itself: never a stage
        self.denoiser = PanoramaDenoiser(plan, settings)
        self.multiscale = None if multiscale is None else MultiScaleDenoiser(self.denoiser, multiscale)
        self.schedule = None if schedule is None else list(schedule)
        self.position: SchedulePosition | None = None
        self.conditioning: WindowConditioning | None = None

    @property
    def plan(self) -> WindowPlan:
        return self.denoiser.plan

    def with_time(self, time) -> "PanoramaContextHandler":
        """This handler's windows inside ComfyUI's time windows ``time``."""
        handler = copy.copy(self)
        handler.time, handler.position, handler.conditioning = time, None, None
        return handler

    def __getattr__(self, name: str):
        # ComfyUI's own wrappers of Context Windows read their handler from model_options["context_handler"]
        # (PREPARE_SAMPLING: dim, context_length; SAMPLER_SAMPLE: freenoise, _apply_freenoise), now this one:
        # they get the time handler's, whatever ComfyUI adds.  Only names this class lacks arrive here.
        time = self.__dict__.get("time")
        if time is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(time, name)

    # -- one sampling run ---------------------------------------------------------

    def begin_run(self, model_patcher, latent: torch.Tensor, sigmas: torch.Tensor, model_options: dict) -> None:
        check_latent(model_patcher, latent)
        check_model_hooks(model_options)
        if self.schedule is None and not self.one_run:
            warn_if_a_stage(sigmas, model_patcher)
        refuse_multiscale_on_multigpu(self.multiscale, model_patcher)  # before ComfyUI loads the device copies
        if self.time is not None:
            check_time_axis(self.time, latent)
        if is_video(latent.shape):
            check_video_run(self.plan, latent, self.multiscale, self.grid)
        if isinstance(self.plan, SpherePlan):
            check_sphere_run(self.plan, latent, self.multiscale, model_options, self.grid)
        elif self.multiscale is not None:
            validate_multiscale(self.multiscale.settings, *latent.shape[-2:], self.plan.window, self.grid.scale)
            sampling = model_patcher.get_model_object("model_sampling")
            settings = self.multiscale.settings
            self.multiscale.guide_between(float(sampling.percent_to_sigma(settings.start_percent)),
                                          float(sampling.percent_to_sigma(settings.end_percent)))
        if isinstance(self.plan, WindowPlan) and self.plan.shift == "none" and shifts_circle(self.plan, latent.shape[-1]):
            logging.info(
                f"Panorama: the 360 panorama ({latent.shape[-1] * self.grid.scale} px wide) fits in one window "
                f"({self.plan.window * self.grid.scale} px), so wrap_around turns it around the circle by a new "
                f"offset every step: the wrap seam never stays at the window's edge (SpotDiffusion on a circle, "
                f"no extra model calls)")
        self.position = SchedulePosition(sigmas.tolist(), self.schedule)
        self.conditioning = WindowConditioning(model_patcher.model)

    def end_run(self) -> None:
        self.position = None
        self.conditioning = None

    def window_batch_shape(self, noise_shape) -> list:
        """The latent batch ComfyUI evaluates at a time: the largest window
        batch, each window carrying the sampler's batch."""
        batch, channels, height, width = noise_shape[0], noise_shape[1], noise_shape[-2], noise_shape[-1]
        views = plan_views(self.plan, height, width)
        if views.covers_whole_latent:
            return list(noise_shape)
        windows = min(self.denoiser.settings.view_batch_size, len(views))
        return [batch * windows, channels, *noise_shape[2:-2], views.window_h, views.window_w]

    # -- ComfyUI's ContextHandlerABC -------------------------------------------------

    def uses_space(self, x_in: torch.Tensor) -> bool:
        if x_in.ndim not in (4, 5):
            return True  # execute refuses it with a message
        fits = x_in.shape[-2] <= self.plan.window and x_in.shape[-1] <= self.plan.window
        return not fits or self.plan.wrap_x  # a 360 in one window is still turned every step

    def should_use_context(self, model, conds, x_in: torch.Tensor, timestep, model_options) -> bool:
        return self.uses_space(x_in) or (
            self.time is not None and self.time.should_use_context(model, conds, x_in, timestep, model_options))

    def get_resized_cond(self, cond_in: list, x_in: torch.Tensor, window: WindowBatch, device=None) -> list:
        return self.conditioning.resize(cond_in, window)

    def execute(self, calc_cond_batch, model, conds: list, x_in: torch.Tensor, timestep: torch.Tensor,
                model_options: dict) -> list:
        """Time outside, space inside: ComfyUI's time handler cuts the frames,
        resizes the conds along time, calls ``each_time_window`` per window
        and fuses the windows with its own schedule and fuse method; each
        time window is sampled in our spatial windows."""
        time = self.time
        if time is None or not time.should_use_context(model, conds, x_in, timestep, model_options):
            return self.execute_space(calc_cond_batch, model, conds, x_in, timestep, model_options)

        def each_time_window(model, conds, x, timestep, model_options, *args, **kwargs):
            def window_batch(*given):  # arguments ComfyUI may add to calc_cond_batch reach every window batch
                return calc_cond_batch(*given, *args, **kwargs)
            if not self.uses_space(x):
                return window_batch(model, conds, x, timestep, model_options)
            # a time window's conds are new entries at every call: their cuts are cached for this call only
            return self.execute_space(window_batch, model, conds, x, timestep, model_options, WindowConditioning(model))

        return time.execute(each_time_window, model, conds, x_in, timestep, model_options)

    def execute_space(self, calc_cond_batch, model, conds: list, x_in: torch.Tensor, timestep: torch.Tensor,
                      model_options: dict, conditioning: WindowConditioning | None = None) -> list:
        if x_in.ndim not in (4, 5):
            raise ValueError(f"the panorama sampler got a latent of shape {tuple(x_in.shape)}: it samples image "
                             f"latents (batch, channels, height, width) and videos (batch, channels, frames, "
                             f"height, width) only")
        # one frame is sampled as an image (Qwen-Image); a video's frames ride along in every window
        latent = x_in.squeeze(2) if x_in.ndim == 5 and is_image(x_in.shape) else x_in
        sigma_now = float(timestep.flatten()[0])
        position, conditioning = self.position, conditioning if conditioning is not None else self.conditioning
        if position is None:  # called outside a sampler run (no OUTER_SAMPLE): state for this call only
            sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
            position = SchedulePosition(sigmas.tolist() if sigmas is not None else [sigma_now, 0.0], self.schedule)
            conditioning = WindowConditioning(model)
        step, sigma_next = position.at(sigma_now)
        num_steps = position.num_steps
        live = [i for i, cond in enumerate(conds) if cond is not None]
        live_conds = [conds[i] for i in live]
        if latent.ndim == 5:
            refuse_uncut_on_video(live_conds, [("positive", "negative")[i] if i < 2 else f"conds[{i}]" for i in live])
        out = [torch.zeros_like(x_in) for _ in conds]  # what ComfyUI gives a list that is None
        if not live:
            return out
        lanes = device_lanes(self.multiscale, model, live_conds, timestep, model_options)
        if lanes is not None:  # ComfyUI's MultiGPU: window batches spread over its devices (nodes/multigpu.py)
            calc_cond_batch = lanes.calc_cond_batch(calc_cond_batch)
        full, batch = tuple(latent.shape[-2:]), latent.shape[0]

        global_positions = bool(model_options.get("transformer_options", {}).get(ROPE_POSITIONS))

        def model_fn(x_windows, sigma_windows, views: Views, ids, branch=None):
            comfy.model_management.throw_exception_if_processing_interrupted()
            window = WindowBatch(views, tuple(ids), full, batch)
            chosen = live_conds if branch is None else [live_conds[branch]]
            window_conds = [conditioning.resize(cond, window) for cond in chosen]
            options = model_options
            if torch.is_grad_enabled():  # Multi-Scale's gradient pass
                window_conds = [[keep_grad_path_entry(entry) for entry in cond] for cond in window_conds]
                sigma_windows = keep_grad_path(sigma_windows)
                options = grad_options
            if global_positions:
                options = at_window_position(options, *views.origin(ids[0]), self.grid.patch)
            out = calc_cond_batch(model, window_conds, as_frame(x_windows, x_in), sigma_windows, options)
            out = [prediction.squeeze(2) if latent.ndim < x_in.ndim else prediction for prediction in out]
            # list of K (n*B, ...) -> (n*K*B, ...): each window with its branches
            return torch.stack(out).unflatten(1, (len(ids), batch)).transpose(0, 1).flatten(0, 2)

        def batches(views: Views, size: int):
            # RoPE offsets are one per model call: one window per call
            return conditioning.batches(live_conds, views, 1 if global_positions else size, full, batch)

        controls = control_models(live_conds) if self.multiscale is not None else []
        grad_options = autograd_safe_controls(model_options) if controls else model_options
        if self.multiscale is None:
            denoised = self.denoiser(model_fn, latent, timestep, step, num_steps, batches,
                                     None if lanes is None else lanes.run)
        else:
            gradient_pass = GradientPass([model, *controls])  # model_sampling too
            denoised = self.multiscale(model_fn, latent, timestep, step, num_steps, sigma_next, gradient_pass,
                                       batches)
        for i, prediction in zip(live, denoised.chunk(len(live))):
            out[i] = as_frame(prediction, x_in)
        return out


def check_video_run(plan, latent: torch.Tensor, multiscale, grid: LatentGrid) -> None:
    """Refuses, by name, what spatial windows on a video cannot run yet, and
    a window larger than the video (which would sample it in one window,
    smaller than the one asked for)."""
    height, width = latent.shape[-2:]
    if isinstance(plan, SpherePlan):
        raise ValueError("windows: sphere views (Panorama Windows (Sphere)) are not supported on video latents yet: "
                         "use Panorama Windows (Cross Sampling) or (Shifted) with wrap_around for a 360 video")
    if multiscale is not None:
        raise ValueError("multiscale: Panorama Layout Guidance (MSD) is not supported on video latents yet: "
                         "disconnect it (Crop Fusion, Cross Sampling and shifted windows work on video)")
    if plan.window > height and plan.window > width:
        px = grid.scale
        raise ValueError(f"window_size {plan.window * px} px is larger than the video ({width * px}x{height * px} "
                         f"px), which would be sampled as one window smaller than asked: set window_size to at most "
                         f"{max(height, width) * px} px (0 picks the model's native {grid.native * px} px), or make "
                         f"the video wider than the window")


def is_time_windows(handler) -> bool:
    """ComfyUI's Context Windows (Manual / Wan / LTXV...): index lists along one axis of the latent."""
    return isinstance(handler, comfy.context_windows.IndexListContextHandler)


def check_time_axis(time, latent: torch.Tensor) -> None:
    """Refuses, by name, Context Windows along an axis the panorama windows cut."""
    axis = getattr(time, "dim", 0)
    if axis >= latent.ndim - 2:
        name = "height" if axis == latent.ndim - 2 else "width"
        raise ValueError(f"Context Windows: dim {axis} is the {name} of this {tuple(latent.shape)} latent, which the "
                         f"panorama windows already cut: set dim 2 (the frames of a video latent) on 'Context Windows "
                         f"(Manual)' or use 'WAN Context Windows (Manual)', or remove the Context Windows node")


def check_sphere_run(plan: SpherePlan, latent: torch.Tensor, multiscale, model_options: dict,
                     grid: LatentGrid) -> None:
    """Refuses, by name, what sphere views cannot run: a latent that is not
    a whole 360, methods defined on crops of the latent."""
    plan.check(*latent.shape[-2:], grid.scale)
    if multiscale is not None:
        raise ValueError("multiscale: Panorama Layout Guidance (MSD) guides crops of the latent with a half-size crop "
                         "of the lower level, which sphere views do not have; disconnect it (sphere views keep the "
                         "layout of a 360 by themselves: every view sees a whole field of view of the sphere)")
    if model_options.get("transformer_options", {}).get(ROPE_POSITIONS):
        raise ValueError("model: Panorama Window Positions (RoPE) places crops of the panorama by their row and "
                         "column; a sphere view has no place of that kind: remove the node for sphere views")


def at_window_position(model_options: dict, top: int, left: int, patch: int) -> dict:
    """``model_options`` whose image token positions (ComfyUI's
    ``rope_options``, in tokens) start at the window's place in the latent,
    on top of any shift and scale already set (ScaleROPE)."""
    transformer = model_options.get("transformer_options", {})
    rope = dict(transformer.get("rope_options") or {})
    rope["shift_y"] = rope.get("shift_y", 0.0) + top / patch * rope.get("scale_y", 1.0)
    rope["shift_x"] = rope.get("shift_x", 0.0) + left / patch * rope.get("scale_x", 1.0)
    return {**model_options, "transformer_options": {**transformer, "rope_options": rope}}


def with_rope_positions(model):
    """A clone of ``model`` whose panorama windows see their place in the
    panorama as RoPE positions; refused, naming the node, where this
    ComfyUI's code of the model takes no RoPE offsets."""
    if not takes_rope_offsets(model.model):
        family = type(model.model).__name__
        raise ValueError(
            f"model: {family} on this ComfyUI takes no RoPE position offsets (ComfyUI's rope_options, read by Flux "
            f"and Flux.2 from ComfyUI v0.3.68, Z-Image / Lumina 2 from v0.3.67, and ERNIE-Image; LongCat-Image and "
            f"Kandinsky 5 use them for their own offsets). Remove Panorama Window Positions (RoPE): its windows "
            f"then see positions from 0, as every other node pack's do")
    patched = model.clone()
    patched.model_options.setdefault("transformer_options", {})[ROPE_POSITIONS] = True
    return patched


def control_models(conds: Sequence[list]) -> list[torch.nn.Module]:
    """The networks of every control chain the conds hold: Multi-Scale's
    gradient runs through them too."""
    found = {}
    for cond in conds:
        for entry in cond:
            control = entry.get("control")
            while control is not None:
                network = getattr(control, "control_model", None)
                if isinstance(network, torch.nn.Module):
                    found[id(network)] = network
                control = control.previous_controlnet
    return list(found.values())


# -- the sampling wrappers ---------------------------------------------------------------

def panorama_run(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
    """OUTER_SAMPLE: one sampling run of the patched model (KSampler,
    SamplerCustomAdvanced...): checks the latent, fixes the schedule, and
    drops what the run cut from the conditioning when it ends, failed or
    not."""
    guider = executor.class_obj
    handler = guider.model_options.get("context_handler")
    if handler is not None and not isinstance(handler, PanoramaContextHandler):
        handler = take_time_windows(handler, guider.model_options)
    if handler is None:
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    check_conditioning(guider.model_patcher, getattr(guider, "original_conds", {}), guider.model_options)
    handler.begin_run(guider.model_patcher, latent_image, sigmas, guider.model_options)
    try:
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
    finally:
        handler.end_run()


def warn_if_a_stage(sigmas: torch.Tensor, model_patcher) -> None:
    """A run that starts below the model's highest sigma or stops before 0
    may be one stage of several (KSamplerAdvanced's start/end steps,
    SplitSigmas); its tau and Cross Sampling groups then count its own steps,
    not the whole run's.  Said, not refused: some want exactly that."""
    sigma_max = float(model_patcher.get_model_object("model_sampling").sigma_max)
    first, last = float(sigmas[0]), float(sigmas[-1])
    if first >= 0.9 * sigma_max and last == 0:
        return
    where = (f"stops at sigma {last:.3g}, before the end" if last > 0 else
             f"starts at sigma {first:.3g}, below the model's highest ({sigma_max:.3g})")
    logging.warning(
        f"Panorama: this sampling run {where}, as one stage of a staged run does (KSamplerAdvanced with "
        f"start/end steps, SplitSigmas). Crop Fusion's tau and Cross Sampling's groups count this stage's "
        f"{len(sigmas) - 1} steps only, which moves the picture about 1 % away from one run of all steps. Connect "
        f"the whole run's sigmas (BasicScheduler with the samplers' model, scheduler and steps) to the 'schedule' "
        f"input of Sample as Panorama (model patch) to get one run's result. Nothing to do for img2img (denoise "
        f"below 1) or a run meant to stand alone")


def take_time_windows(current, model_options: dict) -> PanoramaContextHandler:
    """A Context Windows node after the panorama patch replaced the pack's
    handler: for this run the pack's handler (kept under its own key) takes
    the node's time windows, each cut into panorama windows.  ComfyUI copies
    the model options for each run before OUTER_SAMPLE, so the patched
    model's own options are left as they were."""
    pack = model_options.get(PANORAMA_HANDLER)
    if not is_time_windows(current) or not isinstance(pack, PanoramaContextHandler):
        raise ValueError(replaced_by_context_windows(current))
    handler = pack.with_time(current)
    model_options["context_handler"] = handler
    return handler


def replaced_by_context_windows(handler) -> str:
    return (f"a node setting {type(handler).__name__} as the model's context handler comes after the panorama model "
            f"patch and replaced its windows; only ComfyUI's Context Windows nodes (index lists along time: "
            f"'Context Windows (Manual)', 'WAN Context Windows (Manual)') combine with panorama windows: remove "
            f"that node, or connect it before the panorama model patch if it should window the frames")


def size_for_window_batch(executor, model, noise_shape, conds, *args, **kwargs):
    """PREPARE_SAMPLING: ComfyUI sizes model loading by the latent it is
    told; only a window batch is ever evaluated at once.  Arguments it does
    not read (v0.14's force_full_load, force_offload...) pass through."""
    model_options = kwargs["model_options"] if "model_options" in kwargs else (args[0] if args else None)
    handler = (model_options or {}).get("context_handler")
    if isinstance(handler, PanoramaContextHandler) and len(noise_shape) in (4, 5):  # images, videos (all frames)
        noise_shape = handler.window_batch_shape(noise_shape)
    return executor(model, noise_shape, conds, *args, **kwargs)


def patch_model(model, windows: WindowSettings, settings: FusionSettings, multiscale: MultiScaleSettings | None = None,
                schedule: Sequence[float] | None = None, one_run: bool = False):
    """A clone of ``model`` whose every sampling run is a panorama run, its
    windows (given in image pixels) on the model's latent grid; the input
    MODEL is left untouched.  ``one_run``: the caller samples all steps in
    one run (the panorama sampler node), never a stage."""
    patched = model.clone()
    current = patched.model_options.get("context_handler")
    time = None
    if isinstance(current, PanoramaContextHandler):
        logging.warning("Panorama: the model was already patched for panoramas; the new settings replace the old")
        time = current.time
    elif is_time_windows(current):  # a Context Windows node before the patch: its time windows, cut in space
        time = current
    elif current is not None:
        raise ValueError(f"the model already samples through another context handler ({type(current).__name__}); "
                         f"only ComfyUI's Context Windows nodes ('Context Windows (Manual)', 'WAN Context Windows "
                         f"(Manual)') combine with panorama windows: remove the node that set it")
    grid = latent_grid(model)
    handler = PanoramaContextHandler(latent_plan(windows, grid), settings, multiscale, schedule, grid, one_run, time)
    patched.model_options["context_handler"] = handler
    patched.model_options[PANORAMA_HANDLER] = handler
    for wrapper_type, wrapper in ((WrappersMP.OUTER_SAMPLE, panorama_run),
                                  (WrappersMP.PREPARE_SAMPLING, size_for_window_batch)):
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
        patched.add_wrapper_with_key(wrapper_type, WRAPPER_KEY, wrapper)
    return patched


# -- gradients through a ComfyUI model inside node execution ---------------------------

def keep_grad_path(tensor: torch.Tensor) -> torch.Tensor:
    # weights, sigmas and conditioning made under inference_mode are inference
    # tensors, which autograd cannot save for backward; a normal copy can be
    return tensor.clone() if torch.is_tensor(tensor) and tensor.is_inference() else tensor


def own_copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.clone()


def clone_onward(h: torch.Tensor, transformer_options) -> torch.Tensor:
    return h.clone()


def autograd_safe_controls(model_options: dict) -> dict:
    """ComfyUI's UNet adds ControlNet residuals to its skip tensors in place,
    after the next block has saved them for backward; its
    ``input_block_patch_after_skip`` patch hands that next block a clone, so
    autograd's saved copy stays intact.  For the gradient pass only."""
    options = comfy.model_patcher.create_model_options_clone(model_options)
    patches = options.setdefault("transformer_options", {}).setdefault("patches", {})
    patches["input_block_patch_after_skip"] = [*patches.get("input_block_patch_after_skip", []), clone_onward]
    return options


def keep_grad_path_entry(entry: dict) -> dict:
    out = dict(entry)
    out["model_conds"] = {name: value._copy_with(keep_grad_path(value.cond)) if torch.is_tensor(
        getattr(value, "cond", None)) else value for name, value in entry["model_conds"].items()}
    if "mask" in out:
        out["mask"] = keep_grad_path(out["mask"])
    return out


def directly_read_tensors(modules: Sequence[torch.nn.Module]):
    """(store, name, tensor) for each inference-mode parameter and buffer a
    forward reads as it is, not through a weight or bias function: RMSNorm
    scales, modulation tables, embeddings, positional buffers."""
    seen = set()
    for module in modules:
        for m in module.modules():
            cast = hasattr(m, "weight_function")
            for store in (m._parameters, m._buffers):
                for name, tensor in store.items():
                    if tensor is None or not tensor.is_inference() or (cast and name in ("weight", "bias")):
                        continue
                    if (id(store), name) not in seen:
                        seen.add((id(store), name))
                        yield store, name, tensor


def grad_path_copy(tensor: torch.Tensor) -> torch.Tensor:
    copy = tensor.clone()
    return torch.nn.Parameter(copy, requires_grad=False) if isinstance(tensor, torch.nn.Parameter) else copy


# Classes of the modules whose forward adds into a tensor autograd saved for
# backward (Flux's single blocks: ``x += ...``; Chroma: ``addcmul_``), found
# the first time a gradient pass through them fails.
SAVES_IN_PLACE: set[type] = set()


def saved_activation_copy(tensor: torch.Tensor) -> torch.Tensor:
    # weights and their per-forward copies are leaves: kept as they are
    return tensor.clone() if tensor.requires_grad and tensor.grad_fn is not None else tensor


def unpack_saved(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


class GradientPass:
    """The context of MSD's gradient passes through ``modules`` within one
    model evaluation (every window batch, branch and level of a step), made
    once: lets autograd run through ComfyUI models inside node execution,
    which runs under ``torch.inference_mode()``, whose tensors autograd
    cannot save for backward.  Each pass leaves inference mode, enables grad,
    and

    * gives every ComfyUI layer (``comfy.ops``) a weight and bias function,
      which makes ComfyUI hand the layer a fresh copy of its weights per
      forward -- the big tensors are never copied all at once.  A copy of
      its own: with dynamic VRAM (v0.12+) a layer may be handed a view of a
      cast buffer that the next layer overwrites;
    * switches ComfyUI's fused kernels to their differentiable versions
      (``host_versions.DifferentiableKernels``: RoPE of Flux-like models);
    * swaps every other inference parameter and buffer (read directly by
      DiT blocks: RMSNorm scales, modulation, embeddings) for a normal copy,
      made at the first pass and reused by the others;
    * for models known to add their residual in place into a tensor their
      norm layer saved (Flux, Chroma: ``SAVES_IN_PLACE``), lets autograd keep
      its own copy of each activation it saves.  That doubles the saved
      activations of the gradient pass, never the weights; other models do
      not pay for it.

    Everything is put back when a pass ends, failed or not."""

    copies_saved_tensors = True

    def __init__(self, modules: Sequence[torch.nn.Module]):
        self.modules = list(modules)
        self.classes = {type(m) for m in self.modules}
        self.layers = [m for module in self.modules for m in module.modules() if hasattr(m, "weight_function")]
        self.copies = None  # [(store, name, inference tensor, normal copy)]
        self.differentiable = DifferentiableKernels()

    def __call__(self, copy_saved: bool = False):
        if copy_saved:  # asked again after the model overwrote a saved tensor
            SAVES_IN_PLACE.update(self.classes)
        return self.open(copy_saved or bool(self.classes & SAVES_IN_PLACE))

    @contextlib.contextmanager
    def open(self, copy_saved: bool = False):
        saved = [(m.__dict__.get("weight_function"), m.__dict__.get("bias_function")) for m in self.layers]
        keep_copies = torch.autograd.graph.saved_tensors_hooks(saved_activation_copy, unpack_saved) \
            if copy_saved else contextlib.nullcontext()
        with torch.inference_mode(False), torch.enable_grad(), keep_copies, self.differentiable():
            if self.copies is None:
                self.copies = [(store, name, tensor, grad_path_copy(tensor))
                               for store, name, tensor in directly_read_tensors(self.modules)]
            try:
                for store, name, _, copy in self.copies:
                    store[name] = copy
                for m in self.layers:
                    # instance lists: the class-level defaults are shared by every layer
                    m.weight_function = [*m.weight_function, own_copy]
                    m.bias_function = [*m.bias_function, own_copy]
                yield
            finally:
                for store, name, tensor, _ in self.copies:
                    store[name] = tensor
                for m, (weight_fns, bias_fns) in zip(self.layers, saved):
                    for name, fns in (("weight_function", weight_fns), ("bias_function", bias_fns)):
                        if fns is None:
                            m.__dict__.pop(name, None)
                        else:
                            setattr(m, name, fns)


def gradients_through(modules: Sequence[torch.nn.Module], copy_saved: bool = False):
    """One gradient pass through ``modules`` (see :class:`GradientPass`)."""
    return GradientPass(modules).open(copy_saved)
