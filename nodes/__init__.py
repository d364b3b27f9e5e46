from .panorama_nodes import (CrossSamplingScheduler, MultiScaleGuidance, PanoramaLatent, TwinCropFusionSampler,
                             TwinDiffusionModel)

NODE_CLASS_MAPPINGS = {
    "PanoramaLatent": PanoramaLatent,
    "CrossSamplingScheduler": CrossSamplingScheduler,
    "TwinCropFusionSampler": TwinCropFusionSampler,
    "TwinDiffusionModel": TwinDiffusionModel,
    "MultiScaleGuidance": MultiScaleGuidance,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PanoramaLatent": "Panorama Latent",
    "CrossSamplingScheduler": "Cross Sampling Scheduler (panorama windows)",
    "TwinCropFusionSampler": "TwinDiffusion Panorama Sampler",
    "TwinDiffusionModel": "TwinDiffusion Panorama (model patch)",
    "MultiScaleGuidance": "Multi-Scale Guidance (MSD)",
}
