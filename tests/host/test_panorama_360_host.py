"""360-degree panoramas on the real host: the 2:1 latent, the seamless
decode and encode with the VAE of a tiny checkpoint (ComfyUI's AutoencoderKL,
random weights), and the photo-sphere files the save node writes."""

from __future__ import annotations

import math
import os

import pytest
import torch

import harness


@pytest.fixture(scope="module")
def sd15(comfy, tiny_checkpoints):
    return harness.load_checkpoint(tiny_checkpoints["sd15"])


def wrap_latent(width=64, height=16, seed=0):
    """A smooth latent that is periodic across its width, like a sampled 360
    panorama: the two ends join exactly."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.arange(width) * 2 * math.pi / width
    y = torch.arange(height)[:, None] * 2 * math.pi / height
    phases = torch.rand(4, 3, generator=gen) * 2 * math.pi
    k = torch.tensor([1.0, 2.0, 3.0])
    waves = torch.sin(k[:, None, None] * x + phases[..., None, None] + 0.5 * torch.sin(y)).sum(1)
    return waves[None] / 2


def seam_step(image):
    wrap = harness.pack_module("fusion.wrap")
    return float(wrap.column_steps(image, dim=2)[-1])


def interior_steps_at_the_seam(decode, latent, reach=16):
    """The column steps a plain decode gives around the seam's place when that
    place is in the middle of the image (the latent rolled by half): what the
    seam should look like."""
    half = latent.shape[-1] // 2
    rolled = decode({"samples": torch.roll(latent, half, dims=-1)})[0]
    wrap = harness.pack_module("fusion.wrap")
    steps = wrap.column_steps(rolled, dim=2)
    seam = rolled.shape[2] // 2 - 1
    return steps[seam], torch.cat([steps[seam - reach:seam], steps[seam + 1:seam + 1 + reach]])


@pytest.mark.parametrize("seed", [0, 2])
@torch.inference_mode()
def test_seamless_decode_closes_the_seam_a_plain_decode_leaves(seed, comfy, sd15):
    import nodes
    vae = sd15[2]
    latent = wrap_latent(seed=seed)
    plain = nodes.VAEDecode().decode(vae, {"samples": latent})[0]
    seamless = harness.node("PanoramaSeamlessDecode").decode({"samples": latent}, vae, 64)[0]
    assert seamless.shape == plain.shape == (1, 128, 512, 3)
    there, around = interior_steps_at_the_seam(lambda s: nodes.VAEDecode().decode(vae, s), latent)
    print(f"\nseed {seed}: step across the seam: plain decode {seam_step(plain):.4f}, seamless "
          f"{seam_step(seamless):.4f}; the same place inside the image {float(there):.4f} "
          f"(neighbouring steps up to {float(around.max()):.4f})")
    assert seam_step(plain) > around.max()
    assert seam_step(seamless) <= around.max()


@torch.inference_mode()
def test_seamless_decode_tiled_keeps_the_seam_closed(comfy, sd15):
    import nodes
    vae = sd15[2]
    latent = wrap_latent()
    tiled = harness.node("PanoramaSeamlessDecode").decode(
        {"samples": latent}, vae, 64, tile_size=256, overlap=64)[0]
    # The reference is tiled too: tile borders make steps of their own.
    _, around = interior_steps_at_the_seam(lambda s: nodes.VAEDecodeTiled().decode(vae, s, 256, 64), latent)
    assert tiled.shape == (1, 128, 512, 3) and seam_step(tiled) <= around.max()


@torch.inference_mode()
def test_zero_padding_is_the_plain_decode(comfy, sd15):
    import nodes
    latent = {"samples": wrap_latent()}
    plain = nodes.VAEDecode().decode(sd15[2], latent)[0]
    same = harness.node("PanoramaSeamlessDecode").decode(latent, sd15[2], 0)[0]
    assert torch.equal(plain, same)


@torch.inference_mode()
def test_seamless_encode_keeps_the_latent_periodic(comfy, sd15):
    vae = sd15[2]
    image = harness.node("PanoramaSeamlessDecode").decode({"samples": wrap_latent()}, vae, 64)[0]
    seamless = harness.node("PanoramaSeamlessEncode").encode(image, vae, 64)[0]["samples"]
    import nodes
    plain = nodes.VAEEncode().encode(vae, image)[0]["samples"]
    assert seamless.shape == plain.shape == (1, 4, 16, 64)
    wrap = harness.pack_module("fusion.wrap")
    assert wrap.seam_ratio(seamless, dim=-1) < wrap.seam_ratio(plain, dim=-1)
    steps = wrap.column_steps(seamless, dim=-1)
    assert steps[-1] <= steps[:-1].max()


def test_360_latent_is_two_to_one_at_the_models_size(comfy, sd15):
    node = harness.node("Panorama360Latent")
    latent, width, height = node.generate(sd15[0], 0, 2)
    assert latent["samples"].shape == (2, 4, 64, 128) and (width, height) == (1024, 512)
    latent, width, height = node.generate(sd15[0], 256)
    assert latent["samples"].shape == (1, 4, 32, 64) and (width, height) == (512, 256)
    with pytest.raises(ValueError, match="height = 260 px is not a multiple of 8"):
        node.generate(sd15[0], 260)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_save_writes_photo_sphere_metadata(fmt, comfy):
    from PIL import Image
    import folder_paths
    images = torch.rand(2, 64, 256, 3)
    ui = harness.call_node("SavePanorama360", images, "test360", fmt,
                           hidden={"prompt": {"1": {}}, "extra_pnginfo": {"workflow": {}}})["ui"]
    assert len(ui["images"]) == 2
    entry = ui["images"][0]
    path = os.path.join(folder_paths.get_output_directory(), entry["subfolder"], entry["filename"])
    with Image.open(path) as saved:
        assert saved.size == (256, 64)
        xmp = saved.info.get("xmp") or saved.info.get("XML:com.adobe.xmp")
        if isinstance(xmp, bytes):
            xmp = xmp.decode()
        assert 'GPano:ProjectionType="equirectangular"' in xmp
        # 256 px around is a sphere 128 px high: this 64 px band is centred on the horizon.
        assert 'GPano:FullPanoHeightPixels="128"' in xmp and 'GPano:CroppedAreaTopPixels="32"' in xmp
        if fmt == "png":
            assert "workflow" in saved.info
    preview = harness.call_node("PreviewPanorama360", images[:1])["ui"]["images"]
    assert preview[0]["type"] == "temp"


def test_bad_inputs_name_the_input(comfy, sd15):
    with pytest.raises(ValueError, match="samples has shape"):
        harness.node("PanoramaSeamlessDecode").decode({"samples": torch.zeros(1, 4, 2, 8, 8)}, sd15[2], 64)
    with pytest.raises(ValueError, match="pixels is 4x4"):
        harness.node("PanoramaSeamlessEncode").encode(torch.zeros(1, 4, 4, 3), sd15[2], 64)
    with pytest.raises(ValueError, match="format = 'gif'"):
        harness.node("SavePanorama360").save(torch.zeros(1, 8, 16, 3), "x", "gif")
