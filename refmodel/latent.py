"""The reference model's "latent" space: a fixed linear map of RGB pixels.

It stands in for a VAE so that the panorama code sees what it sees with Stable
Diffusion: a (C, H/f, W/f) tensor with roughly zero mean and unit variance per
channel, f = `downsample` (SD uses f = 8; 4 is the default here because the
photos the prior learns from are only ~500 pixels wide).

Per f x f block of pixels:

    channel 0..2  block mean of the opponent colours (L, R-G, Y-B), where
                  L = (R+G+B)/sqrt3, R-G = (R-G)/sqrt2, Y-B = (R+G-2B)/sqrt6
    channel 3     (C = 4 only) horizontal Haar detail of L: mean of the left
                  half of the block minus mean of the right half

then each channel is standardised with the fixed constants below (computed
once from the five photos of `patches.PHOTOS` at f = 4, and frozen like SD's
0.18215 scale factor so that the space never depends on a fit).

The map is linear and its patterns (block mean, Haar step) are orthogonal, so
`decode(z, smooth=False)` is its exact pseudo-inverse and
`encode(decode(z, smooth=False)) == z` up to clamping to [0, 1].
`decode(z, smooth=True)`, the default, is a display map for PNGs, not an
inverse: it upsamples the block means bilinearly and leaves the Haar detail
out, because a within-block detail can only be drawn as a pattern that jumps
at every block edge, and window boundaries are block edges: those jumps would
read as seams. Measure seams on the latent itself, or on this smooth decode.
"""

import math

import torch
import torch.nn.functional as F

DEFAULT_DOWNSAMPLE = 4

# Rows: L, R-G, Y-B. Orthonormal, so its transpose is its inverse.
OPPONENT = (
    (1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)),
    (1 / math.sqrt(2), -1 / math.sqrt(2), 0.0),
    (1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)),
)
LATENT_MEAN = (0.674, 0.085, 0.078, 0.0)
LATENT_STD = (0.378, 0.115, 0.135, 0.054)


def _constants(channels, like):
    if channels not in (3, 4):
        raise ValueError(f"channels must be 3 or 4, got {channels}")
    opponent = torch.tensor(OPPONENT, dtype=like.dtype, device=like.device)
    mean = torch.tensor(LATENT_MEAN[:channels], dtype=like.dtype, device=like.device)
    std = torch.tensor(LATENT_STD[:channels], dtype=like.dtype, device=like.device)
    return opponent, mean[:, None, None], std[:, None, None]


def _haar_pattern(f, like):
    # +1 on the left half of the block, -1 on the right half; for odd f the
    # middle column is 0 so that the pattern stays orthogonal to the mean.
    col = torch.zeros(f, dtype=like.dtype, device=like.device)
    col[: f // 2] = 1.0
    col[f - f // 2:] = -1.0
    return col.expand(f, f)


def encode(rgb, channels=4, downsample=DEFAULT_DOWNSAMPLE):
    """RGB in [0, 1], (3, H, W) or (B, 3, H, W) -> latent (.., C, H//f, W//f).

    Rows and columns beyond the last whole f x f block are dropped.
    """
    batched = rgb.ndim == 4
    rgb = rgb if batched else rgb[None]
    if not rgb.is_floating_point():
        raise TypeError("encode expects a float image in [0, 1]")
    f = downsample
    height, width = rgb.shape[-2] // f * f, rgb.shape[-1] // f * f
    rgb = rgb[..., :height, :width]
    opponent, mean, std = _constants(channels, rgb)
    opp = torch.einsum("dc,bchw->bdhw", opponent, rgb)
    z = F.avg_pool2d(opp, f)
    if channels == 4:
        haar = _haar_pattern(f, rgb)
        # Normalised by ||pattern||^2 so that decode can add detail * pattern.
        detail = F.conv2d(opp[:, :1], (haar / (haar ** 2).sum())[None, None], stride=f)
        z = torch.cat([z, detail], dim=1)
    z = (z - mean) / std
    return z if batched else z[0]


def decode(latent, downsample=DEFAULT_DOWNSAMPLE, smooth=True):
    """Latent (C, h, w) or (B, C, h, w) -> RGB in [0, 1] at f times the size."""
    batched = latent.ndim == 4
    z = latent if batched else latent[None]
    channels = z.shape[1]
    opponent, mean, std = _constants(channels, z)
    f = downsample
    v = z * std + mean
    size = (z.shape[-2] * f, z.shape[-1] * f)
    if smooth:
        opp = F.interpolate(v[:, :3], size=size, mode="bilinear", align_corners=False)
    else:
        opp = F.interpolate(v[:, :3], size=size, mode="nearest")
    if channels == 4 and not smooth:
        haar = _haar_pattern(f, z).repeat(z.shape[-2], z.shape[-1])
        detail = F.interpolate(v[:, 3:], size=size, mode="nearest")
        opp = torch.cat([opp[:, :1] + detail * haar, opp[:, 1:]], dim=1)
    rgb = torch.einsum("dc,bdhw->bchw", opponent, opp).clamp(0.0, 1.0)
    return rgb if batched else rgb[0]
