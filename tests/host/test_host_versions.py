"""What changed in ComfyUI between v0.3.64 and v0.33 that the pack bridges
(``nodes/host_versions.py`` and the adapter), checked on whichever host runs
the tier: the latent's pixel factor, differentiable kernels for MSD's
gradient, a gradient pass through layers handed reused cast buffers
(dynamic VRAM), and a Context Windows node along the width around the panorama patch.
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

import harness

pytestmark = pytest.mark.host


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    with torch.inference_mode():
        model, clip, vae = harness.load_checkpoint(tiny_checkpoints["sd15"])
        import nodes
        positive = nodes.CLIPTextEncode().encode(clip, "a wide mountain panorama")[0]
    return model, positive


def test_pixel_factor_is_read_only_where_a_latent_format_declares_it(comfy):
    """From v0.11 the base LatentFormat declares 8, so every family inherits
    it: a format's own declaration or the pack's table must win."""
    import comfy.latent_formats as formats
    adapter = harness.pack_module("nodes.adapter")
    expected = {"SD15": 8, "SDXL": 8, "SD3": 8, "Flux": 8, "HunyuanImage21": 32, "HunyuanImage21Refiner": 16,
                "ChromaRadiance": 1}
    for name, scale in expected.items():
        if hasattr(formats, name):
            assert adapter.pixels_per_latent(getattr(formats, name)()) == scale, name
    for name, cls in vars(formats).items():
        if isinstance(cls, type) and issubclass(cls, formats.LatentFormat) and "spacial_downscale_ratio" in vars(cls):
            assert adapter.pixels_per_latent(cls()) == cls.spacial_downscale_ratio, name


def test_differentiable_kernels_switch_and_restore(comfy):
    """Inside the gradient pass ComfyUI's own switch (``in_training``, v0.14+)
    is on, and every name comfy_kitchen's fused kernels are reached by (its
    module's attributes; names bound at import as v0.8 to v0.13 bound RoPE)
    points at the kernel's plain-torch version, which computes what the
    kernel computes and which autograd runs through.  All is put back after,
    also when the pass fails."""
    import comfy.model_management as management
    host_versions = harness.pack_module("nodes.host_versions")
    kitchen = getattr(sys.modules.get("comfy.quant_ops"), "ck", None)
    module = types.ModuleType("comfy._panorama_test_rope_binding")  # a model module as v0.8-v0.13 wrote them
    if kitchen is not None:
        module.apply_rope, module.apply_rope1 = kitchen.apply_rope, kitchen.apply_rope1
        fused = {name: getattr(kitchen, name) for name in ("apply_rope", "apply_rope1", "rms_rope_split_half",
                                                          "apply_rope_split_half")}
    sys.modules[module.__name__] = module
    try:
        switch = host_versions.DifferentiableKernels()
        before = getattr(management, "in_training", None)
        with pytest.raises(RuntimeError, match="inside"):
            with switch():
                assert getattr(management, "in_training", True) is True
                if kitchen is not None:
                    import comfy_kitchen.backends.eager as eager
                    assert module.apply_rope is eager.apply_rope and module.apply_rope1 is eager.apply_rope1
                    for name in fused:
                        assert getattr(kitchen, name) is getattr(eager, name), name
                raise RuntimeError("failed inside the pass")
        assert getattr(management, "in_training", None) == before
        if kitchen is not None:
            assert module.apply_rope is fused["apply_rope"] and module.apply_rope1 is fused["apply_rope1"]
            assert all(getattr(kitchen, name) is kernel for name, kernel in fused.items())
    finally:
        del sys.modules[module.__name__]
    if kitchen is None:
        pytest.skip("this ComfyUI has no comfy_kitchen (before v0.8): its kernels are plain torch already")
    # The plain version computes what the kernel computes, and autograd runs through it.
    from comfy.ldm.flux.math import rope
    q, k = (torch.randn(1, 2, 12, 8, generator=torch.Generator().manual_seed(i)) for i in range(2))
    pe = rope(torch.arange(12.0)[None], 8, 10000).unsqueeze(1)
    expected = kitchen.apply_rope(q, k, pe)
    q.requires_grad_(True)
    with switch():
        got = kitchen.apply_rope(q, k, pe)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-6)
    got[0].square().sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_gradient_pass_copes_with_layers_handed_a_reused_buffer(comfy, sd15):
    """Dynamic VRAM (v0.12+) may hand a layer a view of a cast buffer that
    the next layer's weights overwrite.  The gradient pass must save copies
    of its own: the gradient with every layer's weight passed through one
    shared buffer equals the gradient without it."""
    from comfy import model_management
    adapter = harness.pack_module("nodes.adapter")
    model, positive = sd15
    model_management.load_models_gpu([model])
    base, unet = model.model, model.model.diffusion_model
    layers = [m for m in unet.modules() if hasattr(m, "weight_function")]
    buffers: dict = {}

    def through_shared_buffer(weight):  # one buffer per shape, rewritten by every layer of that shape
        buffer = buffers.setdefault((weight.shape, weight.dtype), torch.empty(weight.shape, dtype=weight.dtype))
        return buffer.copy_(weight)

    generator = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 4, 16, 16, generator=generator)
    sigma0 = torch.full((1,), 2.0)

    def gradient():
        with torch.inference_mode():
            x, sigma = x0.clone(), sigma0.clone()
            context = positive[0][0].clone()
        with adapter.gradients_through([unet]):
            x = x.clone().requires_grad_(True)
            out = base.apply_model(x, adapter.keep_grad_path(sigma), c_crossattn=adapter.keep_grad_path(context))
            out.square().mean().backward()
        return x.grad

    plain = gradient()
    for m in layers:
        m.weight_function = [through_shared_buffer]
    try:
        shared = gradient()
    finally:
        for m in layers:
            m.__dict__.pop("weight_function", None)
    assert buffers, "no layer went through the shared buffer"
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-7)


def context_windows_node(comfy, model):
    """ComfyUI's own Context Windows (Manual) node (V3 on both hosts) with
    the defaults of whatever inputs this host's version has."""
    import nodes
    cls = nodes.NODE_CLASS_MAPPINGS["ContextWindowsManual"]
    inputs = {name: harness._widget_default(spec[0], spec[1] if len(spec) > 1 else {})
              for name, spec in cls.INPUT_TYPES()["required"].items() if name != "model"}
    inputs["context_length"] = 4
    inputs["context_overlap"] = 1
    return cls, inputs


