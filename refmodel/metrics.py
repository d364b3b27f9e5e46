"""Coherence metrics for panoramas that need no network weights.

Images are float tensors (C, H, W) or (B, C, H, W); every metric returns a
0-d tensor for one image and a (B,) tensor for a batch. They work on decoded
RGB in [0, 1] (data_range=1) or directly on latents (pass a data_range that
fits, e.g. 2 * 3 std for unit-variance latents; seam_score and layout_score in
MSE form have no range).
"""

import torch
import torch.nn.functional as F


def _batch(image):
    if image.ndim == 3:
        return image[None], False
    if image.ndim == 4:
        return image, True
    raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")


def _unbatch(values, batched):
    return values if batched else values[0]


# ----------------------------------------------------------------------------
# Seams


def boundaries_from_windows(starts, window, length, wrap=False):
    """Window edges: the columns (or rows) where a window begins or ends, i.e.
    where the set of covering windows changes. Edges at 0 and `length` are
    image borders and left out, unless `wrap`, where positions are taken
    modulo `length` and 0 stands for the seam between the last column and the
    first."""
    edges = set()
    for start in starts:
        for edge in (start, start + window):
            if wrap:
                edges.add(edge % length)
            elif 0 < edge < length:
                edges.add(edge)
    return sorted(edges)


def _seam_mask(length, boundaries, band, wrap, device):
    """Mask over the finite differences d[j] = I[j + 1] - I[j] (j < length - 1,
    plus j = length - 1 for I[0] - I[length - 1] when wrapping)."""
    count = length if wrap else length - 1
    mask = torch.zeros(count, dtype=torch.bool, device=device)
    for b in boundaries:
        if wrap:
            b = b % length
            centre = (b - 1) % length          # the seam lies between b - 1 and b
        elif 0 < b < length:
            centre = b - 1
        else:
            continue                           # an image edge is not a seam
        for j in range(centre - band + 1, centre + band):
            if wrap:
                mask[j % length] = True
            elif 0 <= j < count:
                mask[j] = True
    return mask


def _squared_differences(x, dim, wrap):
    nxt = torch.roll(x, -1, dims=dim) if wrap else x.narrow(dim, 1, x.shape[dim] - 1)
    cur = x if wrap else x.narrow(dim, 0, x.shape[dim] - 1)
    return (nxt - cur) ** 2


def seam_score(image, boundaries_x, boundaries_y=(), band=1, wrap=False):
    """Gradient energy on window boundaries relative to everywhere else.

    For a vertical boundary at column b (a window starts or ends there) the
    seam is the finite difference I[..., b] - I[..., b - 1]; `band` > 1 also
    counts the differences less than `band` positions away from it. Likewise
    rows for `boundaries_y`. With d^2 the squared difference of one pixel in
    one channel,

        axis ratio  = mean(d^2 on that axis's seams) / mean(d^2 on that axis off the seams)
        seam_score  = the axis ratios averaged with weights = number of seam
                      pixels on each axis (x-seams span H pixels, y-seams W)

    i.e. every seam pixel's energy is measured against the background of its
    own axis, so images whose texture differs along x and y still score 1.
    1.0 means a boundary is as smooth as the image in general; a seam gives
    > 1. Only axes with boundaries take part. Boundaries at 0 or the full
    length are image edges and ignored, unless `wrap` (360-degree panorama):
    then the horizontal axis is a circle and a boundary at 0 (or W) is the
    seam between the last column and the first (wrap applies to x only).
    """
    x, batched = _batch(image)
    weighted = x.new_zeros(x.shape[0])
    seam_pixels = 0
    for dim, boundaries, circular in ((3, boundaries_x, wrap), (2, boundaries_y, False)):
        if not len(boundaries):
            continue
        mask = _seam_mask(x.shape[dim], boundaries, band, circular, x.device)
        if not mask.any():
            continue
        if mask.all():
            raise ValueError("the seam bands cover the whole axis: nothing to compare with")
        d2 = _squared_differences(x, dim, circular)
        per_line = d2.sum(dim=(1, 2 if dim == 3 else 3))      # (B, number of differences)
        pixels_per_line = x.shape[1] * x.shape[5 - dim]       # channels * the other axis
        seam = per_line[:, mask].sum(1) / (int(mask.sum()) * pixels_per_line)
        rest = per_line[:, ~mask].sum(1) / (int((~mask).sum()) * pixels_per_line)
        count = int(mask.sum()) * pixels_per_line
        weighted = weighted + count * seam / rest
        seam_pixels += count
    if seam_pixels == 0:
        raise ValueError("no boundary lies inside the image")
    return _unbatch(weighted / seam_pixels, batched)


# ----------------------------------------------------------------------------
# SSIM and adjacent crops


def _gaussian_kernel(size, sigma, like):
    t = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    k = torch.exp(-t * t / (2 * sigma * sigma))
    return k / k.sum()


