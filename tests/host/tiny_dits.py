"""Tiny random-weight DiT / flow models of ComfyUI's own classes.

The companion of ``tiny_models.py`` (the SD family) for the transformer
families: Flux (dev / schnell), Chroma, Chroma Radiance, SD3 / SD3.5,
Qwen-Image, Lumina 2, HunyuanImage 2.1, HiDream, AuraFlow, PixArt Sigma,
HunyuanDiT and OmniGen2, and those only newer ComfyUI has: Flux.2 (dev and
Klein), Z-Image, Z-Image pixel space, LongCat-Image, Kandinsky 5 Image,
Anima, ERNIE-Image and Krea 2, and the video families of ``VIDEO_KINDS``
(Wan 2.1 text- and image-to-video, Wan 2.2 TI2V 5B: 5-D latents with
frames, kept out of DIT_KINDS, whose tests sample images)
(``unavailable_reason(kind)`` says, e.g.
"Flux2 is not in ComfyUI 0.3.64", where the host lacks the class; the
tests skip with it).  Each is ComfyUI's own diffusion-model class (``comfy.ldm.*``),
saved as a bare diffusion-model file (the ``models/diffusion_models`` layout
that ``UNETLoader`` / ``comfy.sd.load_diffusion_model`` reads), so loading
goes through ComfyUI's detection (``model_detection.detect_unet_config`` and
the ``comfy.supported_models.models`` list) as for a downloaded file.

The "swap in" (same technique as tiny_models):

* every file carries a marker tensor (``marker_key(kind)``);
* ``register_test_configs()`` puts one test-only config per kind at the front
  of ``comfy.supported_models.models``.  It subclasses the stock config
  (Flux, FluxSchnell, Chroma, ChromaRadiance, SD3, QwenImage, Lumina2,
  HunyuanImage21, HiDream, AuraFlow, PixArtSigma, HunyuanDiT), requires the
  marker (``required_keys``), so it can never claim a real file, and
* overrides ``__init__`` so that the widths ``detect_unet_config`` hard-codes
  for the real model (Flux: hidden 3072 / 24 heads / context 4096, Lumina2:
  dim 2304, HiDream: 16 + 32 full-width layers, ...) are replaced by the
  reduced values of ``REDUCED[kind]``:
  ``super().__init__({**unet_config, **REDUCED[kind]})``.  Whatever detection
  does read from the weights (depths, input channels, patch size, context /
  pooled widths, pos-embed size, qk-norm, ...) is read from the tiny file.

Everything else -- model_base class, latent format, sampling settings (flow
shift / multiplier), model type, key conversions -- is the stock config's.

Where detection keys a family on the real model's width (Z-Image: dim 3840,
Z-Image pixel space: dim 3840 and its decoder, LongCat-Image: a 3584-wide text
input, Kandinsky 5 Image: model_dim 2560), the test config drops that key from
its match (``relax``) and supplies what detection would then set
(``reduced``).  ERNIE-Image and OmniGen2 detection names the family only /
hard-codes every size, so their sizes all come from ``reduced``.  Anima's LLM
adapter is built by ComfyUI at its full size (135 M parameters, whatever the
config says): its file is the one large one (``fixed_size``).

One code path for every host: the constructor config is fitted to the
fields the host's parameter dataclass has (``host_build``): ComfyUI added
required fields over time (FluxParams.txt_ids_dims, ChromaParams.vec_in_dim,
HunyuanVideoParams.meanflow_sum, ...); a field the spec does not set is filled
with the value detection gives a file without the feature, and
``build_state_dict`` proves detection reads the same value back.

Weights are random but deterministic (seeded per tensor name with
tiny_models' generator and init: ones / zeros for norms, uniform for linear /
conv weights and biases), the uniform weights drawn sqrt(3) wider than
PyTorch's default (``WEIGHT_GAIN``: std 1/sqrt(fan_in)) so that the text still
moves the output of these adaLN-gated models; learned embeddings / paddings
are N(0, 0.02), SD3's pos_embed buffer is ComfyUI's 2-D sin-cos table, and a
computed buffer is kept as computed.  Files are float16.

Every family loads and samples with ComfyUI's own code; two things are the
real models' behaviour, not the tiny files': Qwen-Image (Anima, Krea 2) latents are 5-D
(B, 16, 1, H, W; ``expected_geometry(kind)["latent_dimensions"] == 3``, fixed
up by ``comfy.sample.fix_empty_latent_channels`` as KSampler does), and
ComfyUI's PixArt divides by zero below a mean latent side of 32 (256 px).

``conditioning(kind, text)`` builds a CONDITIONING list with the shapes and
extras ComfyUI's ``model_base.<Class>.extra_conds`` reads for that family;
``PanoramaTestConditioning`` wraps it as a node (``TEST_NODE_CLASS_MAPPINGS``).

Also: ``ensure_flux_vae`` (a random, full-size 16-channel Flux/SD3 VAE --
``comfy.sd.VAE`` hard-codes its config) and ``ensure_sd35_checkpoint`` (the
tiny sd35 model + that VAE as a CheckpointLoaderSimple checkpoint, no text
encoders).

Importing this module is cheap (no torch, no comfy); the functions that build
models import ComfyUI through ``harness.prepare_comfy_imports``.

Run ``python tests/host/tiny_dits.py DIR`` to write every file into DIR.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

# Bump when a spec or the init changes, so persistent caches never serve a stale file.
DIT_VERSION = 1

DIT_KINDS: Tuple[str, ...] = (
    "flux_dev", "flux_schnell", "chroma", "chroma_radiance",
    "sd3", "sd35", "sd35_medium",
    "qwen_image", "lumina2", "hunyuan_image21", "hidream",
    "auraflow", "pixart_sigma", "hunyuan_dit", "omnigen2",
    # families of newer ComfyUI (skipped, saying so, on a host without their class)
    "flux2_dev", "flux2_klein", "z_image", "z_image_pixel", "longcat_image",
    "kandinsky5_image", "anima", "ernie_image", "krea2",
)

# Video families (spatial windows on video latents): kept out of DIT_KINDS, whose
# tests sample images; registered and built by the same code.
VIDEO_KINDS: Tuple[str, ...] = ("wan21", "wan21_i2v", "wan22_5b")

# Same convention as tiny_models (its kinds and these never share a name).
MARKER_PREFIX = "comfy_panorama_tiny."

# Text-encoder widths of the tiny models (the real ones: T5-XXL 4096,
# Qwen2.5-VL 3584, Gemma-2 2304, Llama-3.1 4096, CLIP-L pooled 768, ...).
CONTEXT_DIM = 64
POOLED_DIM = 64
# HunyuanDiT: CLIP-like (real 1024) and mT5 (real 2048) widths, and the fixed
# token counts its text paddings / attention pool are built for (real 77 / 256).
HYDIT_CLIP_DIM = 32
HYDIT_T5_DIM = 64
HYDIT_TEXT_LEN = 16
# HiDream: number of Llama-3 hidden-state layers the conditioning carries
# (real: 32 layers, the model reads 48 entries of them).
HIDREAM_LLAMA_LAYERS = 2
# SD3 family: pos_embed grid in patches (real: 192 for SD3 / 3.5 large, 384 for
# 3.5 medium).  128 patches = 256 latent px = 2048 image px per side.
SD3_POS_EMBED_MAX = 128
# Weights (and their biases) are drawn sqrt(3) wider than PyTorch's default
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e. with std 1/sqrt(fan_in) (variance
# preserving).  With the default, the chain timestep MLP -> adaLN modulation ->
# gate shrinks every residual update so much that where the text only enters
# through attention (AuraFlow, HunyuanImage 2.1, Qwen-Image, Chroma) it moves
# one model output by 3e-6..3e-3 of its O(1) scale; with this gain by
# 1.5e-3..5e-2, outputs still O(1).
WEIGHT_GAIN = 3 ** 0.5


@dataclass(frozen=True)
class DiTSpec:
    kind: str
    base_config: str        # the comfy.supported_models class the test config derives from
    model_base: str         # the comfy.model_base class ComfyUI builds
    build: dict             # the complete (tiny) constructor config of the diffusion model
    reduced: dict           # what the test config puts over detect_unet_config's result
    geometry: dict          # see expected_geometry
    relax: Tuple[str, ...] = ()  # keys dropped from the stock unet_config match
    description: str = ""
    # The dataclass the diffusion model builds its parameters from ("module.Class"),
    # if any: ``build`` is fitted to the fields it has on the host (see host_build).
    params: str = ""
    # Parameter-name prefixes of parts ComfyUI builds at a fixed size whatever the
    # config says (not counted in the "tiny" parameter budget of the tests).
    fixed_size: Tuple[str, ...] = ()


def _flux_like(**over) -> dict:
    cfg = dict(image_model="flux", in_channels=16, out_channels=16, patch_size=2, vec_in_dim=POOLED_DIM,
               context_in_dim=CONTEXT_DIM, hidden_size=64, mlp_ratio=4.0, num_heads=2, depth=1,
               depth_single_blocks=1, axes_dim=[8, 12, 12], theta=10000, qkv_bias=True)
    cfg.update(over)
    return cfg


_FLUX_PARAMS = "comfy.ldm.flux.model.FluxParams"

# Flux.2 (dev and Klein share ComfyUI's Flux2 config): 128-channel latent at
# 16 px (the 32-channel VAE latent packed 2x2), 1x1 patches, 4 RoPE axes,
# shared ("global") modulation, SiLU-gated MLPs, no biases.  Detection
# hard-codes the real widths (48 heads of sum(axes_dim) = 128).
_FLUX2 = dict(image_model="flux2", in_channels=128, out_channels=128, patch_size=1, vec_in_dim=None,
              context_in_dim=CONTEXT_DIM, hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=1,
              depth_single_blocks=1, axes_dim=[8, 8, 8, 8], theta=2000, qkv_bias=False, global_modulation=True,
              mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0, txt_ids_dims=[3])
_FLUX2_REDUCED = dict(num_heads=2, axes_dim=[8, 8, 8, 8])

# Z-Image (ComfyUI's ZImage: a Lumina 2 / NextDiT with Z-Image's modulation,
# time scale, pad tokens and RoPE).  Detection recognises Z-Image by its
# width (dim == 3840) and only then sets these; the tiny one is 256 wide (the
# least Z-Image's modulation takes: it reads a 256-wide timestep embedding
# with min(dim, 256) inputs), so its test config supplies them (and does not
# ask for dim 3840).
_Z_IMAGE = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, cap_feat_dim=CONTEXT_DIM, n_layers=1,
                n_heads=2, n_kv_heads=2, qk_norm=True, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512],
                rope_theta=256.0, ffn_dim_multiplier=8.0 / 3.0, z_image_modulation=True, time_scale=1000.0,
                pad_tokens_multiple=32, n_refiner_layers=1)
_Z_IMAGE_REDUCED = {k: v for k, v in _Z_IMAGE.items()
                    if k not in ("image_model", "patch_size", "in_channels", "dim", "cap_feat_dim", "n_layers",
                                 "qk_norm")}
# Z-Image pixel space: the same backbone on 16x16 RGB patches with the MLP
# decoder head (dec_net) instead of the final layer.
_Z_IMAGE_PIXEL_DECODER = dict(image_model="zimage_pixel", patch_size=16, in_channels=3, decoder_hidden_size=32,
                              decoder_num_res_blocks=1, decoder_max_freqs=8, decoder_in_channels=16 * 16 * 3)
# Anima: its text adapter (ComfyUI builds it at 1024 wide, 6 layers, a 32128
# token embedding, whatever the config says) takes Qwen3-0.6B hidden states.
ANIMA_TEXT_DIM = 1024
ANIMA_T5_VOCAB = 32128


_FLUX_REDUCED = dict(context_in_dim=CONTEXT_DIM, hidden_size=64, num_heads=2, axes_dim=[8, 12, 12])

_CHROMA = dict(image_model="chroma", in_channels=64, out_channels=64, patch_size=2, context_in_dim=CONTEXT_DIM,
               hidden_size=64, mlp_ratio=4.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[8, 12, 12],
               theta=10000, qkv_bias=True, in_dim=64, out_dim=64, hidden_dim=128, n_layers=1)
# in_dim 64 is fixed by the model (16 + 16 + 32 timestep/guidance/index features);
# out_dim must be the hidden size (it produces the modulation vectors).
_CHROMA_REDUCED = dict(_FLUX_REDUCED, out_dim=64, hidden_dim=128, n_layers=1)

_CHROMA_RADIANCE = dict(_CHROMA, image_model="chroma_radiance", in_channels=3, out_channels=3, patch_size=16,
                        nerf_hidden_size=32, nerf_mlp_ratio=4, nerf_depth=1, nerf_max_freqs=8, nerf_tile_size=32,
                        nerf_final_head_type="conv", nerf_embedder_dtype="float32")
_CHROMA_RADIANCE_REDUCED = dict(_CHROMA_REDUCED, nerf_hidden_size=32, nerf_depth=1)


def _mmdit(depth=2, qk_norm=None, x_block_self_attn_layers=()) -> dict:
    # ComfyUI's MMDiT ties the width to the depth (hidden = 64 * depth, one
    # 64-wide head per block) and detection reads every size from the weights.
    cfg = dict(in_channels=16, patch_size=2, out_channels=16, depth=depth, input_size=None,
               adm_in_channels=POOLED_DIM,
               context_embedder_config={"target": "torch.nn.Linear",
                                        "params": {"in_features": CONTEXT_DIM, "out_features": 64 * depth}},
               num_patches=SD3_POS_EMBED_MAX ** 2, pos_embed_max_size=SD3_POS_EMBED_MAX,
               pos_embed_scaling_factor=None, x_block_self_attn_layers=list(x_block_self_attn_layers))
    if qk_norm:
        cfg["qk_norm"] = qk_norm
    return cfg


def _wan(in_dim=16, out_dim=16) -> dict:
    # ComfyUI's WanModel; detection reads dim, ffn_dim, depth, in / out channels from the weights and sets
    # num_heads = dim // 128 (0 for a 64-wide model) and takes text_dim at its default (umt5-xxl's 4096)
    return dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=in_dim, dim=64,
                ffn_dim=128, freq_dim=256, text_dim=CONTEXT_DIM, out_dim=out_dim, num_heads=2, num_layers=2,
                window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6)


_WAN_REDUCED = dict(num_heads=2, text_dim=CONTEXT_DIM)


def _geometry(pixels_per_latent, patch, latent_channels, native_px=1024, latent_dimensions=2,
              min_latent_side=None) -> dict:
    return dict(pixels_per_latent=pixels_per_latent, patch=patch, latent_channels=latent_channels,
                native_px=native_px, latent_dimensions=latent_dimensions,
                min_latent_side=patch if min_latent_side is None else min_latent_side)


SPECS: Dict[str, DiTSpec] = {
    "flux_dev": DiTSpec(
        "flux_dev", "Flux", "Flux", _flux_like(guidance_embed=True), _FLUX_REDUCED, _geometry(8, 2, 16),
        description="Flux.1 dev layout (guidance embedding), 1 double + 1 single block", params=_FLUX_PARAMS),
    "flux_schnell": DiTSpec(
        "flux_schnell", "FluxSchnell", "Flux", _flux_like(guidance_embed=False), _FLUX_REDUCED, _geometry(8, 2, 16),
        description="Flux.1 schnell layout (no guidance embedding; FLOW, shift 1.0)", params=_FLUX_PARAMS),
    "chroma": DiTSpec(
        "chroma", "Chroma", "Chroma", _CHROMA, _CHROMA_REDUCED, _geometry(8, 2, 16),
        description="Chroma (Flux with the distilled-guidance approximator, no vector_in)",
        params="comfy.ldm.chroma.model.ChromaParams"),
    "chroma_radiance": DiTSpec(
        "chroma_radiance", "ChromaRadiance", "ChromaRadiance", _CHROMA_RADIANCE, _CHROMA_RADIANCE_REDUCED,
        _geometry(1, 16, 3), description="Chroma Radiance: pixel space, 16 px patches, NeRF head (conv)",
        params="comfy.ldm.chroma_radiance.model.ChromaRadianceParams"),
    "sd3": DiTSpec(
        "sd3", "SD3", "SD3", _mmdit(), {}, _geometry(8, 2, 16),
        description="SD3 medium layout (MMDiT, no qk-norm), 2 joint blocks"),
    "sd35": DiTSpec(
        "sd35", "SD3", "SD3", _mmdit(qk_norm="rms"), {}, _geometry(8, 2, 16),
        description="SD3.5 large layout (RMS qk-norm), 2 joint blocks"),
    "sd35_medium": DiTSpec(
        "sd35_medium", "SD3", "SD3", _mmdit(qk_norm="rms", x_block_self_attn_layers=[0]), {}, _geometry(8, 2, 16),
        description="SD3.5 medium layout (RMS qk-norm, x-block self-attention in block 0)"),
    "qwen_image": DiTSpec(
        "qwen_image", "QwenImage", "QwenImage",
        dict(image_model="qwen_image", in_channels=64, num_layers=2, num_attention_heads=2, attention_head_dim=32,
             joint_attention_dim=CONTEXT_DIM, axes_dims_rope=[8, 12, 12]),
        dict(num_attention_heads=2, attention_head_dim=32, joint_attention_dim=CONTEXT_DIM, axes_dims_rope=[8, 12, 12]),
        _geometry(8, 2, 16, native_px=1328, latent_dimensions=3),
        description="Qwen-Image (MMDiT, Wan 2.1 latent: 5-D B,16,1,H,W), 2 blocks"),
    "lumina2": DiTSpec(
        "lumina2", "Lumina2", "Lumina2",
        dict(image_model="lumina2", patch_size=2, in_channels=16, dim=64, cap_feat_dim=CONTEXT_DIM, n_layers=2,
             n_heads=2, n_kv_heads=1, qk_norm=True, axes_dims=[8, 12, 12], axes_lens=[300, 512, 512],
             n_refiner_layers=1),
        dict(dim=64, n_heads=2, n_kv_heads=1, axes_dims=[8, 12, 12], n_refiner_layers=1),
        _geometry(8, 2, 16),
        description="Lumina 2 / NextDiT (GQA), 2 layers + 1 refiner of each kind"),
    "hunyuan_image21": DiTSpec(
        "hunyuan_image21", "HunyuanImage21", "HunyuanImage21",
        dict(image_model="hunyuan_video", in_channels=64, patch_size=[1, 1], out_channels=64, vec_in_dim=None,
             axes_dim=[16, 16], meanflow=False, context_in_dim=CONTEXT_DIM, hidden_size=64, mlp_ratio=4.0,
             num_heads=2, depth=1, depth_single_blocks=1, theta=256, qkv_bias=True, byt5=False,
             guidance_embed=False),
        dict(num_heads=2, axes_dim=[16, 16]),
        _geometry(32, 1, 64, native_px=2048),
        description="HunyuanImage 2.1 (64-ch latent, 32x VAE, 1x1 patches), no ByT5 glyph branch",
        params="comfy.ldm.hunyuan_video.model.HunyuanVideoParams"),
    "hidream": DiTSpec(
        "hidream", "HiDream", "HiDream",
        dict(image_model="hidream", attention_head_dim=32, axes_dims_rope=[16, 8, 8],
             caption_channels=[CONTEXT_DIM, CONTEXT_DIM], max_resolution=[128, 128], in_channels=16,
             llama_layers=list(range(HIDREAM_LLAMA_LAYERS)), num_attention_heads=2, num_routed_experts=4,
             num_activated_experts=2, num_layers=1, num_single_layers=1, out_channels=16, patch_size=2,
             text_emb_dim=POOLED_DIM),
        dict(attention_head_dim=32, axes_dims_rope=[16, 8, 8], caption_channels=[CONTEXT_DIM, CONTEXT_DIM],
             llama_layers=list(range(HIDREAM_LLAMA_LAYERS)), num_attention_heads=2, num_layers=1,
             num_single_layers=1, text_emb_dim=POOLED_DIM),
        _geometry(8, 2, 16),
        description="HiDream-I1 (MoE, 4 routed / 2 active experts), 1 double + 1 single block"),
    "auraflow": DiTSpec(
        "auraflow", "AuraFlow", "AuraFlow",
        dict(max_seq=64 * 64, cond_seq_dim=CONTEXT_DIM, n_double_layers=1, n_layers=2, dim=64, n_heads=2,
             global_conddim=64),
        dict(dim=64, n_heads=2, global_conddim=64),
        _geometry(8, 2, 4), relax=("cond_seq_dim",),
        description="AuraFlow (SDXL latent), 1 double + 1 single layer, 64x64-patch learned PE"),
    "pixart_sigma": DiTSpec(
        "pixart_sigma", "PixArtSigma", "PixArt",
        dict(num_heads=2, patch_size=2, hidden_size=64, in_channels=4, depth=2, model_max_length=300,
             image_model="pixart_sigma", micro_condition=False, caption_channels=CONTEXT_DIM),
        dict(num_heads=2, hidden_size=64, caption_channels=CONTEXT_DIM),
        # ComfyUI's PixArt pos-embed divides by round(mean latent side / 64) * 64
        _geometry(8, 2, 4, min_latent_side=34),
        description="PixArt Sigma (SDXL latent, eps, learned sigma), 2 blocks"),
    "hunyuan_dit": DiTSpec(
        "hunyuan_dit", "HunyuanDiT", "HunyuanDiT",
        dict(image_model="hydit", depth=4, hidden_size=64, num_heads=2, text_states_dim=HYDIT_CLIP_DIM,
             text_states_dim_t5=HYDIT_T5_DIM, text_len=HYDIT_TEXT_LEN, text_len_t5=HYDIT_TEXT_LEN),
        dict(num_heads=2, text_states_dim=HYDIT_CLIP_DIM, text_states_dim_t5=HYDIT_T5_DIM,
             text_len=HYDIT_TEXT_LEN, text_len_t5=HYDIT_TEXT_LEN),
        _geometry(8, 2, 4),
        description="HunyuanDiT v1.2 layout (SDXL latent, v-pred), 4 blocks (the last one with a skip)"),
    "omnigen2": DiTSpec(
        # detection hard-codes every size of the real model (hidden 2520, 32 layers, ...)
        "omnigen2", "Omnigen2", "Omnigen2",
        dict(image_model="omnigen2", axes_dim_rope=[8, 12, 12], axes_lens=[1024, 1664, 1664], ffn_dim_multiplier=None,
             hidden_size=64, in_channels=16, multiple_of=256, norm_eps=1e-05, num_attention_heads=2, num_kv_heads=1,
             num_layers=1, num_refiner_layers=1, out_channels=None, patch_size=2, text_feat_dim=CONTEXT_DIM,
             timestep_scale=1000.0),
        dict(axes_dim_rope=[8, 12, 12], hidden_size=64, num_attention_heads=2, num_kv_heads=1, num_layers=1,
             num_refiner_layers=1, text_feat_dim=CONTEXT_DIM),
        _geometry(8, 2, 16),
        description="OmniGen2 (Lumina-like, GQA), 1 layer + 1 refiner of each kind"),
    "flux2_dev": DiTSpec(
        "flux2_dev", "Flux2", "Flux2", dict(_FLUX2, guidance_embed=True), _FLUX2_REDUCED, _geometry(16, 1, 128),
        description="Flux.2 dev layout (guidance embedding), 1 double + 1 single block", params=_FLUX_PARAMS),
    "flux2_klein": DiTSpec(
        "flux2_klein", "Flux2", "Flux2", dict(_FLUX2, guidance_embed=False), _FLUX2_REDUCED, _geometry(16, 1, 128),
        description="Flux.2 Klein layout (no guidance embedding), 1 double + 1 single block", params=_FLUX_PARAMS),
    "z_image": DiTSpec(
        "z_image", "ZImage", "Lumina2", _Z_IMAGE, _Z_IMAGE_REDUCED, _geometry(8, 2, 16), relax=("dim",),
        description="Z-Image (NextDiT, Z-Image modulation, pad tokens), 1 layer + 1 refiner of each kind"),
    "z_image_pixel": DiTSpec(
        "z_image_pixel", "ZImagePixelSpace", "ZImagePixelSpace", dict(_Z_IMAGE, **_Z_IMAGE_PIXEL_DECODER),
        dict(_Z_IMAGE_REDUCED, **_Z_IMAGE_PIXEL_DECODER), _geometry(1, 16, 3), relax=("image_model",),
        description="Z-Image pixel space: RGB, 16 px patches, MLP decoder head (1 res block)"),
    "longcat_image": DiTSpec(
        "longcat_image", "LongCatImage", "LongCatImage",
        _flux_like(guidance_embed=False, vec_in_dim=None, txt_ids_dims=[1, 2]),
        dict(_FLUX_REDUCED, txt_ids_dims=[1, 2]), _geometry(8, 2, 16), relax=("context_in_dim", "txt_ids_dims"),
        description="LongCat-Image (Flux layout, no pooled vector / guidance, 2-axis text RoPE ids)",
        params=_FLUX_PARAMS),
    "kandinsky5_image": DiTSpec(
        "kandinsky5_image", "Kandinsky5Image", "Kandinsky5Image",
        dict(image_model="kandinsky5", in_text_dim=CONTEXT_DIM, in_text_dim2=POOLED_DIM, time_dim=32, model_dim=64,
             ff_dim=128, visual_embed_dim=64, num_text_blocks=1, num_visual_blocks=1, axes_dims=[8, 12, 12],
             rope_scale_factor=[1.0, 1.0, 1.0]),
        dict(in_text_dim=CONTEXT_DIM, in_text_dim2=POOLED_DIM, axes_dims=[8, 12, 12],
             rope_scale_factor=[1.0, 1.0, 1.0]),
        _geometry(8, 2, 16), relax=("model_dim",),
        description="Kandinsky 5 Image Lite layout (1 text + 1 visual block, 1x2x2 patches)"),
    "anima": DiTSpec(
        "anima", "Anima", "Anima",
        dict(image_model="anima", max_img_h=240, max_img_w=240, max_frames=128, in_channels=16, out_channels=16,
             patch_spatial=2, patch_temporal=1, model_channels=64, concat_padding_mask=True,
             crossattn_emb_channels=ANIMA_TEXT_DIM, pos_emb_cls="rope3d", pos_emb_learnable=True,
             pos_emb_interpolation="crop", min_fps=1, max_fps=30, use_adaln_lora=True, adaln_lora_dim=32,
             num_blocks=1, num_heads=2, extra_per_block_abs_pos_emb=False, rope_h_extrapolation_ratio=4.0,
             rope_w_extrapolation_ratio=4.0, rope_t_extrapolation_ratio=1.0, extra_h_extrapolation_ratio=1.0,
             extra_w_extrapolation_ratio=1.0, extra_t_extrapolation_ratio=1.0, rope_enable_fps_modulation=False),
        dict(num_heads=2, adaln_lora_dim=32),
        _geometry(8, 2, 16, latent_dimensions=3), fixed_size=("llm_adapter.",),
        description="Anima (Cosmos Predict2 MiniTrainDIT, Wan 2.1 latent: 5-D), 1 block + ComfyUI's full-size "
                    "LLM adapter"),
    "ernie_image": DiTSpec(
        # detection only names the family: every size is the constructor's default (hidden 4096, 36 layers)
        "ernie_image", "ErnieImage", "ErnieImage",
        dict(image_model="ernie", hidden_size=96, num_attention_heads=3, num_layers=1, ffn_hidden_size=192,
             in_channels=128, out_channels=128, patch_size=1, text_in_dim=CONTEXT_DIM, rope_axes_dim=[8, 12, 12]),
        dict(hidden_size=96, num_attention_heads=3, num_layers=1, ffn_hidden_size=192, text_in_dim=CONTEXT_DIM,
             rope_axes_dim=[8, 12, 12]),
        _geometry(16, 1, 128),
        description="ERNIE-Image (Flux.2 latent, shared adaLN), 1 layer"),
    "krea2": DiTSpec(
        "krea2", "Krea2", "Krea2",
        dict(image_model="krea2", features=64, channels=16, patch=2, layers=1, heads=2, kvheads=1,
             txtlayers=2, txtdim=CONTEXT_DIM // 2, txtheads=2, txtkvheads=2),
        dict(heads=2, kvheads=1, txtheads=2, txtkvheads=2),
        _geometry(8, 2, 16, latent_dimensions=3),
        description="Krea 2 (single-stream DiT, GQA, layer-wise text fusion of 2 LLM layers; Wan 2.1 latent: 5-D)"),
}


SPECS.update({
    "wan21": DiTSpec(
        "wan21", "WAN21_T2V", "WAN21", _wan(), _WAN_REDUCED, _geometry(8, 2, 16, native_px=832, latent_dimensions=3),
        description="Wan 2.1 text-to-video (1x2x2 patches on the 8x Wan 2.1 latent, 5-D B,16,T,H,W), 2 blocks"),
    "wan21_i2v": DiTSpec(
        "wan21_i2v", "WAN21_T2V", "WAN21", _wan(in_dim=36), _WAN_REDUCED,
        _geometry(8, 2, 16, native_px=832, latent_dimensions=3),
        description="Wan image-to-video without CLIP vision (the Wan 2.2 A14B I2V layout: 16 latent + 4 mask + "
                    "16 image channels in, concat_latent_image / concat_mask), 2 blocks"),
    "wan22_5b": DiTSpec(
        "wan22_5b", "WAN22_T2V", "WAN22", _wan(in_dim=48, out_dim=48), _WAN_REDUCED,
        _geometry(16, 2, 48, native_px=1280, latent_dimensions=3),
        description="Wan 2.2 TI2V 5B (48-channel latent at 16 px, 1x2x2 patches: 32 px tokens), 2 blocks"),
})


def marker_key(kind: str) -> str:
    return MARKER_PREFIX + kind


def _spec(kind: str) -> DiTSpec:
    try:
        return SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown tiny DiT kind {kind!r}; known: {', '.join(DIT_KINDS + VIDEO_KINDS)}") from None


def _resolve(value):
    """Config values that are torch objects are spelled as strings in SPECS (cheap import)."""
    if isinstance(value, dict):
        return {k: _resolve(v) for k, v in value.items()}
    if value == "float32":
        import torch

        return torch.float32
    return copy.deepcopy(value)


def dit_filename(kind: str) -> str:
    """File name for a kind (versioned so persistent caches stay valid)."""
    _spec(kind)
    return f"tiny_dit_{kind}_v{DIT_VERSION}.safetensors"


def expected_geometry(kind: str) -> dict:
    """Geometry of the real model:

    * pixels_per_latent: image pixels per latent pixel (VAE factor; 1 in pixel space),
    * patch: latent pixels per token side,
    * latent_channels,
    * native_px: training resolution (image pixels per side),
    * latent_dimensions: ComfyUI's latent_format.latent_dimensions (3: the
      latent is 5-D, B,C,1,H,W -- the Wan 2.1 latent of Qwen-Image, Anima
      and Krea 2),
    * min_latent_side: the smallest (square) latent side ComfyUI's model code
      accepts -- the patch, except PixArt (34: its sin-cos pos-embed divides
      by round(mean side / 64), which is 0 up to a mean side of 32).
    """
    return dict(_spec(kind).geometry)


def model_base_class(kind: str) -> str:
    """Name of the comfy.model_base class ComfyUI builds for ``kind``."""
    return _spec(kind).model_base


def expected_model_config(kind: str) -> str:
    """Class name of the (test) model config ComfyUI must pick for ``kind``."""
    return f"PanoramaTest{_spec(kind).base_config}_{kind}"


def tiny_unet_config(kind: str) -> dict:
    """A copy of the diffusion-model constructor config used for ``kind`` on
    this host (``host_build``)."""
    return host_build(kind)


# ---------------------------------------------------------------------------
# Which host has which family, and the config fitted to the host's classes
# ---------------------------------------------------------------------------

def comfyui_version() -> str:
    """The version of the ComfyUI checkout the tests run against."""
    import harness

    path = harness.comfyui_path() / "comfyui_version.py"
    try:
        scope: dict = {}
        exec(path.read_text(encoding="utf-8"), scope)
        return str(scope["__version__"])
    except Exception:  # a checkout without the file: say where it is instead
        return f"at {harness.comfyui_path()}"


def unavailable_reason(kind: str):
    """None if this host has ``kind``'s family; else why not, e.g.
    "Flux2 is not in ComfyUI 0.3.64" (the config class ComfyUI would pick,
    or the model_base class it builds, is absent)."""
    spec = _spec(kind)
    _comfy()
    import comfy.model_base as mb
    import comfy.supported_models as sm

    for module, name in ((sm, spec.base_config), (mb, spec.model_base)):
        if not hasattr(module, name):
            return f"{name} is not in ComfyUI {comfyui_version()}"
    return None


def available_kinds(kinds=DIT_KINDS) -> Tuple[str, ...]:
    """The kinds of ``kinds`` whose family this host has."""
    return tuple(kind for kind in kinds if unavailable_reason(kind) is None)


# Required fields that ComfyUI's parameter dataclasses gained after v0.3.64
# (FluxParams.txt_ids_dims, ChromaParams.vec_in_dim, ChromaRadianceParams.use_x0
# / use_sequential_txt_ids, HunyuanVideoParams.use_cond_type_embedding /
# vision_in_dim / meanflow_sum), with the value detection gives a file of a
# layout that lacks the feature.  host_build fills a required field from here
# only where the spec does not set it, and _check_detection proves the tiny
# file is detected with the same value.
DETECTED_WITHOUT_FEATURE = {
    "txt_ids_dims": [], "vec_in_dim": None, "use_x0": False, "use_sequential_txt_ids": False,
    "use_cond_type_embedding": False, "vision_in_dim": None, "meanflow_sum": False,
}
# Constructor arguments next to a params dataclass (Flux(image_model=..., **params)).
_CONSTRUCTOR_KEYS = ("image_model",)
_FILLED: Dict[str, dict] = {}


def _params_fields(kind: str):
    """{name: dataclasses.Field} of the host's params dataclass of ``kind``, or None."""
    import dataclasses
    import importlib

    spec = _spec(kind)
    if not spec.params:
        return None
    module, name = spec.params.rsplit(".", 1)
    return {f.name: f for f in dataclasses.fields(getattr(importlib.import_module(module), name))}


