"""Multi-Scale Diffusion (MSD, eq. 7-9 and Algorithm 1): a low-resolution
pass guides each high-resolution window through one gradient step.

Per step, on the pyramid z^1 (lowest) ... z^S = z of bilinear halvings
(each brought back to the noise level sigma, see noisy_pyramid):
MultiDiffusion at the lowest level gives z_{t-1}^1; then for each higher level
every window x_i of z_t^s takes

    x_i <- x_i - omega_t * grad_x MSE(ds(Phi(x_i)), F_i'(z_{t-1}^{s-1}))

and z_{t-1}^s is the merge of Phi of the updated windows.  Phi is one
first-order step to the next sigma, Phi(x) = D(x) + r (x - D(x)) with
r = sigma_next / sigma.  Since ComfyUI's sampler, not the wrapper, takes the
step, the denoiser returns D_eff = (z_{t-1} - r z_t) / (1 - r), the estimate
whose first-order step lands on the MSD result.

The gradient step is taken on ComfyUI's (variance-exploding) latents.  The
paper's are variance preserving, where the same omega is a step larger by
(1 + sigma^2) / (1 + sigma_next^2); that factor tends to 1 with small steps
(50 DDIM steps in the paper) but reaches 4 at the first of 10 Karras steps,
where it makes omega = 10 overshoot and wash the image out.  Without it the
correction per step is about omega / (2 C) whatever the step count.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .crop_fusion import crop_fusion, cut_windows, merge_windows
from .panorama import Batching, ModelFn, PanoramaDenoiser, fusion_active, raster_batches, take_windows
from .windows import MIN_WINDOW, Views

DECAYS = ("cosine", "constant")
DOWNSAMPLE_MODES = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class MultiScaleSettings:
    """MSD's S resolution levels (2 = one half-resolution guide), gradient
    weight omega and its decay over the steps, the down-sampling ds, and
    the part of the run that is guided: from ``start_percent`` to
    ``end_percent`` of the denoising (ComfyUI's percents, put on the model's
    sigmas by the adapter: :meth:`MultiScaleDenoiser.guide_between`).
    Outside it a step is plain MultiDiffusion, with no half-resolution pass
    and no gradient pass.  ``reuse_prediction``: a guided window steps from
    the prediction its gradient pass made instead of predicting again at the
    guided input (see :meth:`MultiScaleDenoiser.guided_level`)."""

    levels: int = 2
    omega: float = 10.0
    decay: str = "cosine"
    downsample: str = "bilinear"
    start_percent: float = 0.0
    end_percent: float = 1.0
    reuse_prediction: bool = False


def validate_multiscale(settings: MultiScaleSettings, height: int | None = None, width: int | None = None,
                        window: int | None = None, scale: int = 8) -> None:
    """Raises ValueError naming the setting and the fix; with a latent size,
    also checks that the pyramid fits it (``scale``: image pixels per latent
    pixel, for the messages)."""
    if not settings.omega >= 0:
        raise ValueError(f"omega = {settings.omega} must be >= 0 (paper: 10; 0 is plain MultiDiffusion)")
    if settings.levels < 1:
        raise ValueError(f"levels = {settings.levels} must be at least 1 (2 = one half-resolution guide)")
    if settings.decay not in DECAYS:
        raise ValueError(f"decay = {settings.decay!r}: use one of {DECAYS}")
    if settings.downsample not in DOWNSAMPLE_MODES:
        raise ValueError(f"downsample = {settings.downsample!r}: use one of {DOWNSAMPLE_MODES}")
    if not 0.0 <= settings.start_percent <= settings.end_percent <= 1.0:
        raise ValueError(f"start_percent = {settings.start_percent}, end_percent = {settings.end_percent}: use "
                         f"0 <= start_percent <= end_percent <= 1 (the part of the denoising that is guided)")
    if height is None or settings.levels == 1:
        return
    factor = 2 ** (settings.levels - 1)
    if window is not None and height <= window and width <= window:
        raise ValueError(
            f"the latent ({height * scale}x{width * scale} px) fits in one window ({window * scale} px): it needs no "
            f"lower resolution guide; use levels = 1 or remove the Panorama Layout Guidance (MSD) node")
    if min(height, width) // factor < MIN_WINDOW:
        raise ValueError(
            f"levels = {settings.levels} shrinks the {height * scale}x{width * scale} px panorama to "
            f"{height // factor * scale}x{width // factor * scale} px at the lowest level, below "
            f"{MIN_WINDOW * scale} px: use fewer levels")
    if height % factor or width % factor:
        raise ValueError(
            f"levels = {settings.levels} halves the latent {settings.levels - 1} time(s), so the panorama's width "
            f"and height must be multiples of {factor * scale} px (got {width * scale}x{height * scale}): adjust "
            f"the size or use fewer levels")


def omega_at(settings: MultiScaleSettings, step: int, num_steps: int) -> float:
    """omega_t; the cosine decay (1 + cos(pi (T - t) / T)) / 2 with t = T - step
    runs from omega at the first step towards 0 at the last."""
    if settings.decay == "constant":
        return settings.omega
    return settings.omega * (1 + math.cos(math.pi * step / num_steps)) / 2


def downsample(x: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """ds(): halves height and width (bilinear at exactly 1/2 is the 2x2 mean)."""
    return F.interpolate(x, scale_factor=0.5, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))


PYRAMID_NOISE_SEED = 0x5eed


@functools.lru_cache(maxsize=None)
def noise_gain(mode: str) -> float:
    """Variance of ds() applied to unit white noise: 1/4 for the bilinear
    2x2 mean, 1 for nearest."""
    impulses = torch.eye(64, dtype=torch.float64).view(64, 1, 8, 8)
    weights = downsample(impulses, mode)[:, 0, 2, 2]  # an interior output pixel's filter
    return float((weights**2).sum())


def pyramid_noise(shape, level: int, like: torch.Tensor) -> torch.Tensor:
    """A fixed unit-noise field per level and shape: the same at every step,
    so the lower levels follow one consistent trajectory."""
    generator = torch.Generator().manual_seed(PYRAMID_NOISE_SEED + level)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(like)


def noisy_pyramid(z: torch.Tensor, sigma: float, levels: int, mode: str, noise: Callable = pyramid_noise):
    """The pyramid at the noise level the model is told.  ds() of z_t keeps
    its signal but shrinks its noise (by 2 for the 2x2 mean), and a model
    told sigma then over-smooths: the lower levels, and through the guidance
    the panorama, come out grey.  Each lower level gets the missing noise,
    sigma * sqrt(1 - gain) times a fixed field, back; the added part is
    returned so that it can be taken out of that level's result again.

    ``noise(shape, level, like)`` gives the fixed fields (MultiScaleDenoiser
    keeps them on the device between steps).

    Returns ([z^1, ..., z^S], [added^1, ..., added^S = 0])."""
    spread = sigma * math.sqrt(max(1.0 - noise_gain(mode), 0.0))
    out, added = [z], [torch.zeros((), dtype=z.dtype, device=z.device)]
    for level in range(levels - 1):
        low = downsample(out[0], mode)
        extra = spread * noise(low.shape, level, low)
        out.insert(0, low + extra)
        added.insert(0, extra)
    return out, added


def lower_crop(z_low: torch.Tensor, views: Views, ids) -> torch.Tensor:
    """F_i'(z^{s-1}): the region of the lower level under windows ``ids``,
    (n, B, C, h/2, w/2)."""
    ids = list(ids)
    rows = views.rows[ids][:, ::2] // 2
    cols = (views.cols[ids][:, ::2] // 2) % z_low.shape[-1]
    return z_low[:, :, rows[:, :, None], cols[:, None, :]].permute(2, 0, 1, 3, 4)


def first_order_step(denoised: torch.Tensor, x: torch.Tensor, r: float) -> torch.Tensor:
    """Phi: the DDIM / Euler step to sigma_next = r * sigma."""
    return denoised + r * (x - denoised)


def guided_windows(model_fn: ModelFn, windows: torch.Tensor, targets: torch.Tensor, sigma: torch.Tensor,
                   views: Views, ids, r: float, omega: float, mode: str, grad_context: Callable,
                   branch: int = 0) -> torch.Tensor:
    """The guided windows x - omega grad (:func:`guided_windows_and_prediction`)."""
    return guided_windows_and_prediction(model_fn, windows, targets, sigma, views, ids, r, omega, mode,
                                         grad_context, branch)[0]


def guided_windows_and_prediction(model_fn: ModelFn, windows: torch.Tensor, targets: torch.Tensor,
                                  sigma: torch.Tensor, views: Views, ids, r: float, omega: float, mode: str,
                                  grad_context: Callable, branch: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 9 for a batch of windows (n*B, C, h, w) of one branch: one forward
    with grad, one backward, and the gradient step.  As windows sit in
    separate batch entries the summed loss gives every window its own
    gradient.

    The paper writes the squared norm but calls it an MSE loss; we sum over
    pixels and average over latent channels.  With that, the gradient step
    moves ds(Phi(x)) by about omega / (2 C) times its distance to the target
    (C = 4): omega = 10 corrects the low frequencies about once and
    omega >= 20 overshoots by more than twice, which is the paper's Fig. 5
    (best at 10, collapse from 20).  The plain sum would make 10 unstable, the
    mean over all elements would make it a no-op.

    Also returns the forward's prediction D(x), detached.
    """
    def gradient(context):
        with context:
            x = windows.detach().clone().requires_grad_(True)
            denoised = model_fn(x, sigma, views, ids, branch)
            phi = first_order_step(denoised, x, r)
            squared = (downsample(phi.float(), mode) - targets.float()) ** 2
            loss = squared.flatten(2).sum(2).mean(1).sum()
            return torch.autograd.grad(loss, x)[0], denoised.detach()

    try:
        grad, denoised = gradient(grad_context())
    except RuntimeError as error:
        # Some models add into a tensor autograd saved (Flux's and Chroma's
        # blocks); a context that can, keeps copies of what autograd saves.
        if "inplace operation" not in str(error) or not getattr(grad_context, "copies_saved_tensors", False):
            raise
        grad, denoised = gradient(grad_context(copy_saved=True))
    return windows - omega * grad.to(windows.dtype), denoised.to(windows.dtype)


