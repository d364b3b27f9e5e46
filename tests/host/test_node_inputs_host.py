"""Every input of every pack node, with the values a user can type, through
ComfyUI's own validation and executor.

The cases are generated from each node's ``INPUT_TYPES`` (all of
every node the pack registers with ComfyUI), so they follow the nodes
when inputs change or the nodes move to ComfyUI's V3 schema (V3 nodes still
expose ``INPUT_TYPES``):

* INT / FLOAT widgets: 0, the minimum, the maximum, a value off the step
  grid (pixel sizes off the token grid); for INT widgets with a step also
  one step above the minimum;
* combos: every option; BOOLEAN: both; STRING: the edge cases of a file name;
* tensor inputs (LATENT, IMAGE, CONDITIONING, SIGMAS, MODEL, ...): a batch of
  several, wrong channel counts, a mask where an image is expected, an image
  where a mask is expected, NaN, sizes off the token grid, a link of the
  wrong type; optional inputs also unconnected.

Each case puts the node in a small graph (the other inputs at their
defaults; tiny random-weight models; small sizes; a sampler takes 2 steps)
and runs it with ``harness.run_prompt``.  It passes when it ends in a result
(finite tensors), in ComfyUI's own validation message naming the input, or
in a ValueError whose message names the input (or its display text) and
says what to do; anything else (a torch traceback, a TypeError, a NaN
output) fails.  Expensive maxima (10000 steps) are interrupted after the
first progress event: "it runs" is the result.  A NaN input that ends in a
result without a word fails too (a silent wrong picture).

Nodes without a graph here (new ones) get a generic graph: their required
inputs from stock producers, so the test keeps covering every node.  Reading
INPUT_TYPES at collection boots ComfyUI once (the ``comfy`` fixture then
reuses it); where no host is found the cases skip, saying why.

A table of what each case ends in (node, input, value, result) is printed at
the end of the module and written to $PANORAMA_NODE_INPUTS_TABLE (default
/tmp/node_inputs_table.md), one section per ComfyUI version.

The VAE of these cases is a TAESD (ComfyUI's ``comfy.taesd``, random
weights), 15x faster on the CPU than the checkpoints' full AutoencoderKL;
one case per VAE input runs the checkpoint's own VAE.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import harness

pytestmark = pytest.mark.host

TABLE_ENV = "PANORAMA_NODE_INPUTS_TABLE"
DEFAULT_TABLE = "/tmp/node_inputs_table.md"
# A case still running after this many seconds is interrupted ("it runs").
SAFETY_SECONDS = 30.0

# Words that say what to do, one of which a ValueError of ours must contain.
FIX_WORDS = re.compile(r"\b(use|connect|try|set|remove|adjust|encode|decode|make|check|choose|pick|lower|raise|"
                       r"increase|reduce|add|leave|give|convert|split|switch|at least|at most)\b", re.I)
# The pack's own error types, besides ValueError.
ACCEPTED_ERRORS = ("ValueError",)


# ---------------------------------------------------------------------------
# Test-only nodes: tensors of any shape, conditioning of any width
# ---------------------------------------------------------------------------

def _shape(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


class NodeInputsTensor:
    """One tensor of ``shape`` as every tensor type a pack node takes (what
    a buggy or unusual upstream node can hand over)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"shape": ("STRING", {"default": "1,4,8,16"}),
                             "fill": (["zeros", "rand", "randn", "nan"], {"default": "randn"})},
                "optional": {"noise_mask": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("LATENT", "IMAGE", "MASK", "SIGMAS")
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, shape, fill, noise_mask=""):
        import torch

        gen = torch.Generator().manual_seed(0)
        dims = _shape(shape)
        if fill == "zeros":
            tensor = torch.zeros(dims)
        elif fill == "rand":
            tensor = torch.rand(dims, generator=gen)
        elif fill == "randn":
            tensor = torch.randn(dims, generator=gen)
        else:
            tensor = torch.full(dims, float("nan"))
        latent = {"samples": tensor}
        if noise_mask:
            latent["noise_mask"] = torch.rand(_shape(noise_mask), generator=gen)
        return (latent, tensor, tensor, tensor)