def host_build(kind: str) -> dict:
    """``kind``'s constructor config fitted to the fields the host's
    parameter dataclass has: keys it lacks (a field of a newer ComfyUI) are
    dropped, required fields the spec does not set (a field this host added)
    are filled from DETECTED_WITHOUT_FEATURE.  Families without a params
    dataclass take their config as it is."""
    import dataclasses

    cfg = _resolve(_spec(kind).build)
    _comfy()
    fields = _params_fields(kind)
    if fields is None:
        return cfg
    out = {k: v for k, v in cfg.items() if k in fields or k in _CONSTRUCTOR_KEYS}
    filled = {}
    for name, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if name in out or not required:
            continue
        if name not in DETECTED_WITHOUT_FEATURE:
            raise AssertionError(f"{kind}: {_spec(kind).params} of ComfyUI {comfyui_version()} requires "
                                 f"{name!r}, which the tiny spec does not set: add it to the spec or to "
                                 f"tiny_dits.DETECTED_WITHOUT_FEATURE (the value detection gives a real file)")
        filled[name] = copy.deepcopy(DETECTED_WITHOUT_FEATURE[name])
    out.update(filled)
    _FILLED[kind] = copy.deepcopy(filled)
    return out


# ---------------------------------------------------------------------------
# Test-only model configs ("swap in")
# ---------------------------------------------------------------------------

