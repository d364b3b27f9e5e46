"""The trained terrain model's torch port (``terrain/``): read from the
installed package's ONNX file without onnx or protobuf, equal to
onnxruntime's run of that file, usable at any size and with autograd; the
relief rendering.  The model tests skip, saying why, where the package is
not installed (``bash scripts/setup.sh`` installs it)."""

import importlib.util

import pytest
import torch

from terrain.render import heights_from_model, hillshade, model_from_heights, relief

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("terrain_diffusion") is None,
    reason="the trained terrain model comes from the PyPI package adaptive-terrain-diffusion==0.4.2, not installed "
           "here: pip install --no-deps adaptive-terrain-diffusion==0.4.2 (bash scripts/setup.sh does it)")


@pytest.fixture(scope="module")
def denoiser():
    from terrain.denoiser import TerrainDenoiser
    return TerrainDenoiser.load()


@needs_weights
def test_the_weights_file_is_the_pinned_one():
    from terrain.weights import ONNX_SHA256, onnx_path, sha256
    assert sha256(onnx_path()) == ONNX_SHA256


@needs_weights
def test_every_weight_of_the_export_has_its_place(denoiser):
    """All 10.4 M parameters come from the file: the named initializers and
    the 139 GroupNorms the exporter folded into anonymous constants."""
    from terrain.weights import load_state_dict
    sd, metadata = load_state_dict()
    assert set(sd) == set(denoiser.unet.state_dict())
    assert sum(v.numel() for v in sd.values()) == 10_456_545
    assert metadata["native_size"] == "128" and metadata["architecture"] == "consistency-unet-32"


@needs_weights
def test_the_port_is_the_onnx_model(denoiser):
    """The pure-torch denoiser against onnxruntime on the package's own file,
    across the noise range and the difficulty range."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime checks the port (pip install onnxruntime)")
    from terrain.weights import onnx_path
    generator = torch.Generator().manual_seed(0)
    sigma = torch.tensor([80.0, 3.0, 0.2, 0.002])
    x = torch.randn(4, 1, 128, 128, generator=generator) * sigma.view(-1, 1, 1, 1) - 0.3
    difficulty = torch.tensor([0.0, 0.4, 0.8, 1.0])
    session = ort.InferenceSession(str(onnx_path()), providers=["CPUExecutionProvider"])
    reference = session.run(["denoised"], {"noisy": x.numpy(), "sigma": sigma.numpy(),
                                           "difficulty": difficulty.numpy()})[0]
    with torch.no_grad():
        ours = denoiser(x, sigma, difficulty)
    difference = (ours - torch.from_numpy(reference)).abs().max()
    print(f"\ntorch port vs onnxruntime: max |difference| {float(difference):.1e}")
    assert difference < 1e-4


@needs_weights
def test_any_window_size_and_autograd(denoiser):
    """Windows of other sizes (a regional prompt's part of a window, a lower
    MSD level) run, and the gradient reaches the input."""
    x = (torch.randn(1, 1, 72, 104) * 2).requires_grad_(True)
    out = denoiser(x, torch.tensor([2.0]))
    assert out.shape == x.shape and torch.isfinite(out).all()
    grad = torch.autograd.grad(out.square().sum(), x)[0]
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


@needs_weights
def test_difficulty_changes_the_terrain(denoiser):
    x = torch.randn(1, 1, 128, 128, generator=torch.Generator().manual_seed(1)).repeat(2, 1, 1, 1) * 80
    with torch.no_grad():
        gentle, rugged = denoiser(x, torch.tensor([80.0]), torch.tensor([0.0, 1.0]))
    assert (gentle - rugged).abs().mean() > 0.05


def test_heights_round_trip_and_package_scale():
    values = torch.linspace(-1, 1, 101).view(1, 1, 1, -1)
    heights = heights_from_model(values)
    assert float(heights.min()) == 0 and abs(float(heights.max()) - 22.16864) < 1e-4
    torch.testing.assert_close(model_from_heights(heights), values, rtol=0, atol=1e-5)


def test_relief_is_rgb_and_wraps():
    """Relief pictures are RGB in [0, 1]; with wrap-around, shading treats
    the left and right edges as neighbours (rolling the map rolls the
    picture)."""
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(2, 1, 32, 64, generator=generator).cumsum(-1).tanh() * 0.5
    image = relief(values)
    assert image.shape == (2, 3, 32, 64) and 0 <= float(image.min()) and float(image.max()) <= 1
    periodic = torch.sin(torch.linspace(0, 6.283185, 65)[:-1]).view(1, 1, 1, 64).expand(1, 1, 8, 64) * 0.5
    rolled = torch.roll(periodic, 9, dims=-1)
    torch.testing.assert_close(torch.roll(hillshade(heights_from_model(periodic), wrap=True), 9, dims=-1),
                               hillshade(heights_from_model(rolled), wrap=True))
