"""Window planning: where the model's native-size windows sit on a panorama latent.

Positions are in latent pixels (:class:`LatentGrid` maps the image pixels
the nodes take onto them, in whole tokens).  Along an axis the windows start at
0, s, 2s, ... and the last one is snapped to ``L - w`` so every pixel is
covered whatever the stride; an axis no longer than the window gets one
window of the axis' length.  With wrap-around the horizontal axis is a circle,
so windows start at every multiple of the stride and may run over the right
edge into column 0.

Cross Sampling (TwinDiffusion eq. 7) keeps ``c`` groups of windows; group
``k`` shifts the interior windows by ``k * s_c`` (the reference code keeps the
first and the last window in place, so both edges stay covered), and step ``i``
uses group ``i mod c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MIN_WINDOW = 8  # latent pixels: a UNet halves a window three times
MIN_WINDOW_TOKENS = 4


@dataclass(frozen=True)
class LatentGrid:
    """How a model's latent lies on the image.

    ``scale`` image pixels per latent pixel (8 for SD and Flux, 32 for
    HunyuanImage 2.1, 1 for pixel-space Chroma Radiance), ``patch`` latent
    pixels per transformer token (1 for UNets, 2 for most DiTs, 16 for Chroma
    Radiance), and ``native``, the size the model was trained at, in latent
    pixels.  Windows and strides are whole tokens, so that overlapping
    windows cut the same patches.
    """

    scale: int = 8
    patch: int = 1
    native: int = 64

    @property
    def token_px(self) -> int:
        return self.scale * self.patch

    @property
    def min_window(self) -> int:
        return max(MIN_WINDOW, MIN_WINDOW_TOKENS * self.patch)

    def to_latent(self, pixels: int, name: str) -> int:
        """Image pixels -> latent pixels, refusing what is not whole tokens."""
        if pixels % self.token_px:
            lower = pixels - pixels % self.token_px
            raise ValueError(
                f"{name} = {pixels} px is not a multiple of {self.token_px} px, the model's token "
                f"({self.scale} px per latent pixel{f' x patch {self.patch}' if self.patch > 1 else ''}): "
                f"use {lower or self.token_px} or {lower + self.token_px}")
        return pixels // self.scale


@dataclass(frozen=True)
class WindowPlan:
    """Window settings, in latent pixels.

    ``window`` / ``stride`` of ``None`` are resolved from the model's native
    size by :func:`resolve_plan`; ``cross_stride`` of ``None`` means
    ``stride // cross_count``.
    """

    window: int | None = None
    stride: int | None = None
    cross_count: int = 1
    cross_stride: int | None = None
    wrap_x: bool = False


@dataclass(frozen=True)
class WindowSettings:
    """The window settings as the nodes take them: image pixels, 0 for the
    default.  :func:`latent_plan` puts them on a model's latent grid."""

    window: int = 0
    stride: int = 0
    cross_count: int = 1
    cross_stride: int = 0
    wrap_x: bool = False


def on_grid(settings: WindowSettings, grid: LatentGrid) -> WindowPlan:
    """The settings in latent pixels, defaults left open."""
    def latent(pixels, name):
        return grid.to_latent(pixels, name) if pixels else None

    return WindowPlan(latent(settings.window, "window_size"), latent(settings.stride, "view_stride"),
                      settings.cross_count, latent(settings.cross_stride, "cross_stride"), settings.wrap_x)


def latent_plan(settings: WindowSettings, grid: LatentGrid) -> WindowPlan:
    return resolve_plan(on_grid(settings, grid), grid)


