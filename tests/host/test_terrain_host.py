"""The trained terrain model (adaptive-terrain-diffusion's consistency U-Net,
read from the installed PyPI package) inside ComfyUI's model classes, run
through ComfyUI's executor and samplers with the pack's nodes: TwinDiffusion
with Cross Sampling, wrap-around (360), Multi-Scale Diffusion with its
gradient through the trained network, regional difficulty (area and mask),
img2img, lcm and euler.

Skips, saying why, where the weights package is not installed
(``bash scripts/setup.sh <ComfyUI>`` installs it into the host's venv).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

import harness

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("terrain_diffusion") is None,
    reason="the trained terrain model's weights come from the PyPI package adaptive-terrain-diffusion==0.4.2, "
           "not installed in this venv: pip install --no-deps adaptive-terrain-diffusion==0.4.2 "
           "(bash scripts/setup.sh <ComfyUI dir> does it)")

LOADER, DIFFICULTY, RELIEF, ENCODE = ("PanoramaTerrainModelLoader", "PanoramaTerrainDifficulty",
                                      "PanoramaTerrainRelief", "PanoramaTerrainEncode")


@pytest.fixture(scope="module")
def terrain(comfy):
    """The model, loaded once by the pack's loader node."""
    return harness.call_node(LOADER)[0]


def difficulty(value):
    return harness.call_node(DIFFICULTY, difficulty=value)[0]


def prompt(width=256, height=128, *, steps=2, sampler="lcm", scheduler="karras", mode="twindiffusion",
           stride=64, cross_count=2, wrap=False, seed=0, positive=None, latent=None, denoise=1.0, multiscale=None):
    """Loader -> difficulty -> panorama latent -> plan -> panorama sampler ->
    relief, as a user wires it; ``positive`` replaces the conditioning by a
    sub-graph (its node ids, the output id), ``latent`` the latent source."""
    graph = {
        "1": {"class_type": LOADER, "inputs": {}},
        "2": {"class_type": DIFFICULTY, "inputs": {"difficulty": 50.0}},
        "3": {"class_type": "PanoramaLatent", "inputs": {"model": ["1", 0], "width": width, "height": height,
                                                         "batch_size": 1}},
        "4": {"class_type": "CrossSamplingScheduler", "inputs": {"window_size": 0, "view_stride": stride,
                                                                 "cross_count": cross_count, "cross_stride": 0,
                                                                 "wrap_around": wrap}},
        "5": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": seed, "steps": steps, "cfg": 1.0, "sampler_name": sampler,
            "scheduler": scheduler, "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
            "denoise": denoise, "mode": mode, "lam": 1.0, "tau": 0.5, "view_batch_size": 4,
            "windows": ["4", 0]}},
        "6": {"class_type": RELIEF, "inputs": {"samples": ["5", 0], "exaggeration": 1.0, "shading": 0.75,
                                               "wrap_around": wrap}},
    }
    if positive is not None:
        extra, out = positive
        graph.update(extra)
        graph["5"]["inputs"]["positive"] = graph["5"]["inputs"]["negative"] = out
    if latent is not None:
        extra, out = latent
        graph.update(extra)
        graph["5"]["inputs"]["latent_image"] = out
    if multiscale is not None:
        graph["7"] = {"class_type": "MultiScaleGuidance", "inputs": {"levels": 2, "omega": multiscale,
                                                                     "decay": "cosine", "downsample": "bilinear"}}
        graph["5"]["inputs"]["multiscale"] = ["7", 0]
    return graph


def run(graph):
    result = harness.run_prompt(graph, outputs=["5", "6"])
    latent = result.output("5")["samples"]
    assert torch.isfinite(latent).all() and latent.abs().max() <= 1.0
    return latent, result


