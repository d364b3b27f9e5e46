"""Panorama sampling for ComfyUI: MultiDiffusion, TwinDiffusion (Crop Fusion,
Cross Sampling) and Multi-Scale Diffusion.  ComfyUI reads the two mappings."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