_TEST_CONFIGS: Dict[str, type] = {}


def _comfy():
    import harness

    harness.prepare_comfy_imports()


def tiny_config_class(kind: str) -> type:
    """The test config for ``kind``: a subclass of the stock config that

    * matches only files holding marker_key(kind) (``required_keys``),
    * drops the stock match keys in ``spec.relax`` (AuraFlow's cond_seq_dim), and
    * builds the diffusion model from ``{**detected, **REDUCED[kind]}``.
    """
    spec = _spec(kind)
    if kind not in _TEST_CONFIGS:
        reason = unavailable_reason(kind)
        if reason:
            raise LookupError(f"tiny DiT kind {kind!r}: {reason}")
        import comfy.supported_models as sm

        base = getattr(sm, spec.base_config)
        match = {k: v for k, v in base.unet_config.items() if k not in spec.relax}
        reduced = spec.reduced

        def __init__(self, unet_config):
            base.__init__(self, {**unet_config, **_resolve(reduced)})

        _TEST_CONFIGS[kind] = type(
            expected_model_config(kind),
            (base,),
            {"unet_config": match, "required_keys": {marker_key(kind): None}, "__init__": __init__,
             "__module__": __name__, "tiny_kind": kind},
        )
    return _TEST_CONFIGS[kind]