def test_the_comfyui_model_is_the_trained_denoiser(terrain):
    """ComfyUI's model (EDM sampling with the consistency scalings, the
    U-Net of comfy.ops layers, difficulty as ``y``) gives what the package's
    ONNX model gives (onnxruntime, where installed) and what the pack's
    pure-torch port gives; the panorama nodes read its latent grid: 1 px per
    latent pixel, 128 px native windows."""
    from comfy import model_management
    adapter = harness.pack_module("nodes.adapter")
    denoiser_mod = harness.pack_module("terrain.denoiser")
    weights = harness.pack_module("terrain.weights")
    assert adapter.latent_grid(terrain) == harness.pack_module("fusion.windows").LatentGrid(1, 1, 128)
    model_management.load_models_gpu([terrain])
    base = terrain.model
    generator = torch.Generator().manual_seed(0)
    sigma = torch.tensor([80.0, 4.0, 0.4, 0.01])
    x = torch.randn(4, 1, 128, 128, generator=generator) * sigma.view(-1, 1, 1, 1) + 0.3 * torch.randn(
        4, 1, 128, 128, generator=generator).tanh()
    labels = torch.tensor([0.0, 0.25, 0.75, 1.0])
    with torch.inference_mode():
        ours = base.apply_model(x, sigma, y=labels[:, None]).float()
        port = denoiser_mod.TerrainDenoiser.load()(x, sigma, labels)
    torch.testing.assert_close(ours, port, rtol=0, atol=1e-5)
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime
        session = onnxruntime.InferenceSession(str(weights.onnx_path()), providers=["CPUExecutionProvider"])
        reference = session.run(["denoised"], {"noisy": x.numpy(), "sigma": sigma.numpy(),
                                               "difficulty": labels.numpy()})[0]
        difference = (ours - torch.from_numpy(reference)).abs().max()
        print(f"\nComfyUI's terrain model against onnxruntime: max |difference| {float(difference):.1e}")
        assert difference < 1e-4


def test_one_window_is_comfyuis_ksampler(terrain):
    """A latent of one window: the panorama sampler is ComfyUI's KSampler,
    bit for bit (lcm)."""
    import nodes
    latent, _ = run(prompt(128, 128, steps=2))
    with torch.inference_mode():
        cond = difficulty(50.0)
        empty = {"samples": torch.zeros(1, 1, 128, 128)}
        plain = nodes.common_ksampler(terrain, 0, 2, 1.0, "lcm", "karras", cond, cond, empty)[0]["samples"]
    assert torch.equal(latent, plain)


def test_twin_with_cross_sampling_and_multidiffusion(terrain):
    """TwinDiffusion with Cross Sampling (c = 2) and plain MultiDiffusion on
    the trained model through the executor, with ComfyUI's euler and lcm
    samplers; Crop Fusion changes the result, and the relief node draws it.
    (Three steps: with two, Karras' schedule jumps from 80 straight to
    sigma_min, where euler and lcm coincide.)"""
    twin, result = run(prompt(256, 128, sampler="euler", steps=3))
    md, _ = run(prompt(256, 128, sampler="euler", steps=3, mode="multidiffusion"))
    assert twin.shape == md.shape == (1, 1, 128, 256)
    assert (twin - md).abs().max() > 1e-3
    image = result.output("6", 0)
    assert image.shape == (1, 128, 256, 3) and 0 <= float(image.min()) and float(image.max()) <= 1
    lcm, _ = run(prompt(256, 128, sampler="lcm", steps=3))
    assert (lcm - twin).abs().max() > 1e-3


def seam_and_inside(latent):
    """Mean |step| across the wrap (last column to first), and the largest
    step between two neighbouring columns inside."""
    wrap = harness.pack_module("fusion.wrap")
    steps = wrap.column_steps(latent[0], dim=2)
    return float(steps[-1]), float(steps[:-1].max())


@pytest.mark.parametrize("mode", ["multidiffusion", "twindiffusion"])
def test_360_wraps_around(mode, terrain):
    """A 2:1 360 panorama at the model's height (Panorama360Latent, height 0
    = 128 px) with wrap-around windows, MultiDiffusion and Crop Fusion with
    Cross Sampling: its ends join (a small fraction of the step a panorama
    without wrap-around leaves there); with MultiDiffusion, whose windows
    on the circle are all alike, no more than neighbouring columns inside."""
    graph = prompt(wrap=True, sampler="euler", steps=3, mode=mode)
    graph["3"] = {"class_type": "Panorama360Latent", "inputs": {"model": ["1", 0], "height": 0, "batch_size": 1}}
    wrapped, _ = run(graph)
    assert wrapped.shape == (1, 1, 128, 256)
    flat, _ = run(prompt(256, 128, sampler="euler", steps=3, wrap=False, mode=mode))
    (seam, inside), (flat_seam, flat_inside) = seam_and_inside(wrapped), seam_and_inside(flat)
    print(f"\n{mode}: step across the 360 seam: wrap-around {seam:.4f} (column steps inside up to "
          f"{inside:.4f}); without {flat_seam:.4f} (inside up to {flat_inside:.4f})")
    assert seam < 0.3 * flat_seam
    if mode == "multidiffusion":
        assert seam <= inside


