"""Window planning: where the model's native-size windows sit on a panorama latent.

Positions are in latent pixels.  Along an axis the windows start at
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

MIN_WINDOW = 8


@dataclass(frozen=True)
class WindowPlan:
    """The user's window settings, in latent pixels.

    ``window`` / ``stride`` of ``None`` are resolved from the model's native
    size by :func:`resolve_plan`; ``cross_stride`` of ``None`` means
    ``stride // cross_count``.
    """

    window: int | None = None
    stride: int | None = None
    cross_count: int = 1
    cross_stride: int | None = None
    wrap_x: bool = False


def resolve_plan(plan: WindowPlan, native_window: int) -> WindowPlan:
    """Fills the defaults of the paper: a window of the model's native latent
    size, a view stride of a quarter of it (16 for 64, 32 for 128), and a
    cross stride of ``s_v / c``."""
    window = plan.window or native_window
    stride = plan.stride or max(window // 4, 1)
    cross_stride = plan.cross_stride or max(stride // plan.cross_count, 1)
    resolved = WindowPlan(window, stride, plan.cross_count, cross_stride, plan.wrap_x)
    validate_plan(resolved)
    return resolved


def validate_plan(plan: WindowPlan) -> None:
    """Raises ValueError naming the offending setting and the fix."""
    w, s, c, sc = plan.window, plan.stride, plan.cross_count, plan.cross_stride
    if w is not None and w < MIN_WINDOW:
        raise ValueError(
            f"window size {w * 8} px ({w} latent px) is too small: "
            f"use at least {MIN_WINDOW * 8} px (the model's native size is the usual choice)")
    if s is not None and s < 1:
        raise ValueError(f"view stride {s * 8} px must be positive: use e.g. a quarter of the window")
    if s is not None and w is not None and s > w:
        raise ValueError(
            f"view stride {s * 8} px is larger than the window {w * 8} px, which would leave "
            f"gaps: use a stride of at most the window size (a quarter of it is the paper's default)")
    if c < 1:
        raise ValueError(f"cross count c = {c} must be at least 1 (1 switches Cross Sampling off)")
    if s is not None and c > s:
        raise ValueError(
            f"cross count c = {c} is larger than the view stride ({s} latent px): the groups "
            f"would repeat; use c <= stride / 8 px")
    if sc is not None and s is not None and (sc < 1 or sc * (c - 1) >= s) and c > 1:
        raise ValueError(
            f"cross stride {sc * 8} px with c = {c} shifts windows by a whole view stride or more: "
            f"use at most {(s - 1) // (c - 1) * 8} px (0 picks stride / c)")


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