def register_test_configs() -> None:
    """Put the test configs of all DIT_KINDS this host has at the front of
    comfy.supported_models.models.  Idempotent; they match nothing but the
    tiny files, so real models are detected as before."""
    _comfy()
    import comfy.supported_models as sm

    for kind in reversed(available_kinds(DIT_KINDS + VIDEO_KINDS)):
        cls = tiny_config_class(kind)
        if cls not in sm.models:
            sm.models.insert(0, cls)


# ---------------------------------------------------------------------------
# Building the state dicts
# ---------------------------------------------------------------------------

def _build_module(kind: str, unet_config: dict):
    """The diffusion model ComfyUI's config for ``kind`` builds from ``unet_config`` (CPU, no init)."""
    cfg = tiny_config_class(kind)(unet_config)
    return cfg, cfg.get_model({}).diffusion_model


def _fill_special(kind: str, key: str, tensor, dtype, gen):
    """Values for tensors the generic default-like init gets wrong; None if it does not apply."""
    import torch

    leaf = key.rsplit(".", 1)[-1]
    if kind.startswith("sd3") and key == "pos_embed":
        # MMDiT's fixed 2-D sin-cos table (an uninitialised buffer in ComfyUI)
        from comfy.ldm.modules.diffusionmodules.mmdit import get_2d_sincos_pos_embed_torch

        n, dim = tensor.shape[1], tensor.shape[2]
        side = int(round(n ** 0.5))
        return get_2d_sincos_pos_embed_torch(dim, side, side).reshape(1, n, dim).to(dtype)
    if leaf in ("positional_encoding", "register_tokens", "text_embedding_padding", "y_embedding",
                "x_pad_token", "cap_pad_token"):
        # learned embeddings / paddings: small normal values like a trained model's
        return torch.empty(tensor.shape, dtype=dtype).normal_(0.0, 0.02, generator=gen)
    return None