def test_multiscale_diffusion_on_the_trained_model(terrain):
    """MSD on a 2-D panorama (2 x 2 windows) through the executor: the
    gradient runs through the trained U-Net; omega 0 is MultiDiffusion
    exactly, omega 10 moves the result."""
    md, _ = run(prompt(256, 256, stride=128, cross_count=1, mode="multidiffusion", sampler="euler", steps=2,
                       multiscale=0.0))
    plain, _ = run(prompt(256, 256, stride=128, cross_count=1, mode="multidiffusion", sampler="euler", steps=2))
    msd, _ = run(prompt(256, 256, stride=128, cross_count=1, mode="multidiffusion", sampler="euler", steps=2,
                        multiscale=10.0))
    assert torch.equal(md, plain)
    assert (msd - md).abs().mean() > 1e-3


def test_msd_gradient_through_the_trained_unet(terrain):
    """The gradient step of MSD (eq. 9) through ComfyUI's terrain model,
    taken under inference mode as in a run (GradientPass: comfy.ops weight
    copies, inference tensors swapped), equals autograd through the pack's
    pure-torch port of the network in float64, and agrees with central
    finite differences of the float64 loss; the model is left as it was."""
    import comfy.sampler_helpers
    import comfy.samplers
    from comfy import model_management
    adapter = harness.pack_module("nodes.adapter")
    multiscale = harness.pack_module("fusion.multiscale")
    windows_mod = harness.pack_module("fusion.windows")
    denoiser_mod = harness.pack_module("terrain.denoiser")
    model_management.load_models_gpu([terrain])
    base = terrain.model
    base.current_patcher = terrain
    before = {k: v.clone() for k, v in base.diffusion_model.state_dict().items()}
    views = windows_mod.plan_views(windows_mod.WindowPlan(128, 64), 128, 192)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, 128, 128, generator=generator) * 2.0 - 0.3
    target = torch.randn(1, 1, 64, 64, generator=generator) * 0.1 - 0.3
    sigma, r = torch.full((1,), 2.0), 0.5
    with torch.inference_mode():
        conds = comfy.sampler_helpers.convert_cond(difficulty(50.5))  # the model's 0.5
        conds = comfy.samplers.encode_model_conds(base.extra_conds, conds, x, x.device, "positive")

    def model_fn(xw, sw, views_=None, ids_=None, branch=None):
        entries = conds
        if torch.is_grad_enabled():
            entries, sw = [adapter.keep_grad_path_entry(e) for e in conds], adapter.keep_grad_path(sw)
        return comfy.samplers.calc_cond_batch(base, [entries], xw, sw, terrain.model_options)[0]

    with torch.inference_mode():
        xi, ti, si = x.clone(), target.clone(), sigma.clone()  # inference tensors, as in a ComfyUI run
        stepped = multiscale.guided_windows(model_fn, xi, ti, si, views, [0], r, 1.0, "bilinear",
                                            adapter.GradientPass([base]))
        comfy_grad = (xi - stepped).clone()

    port = denoiser_mod.TerrainDenoiser.load(dtype=torch.float64)

    def loss(v):
        phi = port(v, sigma.double(), 0.5) * (1 - r) + r * v
        return ((multiscale.downsample(phi) - target.double()) ** 2).flatten(2).sum(2).mean(1).sum()

    v = x.double().requires_grad_(True)
    exact = torch.autograd.grad(loss(v), v)[0]
    relative = float((comfy_grad.double() - exact).norm() / exact.norm())
    direction = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        eps = 1e-6  # the loss is sharply curved: larger steps measure the curvature
        numeric = float((loss(x.double() + eps * direction) - loss(x.double() - eps * direction)) / (2 * eps))
    analytic = float((exact * direction).sum())
    print(f"\nMSD gradient through ComfyUI's terrain model vs float64 autograd: relative error {relative:.1e}; "
          f"float64 autograd vs central differences: {abs(analytic - numeric) / abs(numeric):.1e}")
    assert relative < 1e-4
    assert abs(analytic - numeric) < 1e-5 * abs(numeric)
    after = base.diffusion_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in base.diffusion_model.parameters())