class NodeInputsConditioning:
    """Conditioning of any shape: another family's text encoder (SDXL's
    2048-wide tokens), several prompts in a batch."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"batch": ("INT", {"default": 1, "min": 1}),
                             "tokens": ("INT", {"default": 77, "min": 1}),
                             "width": ("INT", {"default": 768, "min": 1}),
                             "pooled": ("INT", {"default": 0, "min": 0})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, batch, tokens, width, pooled):
        import torch

        gen = torch.Generator().manual_seed(1)
        extra = {"pooled_output": torch.randn(batch, pooled, generator=gen) * 0.1} if pooled else {}
        return ([[torch.randn(batch, tokens, width, generator=gen) * 0.1, extra]],)


TEST_NODES = {"NodeInputsTensor": NodeInputsTensor, "NodeInputsConditioning": NodeInputsConditioning}


# ---------------------------------------------------------------------------
# Graphs
# ---------------------------------------------------------------------------

# 128 px windows every 64 px: three windows on the 256x128 px latent of the sampler graphs.
SMALL_PLAN = {"window_size": 128, "view_stride": 64, "cross_count": 2, "cross_stride": 0, "wrap_around": False}
SMALL_LATENT = {"width": 256, "height": 128, "batch_size": 1}


@dataclass
class Graph:
    """An API prompt around node "n" (the node under test)."""

    prompt: Dict[str, dict]
    outputs: List[str]
    latent_hw: Tuple[int, int] = (16, 32)  # latent size of the LATENT the node takes
    image_hw: Tuple[int, int] = (32, 128)  # pixel size of the IMAGE / MASK the node takes

    def add(self, node_id: str, class_type: str, **inputs) -> List:
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        return [node_id, 0]

    def set(self, name: str, value, node_id: str = "n") -> None:
        self.prompt[node_id]["inputs"][name] = value

    def unset(self, name: str, node_id: str = "n") -> None:
        self.prompt[node_id]["inputs"].pop(name, None)

    def tensor(self, shape, fill="randn", slot=0, noise_mask="", node_id="t") -> List:
        inputs = {"shape": ",".join(str(int(d)) for d in shape), "fill": fill}
        if noise_mask:
            inputs["noise_mask"] = noise_mask
        self.add(node_id, "NodeInputsTensor", **inputs)
        return [node_id, slot]


@dataclass
class Context:
    checkpoints: Dict[str, str]
    vae_name: str
    executor: Any
    defaults: Callable[[str], dict]


def common_nodes(ctx: Context, graph: Graph) -> None:
    """The loaders every graph carries (executed only where used), so that
    ComfyUI's cache keeps them loaded from one case to the next."""
    graph.add("ckpt", "CheckpointLoaderSimple", ckpt_name=ctx.checkpoints["sd15"])
    graph.add("ckpt2", "CheckpointLoaderSimple", ckpt_name=ctx.checkpoints["sd2v"])
    graph.add("vae", "VAELoader", vae_name=ctx.vae_name)
    graph.add("pos", "CLIPTextEncode", text="a wide mountain panorama", clip=["ckpt", 1])
    graph.add("neg", "CLIPTextEncode", text="blurry", clip=["ckpt", 1])


def node_under_test(ctx: Context, graph: Graph, name: str, **inputs) -> None:
    graph.add("n", name, **{**ctx.defaults(name), **inputs})