def build_state_dict(kind: str, dtype=None, check: bool = True) -> dict:
    """The bare diffusion-model state dict of ``kind`` (what a
    models/diffusion_models file holds), with its marker.

    With ``check``, proves that ComfyUI's detection + the test config rebuild
    exactly this layout (same keys and shapes) from the tiny weights.
    """
    import torch

    import tiny_models

    _comfy()
    register_test_configs()
    _spec(kind)  # refuses an unknown kind
    dtype = torch.float16 if dtype is None else dtype
    _, module = _build_module(kind, tiny_unet_config(kind))
    buffers = {name for name, _ in module.named_buffers()}
    state = module.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}

    out = {}
    for key, value in state.items():
        gen = tiny_models._generator(f"dit/{kind}/{key}", 0)
        special = _fill_special(kind, key, value, dtype, gen)
        if special is not None:
            out[key] = special
        elif key in buffers:
            out[key] = value.detach().to(dtype) if value.is_floating_point() else value.detach().clone()
        else:
            t = tiny_models._init_tensor(key, value.shape, value.dtype, torch.float32, shapes, gen)
            if t.ndim >= 2 or (key.endswith("bias") and len(shapes.get(key[:-4] + "weight", ())) >= 2):
                t = t * WEIGHT_GAIN
            out[key] = t.to(dtype)
    del module, state
    out[marker_key(kind)] = torch.tensor([])
    out = {k: v.contiguous() for k, v in out.items()}
    if check:
        _check_detection(kind, out)
    return out


