"""Panorama sampling for ComfyUI: MultiDiffusion, TwinDiffusion (Crop Fusion,
Cross Sampling), Multi-Scale Diffusion, and 360-degree panoramas.  ComfyUI
calls ``comfy_entrypoint`` for the nodes (V3 schema), and serves
WEB_DIRECTORY (the 360 viewer, the node docs) to its frontend."""

from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
