"""The pack's nodes, registered with ComfyUI the V3 way: ``comfy_entrypoint``
returns an extension that lists them.  ``NODE_CLASS_MAPPINGS`` (node id ->
class) is kept for the pack's own tools and tests."""

from comfy_api.latest import ComfyExtension, io

from .panorama_360 import (Panorama360Latent, PanoramaSeamlessDecode, PanoramaSeamlessEncode, PreviewPanorama360,
                           SavePanorama360, SavePanorama360Video)
from .panorama_nodes import (CrossSamplingScheduler, MultiScaleGuidance, PanoramaLatent, PanoramaRopePositions,
                             PanoramaShiftedWindows, PanoramaSphereWindows, TwinCropFusionSampler,
                             TwinDiffusionModel)
from .panorama_views import VIEW_NODES
from .terrain_nodes import TERRAIN_NODES

NODES: list[type[io.ComfyNode]] = [
    PanoramaLatent,
    CrossSamplingScheduler,
    PanoramaShiftedWindows,
    PanoramaSphereWindows,
    TwinCropFusionSampler,
    TwinDiffusionModel,
    MultiScaleGuidance,
    PanoramaRopePositions,
    Panorama360Latent,
    PanoramaSeamlessDecode,
    PanoramaSeamlessEncode,
    SavePanorama360,
    PreviewPanorama360,
    SavePanorama360Video,
    *VIEW_NODES,  # cube faces and perspective views of a 360 image
    *TERRAIN_NODES,  # the trained terrain model (optional: its loader needs adaptive-terrain-diffusion)
]

NODE_CLASS_MAPPINGS = {node.GET_SCHEMA().node_id: node for node in NODES}


class PanoramaExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> PanoramaExtension:
    return PanoramaExtension()