def _check_detection(kind: str, sd: dict) -> None:
    """ComfyUI must detect ``sd`` as ``kind`` and build the same layout from it."""
    import comfy.model_detection as md

    detected = md.detect_unet_config(sd, "")
    if detected is None:
        raise AssertionError(f"{kind}: detect_unet_config recognises no family")
    cfg = md.model_config_from_unet_config(detected, sd)
    expected = expected_model_config(kind)
    if type(cfg).__name__ != expected:
        raise AssertionError(f"{kind}: ComfyUI picked {type(cfg).__name__}, not {expected} (detected {detected})")
    for name, value in _FILLED.get(kind, {}).items():
        if detected.get(name, value) != value:
            raise AssertionError(f"{kind}: the tiny file was built with {name}={value!r} but ComfyUI detects "
                                 f"{name}={detected[name]!r}: fix tiny_dits.DETECTED_WITHOUT_FEATURE or the spec")
    rebuilt = cfg.get_model({}).diffusion_model.state_dict()
    want = {k: tuple(v.shape) for k, v in sd.items() if k != marker_key(kind)}
    got = {k: tuple(v.shape) for k, v in rebuilt.items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:8]
        raise AssertionError(f"{kind}: the model ComfyUI builds differs from the tiny layout: {diff}")


def _atomic_save(state: dict, path: Path, metadata: dict) -> Path:
    import safetensors.torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    safetensors.torch.save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def _metadata(kind: str) -> dict:
    return {"comfy_panorama.tiny_kind": kind, "comfy_panorama.tiny_version": str(DIT_VERSION)}


def write_dit(kind: str, path) -> Path:
    """Write ``kind``'s diffusion-model file to ``path`` (atomically)."""
    return _atomic_save(build_state_dict(kind), Path(path), _metadata(kind))


def ensure_dit(kind: str, directory) -> str:
    """Writes (once) ``kind``'s diffusion-model file into ``directory`` (a
    models/diffusion_models folder); returns its file name.  Registers the
    test configs, which UNETLoader needs to load it."""
    directory = Path(directory)
    name = dit_filename(kind)
    if not (directory / name).is_file():
        write_dit(kind, directory / name)
    register_test_configs()
    return name


