"""Other nodes' hooks in the model options, and whether they still do what
they mean when the panorama is sampled in windows.

ComfyUI calls a sampler's CFG functions (``sampler_cfg_function``,
``sampler_pre_cfg_function``, ``sampler_post_cfg_function``) with the whole
latent, after the window loop; it calls the model-call patches (attention
patches and replacements, block patches) inside the loop, once per window
batch.  A hook that only works within one of the two is fine.  A node that
records something inside a model call and reads it in a CFG function sees
the last window batch only, and would build a whole-image map from it:
Self-Attention Guidance does that with its attention map.  Known ones are
refused by name; others with the same pattern get a warning.
"""

from __future__ import annotations

import functools
import logging

CFG_HOOKS = ("sampler_cfg_function", "sampler_pre_cfg_function", "sampler_post_cfg_function")

# Module of a node's hooks -> (node, what to use instead).  Measured in
# tests/host/test_guidance_host.py.
REFUSED = {
    "comfy_extras.nodes_sag": (
        "Self-Attention Guidance",
        "its blur map is built from the attention of one window batch, not of the whole panorama; remove it, or "
        "use Perturbed-Attention Guidance, which works per window"),
}


def origin(function) -> str:
    """The package and module a hook was written in, e.g.
    ``comfy_extras.nodes_sag`` (through partials and bound methods)."""
    while isinstance(function, functools.partial):
        function = function.func
    function = getattr(function, "__func__", function)
    module = getattr(function, "__module__", None) or type(function).__module__
    # ComfyUI imports comfy_extras and custom nodes by path: keep the package and the module
    return ".".join(module.replace("\\", "/").replace("/", ".").split(".")[-2:])


def model_call_patches(transformer_options: dict):
    """Every patch ComfyUI calls inside a model call: ``patches`` lists and
    ``patches_replace`` tables."""
    for patches in transformer_options.get("patches", {}).values():
        yield from patches
    for table in transformer_options.get("patches_replace", {}).values():
        yield from table.values()


def cfg_hooks(model_options: dict):
    for key in CFG_HOOKS:
        hooks = model_options.get(key)
        if hooks is None:
            continue
        yield from (hooks if isinstance(hooks, (list, tuple)) else [hooks])


def check_model_hooks(model_options: dict) -> None:
    """Refuses a known node whose hooks need the whole image inside a model
    call; warns about unknown ones with the same pattern (a CFG function and
    a model-call patch from one module)."""
    reading = {origin(hook) for hook in cfg_hooks(model_options)}
    recording = {origin(patch) for patch in model_call_patches(model_options.get("transformer_options", {}))}
    for module in sorted(reading | recording):
        if module in REFUSED:
            node, why = REFUSED[module]
            raise ValueError(f"{node} cannot be used with panorama windows: {why}")
    for module in sorted(reading & recording):
        logging.warning(
            f"Panorama: {module} patches the model's calls and its CFG function; with panorama windows its "
            f"model-call patch sees one window batch at a time, so anything it records there for the whole "
            f"image covers only that batch. If its results look wrong, sample without it")
