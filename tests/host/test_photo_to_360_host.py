"""Photo to 360 in a real ComfyUI: Place Photo in 360° Panorama, VAE Encode,
Set Latent Noise Mask and KSampler (Panorama) on sphere views, through
ComfyUI's executor with the tiny random-weight SD1.5.  The photo's area of
the latent is kept (ComfyUI's noise mask works on the whole 2:1 latent, so
sphere views need nothing of their own for it), the rest is generated."""

from __future__ import annotations

import pytest
import torch

import harness

pytestmark = pytest.mark.host


def test_photo_to_360_keeps_the_photo_and_generates_the_sphere(comfy, tiny_checkpoints):
    import numpy
    from PIL import Image
    import folder_paths
    rows = numpy.linspace(0, 255, 96)[:, None, None]
    photo = numpy.concatenate([rows.repeat(128, 1), numpy.linspace(0, 255, 128)[None, :, None].repeat(96, 0),
                               numpy.full((96, 128, 1), 90.0)], -1).astype(numpy.uint8)
    Image.fromarray(photo).save(f"{folder_paths.get_input_directory()}/photo_for_360.png")
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": tiny_checkpoints["sd15"]}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a harbour at dusk", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "photo_for_360.png"}},
        "5": {"class_type": "PanoramaPhotoTo360", "inputs": {"image": ["4", 0], "fov": 80.0, "yaw": 0.0,
                                                             "pitch": 0.0, "width": 768, "fill": "grey"}},
        "6": {"class_type": "VAEEncode", "inputs": {"pixels": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["6", 0], "mask": ["5", 1]}},
        "8": {"class_type": "PanoramaSphereWindows", "inputs": {"window_size": 128, "fov": 0.0, "overlap": 0.25,
                                                                "view_count": 0, "rotation": "golden",
                                                                "cross_count": 2}},
        "9": {"class_type": "TwinCropFusionSampler", "inputs": {
            "model": ["1", 0], "seed": 2, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["7", 0], "denoise": 1.0,
            "mode": "multidiffusion", "lam": 1.0, "tau": 0.5, "view_batch_size": 4, "windows": ["8", 0]}},
    }
    result = harness.run_prompt(prompt, outputs=["5", "6", "9"])
    assert result.success, result.errors
    image, mask = result.output("5", 0), result.output("5", 1)
    assert image.shape == (1, 384, 768, 3) and mask.shape == (1, 384, 768)
    assert 0.03 < float((mask == 0).float().mean()) < 0.2  # an 80 degree photo covers a few % of the sphere
    encoded = result.output("6")["samples"]
    out = result.output("9")["samples"]
    keep = torch.nn.functional.interpolate(mask[:, None], size=out.shape[-2:], mode="bilinear") < 1e-6
    keep = keep.expand_as(out)
    # the photo's latent stays (ComfyUI's last step rounds; it does not paste the latent back)
    assert (out[keep] - encoded[keep]).abs().max() < 1e-4
    assert (out[~keep] - encoded[~keep]).abs().mean() > 0.05  # the rest was generated


def test_photo_to_360_refuses_bad_inputs_by_name(comfy):
    image = torch.rand(1, 32, 48, 3)
    with pytest.raises(ValueError, match="width = 101: use an even width"):
        harness.node("PanoramaPhotoTo360").execute(image, 80.0, 0.0, 0.0, 101, "grey")
    with pytest.raises(ValueError, match="fill = 'blue': use grey, black or edge"):
        harness.node("PanoramaPhotoTo360").execute(image, 80.0, 0.0, 0.0, 256, "blue")
