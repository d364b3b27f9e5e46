"""What differs between the ComfyUI releases the pack supports (v0.3.64 to
v0.33), where the pack has to bridge it.  Everything else is read through
ComfyUI's extension points, which pass on arguments they do not know.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import sys

import comfy.model_management


def kitchen_eager_bindings() -> list[tuple[object, str, object]]:
    """(namespace, name, plain-torch version) for comfy_kitchen's fused
    kernels, wherever ComfyUI reaches them.

    comfy_kitchen (v0.8+) wraps its kernels in torch custom ops with no
    autograd formula, whatever backend runs them; its eager backend holds the
    same functions in plain torch.  ComfyUI calls most of them as
    ``comfy.quant_ops.ck.<name>`` at call time (the module's attributes are
    swapped), but v0.8 to v0.13 bound RoPE into the model modules at import
    (``apply_rope = comfy.quant_ops.ck.apply_rope``: those names are swapped
    too).  In-place variants (``..._``) are inference-only and left alone."""
    kitchen = getattr(sys.modules.get("comfy.quant_ops"), "ck", None)
    if kitchen is None:
        return []
    try:
        eager = importlib.import_module(f"{kitchen.__name__}.backends.eager")
    except ImportError:
        return []
    plain = {name: getattr(eager, name) for name in dir(eager)
             if not name.startswith("_") and not name.endswith("_") and callable(getattr(kitchen, name, None))
             and callable(getattr(eager, name))}
    found = [(kitchen, name, version) for name, version in plain.items()]
    fused = {id(getattr(kitchen, name)): version for name, version in plain.items()}
    for module_name, module in list(sys.modules.items()):
        if module is None or not module_name.startswith("comfy."):
            continue
        for attr, value in list(vars(module).items()):
            if callable(value) and id(value) in fused:
                found.append((module, attr, fused[id(value)]))
    return found


class DifferentiableKernels:
    """Inside it, ComfyUI's models take paths autograd can run through.

    From v0.14 ComfyUI's own switch, ``comfy.model_management.in_training``
    (set by its training nodes), picks the torch versions of most fused
    kernels (RoPE, INT8 linear, fused norms).  Some models call comfy_kitchen
    whatever the switch says (Anima's attention: ``rms_rope_split_half``;
    ERNIE-Image: ``apply_rope_split_half``), and before v0.14 there is no
    switch: every name comfy_kitchen's kernels are reached by points at the
    kernel's plain-torch version while inside (``kitchen_eager_bindings``).
    Found once, on construction; everything is put back on exit."""

    def __init__(self):
        self.has_switch = hasattr(comfy.model_management, "in_training")
        self.bindings = kitchen_eager_bindings()

    @contextlib.contextmanager
    def __call__(self):
        management = comfy.model_management
        before = management.in_training if self.has_switch else None
        originals = [(namespace, name, getattr(namespace, name)) for namespace, name, _ in self.bindings]
        try:
            if self.has_switch:
                management.in_training = True
            for namespace, name, plain in self.bindings:
                setattr(namespace, name, plain)
            yield
        finally:
            if self.has_switch:
                management.in_training = before
            for namespace, name, original in originals:
                setattr(namespace, name, original)


def schema(**fields):
    """ComfyUI's V3 node schema, with the fields this host's version knows.
    v0.3.64's ``io.Schema`` has no ``search_aliases`` (its node search then
    matches names and descriptions only); newer fields are left out the
    same way rather than refused."""
    from comfy_api.latest import io

    known = {field.name for field in dataclasses.fields(io.Schema)}
    return io.Schema(**{name: value for name, value in fields.items() if name in known})


# Families whose model base sets rope_options itself (LongCat-Image: its text
# offset) or reads their presence as a switch (Kandinsky 5: its own RoPE
# scaling is skipped): a window offset there would change more than the place.
ROPE_OPTIONS_TAKEN = ("LongCatImage", "Kandinsky5Image", "Kandinsky5")


def takes_rope_offsets(base_model) -> bool:
    """Whether this host's code of the model reads ComfyUI's ``rope_options``
    (``transformer_options``; its ScaleROPE node sets them) for image token
    positions: Flux, Flux.2, Lumina 2 / Z-Image and ERNIE-Image on v0.33
    (Lumina from v0.3.67, Flux from v0.3.68); none on v0.3.64."""
    if any(cls.__name__ in ROPE_OPTIONS_TAKEN for cls in type(base_model).__mro__):
        return False
    module = inspect.getmodule(type(getattr(base_model, "diffusion_model", None)))
    try:
        return module is not None and "rope_options" in inspect.getsource(module)
    except (OSError, TypeError):
        return False
