"""360-degree panoramas: a 2:1 latent, decode and encode that keep the seam
closed, and saving for 360 viewers (the pack's web extension shows the
result as a sphere in the node)."""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import folder_paths
from comfy.cli_args import args
from comfy_api.latest import io, ui

from ..fusion.wrap import equirect_band, unpad, wrap_pad
from .adapter import latent_grid
from .host_versions import schema
from .panorama_nodes import CATEGORY as PANORAMA_CATEGORY, MAX_RESOLUTION, empty_latent

CATEGORY = f"{PANORAMA_CATEGORY}/360"
SEARCH = ["360", "equirectangular", "panorama", "spherical", "vr", "photo sphere", "hdri"]
PADDING_TOOLTIP = ("Pixels taken from the opposite edge on each side as the codec's context, cropped off "
                   "afterwards. The VAE then treats the borders like the inside of the image, so the two ends "
                   "meet without a seam. 0 = plain, with ComfyUI's zero padding (visible seam).")


class Panorama360Latent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="Panorama360Latent",
            display_name="Empty 360° Panorama Latent",
            category=CATEGORY,
            search_aliases=[*SEARCH, "empty latent", "2:1"],
            description=("An empty latent for a full 360x180-degree (equirectangular, 2:1) panorama at the model's "
                         "size. Sample it with Panorama Windows (Cross Sampling) set to wrap_around, or with Panorama "
                         "Windows (Sphere) for a zenith and nadir that any model draws right, decode it with VAE "
                         "Decode (360 seamless) and look at it in Preview / Save 360 Panorama."),
            inputs=[
                io.Model.Input("model", tooltip=("The model the panorama is for: sets the channel count and, for "
                                                 "height 0, the size.")),
                io.Int.Input("height", default=0, min=0, max=MAX_RESOLUTION // 2, step=8, tooltip=(
                    "Height in pixels, 180 degrees from pole to pole; the width is twice it (360 degrees). 0 = the "
                    "model's native window (SD1.5: 1024x512, SDXL/SD3/Flux: 2048x1024). Taller than the window "
                    "needs windows in both directions: add Panorama Layout Guidance (MSD) for one layout.")),
                io.Int.Input("batch_size", default=1, min=1, max=64,
                             tooltip="Number of panoramas, each with its own noise."),
            ],
            outputs=[io.Latent.Output(display_name="LATENT", tooltip=(
                         "An empty 2:1 equirectangular latent; sample it with wrap_around on.")),
                     io.Int.Output(display_name="width", tooltip="Its width in pixels."),
                     io.Int.Output(display_name="height", tooltip="Its height in pixels.")],
        )

    @classmethod
    def execute(cls, model, height, batch_size=1) -> io.NodeOutput:
        grid = latent_grid(model)
        latent_h = grid.to_latent(height, "height") if height else grid.native
        return io.NodeOutput(empty_latent(model, batch_size, latent_h, 2 * latent_h), 2 * latent_h * grid.scale,
                             latent_h * grid.scale)


def check_decode_input(latent, vae) -> None:
    """Refuses a latent this VAE cannot decode, naming the input and the fix."""
    # Qwen-Image's latent is one video frame (batch, channels, 1, height, width), which its VAE (Wan 2.1) decodes;
    # a video VAE (ComfyUI's latent_dim 3: Wan, Hunyuan, LTX) decodes every frame, an image VAE only the first.
    video_vae = getattr(vae, "latent_dim", 2) == 3
    if not (latent.ndim == 4 or (latent.ndim == 5 and (latent.shape[2] == 1 or video_vae))):
        raise ValueError(f"samples has shape {tuple(latent.shape)}: VAE Decode (360 seamless) takes image latents "
                         f"(batch, channels, height, width), or video latents (batch, channels, frames, height, "
                         f"width) with the video model's own VAE; connect the VAE of the model that sampled it")
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


def padding_input() -> io.Int.Input:
    return io.Int.Input("wrap_padding", default=64, min=0, max=1024, step=8, tooltip=PADDING_TOOLTIP)


class PanoramaSeamlessDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaSeamlessDecode",
            display_name="VAE Decode (360 seamless)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "vae decode", "seamless", "wrap"],
            description=("VAE Decode for 360-degree panoramas: decodes the latent with columns from the opposite "
                         "edge on both sides and crops them off, so the decoded image has no seam where its ends "
                         "meet (a plain VAE Decode pads with zeros and leaves one)."),
            inputs=[
                io.Latent.Input("samples", tooltip="A wrap-around panorama latent (sampled with wrap_around on)."),
                io.Vae.Input("vae", tooltip="The model's VAE."),
                padding_input(),
                io.Int.Input("tile_size", default=0, min=0, max=4096, step=32, tooltip=(
                    "0 decodes the whole panorama at once. Otherwise it is decoded in tiles of this many pixels, "
                    "like VAE Decode (Tiled), for panoramas too large for the GPU's memory.")),
                io.Int.Input("overlap", default=64, min=0, max=4096, step=32,
                             tooltip="Overlap of the tiles in pixels (tiled decoding only)."),
            ],
            outputs=[io.Image.Output(tooltip="The decoded panorama; its left and right edges join.")],
        )

    @classmethod
    def execute(cls, samples, vae, wrap_padding, tile_size=0, overlap=64) -> io.NodeOutput:
        latent = samples["samples"]
        check_decode_input(latent, vae)
        if latent.ndim == 5 and getattr(vae, "latent_dim", 2) == 2:
            latent = latent[:, :, 0]  # one frame for an image VAE: ComfyUI 0.33's VAE drops it itself, 0.3.64's not
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
        return io.NodeOutput(unpad(images, cols * scale, dim=2))


class PanoramaSeamlessEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaSeamlessEncode",
            display_name="VAE Encode (360 seamless)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "vae encode", "seamless", "wrap", "img2img"],
            description=("VAE Encode for 360-degree panoramas (img2img, upscaling): encodes the image with columns "
                         "from the opposite edge on both sides and crops them off, so the latent's two ends join."),
            inputs=[
                io.Image.Input("pixels", tooltip="A 360-degree panorama (its left and right edges join)."),
                io.Vae.Input("vae", tooltip="The model's VAE."),
                padding_input(),
            ],
            outputs=[io.Latent.Output(tooltip="The latent, for img2img of the panorama with wrap_around on.")],
        )

    @classmethod
    def execute(cls, pixels, vae, wrap_padding) -> io.NodeOutput:
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
        return io.NodeOutput({"samples": unpad(latent, cols)})


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


def save_path(filename_prefix: str, output_dir: str, width: int, height: int) -> tuple:
    """ComfyUI's (folder, name, counter, subfolder) for ``filename_prefix``,
    or a message naming the input where ComfyUI refuses it."""
    try:
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir, width,
                                                                               height)
    except Exception as error:  # ComfyUI refuses paths outside its folder; the OS too long names
        reason = str(error).strip().splitlines()[0].strip("* ").removeprefix("ERROR: ")
        raise ValueError(f"filename_prefix = {filename_prefix!r} cannot be saved ({reason}): use a file name "
                         f"(or subfolder/name) inside ComfyUI's output folder") from error
    return folder, name, counter, subfolder


def check_file_name(file: str) -> str:
    if len(file.encode()) > MAX_FILE_NAME:
        raise ValueError(f"filename_prefix makes a file name of {len(file.encode())} bytes ({file[:24]!r}...), "
                         f"more than file systems allow ({MAX_FILE_NAME}): use a shorter prefix")
    return file


FORMATS = ["png", "jpeg"]


