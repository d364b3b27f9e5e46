"""360-degree panoramas: a 2:1 latent, decode and encode that keep the seam
closed, and saving for 360 viewers (the pack's web extension shows the
result as a sphere in the node)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import folder_paths
from comfy.cli_args import args

from ..fusion.wrap import equirect_band, unpad, wrap_pad
from .adapter import latent_grid
from .panorama_nodes import CATEGORY as PANORAMA_CATEGORY, MAX_RESOLUTION, empty_latent

CATEGORY = f"{PANORAMA_CATEGORY}/360"
PADDING_TOOLTIP = ("Pixels taken from the opposite edge on each side as the codec's context, cropped off "
                   "afterwards. The VAE then treats the borders like the inside of the image, so the two ends "
                   "meet without a seam. 0 = plain, with ComfyUI's zero padding (visible seam).")


class Panorama360Latent:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model the panorama is for: sets the channel count and, for "
                                           "height 0, the size."}),
            "height": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION // 2, "step": 8, "tooltip":
                       "Height in pixels, 180 degrees from pole to pole; the width is twice it (360 degrees). "
                       "0 = the model's native window (SD1.5: 1024x512, SDXL/SD3/Flux: 2048x1024). Taller than "
                       "the window needs windows in both directions: add Multi-Scale Guidance for one layout."}),
            "batch_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                   "tooltip": "Number of panoramas, each with its own noise."}),
        }}

    RETURN_TYPES = ("LATENT", "INT", "INT")
    RETURN_NAMES = ("LATENT", "width", "height")
    OUTPUT_TOOLTIPS = ("An empty 2:1 equirectangular latent; sample it with wrap_around on.",
                       "Its width in pixels.", "Its height in pixels.")
    FUNCTION = "generate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("An empty latent for a full 360x180-degree (equirectangular, 2:1) panorama at the model's "
                   "size. Sample it with a Cross Sampling Scheduler with wrap_around on, decode it with "
                   "VAE Decode (360 seamless) and look at it in Preview / Save 360 Panorama.")

    def generate(self, model, height, batch_size=1):
        grid = latent_grid(model)
        latent_h = grid.to_latent(height, "height") if height else grid.native
        return (empty_latent(model, batch_size, latent_h, 2 * latent_h), 2 * latent_h * grid.scale,
                latent_h * grid.scale)


def check_decode_input(latent, vae) -> None:
    """Refuses a latent this VAE cannot decode, naming the input and the fix."""
    if latent.ndim != 4:
        raise ValueError(f"samples has shape {tuple(latent.shape)}: VAE Decode (360 seamless) takes image latents "
                         f"(batch, channels, height, width); connect the latent of an image model's sampler")
    channels = getattr(vae, "latent_channels", None)
    if isinstance(channels, int) and latent.shape[1] != channels:
        raise ValueError(f"samples has {latent.shape[1]} channels but this VAE takes {channels}: the latent comes "
                         f"from another model family; connect the VAE of the model that sampled it")
    if not torch.isfinite(latent).all():
        raise ValueError("samples contains NaN or infinite values, which decode to a black or broken picture: "
                         "check the sampler that made it (a model in fp16 can overflow; try --force-fp32 or "
                         "another sampler)")


def check_image(images, name: str) -> None:
    """Refuses what is not an RGB(A) IMAGE (batch, height, width, channels)."""
    if images.ndim != 4:
        raise ValueError(f"{name} has shape {tuple(images.shape)}: connect an IMAGE (batch, height, width, "
                         f"channels); a MASK goes through 'Convert Mask to Image' first")
    if images.shape[-1] not in (3, 4):
        raise ValueError(f"{name} has shape {tuple(images.shape)}, {images.shape[-1]} channel(s): connect an RGB "
                         f"IMAGE (batch, height, width, 3 channels); a MASK goes through 'Convert Mask to Image' "
                         f"first")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values, a black or broken picture: check the node that "
                         f"made it (a VAE in fp16 can overflow; try --fp32-vae)")


def _padding_columns(pixels: int, compression: int, width: int) -> int:
    return min(math.ceil(pixels / compression), width)


class PanoramaSeamlessDecode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT", {"tooltip": "A wrap-around panorama latent (sampled with wrap_around on)."}),
            "vae": ("VAE", {"tooltip": "The model's VAE."}),
            "wrap_padding": ("INT", {"default": 64, "min": 0, "max": 1024, "step": 8, "tooltip": PADDING_TOOLTIP}),
            "tile_size": ("INT", {"default": 0, "min": 0, "max": 4096, "step": 32, "tooltip":
                          "0 decodes the whole panorama at once. Otherwise it is decoded in tiles of this many "
                          "pixels, like VAE Decode (Tiled), for panoramas too large for the GPU's memory."}),
            "overlap": ("INT", {"default": 64, "min": 0, "max": 4096, "step": 32,
                                "tooltip": "Overlap of the tiles in pixels (tiled decoding only)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    OUTPUT_TOOLTIPS = ("The decoded panorama; its left and right edges join.",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY
    DESCRIPTION = ("VAE Decode for 360-degree panoramas: decodes the latent with columns from the opposite edge "
                   "on both sides and crops them off, so the decoded image has no seam where its ends meet "
                   "(a plain VAE Decode pads with zeros and leaves one).")

    def decode(self, samples, vae, wrap_padding, tile_size=0, overlap=64):
        latent = samples["samples"]
        check_decode_input(latent, vae)
        compression = vae.spacial_compression_decode()
        cols = _padding_columns(wrap_padding, compression, latent.shape[-1])
        padded = wrap_pad(latent, cols)
        if tile_size > 0:
            overlap = min(overlap, tile_size // 4)
            images = vae.decode_tiled(padded, tile_x=tile_size // compression, tile_y=tile_size // compression,
                                      overlap=overlap // compression)
        else:
            images = vae.decode(padded)
        if images.ndim == 5:
            images = images.reshape(-1, *images.shape[-3:])
        scale = images.shape[2] // padded.shape[-1]
        return (unpad(images, cols * scale, dim=2),)


class PanoramaSeamlessEncode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pixels": ("IMAGE", {"tooltip": "A 360-degree panorama (its left and right edges join)."}),
            "vae": ("VAE", {"tooltip": "The model's VAE."}),
            "wrap_padding": ("INT", {"default": 64, "min": 0, "max": 1024, "step": 8, "tooltip": PADDING_TOOLTIP}),
        }}

    RETURN_TYPES = ("LATENT",)
    OUTPUT_TOOLTIPS = ("The latent, for img2img of the panorama with wrap_around on.",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY
    DESCRIPTION = ("VAE Encode for 360-degree panoramas (img2img, upscaling): encodes the image with columns "
                   "from the opposite edge on both sides and crops them off, so the latent's two ends join.")

    def encode(self, pixels, vae, wrap_padding):
        check_image(pixels, "pixels")
        compression = vae.spacial_compression_encode()
        width = pixels.shape[2] - pixels.shape[2] % compression
        if width == 0 or pixels.shape[1] < compression:
            raise ValueError(f"pixels is {pixels.shape[2]}x{pixels.shape[1]} px: use an image of at least "
                             f"{compression} px each way")
        # A width the VAE would crop is cut here, so the padding comes from the true right edge.
        pixels = pixels[:, :, :width, :3]
        cols = _padding_columns(wrap_padding, compression, width // compression)
        latent = vae.encode(wrap_pad(pixels, cols * compression, dim=2))
        return ({"samples": unpad(latent, cols)},)


def gpano_xmp(width: int, height: int) -> str:
    """Google's photo-sphere metadata: how 360 viewers and photo sites know an
    image is equirectangular, and which band of the sphere it covers."""
    full, top = equirect_band(width, height)
    fields = {"ProjectionType": "equirectangular", "UsePanoramaViewer": "True",
              "FullPanoWidthPixels": width, "FullPanoHeightPixels": full,
              "CroppedAreaImageWidthPixels": width, "CroppedAreaImageHeightPixels": height,
              "CroppedAreaLeftPixels": 0, "CroppedAreaTopPixels": top}
    attributes = " ".join(f'GPano:{key}="{value}"' for key, value in fields.items())
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" {attributes}/>'
            '</rdf:RDF></x:xmpmeta>')


MAX_FILE_NAME = 255  # bytes: ext4, NTFS, APFS


class SavePanorama360:
    FORMATS = ["png", "jpeg"]

    def __init__(self):
        self.output_dir = folder_paths.get_output_directory()
        self.type = "output"
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "360-degree panoramas (equirectangular; a band around the horizon "
                                            "when less than half as high as wide)."}),
            "filename_prefix": ("STRING", {"default": "panorama360", "tooltip":
                                "The prefix for the files in ComfyUI's output folder; ComfyUI's %date:...% and "
                                "%Node.widget% formatting works."}),
            "format": (cls.FORMATS, {"default": "png", "tooltip":
                       "png keeps the workflow in the file. jpeg is what photo sites and phone galleries "
                       "show as a 360 photo. Both carry the photo-sphere (GPano) metadata."}),
        }, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Saves 360-degree panoramas with photo-sphere (GPano) metadata, so 360 viewers show them as "
                   "a sphere, and shows them in the node: drag to look around, scroll to zoom, double-click "
                   "to reset.")

    def save(self, images, filename_prefix="panorama360", format="png", prompt=None, extra_pnginfo=None):
        if format not in self.FORMATS:
            raise ValueError(f"format = {format!r}: use one of {self.FORMATS}")
        check_image(images, "images")
        height, width = images.shape[1], images.shape[2]
        try:
            folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
                filename_prefix, self.output_dir, width, height)
        except Exception as error:  # ComfyUI refuses paths outside its folder; the OS too long names
            reason = str(error).strip().splitlines()[0].strip("* ").removeprefix("ERROR: ")
            raise ValueError(f"filename_prefix = {filename_prefix!r} cannot be saved ({reason}): use a file name "
                             f"(or subfolder/name) inside ComfyUI's output folder") from error
        xmp = gpano_xmp(width, height)
        results = []
        for index, image in enumerate(images):
            file = f"{name.replace('%batch_num%', str(index))}_{counter:05}_.{'jpg' if format == 'jpeg' else 'png'}"
            if len(file.encode()) > MAX_FILE_NAME:
                raise ValueError(f"filename_prefix makes a file name of {len(file.encode())} bytes ({file[:24]!r}...), "
                                 f"more than file systems allow ({MAX_FILE_NAME}): use a shorter prefix")
            pixels = Image.fromarray(np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8))
            path = os.path.join(folder, file)
            if format == "jpeg":
                pixels.convert("RGB").save(path, "JPEG", quality=95, xmp=xmp.encode())
            else:
                pixels.save(path, pnginfo=self._png_info(xmp, prompt, extra_pnginfo),
                            compress_level=self.compress_level)
            results.append({"filename": file, "subfolder": subfolder, "type": self.type})
            counter += 1
        return {"ui": {"images": results}}

    @staticmethod
    def _png_info(xmp, prompt, extra_pnginfo) -> PngInfo:
        info = PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp)
        if not args.disable_metadata:
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
        return info


class PreviewPanorama360(SavePanorama360):
    def __init__(self):
        self.output_dir = folder_paths.get_temp_directory()
        self.type = "temp"
        self.compress_level = 1

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "360-degree panoramas to look at."})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    DESCRIPTION = ("Shows 360-degree panoramas as a sphere in the node (drag to look around, scroll to zoom, "
                   "double-click to reset), without saving them.")

    def save(self, images, prompt=None, extra_pnginfo=None):
        return super().save(images, "panorama360_preview", "png", prompt, extra_pnginfo)
