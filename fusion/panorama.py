"""One denoiser evaluation of the whole panorama: windows cut from the latent,
batched through the model, fused, merged.

Fusing the denoised prediction rather than z_{t-1} is exact: within a step all
windows are crops of the same z_t and a first-order step
z_{t-1} = a z_t + b D(z_t) shares its coefficients across windows, so any
per-pixel affine combination of windows commutes with it (and with CFG, which
is linear in the two predictions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .crop_fusion import crop_fusion, cut_windows, fusion_links, merge_windows, coverage
from .windows import Views, WindowPlan, placement, plan_views

# model_fn(x_windows, sigma_windows, views, ids[, branch]) -> denoised windows.
# x_windows (n*B, C, h, w) holds the windows ``ids`` of ``views``, window-major;
# sigma_windows is (n*B,).  The result is window-major too, each window with
# its K branches (the conditionings a sampler evaluates: cond, uncond...):
# (n*K*B, C, h, w); given a ``branch``, only that one: (n*B, C, h, w).
ModelFn = Callable[..., torch.Tensor]
# batches(views, view_batch_size) -> the groups of window ids evaluated together
Batching = Callable[[Views, int], Sequence[Sequence[int]]]
# run(evaluate, batches) -> [evaluate(ids) for ids in batches]: how the window
# batches of one evaluation are run.  They are crops of the same latent and
# independent until fusion, so a runner may spread them (over devices, say);
# by default they run one after the other.
BatchRunner = Callable[[Callable[[Sequence[int]], torch.Tensor], Sequence[Sequence[int]]], Sequence[torch.Tensor]]


@dataclass(frozen=True)
class FusionSettings:
    """TwinDiffusion's Crop Fusion: weight ``lam`` on a window's own
    prediction, active for the first ``tau`` fraction of the steps.  With
    ``crop_fusion=False`` the sampler is plain MultiDiffusion; ``feather``
    weights the neighbours across the overlap (not in the paper)."""

    lam: float = 1.0
    tau: float = 0.5
    crop_fusion: bool = True
    view_batch_size: int = 4
    feather: bool = False


def validate_settings(settings: FusionSettings) -> None:
    if not settings.lam >= 0:
        raise ValueError(f"lambda = {settings.lam} must be >= 0 (the paper uses 1; larger is closer to MultiDiffusion)")
    if not 0.0 <= settings.tau <= 1.0:
        raise ValueError(f"tau = {settings.tau} must lie in [0, 1]: the fraction of steps with Crop Fusion (paper: 0.5)")
    if settings.view_batch_size < 1:
        raise ValueError(f"view_batch_size = {settings.view_batch_size} must be at least 1")


def fusion_active(settings: FusionSettings, step: int, num_steps: int) -> bool:
    """Crop Fusion runs for steps ``i < floor(tau * T)``, as the reference's
    ``i < T // 2`` for tau = 0.5."""
    return settings.crop_fusion and math.isfinite(settings.lam) and step < math.floor(settings.tau * num_steps)


def schedule_step(sigma: float, sigmas: Sequence[float]) -> int:
    """Index of the step whose interval [sigmas[i], sigmas[i+1]) holds
    ``sigma``.  Multi-stage samplers evaluate between schedule points; they
    belong to the step they started from."""
    tolerance = 1e-4 * max(abs(sigma), 1e-8)
    step = 0
    for i, s in enumerate(sigmas[:-1]):
        if s + tolerance >= sigma:
            step = i
    return step


def raster_batches(views: Views, view_batch_size: int) -> list[range]:
    """Windows in raster order, ``view_batch_size`` per model call."""
    n = len(views)
    return [range(start, min(start + view_batch_size, n)) for start in range(0, n, view_batch_size)]


def take_windows(windows: torch.Tensor, ids: Sequence[int]) -> torch.Tensor:
    """(N, ...) -> (len(ids), ...); a view, not a copy, where the ids run
    consecutively (always, with only global conditioning)."""
    first = ids[0]
    if all(i == first + k for k, i in enumerate(ids)):
        return windows[first:first + len(ids)]
    return windows[list(ids)]


def run_in_order(evaluate: Callable[[Sequence[int]], torch.Tensor],
                 batches: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    return [evaluate(ids) for ids in batches]


def denoise_windows(model_fn: ModelFn, windows: torch.Tensor, sigma: torch.Tensor, views: Views,
                    batches: Sequence[Sequence[int]], run: BatchRunner | None = None) -> torch.Tensor:
    """(N, B, C, h, w) noisy windows -> (N, K*B, C, h, w) denoised windows
    (K branches each), one model call per batch of window ids, the batches
    run by ``run`` (in order by default)."""
    def evaluate(ids: Sequence[int]) -> torch.Tensor:
        return model_fn(take_windows(windows, ids).flatten(0, 1), sigma.repeat(len(ids)), views, ids)

    batches = [tuple(ids) for ids in batches]
    outputs: list = [None] * windows.shape[0]
    for ids, out in zip(batches, (run or run_in_order)(evaluate, batches)):
        for i, window in zip(ids, out.view(len(ids), -1, *out.shape[1:]).unbind(0)):
            outputs[i] = window
    return torch.stack(outputs)


class PanoramaDenoiser:
    """The whole-panorama denoiser D(z, sigma) built from a window denoiser.

    Keeps the window layouts per (shape, placement, device, dtype) so a
    sampling run builds each once (a shifted plan has one per step).
    """

    def __init__(self, plan: WindowPlan, settings: FusionSettings):
        validate_settings(settings)
        self.plan = plan
        self.settings = settings
        self._layouts: dict = {}
        self._links: dict = {}

    def layout(self, x: torch.Tensor, step: int) -> tuple[Views, torch.Tensor | None]:
        height, width = x.shape[-2:]
        key = (height, width, placement(self.plan, height, width, step), x.device, x.dtype)
        if key not in self._layouts:
            views = plan_views(self.plan, height, width, step, x.device)
            self._layouts[key] = (views, coverage(views, x.dtype))
        return self._layouts[key]

    def links(self, views: Views, dtype: torch.dtype) -> list:
        """Crop Fusion's links of a layout, made the first time a step fuses."""
        key = (id(views), dtype)
        if key not in self._links:
            self._links[key] = fusion_links(views, dtype, self.settings.feather)
        return self._links[key]

    def views(self, x: torch.Tensor, step: int) -> Views:
        return self.layout(x, step)[0]

    def __call__(self, model_fn: ModelFn, x: torch.Tensor, sigma: torch.Tensor, step: int, num_steps: int,
                 batches: Batching = raster_batches, run: BatchRunner | None = None) -> torch.Tensor:
        """D(x): (B, C, H, W) -> (K*B, C, H, W), branch-major."""
        views, count = self.layout(x, step)
        if views.covers_whole_latent:
            return model_fn(x, sigma, views, [0])
        windows = denoise_windows(model_fn, cut_windows(x, views), sigma, views,
                                  batches(views, self.settings.view_batch_size), run)
        if fusion_active(self.settings, step, num_steps):
            windows = crop_fusion(windows, self.links(views, x.dtype), self.settings.lam)
        return merge_windows(windows, views, count)
