"""Heightmaps as pictures: hillshaded relief with hypsometric tints.

The terrain model works in an asinh-compressed height space in [-1, 1]
(``adaptive-terrain-diffusion``'s model space): heights 0..22.17 m, 0.1 m
per pixel.  ``relief`` turns a batch of model-space maps into RGB in [0, 1]:
the colour of each pixel's height band (a hypsometric tint: lowland greens,
ochre hills, brown and grey heights, snow) darkened and lit by the shading
of a sun in the north-west (Horn's slope and aspect).  Pure torch, so the
ComfyUI render node and the demo draw the same pictures.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HEIGHT_RANGE = 22.16864013671875  # metres, the package's height_range
ASINH_SCALE = 0.1
PIXEL_SIZE = 0.1  # metres per pixel (the package's horizontal_scale)

# hypsometric stops: (position in [0, 1] of the tinted range, RGB)
TINTS = (
    (0.00, (0.16, 0.38, 0.25)),
    (0.15, (0.33, 0.56, 0.31)),
    (0.35, (0.66, 0.73, 0.42)),
    (0.55, (0.86, 0.78, 0.52)),
    (0.72, (0.70, 0.53, 0.35)),
    (0.86, (0.55, 0.47, 0.42)),
    (1.00, (0.97, 0.97, 0.97)),
)


def heights_from_model(values: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] -> metres (the package's ``_from_model_space``,
    without its per-tile floor)."""
    unit = ((values.float() + 1) * 0.5).clamp(0, 1)
    normaliser = math.asinh(HEIGHT_RANGE / ASINH_SCALE)
    return (ASINH_SCALE * torch.sinh(unit * normaliser)).clamp(0, HEIGHT_RANGE)


def model_from_heights(heights: torch.Tensor) -> torch.Tensor:
    """Metres -> model space (the package's ``_to_model_space`` without its
    per-tile floor)."""
    unit = torch.asinh(heights.float().clamp(0, HEIGHT_RANGE) / ASINH_SCALE) / math.asinh(HEIGHT_RANGE / ASINH_SCALE)
    return unit * 2 - 1


def _pad(x: torch.Tensor, wrap: bool) -> torch.Tensor:
    x = F.pad(x, (0, 0, 1, 1), mode="replicate")
    return F.pad(x, (1, 1, 0, 0), mode="circular" if wrap else "replicate")


def hillshade(heights: torch.Tensor, exaggeration: float = 1.0, azimuth: float = 315.0, altitude: float = 45.0,
              pixel_size: float = PIXEL_SIZE, wrap: bool = False) -> torch.Tensor:
    """(B, 1, H, W) metres -> (B, 1, H, W) illumination in [0, 1] (Horn's
    3x3 gradients; ``wrap`` takes the horizontal neighbours across the
    left/right edge, for 360 panoramas)."""
    z = _pad(heights.float() * exaggeration, wrap)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=z.device) / (8 * pixel_size)
    dzdx = F.conv2d(z, kx.view(1, 1, 3, 3))
    dzdy = F.conv2d(z, kx.t().contiguous().view(1, 1, 3, 3))
    az, alt = math.radians(360.0 - azimuth + 90.0), math.radians(altitude)
    slope = torch.atan(torch.sqrt(dzdx ** 2 + dzdy ** 2))
    aspect = torch.atan2(dzdy, -dzdx)
    shade = math.sin(alt) * torch.cos(slope) + math.cos(alt) * torch.sin(slope) * torch.cos(az - aspect)
    return shade.clamp(0, 1)


def hypsometric(t: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) in [0, 1] -> (B, 3, H, W) colours."""
    t = t.clamp(0, 1)
    stops = torch.tensor([s for s, _ in TINTS], device=t.device)
    colours = torch.tensor([c for _, c in TINTS], device=t.device)
    index = torch.bucketize(t.contiguous(), stops[1:-1])
    lo, hi = stops[index], stops[index + 1]
    frac = ((t - lo) / (hi - lo)).unsqueeze(-1)
    rgb = colours[index] * (1 - frac) + colours[index + 1] * frac  # (B, 1, H, W, 3)
    return rgb.squeeze(1).permute(0, 3, 1, 2)


def relief(values: torch.Tensor, exaggeration: float = 1.0, wrap: bool = False, tint_range=(-1.0, 1.0),
           shading: float = 0.75) -> torch.Tensor:
    """Model-space heightmaps (B, 1, H, W) -> RGB relief (B, 3, H, W) in
    [0, 1].  The tint follows the model-space height over ``tint_range``
    (fixed, so pictures side by side share one legend); ``shading`` is how
    much the hillshade darkens (0 = flat colours)."""
    values = values.float()
    lo, hi = tint_range
    tint = hypsometric((values - lo) / (hi - lo))
    shade = hillshade(heights_from_model(values), exaggeration, wrap=wrap)
    return (tint * (1 - shading + shading * shade)).clamp(0, 1)