def g_latent(ctx, name):
    graph = Graph({}, ["n"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, model=["ckpt", 0])
    return graph


def g_scheduler(ctx, name):
    # The plan as the sampler uses it; its other inputs at their defaults
    # (native 512 px windows), on a latent a little wider than a window.
    graph = Graph({}, ["n", "s"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name)
    graph.add("lat", "EmptyLatentImage", width=640, height=512, batch_size=1)
    graph.add("s", "TwinCropFusionSampler", **{
        **ctx.defaults("TwinCropFusionSampler"), "steps": 1, "model": ["ckpt", 0], "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["lat", 0], "windows": ["n", 0]})
    return graph


def g_sphere(ctx, name):
    # Sphere views as the sampler uses them, on a 2:1 latent they accept: 128 px views on a 384x768 px 360
    # (2.75 views high, the least that keeps the views' noise native); window_size swept from there.
    graph = Graph({}, ["n", "s"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, window_size=128)
    graph.add("lat", "EmptyLatentImage", width=768, height=384, batch_size=1)
    graph.add("s", "TwinCropFusionSampler", **{
        **ctx.defaults("TwinCropFusionSampler"), "steps": 1, "model": ["ckpt", 0], "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["lat", 0], "windows": ["n", 0]})
    return graph


def g_multiscale(ctx, name):
    graph = Graph({}, ["n", "s"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name)
    graph.add("win", "CrossSamplingScheduler", **{**SMALL_PLAN, "cross_count": 1})
    graph.add("lat", "EmptyLatentImage", width=256, height=256, batch_size=1)
    graph.add("s", "TwinCropFusionSampler", **{
        **ctx.defaults("TwinCropFusionSampler"), "steps": 1, "model": ["ckpt", 0], "positive": ["pos", 0],
        "negative": ["neg", 0], "latent_image": ["lat", 0], "windows": ["win", 0], "multiscale": ["n", 0]})
    return graph


def g_model_patch(ctx, name):
    graph = Graph({}, ["n", "k"])
    common_nodes(ctx, graph)
    graph.add("win", "CrossSamplingScheduler", **SMALL_PLAN)
    node_under_test(ctx, graph, name, model=["ckpt", 0], windows=["win", 0])
    graph.add("lat", "EmptyLatentImage", **SMALL_LATENT)
    graph.add("k", "KSampler", seed=0, steps=2, cfg=7.5, sampler_name="euler", scheduler="normal", denoise=1.0,
              model=["n", 0], positive=["pos", 0], negative=["neg", 0], latent_image=["lat", 0])
    return graph


def g_sampler(ctx, name):
    graph = Graph({}, ["n"])
    common_nodes(ctx, graph)
    graph.add("win", "CrossSamplingScheduler", **SMALL_PLAN)
    graph.add("lat", "EmptyLatentImage", **SMALL_LATENT)
    node_under_test(ctx, graph, name, steps=2, model=["ckpt", 0], positive=["pos", 0], negative=["neg", 0],
                    latent_image=["lat", 0], windows=["win", 0])
    return graph


def g_decode(ctx, name):
    graph = Graph({}, ["n"], latent_hw=(4, 16))
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, samples=graph.tensor((1, 4, 4, 16), node_id="src"), vae=["vae", 0])
    return graph


def g_encode(ctx, name):
    graph = Graph({}, ["n"], image_hw=(32, 128))
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, pixels=graph.tensor((1, 32, 128, 3), "rand", slot=1, node_id="src"),
                    vae=["vae", 0])
    return graph


def g_save(ctx, name):
    graph = Graph({}, ["n"], image_hw=(32, 64))
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, images=graph.tensor((1, 32, 64, 3), "rand", slot=1, node_id="src"))
    return graph


def g_terrain_relief(ctx, name):
    # The terrain model's latent: 1 channel, one latent pixel per pixel (no model needed to draw it).
    graph = Graph({}, ["n"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, samples=graph.tensor((1, 1, 16, 32), node_id="src"))
    return graph


def g_equirect(ctx, name):
    # A 2:1 panorama, as the 360 view nodes take.
    graph = Graph({}, ["n"], image_hw=(32, 64))
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, image=graph.tensor((1, 32, 64, 3), "rand", slot=1, node_id="src"))
    return graph


def g_widgets(ctx, name):
    # A node of widgets alone whose output ends the graph (a MASK).
    graph = Graph({}, ["n"])
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name)
    return graph


def g_cube_faces(ctx, name):
    # Six square faces (front, right, back, left, up, down), as 360° Panorama to Cube Faces makes them.
    graph = Graph({}, ["n"], image_hw=(16, 16))
    common_nodes(ctx, graph)
    node_under_test(ctx, graph, name, faces=graph.tensor((6, 16, 16, 3), "rand", slot=1, node_id="src"))
    return graph


class NoGraph(Exception):
    """The node takes an input this test cannot make."""


def produce(graph: Graph, io_type: str):
    """A link of ``io_type`` for a node without a graph of its own."""
    if io_type == "MODEL":
        return ["ckpt", 0]
    if io_type == "CLIP":
        return ["ckpt", 1]
    if io_type == "VAE":
        return ["vae", 0]
    if io_type == "CONDITIONING":
        return ["pos", 0]
    if io_type == "LATENT":
        return graph.add("lat", "EmptyLatentImage", **SMALL_LATENT)
    if io_type in ("IMAGE", "MASK"):
        h, w = graph.image_hw
        shape = (1, h, w, 3) if io_type == "IMAGE" else (1, h, w)
        return graph.tensor(shape, "rand", slot=1 if io_type == "IMAGE" else 2, node_id=f"src_{io_type.lower()}")
    if io_type == "SIGMAS":
        return graph.add("sched", "BasicScheduler", model=["ckpt", 0], scheduler="normal", steps=2, denoise=1.0)
    if io_type == "PANORAMA_WINDOWS":
        return graph.add("win", "CrossSamplingScheduler", **SMALL_PLAN)
    if io_type == "PANORAMA_MULTISCALE":
        return graph.add("ms", "MultiScaleGuidance", **harness.node_defaults("MultiScaleGuidance"))
    raise NoGraph(f"no producer for {io_type}")


def g_generic(ctx, name):
    """A node this test has no graph for (a new node): its required inputs
    from the producers above, widgets at their defaults, its outputs read."""
    import nodes

    graph = Graph({}, ["n"])
    common_nodes(ctx, graph)
    inputs = {}
    for input_name, entry in (nodes.NODE_CLASS_MAPPINGS[name].INPUT_TYPES().get("required") or {}).items():
        io_type = entry[0]
        if isinstance(io_type, str) and io_type not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            inputs[input_name] = produce(graph, io_type)
    node_under_test(ctx, graph, name, **inputs)
    return graph


GRAPHS: Dict[str, Callable] = {
    "PanoramaLatent": g_latent,
    "Panorama360Latent": g_latent,
    "CrossSamplingScheduler": g_scheduler,
    "PanoramaShiftedWindows": g_scheduler,
    "PanoramaSphereWindows": g_sphere,
    "MultiScaleGuidance": g_multiscale,
    "TwinDiffusionModel": g_model_patch,
    "TwinCropFusionSampler": g_sampler,
    "PanoramaSeamlessDecode": g_decode,
    "PanoramaSeamlessEncode": g_encode,
    "SavePanorama360": g_save,
    "PreviewPanorama360": g_save,
    "SavePanorama360Video": g_save,  # one 2:1 frame; "batch of 3" is a 3-frame video
    "PanoramaTerrainRelief": g_terrain_relief,
    "PanoramaEquirectToCubeFaces": g_equirect,
    "PanoramaEquirectToPerspective": g_equirect,
    "PanoramaCubeFacesToEquirect": g_cube_faces,
    "PanoramaPhotoTo360": g_equirect,  # any picture: here a 2:1 one
    "PanoramaDirectionMask": g_widgets,
}

# Inputs that only act together with another one: that one is set too.
TOGETHER = {("PanoramaSeamlessDecode", "overlap"): {"tile_size": 64}}
# Values that run for long: interrupted after the first progress event.
EXPENSIVE = {("TwinCropFusionSampler", "steps", "max"), ("TwinCropFusionSampler", "sampler_name", "'dpm_adaptive'")}
# Cases that show a fault the pack still has: skipped, saying which, until it is fixed (then delete the entry).
PENDING = {
}
# A message about settings that came through a link names those settings.
ALIASES = {"multiscale": ("levels", "omega", "multi-scale"), "windows": ("window", "stride", "cross"),
           "schedule": ("sigmas",)}


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

@dataclass
class Case:
    node: str
    input: str
    label: str  # the value as the table shows it
    apply: Callable[[Graph], None]
    names: Tuple[str, ...]  # what a message must mention: the input's name, its display text
    interrupt: bool = False
    nan_input: bool = False  # a result would be a silent wrong picture

    @property
    def id(self) -> str:
        return f"{self.node}.{self.input}={self.label}"


def _spec_options(io_type, opts) -> Optional[list]:
    if isinstance(io_type, (list, tuple)):
        return list(io_type)
    if io_type == "COMBO":
        return list(opts.get("options") or [])
    return None


def _number_values(io_type: str, opts: dict) -> List[Tuple[str, Any]]:
    """0, min, max and, for INT widgets with a step, one step above the
    minimum and a value off the step grid; equal values merged ("0 = min")."""
    lo, hi = opts.get("min"), opts.get("max")
    values = [("0", 0 if io_type == "INT" else 0.0)]
    if lo is not None:
        values.append(("min", lo))
    if hi is not None:
        values.append(("max", hi))
    step = opts.get("step", 1)
    default = opts.get("default") or 0
    if io_type == "INT" and step and step > 1:
        base = lo or 0
        values.append(("min+step", base + step))
        values.append(("off-grid", (default if default > base else base + 4 * step) + step // 2))
    if io_type == "FLOAT" and opts.get("step"):  # what the frontend would round, typed into an API prompt
        off = default + step / 2
        values.append(("off-grid", round(off if hi is None or off <= hi else default - step / 2, 6)))
    merged: Dict[Any, List[str]] = {}
    for label, value in values:
        merged.setdefault(value, []).append(label)
    return [(" = ".join(labels) + ("" if labels == ["0"] else f" ({value})"), value)
            for value, labels in merged.items()]


def _string_values(opts: dict) -> List[Tuple[str, str]]:
    return [("empty", ""), ("subfolder", "panoramas/2025/pano"), ("date", "%date:yyyy-MM-dd%/pano"),
            ("outside the output folder", "../outside"), ("300 characters", "p" * 300)]


def widget_cases(node: str, name: str, io_type, opts: dict) -> List[Tuple[str, Callable]]:
    options = _spec_options(io_type, opts)
    if options is not None:
        values = [(repr(option), option) for option in options]
    elif io_type in ("INT", "FLOAT"):
        values = _number_values(io_type, opts)
    elif io_type == "BOOLEAN":
        values = [("True", True), ("False", False)]
    elif io_type == "STRING":
        values = _string_values(opts)
    else:
        return []
    together = TOGETHER.get((node, name), {})

    def setter(value):
        def apply(graph: Graph):
            for other, other_value in together.items():
                graph.set(other, other_value)
            graph.set(name, value)
        return apply

    return [(label, setter(value)) for label, value in values]


def _link_wrong_type(slot_type: str):
    """A link from an output of another type (the frontend refuses it; an API
    prompt or a stale workflow can still carry one)."""
    slot = {"LATENT": 0, "IMAGE": 1, "MASK": 2, "SIGMAS": 3}
    wrong = {"LATENT": "IMAGE", "IMAGE": "MASK", "MASK": "IMAGE"}.get(slot_type, "LATENT")

    def apply(graph: Graph, name: str):
        graph.set(name, graph.tensor((1, 4, 8, 8), slot=slot[wrong], node_id="wrong"))
    return f"a {wrong} link", apply


def latent_variants(node: str) -> List[Tuple[str, Callable]]:
    def make(shape_fn, fill="randn", noise_mask_fn=None):
        def apply(graph: Graph, name: str):
            h, w = graph.latent_hw
            mask = noise_mask_fn(h, w) if noise_mask_fn else ""
            graph.set(name, graph.tensor(shape_fn(h, w), fill, noise_mask=mask))
        return apply

    variants = [
        ("batch of 3", make(lambda h, w: (3, 4, h, w))),
        ("16 channels", make(lambda h, w: (1, 16, h, w))),
        ("16 channels of zeros", make(lambda h, w: (1, 16, h, w), "zeros")),
        ("1 channel", make(lambda h, w: (1, 1, h, w))),
        ("video (5-D, 3 frames)", make(lambda h, w: (1, 4, 3, h, w))),
        ("one frame (5-D)", make(lambda h, w: (1, 4, 1, h, w))),
        ("3-D (no batch axis)", make(lambda h, w: (4, h, w))),
        ("NaN", make(lambda h, w: (1, 4, h, w), "nan")),
        ("1x1", make(lambda h, w: (1, 4, 1, 1))),
        ("odd size", make(lambda h, w: (1, 4, h + 3, w + 5))),
    ]
    if node == "TwinCropFusionSampler":
        def set_latent_noise_mask(graph: Graph, name: str):
            graph.add("solid", "SolidMask", value=1.0, width=100, height=60)
            graph.add("masked", "SetLatentNoiseMask", samples=graph.prompt["n"]["inputs"][name], mask=["solid", 0])
            graph.set(name, ["masked", 0])

        variants += [
            ("through Set Latent Noise Mask (another size)", set_latent_noise_mask),
            ("with a noise mask (pixel size)",
             make(lambda h, w: (1, 4, h, w), noise_mask_fn=lambda h, w: f"1,{8 * h},{8 * w}")),
            ("with an image as noise mask",
             make(lambda h, w: (1, 4, h, w), noise_mask_fn=lambda h, w: f"1,{8 * h},{8 * w},3")),
            ("batch of 3, noise mask of 2",
             make(lambda h, w: (3, 4, h, w), noise_mask_fn=lambda h, w: f"2,{8 * h},{8 * w}")),
        ]
    return variants + [_link_wrong_type("LATENT")]


def image_variants(node: str) -> List[Tuple[str, Callable]]:
    def make(shape_fn, fill="rand", slot=1):
        def apply(graph: Graph, name: str):
            h, w = graph.image_hw
            graph.set(name, graph.tensor(shape_fn(h, w), fill, slot=slot))
        return apply

    return [
        ("batch of 3", make(lambda h, w: (3, h, w, 3))),
        ("1 channel", make(lambda h, w: (1, h, w, 1))),
        ("2 channels", make(lambda h, w: (1, h, w, 2))),
        ("RGBA", make(lambda h, w: (1, h, w, 4))),
        ("a mask (B, H, W)", make(lambda h, w: (1, h, w))),
        ("channels first (B, 3, H, W)", make(lambda h, w: (1, 3, h, w))),
        ("NaN", make(lambda h, w: (1, h, w, 3), "nan")),
        ("1x1", make(lambda h, w: (1, 1, 1, 3))),
        ("odd size", make(lambda h, w: (1, h + 5, w + 3, 3))),
        _link_wrong_type("IMAGE"),
    ]


def mask_variants(node: str) -> List[Tuple[str, Callable]]:
    def make(shape_fn, fill="rand"):
        def apply(graph: Graph, name: str):
            h, w = graph.image_hw
            graph.set(name, graph.tensor(shape_fn(h, w), fill, slot=2))
        return apply

    return [
        ("an image (B, H, W, 3)", make(lambda h, w: (1, h, w, 3))),
        ("batch of 3", make(lambda h, w: (3, h, w))),
        ("2-D (H, W)", make(lambda h, w: (h, w))),
        ("another size", make(lambda h, w: (1, h + 7, 2 * w))),
        ("NaN", make(lambda h, w: (1, h, w), "nan")),
        _link_wrong_type("MASK"),
    ]


def conditioning_variants(node: str) -> List[Tuple[str, Callable]]:
    def cond(**shape):
        def apply(graph: Graph, name: str):
            graph.add("c", "NodeInputsConditioning", **{"batch": 1, "tokens": 77, "width": 768, "pooled": 0,
                                                         **shape})
            graph.set(name, ["c", 0])
        return apply

    def masked(mask_fn):
        def apply(graph: Graph, name: str):
            graph.add("cm", "ConditioningSetMask", conditioning=["pos" if name == "positive" else "neg", 0],
                      mask=mask_fn(graph), strength=1.0, set_cond_area="default")
            graph.set(name, ["cm", 0])
        return apply

    def area(x, y, width, height):
        def apply(graph: Graph, name: str):
            graph.add("ca", "ConditioningSetArea", conditioning=["pos" if name == "positive" else "neg", 0],
                      width=width, height=height, x=x, y=y, strength=1.0)
            graph.set(name, ["ca", 0])
        return apply

    def solid(h, w, batch=1):
        def make(graph: Graph):
            graph.add("mask", "SolidMask", value=1.0, width=w, height=h)
            if batch == 1:
                return ["mask", 0]
            graph.add("maskb", "NodeInputsTensor", shape=f"{batch},{h},{w}", fill="rand")
            return ["maskb", 2]
        return make

    return [
        ("SDXL's text encoder (2048 wide, pooled)", cond(width=2048, pooled=1280)),
        ("SD2's text encoder (1024 wide)", cond(width=1024)),
        ("batch of 2 prompts", cond(batch=2)),
        ("154 tokens", cond(tokens=154)),
        ("mask of another size", masked(solid(100, 60))),
        ("batch of 3 masks", masked(solid(128, 256, batch=3))),
        ("an image as mask", masked(lambda graph: graph.tensor((1, 128, 256, 3), "rand", slot=2, node_id="mi"))),
        ("area outside the latent", area(4096, 0, 256, 128)),
        ("area larger than the latent", area(0, 0, 4096, 4096)),
        _link_wrong_type("CONDITIONING"),
    ]


def sigmas_variants(node: str) -> List[Tuple[str, Callable]]:
    def scheduler(steps, denoise=1.0, split=None):
        def apply(graph: Graph, name: str):
            graph.add("sched", "BasicScheduler", model=["ckpt", 0], scheduler="normal", steps=steps, denoise=denoise)
            link = ["sched", 0]
            if split is not None:
                graph.add("split", "SplitSigmas", sigmas=link, step=split)
                link = ["split", 0]
            graph.set(name, link)
        return apply

    def tensor(shape):
        def apply(graph: Graph, name: str):
            graph.set(name, graph.tensor(shape, "rand", slot=3))
        return apply

    return [
        ("the run's sigmas", scheduler(2)),
        ("another run's sigmas (5 steps)", scheduler(5)),
        ("denoise 0.5 sigmas", scheduler(2, denoise=0.5)),
        ("one sigma (SplitSigmas step 0)", scheduler(2, split=0)),
        ("empty", tensor((0,))),
        ("2-D", tensor((2, 3))),
        _link_wrong_type("SIGMAS"),
    ]


def model_variants(node: str) -> List[Tuple[str, Callable]]:
    def other(graph: Graph, name: str):
        graph.set(name, ["ckpt2", 0])

    def patched(graph: Graph, name: str):
        graph.add("pre", "TwinDiffusionModel", **{**harness.node_defaults("TwinDiffusionModel"),
                                                   "model": ["ckpt", 0]})
        graph.set(name, ["pre", 0])

    variants = [("SD2-v (768 px)", other)]
    if node in ("TwinCropFusionSampler", "TwinDiffusionModel"):
        variants.append(("already patched by TwinDiffusionModel", patched))
    return variants + [_link_wrong_type("MODEL")]


def vae_variants(node: str) -> List[Tuple[str, Callable]]:
    def checkpoint_vae(graph: Graph, name: str):
        graph.set(name, ["ckpt", 2])
    return [("the checkpoint's AutoencoderKL", checkpoint_vae), _link_wrong_type("VAE")]


def optional_link_variants(node: str, name: str) -> List[Tuple[str, Callable]]:
    """An optional link: unconnected, and (where the base graph leaves it
    unconnected) connected."""
    def unconnected(graph: Graph, name: str):
        graph.unset(name)

    def windows(**plan):
        def apply(graph: Graph, name: str):
            graph.add("w2", "CrossSamplingScheduler", **{**SMALL_PLAN, **plan})
            graph.set(name, ["w2", 0])
        return apply

    def multiscale(levels):
        def apply(graph: Graph, name: str):
            graph.add("ms", "MultiScaleGuidance", **{**harness.node_defaults("MultiScaleGuidance"), "levels": levels})
            graph.set(name, ["ms", 0])
        return apply

    def sphere(graph: Graph, name: str):
        # 128 px sphere views on the graphs' 128x256 px latent: 2:1, but a third of the height they need
        graph.add("w2", "PanoramaSphereWindows", **harness.node_defaults("PanoramaSphereWindows", {"window_size": 128}))
        graph.set(name, ["w2", 0])

    variants = [("not connected", unconnected)]
    if name == "windows":
        variants += [("wrap-around plan", windows(wrap_around=True)),
                     ("window larger than the latent", windows(window_size=2048, view_stride=512)),
                     ("sphere views on a 360 too small for them", sphere)]
    if name == "multiscale":
        variants += [("levels 2", multiscale(2)), ("levels 3 (too many for the latent)", multiscale(3))]
    return variants


TENSOR_VARIANTS = {"LATENT": latent_variants, "IMAGE": image_variants, "MASK": mask_variants,
                   "CONDITIONING": conditioning_variants,
                   "SIGMAS": sigmas_variants, "MODEL": model_variants, "VAE": vae_variants}


def node_cases(node: str, cls) -> List[Case]:
    cases = []
    spec = cls.INPUT_TYPES()
    for group in ("required", "optional"):
        for name, entry in (spec.get(group) or {}).items():
            io_type = entry[0]
            opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            names = tuple(dict.fromkeys(n for n in (name, opts.get("display_name")) if n))
            found = widget_cases(node, name, io_type, opts)
            if not found and isinstance(io_type, str):
                variants = TENSOR_VARIANTS.get(io_type, lambda n: [_link_wrong_type(io_type)])
                found = [(label, (lambda fn, nm: lambda graph: fn(graph, nm))(fn, name))
                         for label, fn in variants(node)]
                if group == "optional":
                    found = [(label, (lambda fn, nm: lambda graph: fn(graph, nm))(fn, name))
                             for label, fn in optional_link_variants(node, name)] + found
            for label, apply in found:
                keys = set(label.split(" (")[0].split(" = "))
                interrupt = any((node, name, key) in EXPENSIVE for key in keys)
                cases.append(Case(node, name, label, apply, names + ALIASES.get(name, ()), interrupt=interrupt,
                                  nan_input=label == "NaN"))
    return cases


def _pack_node_names() -> List[str]:
    """Every node the pack registered when ComfyUI loaded it."""
    return list(harness.boot_comfyui().pack_nodes)


def all_cases(config) -> List:
    """Booting ComfyUI (once per session; the `comfy` fixture reuses it) is
    what reading the nodes' INPUT_TYPES costs."""
    reason = harness.comfyui_missing_reason()
    if reason is None and "not host" in (config.getoption("markexpr", "") or ""):
        reason = "host tests deselected"
    if reason:
        return [pytest.param(None, id="no-host", marks=pytest.mark.skip(reason=reason))]
    factory = getattr(config, "_tmp_path_factory", None)
    boot = harness.boot_comfyui(factory.mktemp("comfy_host") if factory is not None else None)
    import nodes

    cases = []
    for name in _pack_node_names():
        assert name in boot.pack_nodes, f"{name} did not load: {boot.pack_error}"
        cases += node_cases(name, nodes.NODE_CLASS_MAPPINGS[name])

    def marks(case):
        reason = next((why for (node, name, key), why in PENDING.items()
                       if (case.node, case.input) == (node, name) and key in case.label.split(" (")[0].split(" = ")),
                      None)
        return [pytest.mark.skip(reason=reason)] if reason else []
    return [pytest.param(case, id=case.id, marks=marks(case)) for case in cases]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", all_cases(metafunc.config))


# ---------------------------------------------------------------------------
# Running and judging a case
# ---------------------------------------------------------------------------

def _tiny_taesd(directory: Path) -> str:
    """A TAESD VAE (ComfyUI's class) with random weights, as a file VAELoader loads."""
    import safetensors.torch
    import torch

    import comfy.taesd.taesd
    import tiny_models

    name = f"tiny_taesd_v{tiny_models.TINY_VERSION}.safetensors"
    if not (directory / name).is_file():
        with torch.device("meta"):
            net = comfy.taesd.taesd.TAESD(latent_channels=4)
        state = tiny_models._materialize(net.state_dict(), 0, "taesd", torch.float16)
        state["vae_scale"] = torch.tensor(1.0)
        state["vae_shift"] = torch.tensor(0.0)
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        os.replace(tmp, directory / name)
    return name


@pytest.fixture(scope="module")
def ctx(comfy, tiny_checkpoints, checkpoint_dir):
    harness.register_test_nodes(TEST_NODES)
    vae_dir = checkpoint_dir / "vae"
    vae_dir.mkdir(exist_ok=True)
    vae_name = _tiny_taesd(vae_dir)
    harness.add_checkpoint_folder(vae_dir, "vae")
    defaults = {}

    def node_defaults(name):
        if name not in defaults:
            defaults[name] = harness.node_defaults(name)
        return dict(defaults[name])

    return Context(tiny_checkpoints, vae_name, harness.new_executor(), node_defaults)


@dataclass
class Outcome:
    ok: bool
    text: str
    detail: str = ""


def _normalise(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text.lower())


def _mentions(message: str, names) -> bool:
    text = _normalise(message)
    return any(_normalise(name) in text for name in names)


def _short(text: str, limit: int = 220) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value) -> str:
    import torch

    if isinstance(value, dict) and isinstance(value.get("samples"), torch.Tensor):
        return "LATENT " + "x".join(map(str, value["samples"].shape))
    if isinstance(value, torch.Tensor):
        return "x".join(map(str, value.shape))
    return type(value).__name__


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def judge(case: Case, result) -> Outcome:
    import torch

    errors = "\n".join(result.errors)
    if result.interrupted:
        steps = [d.get("value") for d in result.events_named("progress")]
        if case.interrupt:
            return Outcome(True, f"runs (interrupted after step {max(steps or [0])})")
        return Outcome(True, f"runs (stopped by the test after {SAFETY_SECONDS:.0f} s, step {max(steps or [0])})")
    if result.success:
        shown = []
        for node_id in ("n", *[o for o in result.outputs if o != "n"]):
            for slot, value in enumerate(result.outputs.get(node_id, ())):
                bad = [t for t in _tensors(value) if t.is_floating_point() and not torch.isfinite(t).all()]
                if bad:
                    return Outcome(False, f"silent NaN/inf in the output of node {node_id}", errors)
                if node_id == "n" or node_id in ("s", "k"):
                    shown.append(_describe(value))
        if "n" in result.ui:
            shown.append(f"{len(result.ui['n'].get('images', []))} file(s)")
        text = "ok: " + ", ".join(dict.fromkeys(shown))
        if case.nan_input:
            return Outcome(False, f"NaN in, a result out without a word ({text})", errors)
        return Outcome(True, text)
    failures = [data for event, data in result.status_messages if event == "execution_error"]
    if not failures:  # rejected by ComfyUI's validation: its own message names the input
        message = _short("; ".join(line.split("): ", 1)[-1] for line in result.errors))
        return Outcome(_mentions(errors, case.names), f"rejected by ComfyUI: {message}", errors)
    data = failures[0]
    kind, message = data.get("exception_type", "?"), str(data.get("exception_message", "")).strip()
    text = f"{kind}: {_short(message)}"
    if kind not in ACCEPTED_ERRORS:
        return Outcome(False, text, errors)
    if not _mentions(message, case.names):
        return Outcome(False, text + f"  [does not name {'/'.join(case.names)}]", errors)
    if not FIX_WORDS.search(message):
        return Outcome(False, text + "  [does not say what to do]", errors)
    return Outcome(True, text)


def run_case(case: Case, ctx: Context):
    import comfy.model_management

    name = case.node
    try:
        graph = GRAPHS.get(name, g_generic)(ctx, name)
    except NoGraph as reason:
        pytest.skip(f"{name}: {reason}")
    case.apply(graph)

    def on_event(event, data):
        if case.interrupt and event == "progress" and (data or {}).get("value", 0) >= 1:
            harness.request_interrupt()

    timer = threading.Timer(SAFETY_SECONDS, harness.request_interrupt)
    timer.start()
    try:
        return harness.run_prompt(graph.prompt, outputs=graph.outputs, check=False, executor=ctx.executor,
                                  on_event=on_event)
    finally:
        timer.cancel()
        comfy.model_management.interrupt_current_processing(False)  # an interrupt that came too late


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

ROWS: List[Tuple[Case, Outcome, float]] = []


def _host_version() -> str:
    try:
        import comfyui_version

        return comfyui_version.__version__
    except Exception:
        return str(harness.comfyui_path())


def write_table(rows) -> str:
    version = _host_version()
    passed = sum(outcome.ok for _, outcome, _ in rows)
    lines = [f"## ComfyUI {version}: {len(rows)} cases, {passed} pass, {len(rows) - passed} fail", "",
             "| node | input | value | result |", "|---|---|---|---|"]
    for case, outcome, seconds in rows:
        mark = "" if outcome.ok else "**FAIL** "
        text = outcome.text.replace("|", "\\|")
        lines.append(f"| {case.node} | {case.input} | {case.label.replace('|', '/')} | {mark}{text} |")
    section = "\n".join(lines) + "\n"
    path = Path(os.environ.get(TABLE_ENV, DEFAULT_TABLE))
    sections = {}
    if path.is_file():  # keep the other hosts' sections
        for chunk in re.split(r"(?m)^(?=## ComfyUI )", path.read_text()):
            match = re.match(r"## ComfyUI (\S+?):", chunk)
            if match:
                sections[match.group(1)] = chunk.rstrip("\n") + "\n"
    sections[version] = section
    header = "# Pack node inputs: what each value a user can type ends in\n\n"
    path.write_text(header + "\n".join(sections[key] for key in sorted(sections)))
    return section


@pytest.fixture(scope="module", autouse=True)
def table(request):
    yield ROWS
    if not ROWS:
        return
    section = write_table(ROWS)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else _nullcontext():
        print("\n" + section + f"(written to {os.environ.get(TABLE_ENV, DEFAULT_TABLE)})")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

def test_node_input(case, ctx):
    started = time.perf_counter()
    result = run_case(case, ctx)
    outcome = judge(case, result)
    ROWS.append((case, outcome, time.perf_counter() - started))
    assert outcome.ok, f"{case.id}: {outcome.text}\n{outcome.detail}"