def ensure_dits(directory, kinds=None) -> Dict[str, str]:
    """{kind: file name} for ``kinds`` (default: the DIT_KINDS this host
    has), writing the missing ones."""
    return {kind: ensure_dit(kind, directory) for kind in (available_kinds() if kinds is None else kinds)}


# ---------------------------------------------------------------------------
# The Flux / SD3 VAE and an SD3.5 checkpoint
# ---------------------------------------------------------------------------

FLUX_VAE_FILENAME = f"tiny_flux_vae_v{DIT_VERSION}.safetensors"
SD35_CHECKPOINT_FILENAME = f"tiny_sd35_checkpoint_v{DIT_VERSION}.safetensors"

# What comfy.sd.VAE builds for a KL VAE whose decoder.conv_in has 16 input
# channels and no post_quant_conv (the Flux ae.safetensors / SD3 layout).
_FLUX_VAE_DDCONFIG = {
    "double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}


def build_flux_vae_state_dict(dtype=None) -> dict:
    """A random full-size 16-channel VAE in the Flux ae.safetensors layout
    (encoder.* / decoder.*, no quant convs), 83.7 M parameters."""
    import torch

    import tiny_models

    _comfy()
    from comfy.ldm.models.autoencoder import AutoencodingEngine

    params = dict(_FLUX_VAE_DDCONFIG)
    with torch.device("meta"):
        vae = AutoencodingEngine(
            regularizer_config={"target": "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
            encoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Encoder", "params": params},
            decoder_config={"target": "comfy.ldm.modules.diffusionmodules.model.Decoder", "params": params})
    state = tiny_models._materialize(vae.state_dict(), 0, "dit/flux_vae", torch.float16 if dtype is None else dtype)
    return {k: v.contiguous() for k, v in state.items()}


def ensure_flux_vae(directory) -> str:
    """Writes (once) the 16-channel VAE into ``directory`` (a models/vae
    folder); returns its file name (loadable by VAELoader / comfy.sd.VAE)."""
    directory = Path(directory)
    if not (directory / FLUX_VAE_FILENAME).is_file():
        _atomic_save(build_flux_vae_state_dict(), directory / FLUX_VAE_FILENAME, _metadata("flux_vae"))
    return FLUX_VAE_FILENAME


# The Wan 2.1 VAE, which Qwen-Image uses (qwen_image_vae.safetensors): comfy.sd.VAE knows it by
# decoder.middle.0.residual.0.gamma without decoder.upsamples.0.upsamples.0.residual.2.weight (Wan 2.2).
# v0.33 reads its width from decoder.head.0.gamma, so a narrow one decodes fast on CPU; 0.3.64 hard-codes
# the real 96.
WAN_VAE_SMALL_DIM = 16
WAN_VAE_REAL_DIM = 96


def wan_vae_dim() -> int:
    """The widest the host's comfy.sd.VAE will build the Wan 2.1 VAE at: the small width where it reads
    the width from the file, else the real one."""
    import inspect

    _comfy()
    import comfy.sd

    return WAN_VAE_SMALL_DIM if "decoder.head.0.gamma" in inspect.getsource(comfy.sd.VAE.__init__) \
        else WAN_VAE_REAL_DIM


def build_wan_vae_state_dict(dim: int, dtype=None) -> dict:
    """A random Wan 2.1 VAE (16 latent channels, 8 px, causal 3-D convolutions) ``dim`` wide, in the
    layout of qwen_image_vae.safetensors; RMS norm scales (``gamma``) ones."""
    import torch

    import tiny_models

    _comfy()
    from comfy.ldm.wan.vae import WanVAE

    with torch.device("meta"):
        vae = WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                     temperal_downsample=[False, True, True], dropout=0.0)
    dtype = torch.float16 if dtype is None else dtype
    state = tiny_models._materialize(vae.state_dict(), 0, "dit/wan_vae", dtype)
    return {k: (torch.ones_like(v) if k.endswith(".gamma") else v).contiguous() for k, v in state.items()}


def ensure_wan_vae(directory) -> str:
    """Writes (once) the Wan 2.1 VAE into ``directory`` (a models/vae folder), as narrow as this host
    loads it; returns its file name (loadable by VAELoader / comfy.sd.VAE)."""
    directory = Path(directory)
    dim = wan_vae_dim()
    name = f"tiny_wan21_vae_d{dim}_v{DIT_VERSION}.safetensors"
    if not (directory / name).is_file():
        _atomic_save(build_wan_vae_state_dict(dim), directory / name, _metadata("wan_vae"))
    return name


# The Wan 2.2 VAE (wan2.2_vae.safetensors: 48 latent channels, 16 px): comfy.sd.VAE knows it by
# decoder.middle.0.residual.0.gamma with decoder.upsamples.0.upsamples.0.residual.2.weight, and builds
# comfy.ldm.wan.vae2_2.WanVAE at the real widths (dim 160, dec_dim 256: 705M parameters) on both hosts, whatever
# the file holds.  The tiny one is that class at width 16, which ComfyUI builds while narrow_wan22_vae() is on.
WAN22_VAE_DIM = 16
WAN22_VAE_FILENAME = f"tiny_wan22_vae_d{WAN22_VAE_DIM}_v{DIT_VERSION}.safetensors"


def _wan22_vae_config(dim: int) -> dict:
    return dict(dim=dim, dec_dim=dim, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0)


def build_wan22_vae_state_dict(dim: int = WAN22_VAE_DIM, dtype=None) -> dict:
    """A random Wan 2.2 VAE ``dim`` wide (encoder and decoder) in the layout of wan2.2_vae.safetensors; RMS
    norm scales (``gamma``) ones."""
    import torch

    import tiny_models

    _comfy()
    from comfy.ldm.wan.vae2_2 import WanVAE

    with torch.device("meta"):
        vae = WanVAE(**_wan22_vae_config(dim))
    dtype = torch.float16 if dtype is None else dtype
    state = tiny_models._materialize(vae.state_dict(), 0, "dit/wan22_vae", dtype)
    return {k: (torch.ones_like(v) if k.endswith(".gamma") else v).contiguous() for k, v in state.items()}


def ensure_wan22_vae(directory) -> str:
    """Writes (once) the tiny Wan 2.2 VAE into ``directory`` (a models/vae folder); load it with
    PanoramaTestWan22VAELoader (VAELoader under narrow_wan22_vae)."""
    directory = Path(directory)
    if not (directory / WAN22_VAE_FILENAME).is_file():
        _atomic_save(build_wan22_vae_state_dict(), directory / WAN22_VAE_FILENAME, _metadata("wan22_vae"))
    return WAN22_VAE_FILENAME


@contextlib.contextmanager
def narrow_wan22_vae(dim: int = WAN22_VAE_DIM):
    """While on, comfy.sd.VAE builds the Wan 2.2 VAE ``dim`` wide (its detection, ratios, latent format and
    memory estimates stay ComfyUI's own)."""
    _comfy()
    import comfy.ldm.wan.vae2_2 as vae2_2

    real = vae2_2.WanVAE

    def narrow(**config):
        return real(**{**config, "dim": dim, "dec_dim": dim})

    vae2_2.WanVAE = narrow
    try:
        yield
    finally:
        vae2_2.WanVAE = real


class PanoramaTestWan22VAELoader:
    """Test-only node: ComfyUI's VAELoader for the tiny Wan 2.2 VAE (built at its width, not the real one)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae_name": ("STRING", {"default": WAN22_VAE_FILENAME})}}

    RETURN_TYPES = ("VAE",)
    FUNCTION = "load_vae"
    CATEGORY = "testing"

    def load_vae(self, vae_name):
        import nodes

        with narrow_wan22_vae():
            return nodes.VAELoader().load_vae(vae_name)


def ensure_sd35_checkpoint(directory) -> str:
    """Writes (once) a CheckpointLoaderSimple checkpoint into ``directory``:
    the tiny sd35 model (model.diffusion_model.*) + the 16-channel VAE
    (first_stage_model.*), no text encoders.  The marker is stored both at the
    top level (load_checkpoint_guess_config checks the whole file) and under
    the model prefix (load_diffusion_model strips the prefix first)."""
    directory = Path(directory)
    path = directory / SD35_CHECKPOINT_FILENAME
    if not path.is_file():
        dit = build_state_dict("sd35")
        out = {f"model.diffusion_model.{k}": v for k, v in dit.items()}
        out.update({f"first_stage_model.{k}": v for k, v in build_flux_vae_state_dict().items()})
        out[marker_key("sd35")] = dit[marker_key("sd35")]
        _atomic_save(out, path, _metadata("sd35_checkpoint"))
    register_test_configs()
    return SD35_CHECKPOINT_FILENAME


# ---------------------------------------------------------------------------
# Conditioning
# ---------------------------------------------------------------------------

def _cond_generator(kind: str, text: str, what: str):
    import torch

    seed = zlib.crc32(f"{kind}\x00{what}\x00{text}".encode("utf-8"))
    return torch.Generator().manual_seed(seed)


def _randn(shape, kind, text, what):
    import torch

    return torch.randn(shape, generator=_cond_generator(kind, text, what), dtype=torch.float32)


def conditioning(kind: str, text: str = "", batch: int = 1, tokens: int = 8) -> list:
    """A CONDITIONING (``[[cond, extras]]``) for ``kind``'s tiny model,
    deterministic from ``text``; what a text encoder would give (shapes and
    extras read by ComfyUI's ``model_base.<Class>.extra_conds``):

    * flux_*, sd3*: cond (B, T, 64) + pooled_output (B, 64).  (Flux guidance is
      extras["guidance"], set by the FluxGuidance node; ComfyUI's default is 3.5.)
    * chroma*, qwen_image, auraflow, pixart_sigma: cond (B, T, 64), pooled_output None.
    * lumina2, hunyuan_image21: + attention_mask (B, T) of ones.
    * hidream: cond = T5 (B, T, 64), pooled_output (B, 64),
      conditioning_llama3 (B, HIDREAM_LLAMA_LAYERS, T, 64).
    * hunyuan_dit: cond (B, 16, 32) + attention_mask, conditioning_mt5xl
      (B, 16, 64) + attention_mask_mt5xl; the first min(T, 16) tokens are valid
      (the model's text length is fixed, like the real 77 / 256).
    * flux2_*, longcat_image, ernie_image: cond (B, T, 64), no pooled output
      (Flux2.extra_conds pads the text to 512 tokens, as for the real model).
    * z_image, z_image_pixel, omnigen2: + attention_mask (B, T) of ones.
    * kandinsky5_image: cond (B, T, 64) + pooled_output (B, 64) (the CLIP one).
    * krea2: cond (B, T, 2 * 32): two LLM layers' hidden states side by side.
    * wan21, wan21_i2v, wan22_5b: cond (B, T, 64), umt5-xxl's place (real
      4096 wide); image-to-video adds concat_latent_image / concat_mask
      (WanImageToVideo's extras) to this by itself.
    * anima: cond (B, T, 1024) (Qwen3-0.6B hidden states) + t5xxl_ids (T,)
      and t5xxl_weights (T,), which Anima.extra_conds runs through the
      model's LLM adapter (batch 1: the ids carry no batch axis).

    ``batch`` > 1 is what a batched text encoder would give; keep 1 for
    lumina2, z_image*, omnigen2 (ComfyUI's extra_conds takes num_tokens as
    the mask's sum over the whole batch) and anima.
    """
    import torch

    spec = _spec(kind)
    family = spec.base_config
    extras: dict = {"pooled_output": None}
    if family == "HunyuanDiT":
        n = HYDIT_TEXT_LEN
        valid = max(1, min(int(tokens), n))
        mask = torch.zeros((batch, n), dtype=torch.long)
        mask[:, :valid] = 1
        cond = _randn((batch, n, HYDIT_CLIP_DIM), kind, text, "clip") * mask.unsqueeze(-1)
        extras.update(attention_mask=mask.clone(), attention_mask_mt5xl=mask.clone(),
                      conditioning_mt5xl=_randn((batch, n, HYDIT_T5_DIM), kind, text, "mt5") * mask.unsqueeze(-1))
        return [[cond, extras]]

    if family == "Anima":
        cond = _randn((batch, tokens, ANIMA_TEXT_DIM), kind, text, "qwen3")
        ids = torch.randint(1, ANIMA_T5_VOCAB, (tokens,), generator=_cond_generator(kind, text, "t5_ids"),
                            dtype=torch.int)
        extras.update(t5xxl_ids=ids, t5xxl_weights=torch.ones((tokens,)))
        return [[cond, extras]]

    cond = _randn((batch, tokens, CONTEXT_DIM), kind, text, "context")
    if family in ("Flux", "FluxSchnell", "SD3", "HiDream", "Kandinsky5Image"):
        extras["pooled_output"] = _randn((batch, POOLED_DIM), kind, text, "pooled")
    if family in ("Lumina2", "HunyuanImage21", "ZImage", "ZImagePixelSpace", "Omnigen2"):
        extras["attention_mask"] = torch.ones((batch, tokens), dtype=torch.long)
    if family == "HiDream":
        extras["conditioning_llama3"] = _randn((batch, HIDREAM_LLAMA_LAYERS, tokens, CONTEXT_DIM), kind, text, "llama3")
    return [[cond, extras]]


class PanoramaTestConditioning:
    """Test-only node: a CONDITIONING for one of the tiny DiT kinds (no text encoder needed)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "kind": (list(DIT_KINDS + VIDEO_KINDS), {"default": DIT_KINDS[0]}),
            "text": ("STRING", {"default": "", "multiline": True}),
        }}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"
    CATEGORY = "testing"
    DESCRIPTION = "Deterministic random conditioning shaped for the tiny test DiT of the chosen kind."

    def encode(self, kind, text):
        return (conditioning(kind, text),)


TEST_NODE_CLASS_MAPPINGS = {"PanoramaTestConditioning": PanoramaTestConditioning,
                            "PanoramaTestWan22VAELoader": PanoramaTestWan22VAELoader}


# ---------------------------------------------------------------------------

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python tests/host/tiny_dits.py DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    for kind, name in ensure_dits(directory).items():
        print(kind, name)
    print("vae", ensure_flux_vae(directory))
    print("sd35 checkpoint", ensure_sd35_checkpoint(directory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
