"""Panorama sampling algorithms, pure torch: window planning, MultiDiffusion
merge, TwinDiffusion's Crop Fusion and Cross Sampling, Multi-Scale Diffusion.
Nothing here imports ComfyUI."""

from .windows import (SHIFTS, CropViews, LatentGrid, WindowPlan, WindowSettings, Views, axis_starts, latent_plan, on_grid,
                      placement, plan_views, resolve_plan, shifted_starts, shifts_circle, validate_plan, window_count)
from .crop_fusion import crop_fusion, cut_windows, merge_windows, fusion_links, coverage
from .panorama import (Batching, BatchRunner, FusionSettings, ModelFn, PanoramaDenoiser, denoise_windows, fusion_active,
                       raster_batches, run_in_order, schedule_step, take_windows, validate_settings)
from .multiscale import MultiScaleDenoiser, MultiScaleSettings, omega_at, validate_multiscale
from .sphere_views import (SpherePlan, SphereSettings, SphereViews, needed_height, sphere_plan, validate_sphere,
                           views_to_cover)