def resolve_plan(plan: WindowPlan, grid: LatentGrid | int) -> WindowPlan:
    """Fills the defaults of the paper: a window of the model's native latent
    size, a view stride of a quarter of it (16 for 64, 32 for 128), and a
    cross stride of ``s_v / c``, each rounded down to whole tokens.  An int
    ``grid`` is the native window of an 8x UNet latent."""
    grid = LatentGrid(native=grid) if isinstance(grid, int) else grid
    p = grid.patch
    window = plan.window or grid.native
    stride = plan.stride or max(window // 4 // p * p, p)
    cross_stride = plan.cross_stride or max(stride // plan.cross_count // p * p, p)
    resolved = WindowPlan(window, stride, plan.cross_count, cross_stride, plan.wrap_x)
    validate_plan(resolved, grid)
    return resolved


def validate_plan(plan: WindowPlan, grid: LatentGrid = LatentGrid()) -> None:
    """Raises ValueError naming the offending setting and the fix."""
    w, s, c, sc = plan.window, plan.stride, plan.cross_count, plan.cross_stride
    px, token = grid.scale, grid.token_px
    if w is not None and w < grid.min_window:
        raise ValueError(
            f"window size {w * px} px ({w} latent px) is too small: "
            f"use at least {grid.min_window * px} px (the model's native size is the usual choice)")
    if s is not None and s < 1:
        raise ValueError(f"view stride {s * px} px must be positive: use e.g. a quarter of the window")
    if s is not None and w is not None and s > w:
        raise ValueError(
            f"view stride {s * px} px is larger than the window {w * px} px, which would leave "
            f"gaps: use a stride of at most the window size (a quarter of it is the paper's default)")
    if c < 1:
        raise ValueError(f"cross count c = {c} must be at least 1 (1 switches Cross Sampling off)")
    if s is not None and c > s // grid.patch:
        raise ValueError(
            f"cross count c = {c} is larger than the view stride in tokens ({s * px} px / {token} px): the "
            f"groups would repeat; use c <= view_stride / {token} px")
    if sc is not None and s is not None and (sc < 1 or sc * (c - 1) >= s) and c > 1:
        raise ValueError(
            f"cross stride {sc * px} px with c = {c} shifts windows by a whole view stride or more: "
            f"use at most {(s - 1) // (c - 1) // grid.patch * token} px (0 picks stride / c)")


def axis_starts(length: int, window: int, stride: int, shift: int = 0, wrap: bool = False) -> list[int]:
    """Window starts along one axis; ``shift`` moves the interior windows
    (all of them on a circle, which has no edge to keep covered)."""
    if length <= window:
        return [0]
    if wrap:
        count = math.ceil(length / stride)
        return [(i * stride + shift) % length for i in range(count)]
    last = length - window
    count = math.ceil(last / stride) + 1
    interior = [min(i * stride + shift, last) for i in range(1, count - 1)]
    starts = sorted(set([0, *interior, last]))
    if starts[1] - starts[0] > window:
        # stride + shift can exceed the window: the shifted grid's own first
        # window closes the gap after the one pinned to the edge
        starts.insert(1, shift)
    return starts


@dataclass
class Views:
    """One group's windows on a latent of size ``(height, width)``, in raster
    order, as index tensors ready for gathering and scattering.

    ``rows[i]`` / ``cols[i]`` are the latent rows / columns window ``i`` reads
    (columns taken modulo the width with wrap-around); ``grid`` is
    ``(n_rows, n_cols)``; window ``i`` sits at grid cell ``divmod(i, n_cols)``.
    """

    height: int
    width: int
    tops: list[int]
    lefts: list[int]
    window_h: int
    window_w: int
    rows: torch.Tensor
    cols: torch.Tensor
    wrap_x: bool

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.tops), len(self.lefts)

    def __len__(self) -> int:
        return len(self.tops) * len(self.lefts)

    def origin(self, i: int) -> tuple[int, int]:
        r, q = divmod(i, len(self.lefts))
        return self.tops[r], self.lefts[q]

    @property
    def covers_whole_latent(self) -> bool:
        return len(self) == 1 and self.window_h == self.height and self.window_w == self.width


def plan_views(plan: WindowPlan, height: int, width: int, step: int = 0,
               device: torch.device | str = "cpu") -> Views:
    """The windows used at sampling step ``step`` (group ``step mod c``)."""
    group = step % plan.cross_count
    shift = group * plan.cross_stride if group else 0
    wrap = plan.wrap_x and width > plan.window
    window_h, window_w = min(plan.window, height), min(plan.window, width)
    tops = axis_starts(height, plan.window, plan.stride, shift)
    lefts = axis_starts(width, plan.window, plan.stride, shift, wrap)
    top = torch.tensor(tops, device=device)
    left = torch.tensor(lefts, device=device)
    row_of = top[:, None] + torch.arange(window_h, device=device)
    col_of = (left[:, None] + torch.arange(window_w, device=device)) % width
    n_rows, n_cols = len(tops), len(lefts)
    rows = row_of.repeat_interleave(n_cols, dim=0)
    cols = col_of.repeat(n_rows, 1)
    return Views(height, width, tops, lefts, window_h, window_w, rows, cols, wrap)


def window_count(plan: WindowPlan, height: int, width: int, steps: int) -> int:
    """Window evaluations over a whole run of ``steps`` model steps."""
    return sum(len(plan_views(plan, height, width, i)) for i in range(steps))
