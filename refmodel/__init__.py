"""A reference denoiser and coherence metrics for the panorama demo and tests.

Pure torch + numpy; imports nothing of ComfyUI, and nothing in the node pack's
runtime imports it. Fitting the prior needs scikit-image (demo-only extra).
"""

from .latent import decode, encode
from .prior import (SIGMA_MAX, SIGMA_MIN, MixturePrior, PriorConfig, ReferenceDenoiser,
                    load_prior)

__all__ = ["ReferenceDenoiser", "PriorConfig", "MixturePrior", "load_prior",
           "encode", "decode", "SIGMA_MIN", "SIGMA_MAX"]