def regional(kind):
    """Difficulty 1 on the left half, 100 on the right (by area or by mask),
    and nothing else.  Areas by percentage: ComfyUI's Set Area takes pixels
    as 8 per latent pixel, while this model's latent is its pixels."""
    graph = {
        "20": {"class_type": DIFFICULTY, "inputs": {"difficulty": 1.0}},
        "21": {"class_type": DIFFICULTY, "inputs": {"difficulty": 100.0}},
    }
    if kind == "area":
        for node, source, x in (("22", "20", 0.0), ("23", "21", 0.5)):
            graph[node] = {"class_type": "ConditioningSetAreaPercentage", "inputs": {
                "conditioning": [source, 0], "width": 0.5, "height": 1.0, "x": x, "y": 0.0, "strength": 1.0}}
    else:
        graph["30"] = {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 384, "height": 128}}
        graph["31"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 192, "height": 128}}
        graph["32"] = {"class_type": "MaskComposite", "inputs": {"destination": ["30", 0], "source": ["31", 0],
                                                                 "x": 0, "y": 0, "operation": "add"}}
        graph["33"] = {"class_type": "InvertMask", "inputs": {"mask": ["32", 0]}}
        graph["22"] = {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["20", 0], "mask": ["32", 0],
                                                                       "strength": 1.0, "set_cond_area": "default"}}
        graph["23"] = {"class_type": "ConditioningSetMask", "inputs": {"conditioning": ["21", 0], "mask": ["33", 0],
                                                                       "strength": 1.0, "set_cond_area": "default"}}
    graph["24"] = {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["22", 0],
                                                                  "conditioning_2": ["23", 0]}}
    return graph, ["24", 0]


@pytest.mark.parametrize("kind", ["area", "mask"])
def test_regional_difficulty(kind, terrain):
    """Difficulty 1 on the left half and 100 on the right, by Set Area or by
    Set Mask: each half of the panorama is the terrain of its own
    difficulty (compared with whole panoramas at 1 and at 100)."""
    def outer(latent):  # the windows at either end
        return latent[..., :128].mean(), latent[..., 256:].mean()

    both, _ = run(prompt(384, 128, steps=2, positive=regional(kind), seed=3))
    gentle, _ = run(prompt(384, 128, steps=2, positive=({"20": {"class_type": DIFFICULTY,
                                                                "inputs": {"difficulty": 1.0}}}, ["20", 0]), seed=3))
    rugged, _ = run(prompt(384, 128, steps=2, positive=({"21": {"class_type": DIFFICULTY,
                                                                "inputs": {"difficulty": 100.0}}}, ["21", 0]), seed=3))
    (left, right), (gentle_left, gentle_right), (rugged_left, rugged_right) = outer(both), outer(gentle), outer(rugged)
    print(f"\n{kind}: mean height (model space) of the left / right window: regional {float(left):.3f} / "
          f"{float(right):.3f}; difficulty 1 everywhere {float(gentle_left):.3f} / {float(gentle_right):.3f}, "
          f"100 everywhere {float(rugged_left):.3f} / {float(rugged_right):.3f}")
    assert abs(left - gentle_left) < abs(left - rugged_left)
    assert abs(right - rugged_right) < abs(right - gentle_right)


def test_img2img_keeps_the_input_terrain(terrain):
    """Terrain Relief's heightmap back through Terrain Heightmap to Latent,
    resampled at denoise 0.3: close to the input, not equal to it, and much
    closer than a fresh panorama."""
    source, result = run(prompt(256, 128, steps=2, seed=5))
    heightmap = result.output("6", 1)
    with torch.inference_mode():
        encoded = harness.call_node(ENCODE, heightmap=heightmap)[0]["samples"]
    torch.testing.assert_close(encoded, source, rtol=0, atol=1e-6)
    image_node = {"40": {"class_type": "PanoramaTerrainEncode", "inputs": {"heightmap": ["41", 0]}},
                  "41": {"class_type": "PanoramaTestImage", "inputs": {}}}
    harness.register_test_nodes({"PanoramaTestImage": constant_image_node(heightmap)})
    again, _ = run(prompt(256, 128, steps=4, seed=6, denoise=0.3, latent=(image_node, ["40", 0])))
    fresh, _ = run(prompt(256, 128, steps=2, seed=6))
    near, far = (again - source).abs().mean(), (fresh - source).abs().mean()
    print(f"\nimg2img at denoise 0.3: mean |change| {float(near):.3f}; a fresh panorama differs by {float(far):.3f}")
    assert 0 < near < 0.5 * far


def constant_image_node(image):
    class PanoramaTestImage:
        RETURN_TYPES = ("IMAGE",)
        FUNCTION = "load"
        CATEGORY = "testing"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}}

        @classmethod
        def IS_CHANGED(cls):
            return float("nan")

        def load(self):
            return (image.clone(),)

    return PanoramaTestImage
