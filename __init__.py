"""Panorama sampling for ComfyUI: MultiDiffusion, TwinDiffusion (Crop Fusion,
Cross Sampling), Multi-Scale Diffusion, and 360-degree panoramas.  ComfyUI
reads the two mappings, and serves WEB_DIRECTORY's scripts (the 360 viewer)
to its frontend."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
