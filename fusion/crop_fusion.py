"""Cutting windows out of the panorama, merging them back (MultiDiffusion,
eq. 3), and TwinDiffusion's closed-form Crop Fusion (eq. 4-6).

Window predictions travel as one tensor shaped ``(N, B, C, h, w)``: N windows
in raster order, each carrying the whole sampler batch (cond and uncond);
windows of a video are ``(N, B, C, T, h, w)``, all frames of each window.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .windows import CropViews, Views


class Link(NamedTuple):
    """Where window ``i`` sees an already-fused neighbour ``n``: for each
    pixel of ``i`` the neighbour's pixel there (flat index into the
    neighbour's h*w), and the weight of the neighbour on each pixel: the 0/1
    mask of the pixels they share (the paper), or that mask feathered."""

    neighbour: int
    index: torch.Tensor
    mask: torch.Tensor


def cut_windows(x: torch.Tensor, views: Views, ids=None, scale: int = 1) -> torch.Tensor:
    """(B, C, [T,] H, W) -> (N, B, C, [T,] h, w): the windows (or those in
    ``ids``) read from ``x``.  ``scale`` reads a tensor aligned with the latent at
    ``scale`` times its resolution (a ControlNet hint in pixels)."""
    return views.cut(x, ids, scale)


def coverage(views: Views, dtype: torch.dtype) -> torch.Tensor | None:
    """How many window pixels read each latent pixel, (H, W); ``None`` for
    windows that blend back with weights of their own."""
    if views.blend is not None:
        return None
    index = views.read.flatten()
    count = torch.zeros(views.height * views.width, dtype=dtype, device=index.device)
    weight = getattr(views, "pixel_weight", None)
    ones = (torch.ones_like(index, dtype=dtype) if weight is None
            else weight.to(index.device, dtype).expand(len(views), *weight.shape).flatten())
    count.index_add_(0, index, ones)
    return count.view(views.height, views.width)


def merge_windows(windows: torch.Tensor, views: Views, count: torch.Tensor | None = None) -> torch.Tensor:
    """(N, B, C, ..., h, w) -> (B, C, ..., H, W): MultiDiffusion's merge, the
    per-pixel average of the window pixels that read it (weighted by
    ``views.pixel_weight`` where crops are feathered), or the windows' own
    weighted map back (``views.blend``).  Axes between C and h (a video's
    frames) are merged frame by frame."""
    lead = windows.shape[1:-2]  # (B, C) or (B, C, T)

    def flat(w):  # window pixels last, window-major: the order of views.read
        return w.movedim(0, -3).reshape(*lead, -1)

    total = windows.new_zeros(*lead, views.height * views.width)
    if views.blend is not None:
        target, source, weight = views.blend
        total.index_add_(-1, target, flat(windows)[..., source] * weight.to(windows.dtype))
        return total.view(*lead, views.height, views.width)
    if count is None:
        count = coverage(views, windows.dtype)
    weight = getattr(views, "pixel_weight", None)
    if weight is not None:  # feathered: each window pixel counts by its weight
        windows = windows * weight.to(windows)
    total.index_add_(-1, views.read.flatten(), flat(windows))
    return total.view(*lead, views.height, views.width) / count


def overlap_ramp(shared: torch.Tensor) -> torch.Tensor:
    """Feathered weights along one axis of window ``i`` for the ``m`` pixels
    it shares with a neighbour: 1 at its own edge, falling to 1/m at the
    neighbour's far edge, where the neighbour's values end and the paper's
    0/1 weight leaves a step inside window ``i``.  1 where the neighbour
    spans the whole axis (or the shared run is not at one end)."""
    size, m = shared.numel(), int(shared.sum())
    if m in (0, size) or bool(shared[0]) == bool(shared[-1]):
        return shared.double()
    index = torch.arange(size, dtype=torch.float64, device=shared.device)
    if shared[0]:  # the neighbour comes first along this axis
        ramp = (m - index) / m
    else:
        ramp = (index - (size - m) + 1) / m
    return ramp.clamp(min=0) * shared


def _link(views: CropViews, i: int, n: int, dtype: torch.dtype, feather: bool = False) -> Link | None:
    top, left = views.origin(n)
    row_map = views.rows[i] - top
    col_map = views.cols[i] - left
    if views.wrap_x:
        col_map = col_map % views.width
    row_ok = (row_map >= 0) & (row_map < views.window_h)
    col_ok = (col_map >= 0) & (col_map < views.window_w)
    if not (row_ok.any() and col_ok.any()):
        return None
    if feather:
        mask = (overlap_ramp(row_ok)[:, None] * overlap_ramp(col_ok)[None, :]).to(dtype)
    else:
        mask = (row_ok[:, None] & col_ok[None, :]).to(dtype)
    index = row_map.clamp(0, views.window_h - 1)[:, None] * views.window_w + col_map.clamp(0, views.window_w - 1)
    return Link(n, index, mask)


def fusion_links(views: Views, dtype: torch.dtype, feather: bool = False) -> list[list[Link]]:
    """For each window in raster order, its neighbours that are fused before
    it: the left and the upper one, and on a circle the first window of the
    row for the last one, which closes the seam at the wrap.  ``feather``
    weights each neighbour by :func:`overlap_ramp` instead of 0/1.  Windows
    that are not crops define their own (``views.fusion_links``)."""
    if not views.is_crop:
        return views.fusion_links(dtype, feather)
    n_rows, n_cols = views.grid
    links = []
    for i in range(len(views)):
        r, q = divmod(i, n_cols)
        candidates = []
        if q > 0:
            candidates.append(i - 1)
        if r > 0:
            candidates.append(i - n_cols)
        if views.wrap_x and n_cols > 2 and q == n_cols - 1:
            candidates.append(i - q)
        links.append([link for n in candidates if (link := _link(views, i, n, dtype, feather)) is not None])
    return links


def crop_fusion(windows: torch.Tensor, links: list[list[Link]], lam: float) -> torch.Tensor:
    """Closed-form Crop Fusion.  Each window, in raster order, is replaced by
    the per-pixel minimiser of sum_n ||M_n (x_n* - x)||^2 + lam ||x_i - x||^2:

        x* = (sum_{n covering the pixel} x_n* + lam x_i) / (count + lam),

    and x* = x_i where no fused neighbour covers.  With feathered links the
    0/1 masks become weights m_n and the minimiser of
    sum_n m_n ||x_n* - x||^2 + lam ||x_i - x||^2 is
    (sum_n m_n x_n* + lam x_i) / (sum_n m_n + lam), the same code.  In 1-D this is the
    reference's ``(x_left* + lam x_i) / (1 + lam)`` on the overlap.  lam = 0
    replaces the overlap by the neighbours' mean.  The loop runs over
    windows, not pixels: each window needs its neighbours' fused values first.
    """
    fused = list(windows.unbind(0))
    for i, window_links in enumerate(links):
        if not window_links:
            continue
        total = lam * windows[i]
        covered = torch.zeros_like(window_links[0].mask)
        for link in window_links:
            neighbour = fused[link.neighbour].flatten(-2)[..., link.index]
            total = total + link.mask * neighbour
            covered = covered + link.mask
        # where no neighbour covers, the minimiser is x_i itself; saying so
        # keeps lam = 0 finite there (0 / 0 otherwise)
        fused[i] = torch.where(covered > 0, total / (covered + lam), windows[i])
    return torch.stack(fused)
