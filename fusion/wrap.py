"""Images whose horizontal axis is a circle (360-degree panoramas).

A decoder or encoder pads an image's borders with zeros, so even a latent
that joins seamlessly decodes into a left and a right column that do not
match.  Giving the codec the opposite edge as context (a few columns from the
other end on each side) and cropping them off afterwards makes its output at
the border what it would be anywhere inside the circle.

An equirectangular image spans 360 degrees across and 180 down, so its width
is twice its height; a wrap-around panorama of width W and height H < W/2 is
the band of +-90 H / (W/2) degrees around the horizon.
"""

from __future__ import annotations

import torch


def wrap_pad(x: torch.Tensor, cols: int, dim: int = -1) -> torch.Tensor:
    """``x`` with the last ``cols`` columns of ``dim`` put before it and the
    first ``cols`` after it."""
    if cols <= 0:
        return x
    if cols > x.shape[dim]:
        raise ValueError(f"cannot pad {cols} columns from an axis of {x.shape[dim]}")
    return torch.cat([x.narrow(dim, x.shape[dim] - cols, cols), x, x.narrow(dim, 0, cols)], dim=dim)


def unpad(x: torch.Tensor, cols: int, dim: int = -1) -> torch.Tensor:
    """Drops ``cols`` columns of ``dim`` on both sides (the inverse of
    :func:`wrap_pad` after a codec that scales the axis)."""
    return x if cols <= 0 else x.narrow(dim, cols, x.shape[dim] - 2 * cols)


def column_steps(image: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean absolute difference between each column of ``dim`` and the next,
    the last one wrapping around to column 0: ``steps[-1]`` is the seam."""
    diff = (torch.roll(image, -1, dims=dim) - image).abs().float()
    other = [d for d in range(image.ndim) if d != dim % image.ndim]
    return diff.mean(dim=other)


def seam_ratio(image: torch.Tensor, dim: int) -> float:
    """The step across the seam over the median step between neighbouring
    interior columns: about 1 for a seamless 360 image."""
    steps = column_steps(image, dim)
    return float(steps[-1] / steps[:-1].median().clamp_min(1e-12))


def equirect_band(width: int, height: int) -> tuple[int, int]:
    """Where an image of ``width`` x ``height`` covering 360 degrees sits in
    the full 2:1 sphere: (full height, rows above it).  A 2:1 image is the
    whole sphere; a lower one is the band around the horizon."""
    full = max(width // 2, height)
    return full, (full - height) // 2
