"""The ComfyUI adapter: runs the panorama denoiser from ``fusion`` inside
ComfyUI's sampling through the unet function wrapper.

ComfyUI calls the wrapper for every model evaluation with the whole panorama
latent (batched over cond/uncond) and expects the denoised prediction back, so
every sampler, scheduler, CFG, LoRA and model patch keeps working.  The
adapter's jobs are the ComfyUI specifics: which step of the schedule a call
belongs to, cutting spatial conditioning per window, interrupt, and checking
the user's inputs.
"""

from __future__ import annotations

import contextlib
import logging

import torch

import comfy.model_base
import comfy.model_management

from ..fusion import (FusionSettings, MultiScaleDenoiser, MultiScaleSettings, PanoramaDenoiser, Views, WindowPlan,
                      resolve_plan, schedule_step, validate_multiscale)
from ..fusion.crop_fusion import cut_windows

LATENT_SCALE = 8  # pixels per latent pixel for every model family the pack targets
SDXL_ADM_POOLED = 1280  # SDXL's y: pooled text (1280), then six 256-d size embeddings
SDXL_ADM_CROP = SDXL_ADM_POOLED + 2 * 256  # crop_h, crop_w, target_h, target_w follow


def native_window(model) -> int:
    """The model's training size in latent pixels: where its windows look
    like the images it has seen."""
    base = model.model
    if isinstance(base, (comfy.model_base.SDXL, comfy.model_base.SDXLRefiner)):
        return 128
    if model.get_model_object("latent_format").latent_channels != 4:
        return 128  # SD3, Flux and later families train at 1024 px
    if isinstance(base, comfy.model_base.BaseModel) and base.model_type == comfy.model_base.ModelType.V_PREDICTION \
            and base.model_config.unet_config.get("context_dim") == 1024:
        return 96  # SD2.x 768-v
    return 64


def check_latent(model, latent: dict, name: str = "latent_image") -> None:
    """Refuses a latent the panorama sampler cannot use, saying which input
    and what to do."""
    samples = latent["samples"]
    if samples.ndim != 4:
        raise ValueError(f"{name} has shape {tuple(samples.shape)}: the panorama sampler takes image latents "
                         f"(batch, channels, height, width); video/audio latents are not supported")
    channels = model.get_model_object("latent_format").latent_channels
    if samples.shape[1] != channels and torch.count_nonzero(samples) > 0:
        raise ValueError(f"{name} has {samples.shape[1]} channels but the model expects {channels}: "
                         f"the latent comes from another model family; encode the image with this model's VAE "
                         f"or make a new Panorama Latent for it")
    if not torch.isfinite(samples).all():
        raise ValueError(f"{name} contains NaN or infinite values: check the node that produced it "
                         f"(a VAE in fp16 can overflow; try --fp32-vae or a fresh Panorama Latent)")


