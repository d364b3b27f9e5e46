from .panorama_360 import (Panorama360Latent, PanoramaSeamlessDecode, PanoramaSeamlessEncode, PreviewPanorama360,
                           SavePanorama360)
from .panorama_nodes import (CrossSamplingScheduler, MultiScaleGuidance, PanoramaLatent, TwinCropFusionSampler,
                             TwinDiffusionModel)

NODE_CLASS_MAPPINGS = {
    "PanoramaLatent": PanoramaLatent,
    "CrossSamplingScheduler": CrossSamplingScheduler,
    "TwinCropFusionSampler": TwinCropFusionSampler,
    "TwinDiffusionModel": TwinDiffusionModel,
    "MultiScaleGuidance": MultiScaleGuidance,
    "Panorama360Latent": Panorama360Latent,
    "PanoramaSeamlessDecode": PanoramaSeamlessDecode,
    "PanoramaSeamlessEncode": PanoramaSeamlessEncode,
    "SavePanorama360": SavePanorama360,
    "PreviewPanorama360": PreviewPanorama360,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PanoramaLatent": "Panorama Latent",
    "CrossSamplingScheduler": "Cross Sampling Scheduler",
    "TwinCropFusionSampler": "TwinDiffusion Panorama Sampler",
    "TwinDiffusionModel": "TwinDiffusion Panorama (model patch)",
    "MultiScaleGuidance": "Multi-Scale Guidance (MSD)",
    "Panorama360Latent": "360° Panorama Latent (2:1)",
    "PanoramaSeamlessDecode": "VAE Decode (360 seamless)",
    "PanoramaSeamlessEncode": "VAE Encode (360 seamless)",
    "SavePanorama360": "Save 360 Panorama (viewer)",
    "PreviewPanorama360": "Preview 360 Panorama (viewer)",
}
