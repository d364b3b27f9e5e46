"""The trained terrain model (``adaptive-terrain-diffusion``'s consistency
U-Net) inside ComfyUI's own model classes, so that every ComfyUI sampler,
scheduler, conditioning node and the panorama nodes run it like any
checkpoint:

- ``TerrainLatentFormat``: a 1-channel pixel-space latent (scale 1, one
  latent pixel per image pixel); previews show the heightmap in grey.
- ``ConsistencyEDM`` model sampling: ComfyUI's EDM (sigma 0.002 to 80,
  sigma_data 0.5, c_in, timestep 0.25 log sigma) with the consistency
  model's boundary condition (c_skip, c_out offset by sigma_min) and its
  output clamp to [-1, 1].
- ``TerrainModel``, a ``comfy.model_base.BaseModel`` (model type EDM) whose
  diffusion model is the U-Net built from ``comfy.ops`` layers (weight
  casting and offloading as ComfyUI does them); the conditioning's
  ``terrain_difficulty`` (0..1) becomes the label input ``y``, so areas and
  masks of ComfyUI's conditioning nodes give regional difficulty.
- ``TerrainConfig``: the model config; ``input_size`` tells the panorama
  nodes the native window (128 px).

Weights are read at run time from the installed PyPI package
(``terrain.weights``); nothing is downloaded, nothing is stored here.
"""

from __future__ import annotations

import functools
import inspect

import torch

import comfy.conds
import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.model_sampling
import comfy.supported_models_base

from ..terrain.denoiser import NATIVE, SIGMA_DATA, SIGMA_MAX, SIGMA_MIN
from ..terrain.unet import TerrainUNet, UNetConfig
from ..terrain.weights import load_state_dict

DEFAULT_DIFFICULTY = 0.5  # where a conditioning carries none (label 50.5 of 1..100)


class TerrainLatentFormat(comfy.latent_formats.LatentFormat):
    latent_channels = 1
    scale_factor = 1.0
    spacial_downscale_ratio = 1  # pixel space
    latent_rgb_factors = [[0.5, 0.5, 0.5]]
    latent_rgb_factors_bias = [0.5, 0.5, 0.5]


class ConsistencyEDM(comfy.model_sampling.EDM):
    """EDM with the consistency model's skip/out scalings and clamp."""

    def calculate_denoised(self, sigma, model_output, model_input):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (model_output.ndim - 1))
        sd, offset = self.sigma_data, sigma - SIGMA_MIN
        c_skip = sd ** 2 / (offset ** 2 + sd ** 2)
        c_out = offset * sd / (sigma ** 2 + sd ** 2) ** 0.5
        return (model_input * c_skip + model_output * c_out).clamp(-1, 1)


class TerrainModelSampling(comfy.model_sampling.ModelSamplingContinuousEDM, ConsistencyEDM):
    pass


class TerrainDiffusionModel(TerrainUNet):
    """The U-Net as ComfyUI calls a diffusion model: (x * c_in, timestep
    0.25 log sigma, y = difficulty)."""

    def __init__(self, image_model=None, dtype=None, device=None, operations=None, **unused):
        super().__init__(UNetConfig(), ops=operations, dtype=dtype, device=device)

    def forward(self, x, timesteps, context=None, y=None, control=None, transformer_options={}, **kwargs):
        if y is None:
            y = torch.full((x.shape[0], 1), DEFAULT_DIFFICULTY, device=x.device)
        return super().forward(x, 1000.0 * timesteps, y)


class TerrainModel(comfy.model_base.BaseModel):
    def __init__(self, model_config, device=None):
        super().__init__(model_config, comfy.model_base.ModelType.EDM, device=device, unet_model=TerrainDiffusionModel)
        self.model_sampling = TerrainModelSampling(model_config)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        out.pop("c_crossattn", None)  # the model reads no text
        difficulty = kwargs.get("terrain_difficulty", DEFAULT_DIFFICULTY)
        out["y"] = comfy.conds.CONDRegular(torch.tensor([[float(difficulty)]]))
        return out


class TerrainConfig(comfy.supported_models_base.BASE):
    unet_config = {"image_model": "panorama_terrain_consistency_unet"}
    unet_extra_config = {}
    latent_format = TerrainLatentFormat
    sampling_settings = {"sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "sigma_data": SIGMA_DATA}
    # 10.4 M parameters: fp32 everywhere (its GroupNorms run in fp32 as exported)
    supported_inference_dtypes = [torch.float32]
    memory_usage_factor = 1.0

    def get_model(self, state_dict, prefix="", device=None):
        return TerrainModel(self, device=device)


# read once per process: the ONNX file is parsed, not memory-mapped
_weights = functools.lru_cache(maxsize=1)(load_state_dict)


def load_terrain_model():
    """A ModelPatcher of the trained terrain model, loaded as ComfyUI's
    ``load_diffusion_model_state_dict`` loads a diffusion model (devices,
    dtype, manual cast), from the installed package's weights."""
    sd, metadata = _weights()
    sd = dict(sd)  # load_model_weights pops what it takes
    mm = comfy.model_management
    config = TerrainConfig({**TerrainConfig.unet_config, "input_size": NATIVE})
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    dtype = torch.float32
    manual_cast = mm.unet_manual_cast(dtype, load_device, config.supported_inference_dtypes)
    if "device" in inspect.signature(config.set_inference_dtype).parameters:
        config.set_inference_dtype(dtype, manual_cast, device=load_device)
    else:
        config.set_inference_dtype(dtype, manual_cast)
    model = config.get_model(sd, "")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
    model.to(offload_device)
    model.load_model_weights(sd, "")
    model.terrain_metadata = dict(metadata)
    return patcher
