"""Optional nodes for the trained terrain model (V3 schema): load it from
the installed ``adaptive-terrain-diffusion`` package, give it a difficulty
(regional with ComfyUI's Set Area / Set Mask), draw the result as shaded
relief, and turn a heightmap image back into its latent for img2img.

The pack needs nothing beyond ComfyUI; only the loader needs the package
(``pip install --no-deps adaptive-terrain-diffusion==0.4.2``), and says so
when it is missing.
"""

from __future__ import annotations

import torch

import comfy.model_management
from comfy_api.latest import io

from ..terrain.denoiser import NUM_LABELS, difficulty_label
from ..terrain.render import relief
from .host_versions import schema
from .terrain_model import load_terrain_model

CATEGORY = "sampling/panorama/terrain"
SEARCH = ["terrain", "heightmap", "dem", "landscape", "panorama"]


def check_terrain_latent(latent: torch.Tensor) -> torch.Tensor:
    """Refuses what is not a latent of the terrain model, naming the input and the fix."""
    if latent.ndim != 4 or latent.shape[1] != 1:
        raise ValueError(f"samples has shape {tuple(latent.shape)}: Terrain Relief draws the 1-channel latents "
                         f"(batch, 1, height, width) of the terrain model; connect the LATENT of a sampler that ran "
                         f"Load Terrain Model (adaptive-terrain-diffusion), or of Terrain Heightmap to Latent")
    if not torch.isfinite(latent).all():
        raise ValueError("samples contains NaN or infinite values, a broken relief: check the sampler that made it "
                         "(its sigmas, cfg 1, lcm or euler with few steps)")
    return latent


def check_heightmap(image: torch.Tensor) -> None:
    """Refuses what is not a heightmap IMAGE (batch, height, width, 1/3/4 channels)."""
    if image.ndim != 4:
        raise ValueError(f"heightmap has shape {tuple(image.shape)}: connect an IMAGE (batch, height, width, "
                         f"channels); a MASK goes through 'Convert Mask to Image' first")
    if image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"heightmap has shape {tuple(image.shape)}, {image.shape[-1]} channel(s): connect a grey "
                         f"IMAGE (batch, height, width, 3 channels), as Terrain Relief's heightmap output")
    if not torch.isfinite(image).all():
        raise ValueError("heightmap contains NaN or infinite values: check the node that made it, or use a "
                         "heightmap image loaded with Load Image")


class TerrainModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="PanoramaTerrainModelLoader",
            search_aliases=[*SEARCH, "load model", "adaptive-terrain-diffusion", "consistency model"],
            display_name="Load Terrain Model (adaptive-terrain-diffusion)",
            category=CATEGORY,
            description=("The trained consistency U-Net for terrain heightmaps of the PyPI package "
                         "adaptive-terrain-diffusion 0.4.2 (MIT), read from the installed package: a 1-channel "
                         "pixel-space model, 128 px native windows, EDM sampling (sigma 0.002 to 80). Use few "
                         "steps (lcm 4-8, or euler), cfg 1, and Terrain Difficulty as the conditioning."),
            inputs=[],
            outputs=[io.Model.Output(tooltip="The terrain model, for KSampler or the panorama nodes.")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(load_terrain_model())


class TerrainDifficulty(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="PanoramaTerrainDifficulty",
            search_aliases=[*SEARCH, "conditioning", "difficulty", "rugged"],
            display_name="Terrain Difficulty",
            category=CATEGORY,
            description=("The terrain model's conditioning: a difficulty label, 1 (gentle) to 100 (rugged). "
                         "Combine several with Conditioning (Set Area) / (Set Mask) and (Combine) for a "
                         "panorama whose difficulty changes from region to region."),
            inputs=[io.Float.Input("difficulty", default=50.0, min=1.0, max=float(NUM_LABELS), step=1.0,
                                   tooltip="1 (gentle) to 100 (rugged), the package's labels; fractions are fine.")],
            outputs=[io.Conditioning.Output(tooltip="The difficulty as conditioning, for the sampler's positive and "
                                                    "negative inputs.")],
        )

    @classmethod
    def execute(cls, difficulty: float) -> io.NodeOutput:
        return io.NodeOutput([[torch.zeros(1, 1, 1), {"terrain_difficulty": difficulty_label(difficulty)}]])


class TerrainRelief(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="PanoramaTerrainRelief",
            search_aliases=[*SEARCH, "relief", "hillshade", "hypsometric", "decode"],
            display_name="Terrain Relief (hillshade + tints)",
            category=CATEGORY,
            description=("Draws a terrain latent as shaded relief with hypsometric tints, and as a grey "
                         "heightmap (black -1, white +1 in the model's height space)."),
            inputs=[
                io.Latent.Input("samples", tooltip="A latent of the terrain model (1 channel), e.g. from KSampler "
                                                   "(Panorama) with Load Terrain Model."),
                io.Float.Input("exaggeration", default=1.0, min=0.05, max=20.0, step=0.05,
                               tooltip="Vertical exaggeration of the hillshade."),
                io.Float.Input("shading", default=0.75, min=0.0, max=1.0, step=0.05,
                               tooltip="How much the hillshade darkens the tints (0 = flat colours)."),
                io.Boolean.Input("wrap_around", default=False,
                                 tooltip="360 panorama: shade the left and right edges as neighbours."),
            ],
            outputs=[io.Image.Output(display_name="relief", tooltip="Shaded relief with hypsometric tints."),
                     io.Image.Output(display_name="heightmap",
                                     tooltip="The heights in grey, for Save Image or Terrain Heightmap to Latent.")],
        )

    @classmethod
    def execute(cls, samples, exaggeration: float, shading: float, wrap_around: bool) -> io.NodeOutput:
        latent = check_terrain_latent(samples["samples"]).float()
        image = relief(latent, exaggeration, wrap=wrap_around, shading=shading)
        grey = ((latent + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
        device = comfy.model_management.intermediate_device()
        return io.NodeOutput(image.permute(0, 2, 3, 1).to(device), grey.permute(0, 2, 3, 1).contiguous().to(device))


class TerrainHeightmapToLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="PanoramaTerrainEncode",
            search_aliases=[*SEARCH, "encode", "img2img", "heightmap to latent"],
            display_name="Terrain Heightmap to Latent",
            category=CATEGORY,
            description=("A grey heightmap image (black -1, white +1, as Terrain Relief writes it) as the terrain "
                         "model's latent, for img2img (denoise < 1)."),
            inputs=[io.Image.Input("heightmap", tooltip="A grey heightmap image (RGB, RGBA or 1 channel), e.g. "
                                                        "Terrain Relief's heightmap output saved and loaded again.")],
            outputs=[io.Latent.Output(tooltip="The terrain model's latent, for a sampler's latent_image with "
                                              "denoise below 1.")],
        )

    @classmethod
    def execute(cls, heightmap: torch.Tensor) -> io.NodeOutput:
        check_heightmap(heightmap)
        grey = heightmap[..., :3].float().mean(-1, keepdim=True).permute(0, 3, 1, 2)
        return io.NodeOutput({"samples": (grey * 2 - 1).clamp(-1, 1)
                              .to(comfy.model_management.intermediate_device())})


TERRAIN_NODES = (TerrainModelLoader, TerrainDifficulty, TerrainRelief, TerrainHeightmapToLatent)