def _blur(x, kernel):
    c = x.shape[1]
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(a, b, data_range=1.0, window=11, sigma=1.5, k1=0.01, k2=0.03):
    """Structural similarity (Wang et al. 2004), the standard Gaussian form.

    11 x 11 Gaussian window with sigma 1.5, C1 = (0.01 L)^2, C2 = (0.03 L)^2,
    population (not sample) statistics, evaluated only where the window fits
    (no padding) and averaged over positions and channels. This matches
    skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False). Images smaller than the window use the
    largest odd window that fits.
    """
    x, batched = _batch(a)
    y, _ = _batch(b)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2
    kernel = _gaussian_kernel(size, sigma, x)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _blur(x, kernel), _blur(y, kernel)
    var_x = _blur(x * x, kernel) - mu_x ** 2
    var_y = _blur(y * y, kernel) - mu_y ** 2
    cov = _blur(x * y, kernel) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return _unbatch(s.mean(dim=(1, 2, 3)), batched)


def _histogram_distance(a, b):
    """1-D Wasserstein-1 distance between the value distributions of each
    channel (mean |sorted a - sorted b|), averaged over channels."""
    sa = a.flatten(2).sort(dim=2).values
    sb = b.flatten(2).sort(dim=2).values
    return (sa - sb).abs().mean(dim=(1, 2))


def adjacent_crop_pairs(height, width, crop, stride):
    """(top, left) of the first crop and (top, left) of its neighbour for every
    pair of adjacent, non-overlapping crops on a grid of step `stride`:
    horizontal neighbours at every row offset, plus vertical neighbours when
    the image is at least two crops tall."""
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    if ch > height or cw > width:
        raise ValueError(f"crop {ch}x{cw} does not fit a {height}x{width} image")
    pairs = []
    for top in range(0, height - ch + 1, stride):
        for left in range(0, width - 2 * cw + 1, stride):
            pairs.append(((top, left), (top, left + cw)))
    for left in range(0, width - cw + 1, stride):
        for top in range(0, height - 2 * ch + 1, stride):
            pairs.append(((top, left), (top + ch, left)))
    if not pairs:
        raise ValueError(f"a {height}x{width} image holds no two adjacent {ch}x{cw} crops")
    return pairs, (ch, cw)


def adjacent_crop_distance(image, crop, stride, metric="ssim", data_range=1.0, pairs_per_chunk=8):
    """Mean distance between adjacent, non-overlapping crops (lower = more coherent).

    The TwinDiffusion protocol (sec. 4.2, "Coherence"): cut the panorama into
    pairs of adjacent but non-overlapping crops, the first crop stepping by the
    view stride, and average a perceptual distance over the pairs. The paper
    uses LPIPS and DISTS at 512 x 512 crops; their network weights cannot be
    loaded here, so:

    metric="ssim"       1 - SSIM(left crop, right crop) (see `ssim`);
    metric="histogram"  per-channel 1-D Wasserstein distance between the crops'
                        value distributions, divided by data_range: a colour /
                        tone statistic that ignores where things are.

    Pairs: for every row offset 0, stride, ... the crops at columns x and
    x + crop for x = 0, stride, ... while both fit; plus vertically adjacent
    pairs likewise when the image is at least two crops tall. For a 512 x 2048
    panorama with 512 crops and stride 128 (s_v = 16 latents) that is 9 pairs.
    """
    if metric not in ("ssim", "histogram"):
        raise ValueError(f"unknown metric {metric!r}: use 'ssim' or 'histogram'")
    x, batched = _batch(image)
    pairs, (ch, cw) = adjacent_crop_pairs(x.shape[-2], x.shape[-1], crop, stride)
    total = x.new_zeros(x.shape[0])
    # A few pairs at a time: a 1024 x 4096 panorama holds ~150 pairs of 512^2 crops.
    for chunk in range(0, len(pairs), pairs_per_chunk):
        part = pairs[chunk:chunk + pairs_per_chunk]
        first = torch.stack([x[..., t:t + ch, l:l + cw] for (t, l), _ in part], dim=1).flatten(0, 1)
        second = torch.stack([x[..., t:t + ch, l:l + cw] for _, (t, l) in part], dim=1).flatten(0, 1)
        if metric == "ssim":
            distance = 1.0 - ssim(first, second, data_range)
        else:
            distance = _histogram_distance(first, second) / data_range
        total = total + distance.view(x.shape[0], len(part)).sum(1)
    return _unbatch(total / len(pairs), batched)


# ----------------------------------------------------------------------------
# Layout


def layout_score(high_res, low_res, metric="mse", data_range=1.0):
    """Distance between the high-resolution result, area-downsampled to the
    low-resolution size, and the low-resolution pass (lower = same layout).

    Area averaging (not the bilinear ds() of the MSD paper) so that the
    comparison is an honest low-pass of the whole high-res image rather than
    the exact operator MSD optimises against. metric="mse": mean squared
    difference; metric="ssim": 1 - SSIM(ds(high_res), low_res).
    """
    hi, batched = _batch(high_res)
    lo, _ = _batch(low_res)
    down = F.interpolate(hi, size=lo.shape[-2:], mode="area")
    if metric == "mse":
        distance = ((down - lo) ** 2).mean(dim=(1, 2, 3))
    elif metric == "ssim":
        distance = 1.0 - ssim(down, lo, data_range)
    else:
        raise ValueError(f"unknown metric {metric!r}: use 'mse' or 'ssim'")
    return _unbatch(distance, batched)