class PanoramaWrapper:
    """ComfyUI's ``model_function_wrapper`` for panorama sampling."""

    def __init__(self, model, plan: WindowPlan, settings: FusionSettings, previous=None,
                 multiscale: MultiScaleSettings | None = None):
        self.plan = resolve_plan(plan, native_window(model))
        self.denoiser = PanoramaDenoiser(self.plan, settings)
        self.multiscale = None if multiscale is None else MultiScaleDenoiser(self.denoiser, multiscale)
        self.diffusion_model = model.model.diffusion_model
        self.previous = previous  # another node's wrapper, called per window batch
        self.sdxl_embedder = model.model.embedder if isinstance(model.model, comfy.model_base.SDXL) else None
        self._sigma_lists: dict = {}
        self._window_adm: dict = {}

    def schedule(self, options: dict) -> list[float] | None:
        sigmas = options.get("sample_sigmas")
        if sigmas is None:
            return None
        key = (id(sigmas), sigmas.shape[0])
        if key not in self._sigma_lists:
            self._sigma_lists = {key: sigmas.tolist()}  # one host copy per run, not per call
        return self._sigma_lists[key]

    def __call__(self, apply_model, args: dict) -> torch.Tensor:
        x, sigma, c = args["input"], args["timestep"], args["c"]
        if c.get("control") is not None:
            raise ValueError("ControlNet / T2I-Adapter conditioning is not supported by the panorama sampler yet: "
                             "its hint is computed for the whole latent, not per window. Remove the "
                             "Apply ControlNet node from this sampler's conditioning, or use a plain KSampler.")
        sigmas = self.schedule(c.get("transformer_options", {}))
        sigma_now = float(sigma.flatten()[0])
        step = 0 if sigmas is None else schedule_step(sigma_now, sigmas)
        num_steps = 1 if sigmas is None else len(sigmas) - 1

        def model_fn(x_windows: torch.Tensor, sigma_windows: torch.Tensor, views: Views, ids) -> torch.Tensor:
            comfy.model_management.throw_exception_if_processing_interrupted()
            whole = views.covers_whole_latent and (views.height, views.width) == tuple(x.shape[-2:])
            window_c = c if whole else self.window_conditioning(c, x, views, ids)
            if torch.is_grad_enabled():  # Multi-Scale's gradient pass
                sigma_windows = _keep_grad_path(sigma_windows)
                window_c = {k: _keep_grad_path(v) if torch.is_tensor(v) else v for k, v in window_c.items()}
            return self.call_model(apply_model, x_windows, sigma_windows, window_c, args["cond_or_uncond"])

        if self.multiscale is None:
            return self.denoiser(model_fn, x, sigma, step, num_steps)
        if sigmas is None:
            raise ValueError("Multi-Scale Guidance needs the sampler's sigma schedule, which this sampler does not "
                             "pass on: use KSampler, KSamplerAdvanced, SamplerCustom(Advanced) or the panorama sampler")
        validate_multiscale(self.multiscale.settings, *x.shape[-2:], self.plan.window)
        sigma_next = min(sigmas[step + 1], sigma_now)
        return self.multiscale(model_fn, x, sigma, step, num_steps, sigma_next,
                               lambda: gradients_through(self.diffusion_model))

    def call_model(self, apply_model, x, sigma, c, cond_or_uncond):
        if self.previous is not None:
            return self.previous(apply_model, {"input": x, "timestep": sigma, "c": c, "cond_or_uncond": cond_or_uncond})
        return apply_model(x, sigma, **c)

    def window_conditioning(self, c: dict, x: torch.Tensor, views: Views, ids) -> dict:
        """Conditioning for a batch of windows, window-major like the inputs:
        spatial tensors (``c_concat`` of inpaint models and the like) are cut
        per window (after following the latent down the Multi-Scale pyramid),
        SDXL's crop and target size are set per window, the rest is
        repeated."""
        n, batch = len(ids), x.shape[0]
        out = {}
        for key, value in c.items():
            if key == "transformer_options":
                value = dict(value)
                for listed in ("cond_or_uncond", "uuids"):
                    if listed in value:
                        value[listed] = list(value[listed]) * n
            elif torch.is_tensor(value) and value.ndim == 4 and value.shape[-2:] == x.shape[-2:]:
                if value.shape[-2:] != (views.height, views.width):
                    value = torch.nn.functional.interpolate(value, size=(views.height, views.width), mode="area")
                value = cut_windows(value, views, ids).flatten(0, 1)
            elif torch.is_tensor(value) and value.ndim >= 1 and value.shape[0] == batch:
                value = value.repeat(n, *([1] * (value.ndim - 1)))
                if key == "y" and self.sdxl_embedder is not None and value.shape[-1] == SDXL_ADM_CROP + 4 * 256:
                    value = self.with_window_crop(value, views, ids, batch)
            out[key] = value
        return out

    def with_window_crop(self, y: torch.Tensor, views: Views, ids, batch: int) -> torch.Tensor:
        """SDXL's micro-conditioning per window: the full image keeps the
        size the user gave; each window is a crop at its own offset whose
        target size is the window, as in training on random crops."""
        key = (views.height, views.width, tuple(views.tops), tuple(views.lefts), y.device, y.dtype)
        if key not in self._window_adm:
            per_window = []
            for i in range(len(views)):
                top, left = views.origin(i)
                values = [top * LATENT_SCALE, left * LATENT_SCALE,
                          views.window_h * LATENT_SCALE, views.window_w * LATENT_SCALE]
                per_window.append(torch.cat([self.sdxl_embedder(torch.tensor([float(v)])) for v in values], dim=1))
            self._window_adm[key] = torch.cat(per_window).to(y)
        crop = self._window_adm[key][list(ids)].repeat_interleave(batch, dim=0)
        return torch.cat([y[:, :SDXL_ADM_CROP], crop], dim=1)


def _keep_grad_path(tensor: torch.Tensor) -> torch.Tensor:
    # weights, sigmas and conditioning made under inference_mode are inference
    # tensors, which autograd cannot save for backward; a normal copy can be
    return tensor.clone() if tensor.is_inference() else tensor


@contextlib.contextmanager
def gradients_through(diffusion_model: torch.nn.Module):
    """Lets autograd run through a ComfyUI model inside node execution, which
    runs under ``torch.inference_mode()``: leaves inference mode, enables
    grad, and gives every ComfyUI layer a weight and bias function, which
    makes ComfyUI hand the layer a fresh (non-inference) copy of its weights.
    Only for the gradient pass: the copies cost one weight copy per layer per
    forward, and they are dropped on exit."""
    layers = [m for m in diffusion_model.modules() if hasattr(m, "weight_function")]
    saved = [(m.__dict__.get("weight_function"), m.__dict__.get("bias_function")) for m in layers]
    with torch.inference_mode(False), torch.enable_grad():
        for m in layers:
            # instance lists: the class-level defaults are shared by every layer
            m.weight_function = [*m.weight_function, _keep_grad_path]
            m.bias_function = [*m.bias_function, _keep_grad_path]
        try:
            yield
        finally:
            for m, (weight_fns, bias_fns) in zip(layers, saved):
                for name, fns in (("weight_function", weight_fns), ("bias_function", bias_fns)):
                    if fns is None:
                        del m.__dict__[name]
                    else:
                        setattr(m, name, fns)


def patch_model(model, plan: WindowPlan, settings: FusionSettings, multiscale: MultiScaleSettings | None = None):
    """A clone of ``model`` whose every evaluation is a panorama evaluation;
    the input MODEL is left untouched."""
    patched = model.clone()
    previous = patched.model_options.get("model_function_wrapper")
    if isinstance(previous, PanoramaWrapper):
        logging.warning("Panorama: the model was already patched for panoramas; the new settings replace the old")
        previous = previous.previous
    patched.set_model_unet_function_wrapper(PanoramaWrapper(patched, plan, settings, previous, multiscale))
    return patched
