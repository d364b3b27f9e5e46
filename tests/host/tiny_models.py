"""Tiny random-weight checkpoints with real ComfyUI architectures.

No model weights can be downloaded in this project, so the host tests write
their own checkpoints.  Every module is built from ComfyUI's own classes
(``openaimodel.UNetModel``, ``AutoencoderKL``, the CLIP text models named by
each ``supported_models`` config) and saved in the original LDM key layout
(``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.*`` /
``conditioner.embedders.*``), so ``CheckpointLoaderSimple`` goes through
ComfyUI's own detection (``model_detection.detect_unet_config`` + the
``comfy.supported_models.models`` list) as it does for a downloaded file.

Two sets of kinds:

* ``KINDS`` = sd15, sd2v, sdxl (the default, fast).  ComfyUI's SD-family
  configs demand ``model_channels`` 320, and at 320 channels one UNet forward
  on a 64x64 latent takes > 1 s on 2 CPU cores whatever the depth (level 0
  alone needs three 320-channel resblocks at full resolution); the text
  encoders (CLIP-L, OpenCLIP-H, CLIP-L + bigG: up to 820 M parameters) cost
  more to write, load and run than everything else.  So these kinds carry a
  marker tensor and are claimed by test-only configs (``tiny_config_class``)
  that ``register_test_configs()`` puts at the front of
  ``comfy.supported_models.models`` -- the "swap in".  Each subclasses the
  stock config (SD15 / SD20 / SDXL), so model_base class, model type (incl.
  SD2's v-prediction heuristic), latent format, key conversions and
  tokenizers are ComfyUI's; only the UNet width (64 channels) and the text
  encoder depth (3 layers, full width) are cut.  Without the marker they can
  never match, so real checkpoints load exactly as before.
* ``STOCK_KINDS`` = sd15_stock, sd2v_stock, sdxl_stock.  No test config:
  320-channel UNets that ComfyUI's unmodified SD15 / SD20 / Segmind_Vega
  configs match, with full-size text encoders.  Slow; used to prove that the
  layouts and the key conversion are what ComfyUI detects on its own.

The VAE is the full SD AutoencoderKL (83 M parameters) in both: ``comfy.sd.VAE``
hard-codes that config instead of reading it from the state dict.

Weights are random but deterministic (each tensor is seeded from its name),
drawn like PyTorch's default init (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for
weights and biases of linear/conv layers, ones/zeros for norms), so outputs are
finite and not degenerate.  Files are stored in float16 to halve disk and load
time; ComfyUI casts to whatever dtype it picks for the device.

Importing this module is cheap; the functions that build models import ComfyUI
(through ``harness.prepare_comfy_imports``), so ComfyUI must be present.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

# Bump when a spec or the init changes, so persistent caches never serve a stale file.
TINY_VERSION = 3

# Fast kinds (the default): marker-gated test configs, 64-channel UNets,
# 3-layer text encoders.  Stock kinds: no test config at all.
KINDS = ("sd15", "sd2v", "sdxl")
STOCK_KINDS = ("sd15_stock", "sd2v_stock", "sdxl_stock")
# Fast kinds written only when a test asks for them.
EXTRA_KINDS = ("sd15_inpaint",)

# ComfyUI's SD20.model_type() calls a 4-channel SD2 checkpoint v-prediction when
# this LayerNorm bias has std > 0.09 (trained v-models have, eps ones do not).
# It is not a flag we can set, so the sd2v UNet is laid out so that this block
# exists and the bias is drawn with a larger std (see _SD2_VPRED_BIAS_STD).
SD2_VPRED_KEY = "output_blocks.11.1.transformer_blocks.0.norm1.bias"
_SD2_VPRED_BIAS_STD = 0.2

# Fast kinds carry this (empty) tensor; their test config requires it, so the
# test configs can never claim a real checkpoint.
MARKER_PREFIX = "comfy_panorama_tiny."
# 3, not fewer: SD2 and SDXL read the penultimate layer and ComfyUI asserts
# abs(layer_idx) < num_layers.
TINY_TEXT_ENCODER_LAYERS = 3


@dataclass(frozen=True)
class TinySpec:
    kind: str
    base_config: str  # the comfy.supported_models class it is (or derives from)
    unet: dict
    stock: bool  # True: matched by ComfyUI's unmodified config list
    v_prediction: bool = False
    description: str = ""


def _layout(family: str, model_channels: int, channel_mult) -> dict:
    """UNet layouts shared by the fast and the stock variant of a family."""
    common = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=model_channels,
        channel_mult=list(channel_mult), use_spatial_transformer=True, legacy=False,
        use_checkpoint=False, use_temporal_attention=False, use_temporal_resblock=False,
    )
    if family == "sd15":
        # Three levels, one resblock each; attention only at 1/4 resolution
        # (input, middle, outputs): at 1/2 resolution SD1's 8 heads made
        # attention most of the forward time.
        return dict(
            common, num_res_blocks=[1, 1, 1], transformer_depth=[0, 0, 1], transformer_depth_output=[0, 0, 0, 0, 1, 1],
            transformer_depth_middle=1, context_dim=768, use_linear_in_transformer=False,
            adm_in_channels=None, num_heads=8, num_head_channels=-1,
        )
    if family == "sd2":
        # The v-pred heuristic reads output block 11, so the UNet needs at
        # least 12 output blocks with a transformer in block 11.  Eight
        # resblocks on the cheapest level (1/8 resolution) make block 11 the
        # first output block of level 1 (1/2 resolution) instead of SD2's
        # full-resolution level 0.  transformer_depth_output is listed level 0
        # first (the UNet pops it from the end, deepest level first).
        return dict(
            common, num_res_blocks=[1, 1, 1, 8], transformer_depth=[0, 1, 0] + [0] * 8,
            transformer_depth_output=[0, 0, 1, 1, 0, 0] + [0] * 9, transformer_depth_middle=1,
            context_dim=1024, use_linear_in_transformer=True, adm_in_channels=None,
            num_heads=-1, num_head_channels=64,
        )
    if family == "sdxl":
        # The per-block depths [0, 0, 1, 1, 2, 2] are what ComfyUI's real
        # Segmind_Vega config matches on (SDXL itself wants [0, 0, 2, 2, 10, 10]);
        # the six input resblocks are spread 1 / 1 / 4 so level 0 has one.
        return dict(
            common, num_res_blocks=[1, 1, 4], transformer_depth=[0, 0, 1, 1, 2, 2],
            transformer_depth_output=[0, 0, 0, 0, 2, 2, 2, 2, 2], transformer_depth_middle=2,
            context_dim=2048, use_linear_in_transformer=True, adm_in_channels=2816,
            num_classes="sequential", num_heads=-1, num_head_channels=64,
        )
    raise ValueError(family)


SPECS: Dict[str, TinySpec] = {
    "sd15": TinySpec("sd15", "SD15", _layout("sd15", 64, [1, 2, 2]), stock=False,
                     description="SD1.5 family (eps), CLIP-L (3 layers)"),
    # ComfyUI calls a UNet with more than 4 input channels an inpainting model
    # (mask + masked-image latent concatenated to the latent: c_concat)
    "sd15_inpaint": TinySpec("sd15_inpaint", "SD15", {**_layout("sd15", 64, [1, 2, 2]), "in_channels": 9},
                             stock=False, description="SD1.5 inpainting (9 input channels), CLIP-L (3 layers)"),
    "sd2v": TinySpec("sd2v", "SD20", _layout("sd2", 64, [1, 1, 1, 1]), stock=False, v_prediction=True,
                     description="SD2.x family (v-prediction), OpenCLIP-H (3 layers)"),
    "sdxl": TinySpec("sdxl", "SDXL", _layout("sdxl", 64, [1, 2, 2]), stock=False,
                     description="SDXL family (model_base.SDXL, ADM y), CLIP-L + bigG (3 layers each)"),
    # model_channels 320 is what the stock SD15/SD20/SDXL-family configs require.
    "sd15_stock": TinySpec("sd15_stock", "SD15", _layout("sd15", 320, [1, 1, 1]), stock=True,
                           description="stock SD15 config, full CLIP-L"),
    "sd2v_stock": TinySpec("sd2v_stock", "SD20", _layout("sd2", 320, [1, 1, 1, 1]), stock=True, v_prediction=True,
                           description="stock SD20 config (v-prediction), full OpenCLIP-H"),
    "sdxl_stock": TinySpec("sdxl_stock", "Segmind_Vega", _layout("sdxl", 320, [1, 1, 1]), stock=True,
                           description="stock Segmind_Vega (SDXL family) config, full CLIP-L + bigG"),
}

# The SD VAE config that comfy.sd.VAE hard-codes for a 4-channel KL VAE.
_SD_VAE_DDCONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}


def marker_key(kind: str) -> str:
    return MARKER_PREFIX + kind


# ---------------------------------------------------------------------------
# Test-only model configs ("swap in")
# ---------------------------------------------------------------------------

_TEST_CONFIGS: Dict[str, type] = {}
_REDUCED_CLIPS: Dict[type, type] = {}


def _reduced_clip_class(clip_cls: type) -> type:
    """``clip_cls`` with every CLIP tower cut to TINY_TEXT_ENCODER_LAYERS layers.

    ComfyUI's SDClipModel reads per-tower config overrides from
    model_options["<model_name>_model_config"] (clip_l / clip_h / clip_g); the
    width must stay (it is the UNet's context_dim), the depth need not.
    """
    if clip_cls not in _REDUCED_CLIPS:
        overrides = {f"{name}_model_config": {"num_hidden_layers": TINY_TEXT_ENCODER_LAYERS} for name in ("clip_l", "clip_h", "clip_g")}

        def __init__(self, device="cpu", dtype=None, model_options={}, **kwargs):
            clip_cls.__init__(self, device=device, dtype=dtype, model_options={**overrides, **model_options}, **kwargs)

        _REDUCED_CLIPS[clip_cls] = type(f"PanoramaTiny{clip_cls.__name__}", (clip_cls,), {"__init__": __init__})
    return _REDUCED_CLIPS[clip_cls]


def tiny_config_class(kind: str) -> type:
    """The test config for a fast kind: a subclass of the stock config that

    * matches only checkpoints holding marker_key(kind),
    * drops the model_channels / transformer_depth constraints, and
    * builds its text encoders with TINY_TEXT_ENCODER_LAYERS layers.

    Everything else (model_base class, model_type incl. the SD2 v-pred
    heuristic, latent format, key conversions, tokenizers) is inherited.
    """
    spec = _spec(kind)
    if spec.stock:
        raise ValueError(f"{kind} is a stock kind: ComfyUI's own {spec.base_config} config loads it")
    if kind not in _TEST_CONFIGS:
        import comfy.supported_models as sm
        from comfy import supported_models_base

        base = getattr(sm, spec.base_config)
        match = {k: v for k, v in base.unet_config.items() if k not in ("model_channels", "transformer_depth")}

        def clip_target(self, state_dict={}):
            target = base.clip_target(self, state_dict=state_dict)
            return supported_models_base.ClipTarget(target.tokenizer, _reduced_clip_class(target.clip))

        _TEST_CONFIGS[kind] = type(
            f"PanoramaTest{base.__name__}",
            (base,),
            {"unet_config": match, "required_keys": {marker_key(kind): None}, "clip_target": clip_target,
             "__module__": __name__},
        )
    return _TEST_CONFIGS[kind]


def register_test_configs() -> None:
    """Put the test configs at the front of comfy.supported_models.models.

    Idempotent.  Needed before CheckpointLoaderSimple can load a fast kind;
    they match nothing else, so stock checkpoints are detected as before.
    """
    import harness

    harness.prepare_comfy_imports()
    import comfy.supported_models as sm

    for kind in KINDS + EXTRA_KINDS:
        cls = tiny_config_class(kind)
        if cls not in sm.models:
            sm.models.insert(0, cls)


def checkpoint_filename(kind: str, seed: int = 0) -> str:
    """File name used for a kind (versioned so persistent caches stay valid)."""
    _spec(kind)
    suffix = f"_s{seed}" if seed else ""
    return f"tiny_{kind}_v{TINY_VERSION}{suffix}.safetensors"


def _spec(kind: str) -> TinySpec:
    try:
        return SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown tiny checkpoint kind {kind!r}; known: {', '.join(SPECS)}") from None


# ---------------------------------------------------------------------------
# Deterministic default-like init
# ---------------------------------------------------------------------------

def _generator(name: str, seed: int):
    import torch

    # Seed from the key itself: a tensor's values do not depend on build
    # order, and the same (kind, key, seed) always gives the same bytes.
    return torch.Generator().manual_seed((zlib.crc32(name.encode()) * 1000003 + seed) % (2**63 - 1))


def _init_tensor(key: str, shape, dtype, out_dtype, all_shapes: Dict[str, tuple], gen):
    """One tensor, drawn the way PyTorch's default init would draw it."""
    import torch

    shape = tuple(shape)
    if not dtype.is_floating_point:
        # position_ids buffers: 0..n-1 along the last axis
        return torch.arange(shape[-1], dtype=dtype).expand(shape).clone() if shape else torch.zeros((), dtype=dtype)
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "logit_scale":
        return torch.full(shape, math.log(100.0), dtype=out_dtype)
    if "embedding" in key and len(shape) == 2:
        # token / position embeddings: CLIP draws them N(0, 0.02); the
        # default N(0, 1) would swamp the residual stream.
        return torch.empty(shape, dtype=out_dtype).normal_(0.0, 0.02, generator=gen)
    if len(shape) >= 2:
        bound = 1.0 / math.sqrt(math.prod(shape[1:]))
        return torch.empty(shape, dtype=out_dtype).uniform_(-bound, bound, generator=gen)
    if leaf == "bias" or leaf.endswith("_bias"):
        weight_shape = all_shapes.get(key[: -len(leaf)] + leaf.replace("bias", "weight"))
        if weight_shape is not None and len(weight_shape) >= 2:
            bound = 1.0 / math.sqrt(math.prod(weight_shape[1:]))
            return torch.empty(shape, dtype=out_dtype).uniform_(-bound, bound, generator=gen)
        return torch.zeros(shape, dtype=out_dtype)  # norm bias
    if len(shape) == 1:
        return torch.ones(shape, dtype=out_dtype)  # norm scale
    return torch.zeros(shape, dtype=out_dtype)


def _materialize(meta_state: dict, seed: int, namespace: str, out_dtype) -> dict:
    shapes = {k: tuple(v.shape) for k, v in meta_state.items()}
    return {
        k: _init_tensor(k, v.shape, v.dtype, out_dtype, shapes, _generator(f"{namespace}/{k}", seed))
        for k, v in meta_state.items()
    }


# ---------------------------------------------------------------------------
# Building and writing checkpoints
# ---------------------------------------------------------------------------

def model_config_class(kind: str) -> type:
    """The comfy.supported_models class ComfyUI must pick for ``kind``."""
    spec = _spec(kind)
    if spec.stock:
        import harness

        harness.prepare_comfy_imports()
        import comfy.supported_models

        return getattr(comfy.supported_models, spec.base_config)
    return tiny_config_class(kind)


def build_state_dict(kind: str, seed: int = 0, dtype=None) -> dict:
    """The full checkpoint state dict for ``kind`` in LDM key layout."""
    import torch

    import harness

    harness.prepare_comfy_imports()
    import comfy.ops
    import comfy.utils
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    spec = _spec(kind)
    dtype = torch.float16 if dtype is None else dtype
    model_config = model_config_class(kind)(dict(spec.unet))

    # Shapes come from ComfyUI's own modules built on the meta device: no
    # memory, no init, and the key names are exactly what ComfyUI loads.
    with torch.device("meta"):
        unet = UNetModel(**spec.unet, dtype=torch.float32, device="meta", operations=comfy.ops.disable_weight_init)
        vae = AutoencoderKL(ddconfig=dict(_SD_VAE_DDCONFIG), embed_dim=4)
        clip = model_config.clip_target().clip(device="meta", dtype=torch.float32, model_options={})

    unet_sd = _materialize(unet.state_dict(), seed, f"{kind}/unet", dtype)
    if spec.base_config == "SD20" and spec.v_prediction:
        gen = _generator(f"{kind}/unet/{SD2_VPRED_KEY}", seed)
        unet_sd[SD2_VPRED_KEY] = torch.empty(unet_sd[SD2_VPRED_KEY].shape, dtype=dtype).normal_(0.0, _SD2_VPRED_BIAS_STD, generator=gen)
    vae_sd = _materialize(vae.state_dict(), seed, f"{kind}/vae", dtype)
    clip_sd = _materialize(clip.state_dict(), seed, f"{kind}/clip", dtype)
    del unet, vae, clip

    out = {}
    out.update(comfy.utils.state_dict_prefix_replace(unet_sd, {"": "model.diffusion_model."}))
    out.update(comfy.utils.state_dict_prefix_replace(vae_sd, {"": "first_stage_model."}))
    # ComfyUI's own "for saving" conversion (what CheckpointSave uses) turns
    # its internal CLIP keys into the original layouts: cond_stage_model.transformer
    # (SD1), open_clip cond_stage_model.model with packed in_proj (SD2),
    # conditioner.embedders.0/1 (SDXL).
    out.update(model_config.process_clip_state_dict_for_saving(clip_sd))
    if spec.v_prediction and spec.base_config != "SD20":
        out["v_pred"] = torch.tensor([])  # how SDXL-family configs flag v-prediction
    if not spec.stock:
        out[marker_key(kind)] = torch.tensor([])
    return {k: v.contiguous() for k, v in out.items()}


def write_checkpoint(kind: str, path, seed: int = 0, dtype=None) -> Path:
    """Write the ``kind`` checkpoint to ``path`` (atomically) and return the path."""
    import safetensors.torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = build_state_dict(kind, seed=seed, dtype=dtype)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    metadata = {
        "comfy_panorama.tiny_kind": kind,
        "comfy_panorama.tiny_version": str(TINY_VERSION),
        "comfy_panorama.tiny_seed": str(seed),
    }
    safetensors.torch.save_file(state, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def ensure_checkpoints(directory, kinds=KINDS, seed: int = 0) -> Dict[str, str]:
    """Write the missing checkpoints of ``kinds`` into ``directory``.

    Returns {kind: file name}.  Files already there are reused: names carry
    TINY_VERSION and the seed, and the content is a pure function of them,
    so a cache directory shared between sessions is safe.  Registers the
    test configs when a fast kind is asked for.
    """
    directory = Path(directory)
    names = {}
    for kind in kinds:
        name = checkpoint_filename(kind, seed)
        if not (directory / name).is_file():
            write_checkpoint(kind, directory / name, seed=seed)
        names[kind] = name
    if any(not _spec(k).stock for k in kinds):
        register_test_configs()
    return names


def build_controlnet_state_dict(kind: str = "sd15", seed: int = 0, dtype=None) -> dict:
    """A ControlNet for ``kind``'s UNet (ComfyUI's ``cldm.ControlNet``), in
    the original "control_model." layout, drawn like the checkpoints: its
    zero convolutions are not zero, so it changes what the model does."""
    import torch

    import harness

    harness.prepare_comfy_imports()
    import comfy.ops
    from comfy.cldm.cldm import ControlNet

    config = {k: v for k, v in _spec(kind).unet.items() if k != "out_channels"}
    with torch.device("meta"):
        net = ControlNet(hint_channels=3, dtype=torch.float32, device="meta", operations=comfy.ops.disable_weight_init,
                         **config)
    state = _materialize(net.state_dict(), seed, f"{kind}/controlnet", torch.float16 if dtype is None else dtype)
    return {f"control_model.{k}": v.contiguous() for k, v in state.items()}


def controlnet_filename(kind: str = "sd15", seed: int = 0) -> str:
    return f"tiny_controlnet_{kind}_v{TINY_VERSION}_s{seed}.safetensors"


def ensure_controlnet(directory, kind: str = "sd15", seed: int = 0) -> str:
    """Writes (once) the ``kind`` ControlNet into ``directory``; its file name."""
    import safetensors.torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = controlnet_filename(kind, seed)
    if not (directory / name).is_file():
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        safetensors.torch.save_file(build_controlnet_state_dict(kind, seed), str(tmp))
        os.replace(tmp, directory / name)
    return name


def build_gligen(diffusion_model, seed: int = 0):
    """A GLIGEN box model (ComfyUI's ``gligen.Gligen``, wrapped in a
    ModelPatcher as GLIGENLoader returns it) for a UNet: one gated
    self-attention per spatial transformer, in the order the UNet counts
    them, with its gates open so the boxes matter."""
    import torch

    import harness

    harness.prepare_comfy_imports()
    import comfy.gligen
    import comfy.model_management
    import comfy.model_patcher
    from comfy.ldm.modules.attention import SpatialTransformer

    torch.manual_seed(seed)
    blocks = [m for part in (diffusion_model.input_blocks, [diffusion_model.middle_block], diffusion_model.output_blocks)
              for block in part for m in block if isinstance(m, SpatialTransformer)]
    key_dim = 768
    gated = [comfy.gligen.GatedSelfAttentionDense(dim, key_dim, 8, dim // 8)
             for dim in (block.transformer_blocks[0].attn1.to_q.in_features for block in blocks)]
    gligen = comfy.gligen.Gligen(gated, comfy.gligen.PositionNet(key_dim, key_dim), key_dim).float()
    with torch.no_grad():  # ComfyUI's layers skip their own init
        for name, p in gligen.named_parameters():
            if name.endswith("alpha_attn") or name.endswith("alpha_dense"):
                p.fill_(1.0)
            elif ".norm" in name:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            else:
                p.normal_(0.0, 0.05)
    return comfy.model_patcher.ModelPatcher(gligen, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def expected_model_config(kind: str) -> str:
    """Class name of the model config ComfyUI must pick for ``kind``."""
    spec = _spec(kind)
    return spec.base_config if spec.stock else f"PanoramaTest{spec.base_config}"


def stock_config_name(kind: str) -> str:
    """The stock comfy.supported_models config ``kind`` is (or derives from)."""
    return _spec(kind).base_config


def tiny_unet_config(kind: str) -> dict:
    """A copy of the UNet constructor config used for ``kind``."""
    return dict(_spec(kind).unet)


# ---------------------------------------------------------------------------
# pytest fixtures (re-exported by conftest.py)
# ---------------------------------------------------------------------------

try:  # keep the module importable without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def checkpoint_dir(comfy, tmp_path_factory) -> Path:
        """A ComfyUI ``checkpoints`` folder for this session, test configs registered.

        $PANORAMA_TINY_MODELS_DIR, if set, is used instead of a temp dir, so
        the files (deterministic, versioned names) are reused across sessions.
        """
        import harness

        cache = os.environ.get("PANORAMA_TINY_MODELS_DIR")
        directory = Path(cache).expanduser() if cache else tmp_path_factory.mktemp("tiny_checkpoints")
        directory.mkdir(parents=True, exist_ok=True)
        register_test_configs()
        harness.add_checkpoint_folder(directory)
        return directory

    @pytest.fixture(scope="session")
    def tiny_checkpoints(checkpoint_dir) -> Dict[str, str]:
        """{kind: checkpoint name as CheckpointLoaderSimple expects it} for KINDS."""
        import harness

        names = ensure_checkpoints(checkpoint_dir, KINDS)
        harness.add_checkpoint_folder(checkpoint_dir)  # also drops the cached file listing
        return names
