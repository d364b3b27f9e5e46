"""What differs between the ComfyUI releases the pack supports (v0.3.64 to
v0.33), where the pack has to bridge it.  Everything else is read through
ComfyUI's extension points, which pass on arguments they do not know.
"""

from __future__ import annotations

import contextlib
import sys

import torch

import comfy.model_management


def rope_pair(xq: torch.Tensor, xk: torch.Tensor, freqs_cis: torch.Tensor):
    return rope_one(xq, freqs_cis), rope_one(xk, freqs_cis)


def rope_one(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """Flux's rotary embedding in plain torch (rotates each pair of
    channels by the position's angle), which autograd can run through."""
    pairs = x.to(freqs_cis.dtype).reshape(*x.shape[:-1], -1, 1, 2)
    if pairs.shape[2] != 1 and freqs_cis.shape[2] != 1 and pairs.shape[2] != freqs_cis.shape[2]:
        freqs_cis = freqs_cis[:, :, :pairs.shape[2]]
    out = freqs_cis[..., 0] * pairs[..., 0] + freqs_cis[..., 1] * pairs[..., 1]
    return out.reshape(*x.shape).type_as(x)


def kitchen_rope_bindings() -> list[tuple[object, str, object]]:
    """(module, name, torch version) for every name in ComfyUI's modules
    bound to comfy_kitchen's RoPE kernels.  v0.8 to v0.13 bind them at
    import (``apply_rope = comfy.quant_ops.ck.apply_rope``); those kernels
    have no autograd formula.  From v0.14 the names are functions that ask
    ``in_training`` at call time, so nothing is found there."""
    kitchen = getattr(sys.modules.get("comfy.quant_ops"), "ck", None)
    kernels = {id(getattr(kitchen, "apply_rope", None)): rope_pair, id(getattr(kitchen, "apply_rope1", None)): rope_one}
    kernels.pop(id(None), None)
    if not kernels:
        return []
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("comfy."):
            continue
        for attr, value in list(vars(module).items()):
            if id(value) in kernels and callable(value):
                found.append((module, attr, kernels[id(value)]))
    return found


class DifferentiableKernels:
    """Inside it, ComfyUI's models take paths autograd can run through.

    From v0.14 ComfyUI's own switch, ``comfy.model_management.in_training``
    (set by its training nodes), picks the torch versions of its fused
    kernels (RoPE, INT8 linear, fused norms).  Before v0.14 there is no
    switch, and from v0.8 the RoPE of Flux-like models is comfy_kitchen's:
    the names bound to it are pointed at torch versions while inside.
    Found once, on construction; everything is put back on exit."""

    def __init__(self):
        self.has_switch = hasattr(comfy.model_management, "in_training")
        self.bindings = [] if self.has_switch else kitchen_rope_bindings()

    @contextlib.contextmanager
    def __call__(self):
        management = comfy.model_management
        before = management.in_training if self.has_switch else None
        originals = [(module, name, getattr(module, name)) for module, name, _ in self.bindings]
        try:
            if self.has_switch:
                management.in_training = True
            for module, name, torch_version in self.bindings:
                setattr(module, name, torch_version)
            yield
        finally:
            if self.has_switch:
                management.in_training = before
            for module, name, original in originals:
                setattr(module, name, original)