def per_branch(x: torch.Tensor, branches: int) -> torch.Tensor:
    """(B, ...) -> (K*B, ...): the latent as each branch sees it, branch-major
    (a 0-d tensor broadcasts as it is)."""
    return x.repeat(branches, *([1] * (x.ndim - 1))) if x.ndim else x


class MultiScaleDenoiser:
    """D_eff(z, sigma) for MSD on top of a panorama denoiser (MultiDiffusion,
    Crop Fusion, Cross Sampling as configured there).

    Each branch (cond, uncond...) takes its own gradient step towards its own
    low-resolution pass: the model function returns branches separately, not
    their CFG combination."""

    def __init__(self, panorama: PanoramaDenoiser, settings: MultiScaleSettings):
        validate_multiscale(settings)
        self.panorama = panorama
        self.settings = settings
        self._noise: dict = {}
        self.sigma_range = (math.inf, 0.0)  # guided while sigma_range[1] <= sigma <= sigma_range[0]

    def guide_between(self, sigma_start: float, sigma_end: float) -> None:
        """The sigmas of ``start_percent`` and ``end_percent`` on the model's
        schedule (ComfyUI's ``model_sampling.percent_to_sigma``)."""
        self.sigma_range = (sigma_start, sigma_end)

    def guided(self, sigma: float) -> bool:
        return self.sigma_range[1] <= sigma <= self.sigma_range[0]

    def fixed_noise(self, shape, level: int, like: torch.Tensor) -> torch.Tensor:
        key = (tuple(shape), level, like.device, like.dtype)
        if key not in self._noise:
            self._noise[key] = pyramid_noise(shape, level, like)
        return self._noise[key]

    def __call__(self, model_fn: ModelFn, x: torch.Tensor, sigma: torch.Tensor, step: int, num_steps: int,
                 sigma_next: float, grad_context: Callable = torch.enable_grad,
                 batches: Batching = raster_batches) -> torch.Tensor:
        omega = omega_at(self.settings, step, num_steps)
        if omega == 0 or self.settings.levels == 1 or not self.guided(float(sigma.flatten()[0])):
            return self.panorama(model_fn, x, sigma, step, num_steps, batches)
        return self.multiscale_step(model_fn, x, sigma, step, num_steps, sigma_next, omega, grad_context, batches)

    def multiscale_step(self, model_fn, x, sigma, step, num_steps, sigma_next, omega, grad_context,
                        batches: Batching = raster_batches):
        sigma_now = float(sigma.flatten()[0])
        r = sigma_next / sigma_now
        levels, added = noisy_pyramid(x, sigma_now, self.settings.levels, self.settings.downsample, self.fixed_noise)
        low = self.panorama(model_fn, levels[0], sigma, step, num_steps, batches)
        branches = low.shape[0] // x.shape[0]
        # Phi passes r times its input's noise through; the noise a level was
        # given is taken out of its result, so that each target lives at the
        # noise of ds(Phi(x)) and the guidance compares what was denoised
        z_prev = first_order_step(low, per_branch(levels[0], branches), r) - r * per_branch(added[0], branches)
        for z, extra in zip(levels[1:], added[1:]):
            z_prev = self.guided_level(model_fn, z, z_prev, sigma, step, num_steps, r, omega, grad_context, batches)
            z_prev = z_prev - r * per_branch(extra, branches)
        if r == 0:
            return z_prev
        return (z_prev - r * per_branch(x, branches)) / (1 - r)

    def guided_level(self, model_fn, z, z_low, sigma, step, num_steps, r, omega, grad_context, batches):
        """z_{t-1}^s, (K*B, ...): every window of z_t^s guided by z_{t-1}^{s-1}
        of its branch, stepped, then fused (Crop Fusion, while active) and
        merged.

        The paper predicts again at each guided input.  With
        ``reuse_prediction`` the gradient pass's prediction D(x) stands in for
        D(x - omega grad): they differ by about dD/dx = 1 / (1 + sigma^2) times
        the gradient step, nothing at the high noise of the first steps, where
        the layout forms and guidance should end (``end_percent``); it saves
        one of the three model passes of a guided window."""
        views, count = self.panorama.layout(z, step)
        windows = cut_windows(z, views)
        batch, branches = z.shape[0], z_low.shape[0] // z.shape[0]
        stepped: list = [None] * len(views)
        for ids in batches(views, self.panorama.settings.view_batch_size):
            chunk = take_windows(windows, ids).flatten(0, 1)
            sigmas = sigma.repeat(len(ids))
            targets = lower_crop(z_low, views, ids)
            per_window = []
            for k in range(branches):
                target = targets[:, k * batch:(k + 1) * batch].flatten(0, 1)
                guided, denoised = guided_windows_and_prediction(model_fn, chunk, target, sigmas, views, ids, r,
                                                                 omega, self.settings.downsample, grad_context, k)
                if not self.settings.reuse_prediction:
                    denoised = model_fn(guided, sigmas, views, ids, k)
                phi = first_order_step(denoised, guided, r)
                per_window.append(phi.view(len(ids), batch, *phi.shape[1:]))
            for i, window in zip(ids, torch.cat(per_window, dim=1).unbind(0)):
                stepped[i] = window
        stepped = torch.stack(stepped)
        if fusion_active(self.panorama.settings, step, num_steps):
            stepped = crop_fusion(stepped, self.panorama.links(views, z.dtype), self.panorama.settings.lam)
        return merge_windows(stepped, views, count)
