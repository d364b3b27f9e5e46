"""Panoramas from the reference model with the pack's own ``fusion`` code:
the same PanoramaDenoiser / MultiScaleDenoiser the ComfyUI nodes use, driven
by k-diffusion's Euler sampler on Stable Diffusion's sigma range."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from fusion import FusionSettings, MultiScaleDenoiser, MultiScaleSettings, PanoramaDenoiser, WindowPlan, plan_views
from fusion.multiscale import noisy_pyramid
from refmodel.decision import karras_sigmas


@dataclass(frozen=True)
class Method:
    """One way to sample a panorama: windows, fusion and guidance."""

    label: str
    stride: int
    cross_count: int = 1
    crop_fusion: bool = False
    feather: bool = False  # feathered Crop Fusion weights (not in the paper)
    lam: float = 1.0
    tau: float = 0.5
    multiscale: MultiScaleSettings | None = None
    height_factor: int = 1  # MSD comparisons run at twice the height


@dataclass
class Result:
    method: Method
    seed: int
    latent: torch.Tensor
    low_res: torch.Tensor | None
    evaluations: int
    seconds: float
    boundaries: list[int] = field(default_factory=list)


class CountingModel:
    """The reference denoiser as a ``fusion`` model function, counting window
    evaluations."""

    def __init__(self, denoiser):
        self.denoiser, self.evaluations = denoiser, 0

    def __call__(self, x, sigma, *window_info):
        self.evaluations += x.shape[0]
        return self.denoiser(x, sigma)


def plan_for(method: Method, window: int) -> WindowPlan:
    return WindowPlan(window=window, stride=method.stride, cross_count=method.cross_count,
                      cross_stride=max(method.stride // method.cross_count, 1))


def boundaries(plan: WindowPlan, height: int, width: int) -> list[int]:
    """Latent columns where some window of some group starts or ends."""
    cols = set()
    for group in range(plan.cross_count):
        views = plan_views(plan, height, width, group)
        for left in views.lefts:
            cols.update({left, left + views.window_w})
    return sorted(c for c in cols if 0 < c < width)


def euler(denoise, x: torch.Tensor, sigmas: torch.Tensor, progress=None) -> torch.Tensor:
    steps = len(sigmas) - 1
    for i in range(steps):
        sigma = sigmas[i]
        d = denoise(x, sigma.to(x.dtype).expand(x.shape[0]), i, steps, float(sigmas[i + 1]))
        x = x + (x - d) / sigma * (sigmas[i + 1] - sigma)
        if progress:
            progress()
    return x


def sample(denoiser, method: Method, height: int, width: int, steps: int, seed: int,
           progress=None, dtype=torch.float32) -> Result:
    """One panorama of (height * height_factor, width) latent pixels."""
    window = denoiser.window[0]
    height = height * method.height_factor
    plan = plan_for(method, window)
    settings = FusionSettings(lam=method.lam, tau=method.tau, crop_fusion=method.crop_fusion, view_batch_size=64,
                             feather=method.feather)
    panorama = PanoramaDenoiser(plan, settings)
    sigmas = karras_sigmas(steps)
    noise = torch.randn(1, denoiser.channels, height, width, generator=torch.Generator().manual_seed(seed))
    x = (noise * sigmas[0]).to(dtype)
    model = CountingModel(denoiser)
    start = time.perf_counter()
    if method.multiscale is None:
        out = euler(lambda z, s, i, n, _: panorama(model, z, s, i, n), x, sigmas, progress)
    else:
        msd = MultiScaleDenoiser(panorama, method.multiscale)
        out = euler(lambda z, s, i, n, s_next: msd(model, z, s, i, n, s_next), x, sigmas, progress)
    seconds = time.perf_counter() - start
    low = None
    if method.height_factor > 1:
        # the low-resolution pass: MultiDiffusion from the lowest level of
        # the first step's pyramid, i.e. MSD's lowest level left alone
        low_panorama = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False, view_batch_size=64))
        start_low = noisy_pyramid(x, float(sigmas[0]), 2, (method.multiscale or MultiScaleSettings()).downsample)[0][0]
        low = euler(lambda z, s, i, n, _: low_panorama(CountingModel(denoiser), z, s, i, n), start_low, sigmas)
    return Result(method, seed, out, low, model.evaluations, seconds, boundaries(plan, height, width))