def save_panoramas(images, filename_prefix: str, format: str, output_dir: str, kind: str, compress_level: int,
                   prompt=None, extra_pnginfo=None) -> list[dict]:
    """Writes each image with photo-sphere metadata (and, for png, the
    workflow); returns what ComfyUI's frontend needs to show them."""
    if format not in FORMATS:
        raise ValueError(f"format = {format!r}: use one of {FORMATS}")
    check_image(images, "images")
    height, width = images.shape[1], images.shape[2]
    folder, name, counter, subfolder = save_path(filename_prefix, output_dir, width, height)
    xmp = gpano_xmp(width, height)
    results = []
    for index, image in enumerate(images):
        file = check_file_name(
            f"{name.replace('%batch_num%', str(index))}_{counter:05}_.{'jpg' if format == 'jpeg' else 'png'}")
        pixels = Image.fromarray(np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8))
        path = os.path.join(folder, file)
        if format == "jpeg":
            pixels.convert("RGB").save(path, "JPEG", quality=95, xmp=xmp.encode())
        else:
            pixels.save(path, pnginfo=png_info(xmp, prompt, extra_pnginfo), compress_level=compress_level)
        results.append({"filename": file, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


def png_info(xmp, prompt, extra_pnginfo) -> PngInfo:
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    if not args.disable_metadata:
        if prompt is not None:
            info.add_text("prompt", json.dumps(prompt))
        for key, value in (extra_pnginfo or {}).items():
            info.add_text(key, json.dumps(value))
    return info


VIEWER = "drag to look around, scroll to zoom, double-click to reset"


class SavePanorama360(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="SavePanorama360",
            display_name="Save 360 Panorama (viewer)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "save image", "viewer", "gpano", "xmp"],
            description=("Saves 360-degree panoramas with photo-sphere (GPano) metadata, so 360 viewers show them "
                         f"as a sphere, and shows them in the node: {VIEWER}."),
            inputs=[
                io.Image.Input("images", tooltip=("360-degree panoramas (equirectangular; a band around the horizon "
                                                  "when less than half as high as wide).")),
                io.String.Input("filename_prefix", default="panorama360", tooltip=(
                    "The prefix for the files in ComfyUI's output folder; ComfyUI's %date:...% and %Node.widget% "
                    "formatting works.")),
                io.Combo.Input("format", options=FORMATS, default="png", tooltip=(
                    "png keeps the workflow in the file. jpeg is what photo sites and phone galleries show as a "
                    "360 photo. Both carry the photo-sphere (GPano) metadata.")),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix="panorama360", format="png") -> io.NodeOutput:
        results = save_panoramas(images, filename_prefix, format, folder_paths.get_output_directory(), "output", 4,
                                 cls.hidden.prompt, cls.hidden.extra_pnginfo)
        return io.NodeOutput(ui={"images": results})


class PreviewPanorama360(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PreviewPanorama360",
            display_name="Preview 360 Panorama (viewer)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "preview image", "viewer"],
            description=f"Shows 360-degree panoramas as a sphere in the node ({VIEWER}), without saving them.",
            inputs=[io.Image.Input("images", tooltip="360-degree panoramas to look at.")],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images) -> io.NodeOutput:
        results = save_panoramas(images, "panorama360_preview", "png", folder_paths.get_temp_directory(), "temp", 1,
                                 cls.hidden.prompt, cls.hidden.extra_pnginfo)
        return io.NodeOutput(ui={"images": results})


VIDEO_CODEC = "libvpx-vp9"  # ComfyUI's Save WEBM (vp9): every browser plays it


def check_video_frames(images, name: str) -> None:
    """Refuses frames that are not a 360 video's: an RGB(A) IMAGE batch,
    twice as wide as high."""
    check_image(images, name)
    height, width = images.shape[1], images.shape[2]
    if width != 2 * height:
        raise ValueError(f"{name} are {width}x{height}, not a 360 video's 2:1 frames (width = 2 x height): make the "
                         f"video at 2:1 (e.g. 1408x704 from Empty 360° Panorama Latent) or crop / scale the frames "
                         f"to {2 * height}x{height} or {width}x{width // 2} first")


def save_panorama_video(images, filename_prefix: str, fps: float, crf: float, prompt=None,
                        extra_pnginfo=None) -> dict:
    """Writes the frames as a WebM the way ComfyUI's Save WEBM does (PyAV,
    vp9, yuv420p, the workflow in the container's metadata); returns the
    file as ComfyUI's frontend lists a saved video."""
    import av  # ComfyUI's own dependency (its video nodes); imported here as they do

    check_video_frames(images, "images")
    height, width = images.shape[1], images.shape[2]
    folder, name, counter, subfolder = save_path(filename_prefix, folder_paths.get_output_directory(), width, height)
    file = check_file_name(f"{name}_{counter:05}_.webm")
    container = av.open(os.path.join(folder, file), mode="w")
    try:
        if not args.disable_metadata:
            if prompt is not None:
                container.metadata["prompt"] = json.dumps(prompt)
            for key, value in (extra_pnginfo or {}).items():
                container.metadata[key] = json.dumps(value)
        stream = container.add_stream(VIDEO_CODEC, rate=Fraction(round(fps * 1000), 1000))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 0
        stream.options = {"crf": str(crf)}
        for frame in images:
            pixels = torch.clamp(frame[..., :3] * 255, min=0, max=255).to(device="cpu", dtype=torch.uint8).numpy()
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        container.mux(stream.encode())
    finally:
        container.close()
    return ui.SavedResult(file, subfolder, io.FolderType.output)


class SavePanorama360Video(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="SavePanorama360Video",
            display_name="Save 360 Video (viewer)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "save video", "save webm", "webm", "360 video", "vr video", "viewer"],
            description=("Saves the frames of a 360-degree video (equirectangular, 2:1) as a WebM (vp9, as "
                         "ComfyUI's Save WEBM) and plays it on a sphere in the node: drag to look around, scroll "
                         "to zoom, double-click to reset, the button to pause."),
            inputs=[
                io.Image.Input("images", tooltip=("The video's frames, in order: 360-degree frames twice as wide "
                                                  "as high (e.g. from VAE Decode (360 seamless)).")),
                io.String.Input("filename_prefix", default="video/panorama360", tooltip=(
                    "The prefix for the file in ComfyUI's output folder; ComfyUI's %date:...% and %Node.widget% "
                    "formatting works.")),
                io.Float.Input("fps", default=24.0, min=0.01, max=1000.0, step=0.01, tooltip=(
                    "Frames per second: the rate the model makes its video at (Wan 2.2 5B: 24, Wan 2.1: 16).")),
                io.Float.Input("crf", default=32.0, min=0, max=63.0, step=1, tooltip=(
                    "Higher crf means lower quality with a smaller file size, lower crf means higher quality and "
                    "a larger file (vp9's constant quality, as in Save WEBM).")),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix="video/panorama360", fps=24.0, crf=32.0) -> io.NodeOutput:
        saved = save_panorama_video(images, filename_prefix, fps, crf, cls.hidden.prompt, cls.hidden.extra_pnginfo)
        # As ComfyUI's Save WEBM: {"images": [the file], "animated": (True,)}, which the frontend's
        # queue and assets list as a video.
        return io.NodeOutput(ui=ui.PreviewVideo([saved]))