@pytest.mark.parametrize("order", ["after", "before"])
def test_context_windows_node_along_the_width_around_the_panorama_patch_is_refused_by_name(order, comfy,
                                                                                          tiny_checkpoints):
    """Both set the model's context_handler; ComfyUI's Context Windows
    compose with the panorama windows, in either order, along an axis the
    panorama does not cut (tests/host/test_video_time_windows_host.py).
    Along the width (dim 3 of an image latent) the run ends in a message
    naming the node and the fix."""
    import nodes
    if "ContextWindowsManual" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this ComfyUI has no Context Windows (Manual) node")
    _, inputs = context_windows_node(comfy, None)
    inputs["dim"] = 3
    patch = {"class_type": "TwinDiffusionModel", "inputs": {
        "model": ["1", 0] if order == "after" else ["8", 0], "mode": "twindiffusion", "lam": 1.0, "tau": 0.5,
        "view_batch_size": 4}}
    windows = {"class_type": "ContextWindowsManual", "inputs": {
        "model": ["7", 0] if order == "after" else ["1", 0], **inputs}}
    sampled = ["8", 0] if order == "after" else ["7", 0]
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "mountains", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 384, "height": 128, "batch_size": 1}},
        "7": patch,
        "8": windows,
        "9": {"class_type": "KSampler", "inputs": {
            "model": sampled, "seed": 1, "steps": 1, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["4", 0], "denoise": 1.0}},
    }
    result = harness.run_prompt(prompt, outputs=["9"], check=False)
    assert not result.success
    message = "\n".join(result.errors)
    assert "Context Windows: dim 3 is the width" in message and "set dim 2" in message, message
    assert "Traceback" not in message.split("\n")[0]
