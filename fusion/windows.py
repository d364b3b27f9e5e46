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

Shifted plans (SpotDiffusion) move the whole window grid by a new offset at
every step instead, so that no pixel lies on a window edge step after step and
the windows need not overlap (stride = window: about one evaluation per pixel).
On a straight axis the first and the last window stay pinned to the edges; on
a circle every window moves.  A circle no wider than one window is one window
turned by the offset: the wrap column sits inside the model's view at most
steps, which is how a 360 at a model's own size closes its seam.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import torch

MIN_WINDOW = 8  # latent pixels: a UNet halves a window three times
MIN_WINDOW_TOKENS = 4
SHIFTS = ("none", "golden", "random")
BLENDS = ("mean", "feathered")
# "golden" offsets: fractional parts of step * alpha (Kronecker sequences).
# Columns take 1/phi, the golden ratio's, which spreads n steps over n
# offsets more evenly than any other and moves the grid at least 0.38 of
# the stride from one step to the next; rows take 1/rho, the plastic
# number's, independent of it.
GOLDEN = (0.7548776662466927, 0.6180339887498949)  # (rows, columns)


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
    ``stride // cross_count``.  ``shift`` moves the window grid every step
    (``"golden"``: a low-discrepancy sequence, ``"random"``: drawn from ``shift_seed``),
    in whole ``unit`` s (the model's token).
    """

    window: int | None = None
    stride: int | None = None
    cross_count: int = 1
    cross_stride: int | None = None
    wrap_x: bool = False
    shift: str = "none"
    shift_seed: int = 0
    unit: int = 1
    blend: str = "mean"


@dataclass(frozen=True)
class WindowSettings:
    """The window settings as the nodes take them: image pixels, 0 for the
    default.  :func:`latent_plan` puts them on a model's latent grid."""

    window: int = 0
    stride: int = 0
    cross_count: int = 1
    cross_stride: int = 0
    wrap_x: bool = False
    shift: str = "none"
    shift_seed: int = 0
    blend: str = "mean"


def on_grid(settings: WindowSettings, grid: LatentGrid) -> WindowPlan:
    """The settings in latent pixels, defaults left open."""
    def latent(pixels, name):
        return grid.to_latent(pixels, name) if pixels else None

    return WindowPlan(latent(settings.window, "window_size"), latent(settings.stride, "view_stride"),
                      settings.cross_count, latent(settings.cross_stride, "cross_stride"), settings.wrap_x,
                      settings.shift, settings.shift_seed, grid.patch, settings.blend)


def latent_plan(settings, grid: LatentGrid):
    """The node's window settings on the model's latent grid: crops
    (:class:`WindowSettings`) or sphere views (``SphereSettings``)."""
    if hasattr(settings, "latent_plan"):  # windows of another kind (sphere views) plan themselves
        return settings.latent_plan(grid)
    return resolve_plan(on_grid(settings, grid), grid)


def resolve_plan(plan: WindowPlan, grid: LatentGrid | int) -> WindowPlan:
    """Fills the defaults of the paper: a window of the model's native latent
    size, a view stride of a quarter of it (16 for 64, 32 for 128), and a
    cross stride of ``s_v / c``, each rounded down to whole tokens.  A shifted
    plan's default stride is the window (SpotDiffusion's non-overlapping
    windows).  An int ``grid`` is the native window of an 8x UNet latent."""
    grid = LatentGrid(native=grid) if isinstance(grid, int) else grid
    p = grid.patch
    window = plan.window or grid.native
    stride = plan.stride or (window if plan.shift != "none" else max(window // 4 // p * p, p))
    cross_stride = plan.cross_stride or max(stride // plan.cross_count // p * p, p)
    resolved = WindowPlan(window, stride, plan.cross_count, cross_stride, plan.wrap_x, plan.shift, plan.shift_seed, p,
                          plan.blend)
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
    if plan.shift not in SHIFTS:
        raise ValueError(f"shift = {plan.shift!r}: use one of {list(SHIFTS)}")
    if plan.blend not in BLENDS:
        raise ValueError(f"blend = {plan.blend!r}: use one of {list(BLENDS)}")
    if plan.shift != "none" and c > 1:
        raise ValueError(f"cross count c = {c} with shifted windows: both move the windows between steps; use "
                         f"c = 1 with a shift, or shift 'none' for Cross Sampling")
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


def shifted_starts(length: int, window: int, stride: int, offset: int) -> list[int]:
    """Window starts of a grid moved by ``offset`` along a straight axis:
    the windows of the grid that fit, and one pinned to each edge for the
    parts the grid leaves uncovered there."""
    if length <= window:
        return [0]
    last = length - window
    return sorted({0, *range(offset, last, stride), last})


def step_offsets(plan: WindowPlan, step: int, spans: tuple[int, int]) -> tuple[int, int]:
    """How far the window grid moves at ``step`` along (rows, columns):
    a whole number of ``plan.unit`` s below each ``span`` (0 for a span of
    one unit or less)."""
    if plan.shift == "golden":
        fractions = [(step * alpha) % 1.0 for alpha in GOLDEN]
    elif plan.shift == "random":
        draw = random.Random(f"{plan.shift_seed}:{step}")
        fractions = [draw.random(), draw.random()]
    else:
        return 0, 0
    units = [max(span // plan.unit, 1) for span in spans]
    return tuple(int(f * n) % n * plan.unit for f, n in zip(fractions, units))


def shifts_circle(plan: WindowPlan, width: int) -> bool:
    """A wrap-around panorama no wider than one window: its one window is
    turned around the circle every step, with or without a shift asked for
    (with none it would keep the wrap seam at the window's edge)."""
    return plan.wrap_x and width <= plan.window


def effective_shift(plan: WindowPlan, width: int) -> WindowPlan:
    if plan.shift == "none" and shifts_circle(plan, width):
        return replace(plan, cross_count=1, shift="golden")
    return plan


def placement(plan: WindowPlan, height: int, width: int, step: int) -> tuple:
    """What sets the windows of ``step``: (Cross Sampling group, row offset,
    column offset)."""
    if hasattr(plan, "placement"):
        return plan.placement(height, width, step)
    plan = effective_shift(plan, width)
    group = step % plan.cross_count
    if plan.shift == "none":
        return group, 0, 0
    column_span = width if shifts_circle(plan, width) else plan.stride
    row_span = plan.stride if height > plan.window else 0
    return (group, *step_offsets(plan, step, (row_span, column_span)))


class Views:
    """One step's windows on a latent of ``height`` x ``width``: each window
    is a map from the latent to a model-size grid of ``window_h`` x
    ``window_w`` and back.  A video latent (B, C, T, H, W) is cut along H
    and W only: its frames ride along as one more leading axis, so every
    window keeps all of them and the same maps serve images and videos.

    There: ``read[i]`` holds, for every pixel of window ``i``, the flat
    index (row * width + col) of the latent pixel it takes, by nearest
    neighbour, so a noisy latent reaches the model with its noise intact.
    Back: ``blend`` is ``None`` where a latent pixel's prediction is the mean
    of the window pixels that read it (a crop: MultiDiffusion's merge), or
    the triplets (target, source, weight) of a weighted map from window
    pixels (flat over all windows) to latent pixels whose weights sum to 1 at
    every target (a sphere view: :mod:`.sphere_views`).

    ``key`` names the layout (for caches); ``wrap_x``: the columns are a
    circle.  :class:`CropViews`, the windows that are crops of the latent,
    add their rectangle geometry.
    """

    is_crop = False

    def __init__(self, height: int, width: int, window_h: int, window_w: int, read: torch.Tensor, wrap_x: bool,
                 key: tuple, blend: tuple | None = None):
        self.height, self.width, self.window_h, self.window_w = height, width, window_h, window_w
        self.read, self.wrap_x, self.key, self.blend = read, wrap_x, key, blend

    def __len__(self) -> int:
        return self.read.shape[0]

    @property
    def covers_whole_latent(self) -> bool:
        return False

    def read_at(self, scale: int) -> torch.Tensor:
        """(N, h*scale, w*scale): ``read`` for a tensor aligned with the latent
        at ``scale`` times its resolution (a ControlNet hint in pixels)."""
        if scale != 1:
            raise ValueError(f"these windows cannot read a tensor at {scale}x the latent's resolution")
        return self.read

    def cut(self, x: torch.Tensor, ids=None, scale: int = 1) -> torch.Tensor:
        """(B, C, ..., H*scale, W*scale) -> (N, B, C, ..., h*scale, w*scale),
        one gather.  Axes between C and H (a video's frames) ride along:
        every window keeps all of them."""
        read = self.read_at(scale)
        read = read if ids is None else read[list(ids)]
        read = read.to(x.device)
        windows = x.flatten(-2)[..., read]
        return windows.movedim(-3, 0)


class CropViews(Views):
    """Windows that are crops of the latent, in raster order.  ``rows[i]`` /
    ``cols[i]`` are the latent rows / columns window ``i`` reads (columns
    modulo the width with wrap-around); ``grid`` is ``(n_rows, n_cols)``;
    window ``i`` sits at grid cell ``divmod(i, n_cols)``."""

    is_crop = True

    def __init__(self, height: int, width: int, tops: list[int], lefts: list[int], window_h: int, window_w: int,
                 rows: torch.Tensor, cols: torch.Tensor, wrap_x: bool, pixel_weight: torch.Tensor | None = None):
        read = rows[:, :, None] * width + cols[:, None, :]
        super().__init__(height, width, window_h, window_w, read, wrap_x, (height, width, tuple(tops), tuple(lefts)))
        self.tops, self.lefts, self.rows, self.cols = tops, lefts, rows, cols
        # each window pixel's weight in the merge (h, w), the same for every window; None: all 1
        self.pixel_weight = pixel_weight

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.tops), len(self.lefts)

    def origin(self, i: int) -> tuple[int, int]:
        r, q = divmod(i, len(self.lefts))
        return self.tops[r], self.lefts[q]

    @property
    def covers_whole_latent(self) -> bool:
        """One window that is the latent as it is (not turned around a circle)."""
        return (len(self) == 1 and self.window_h == self.height and self.window_w == self.width
                and self.tops == [0] and self.lefts == [0])

    def cut(self, x: torch.Tensor, ids=None, scale: int = 1) -> torch.Tensor:
        """As :meth:`Views.cut`, as one gather of rows by columns: window
        pixel ``r`` covers rows ``r*scale ... r*scale + scale - 1``."""
        rows, cols = (self.rows, self.cols) if ids is None else (self.rows[list(ids)], self.cols[list(ids)])
        if scale != 1:
            fine = torch.arange(scale, device=rows.device)
            rows = (rows[:, :, None] * scale + fine).flatten(1)
            cols = (cols[:, :, None] * scale + fine).flatten(1)
        rows, cols = rows.to(x.device), cols.to(x.device)
        windows = x[..., rows[:, :, None], cols[:, None, :]]
        return windows.movedim(-3, 0)


def plan_views(plan: WindowPlan, height: int, width: int, step: int = 0,
               device: torch.device | str = "cpu") -> Views:
    if hasattr(plan, "views"):
        return plan.views(height, width, step, device)  # windows of another kind (sphere views)
    return crop_views(plan, height, width, step, device)


def crop_views(plan: WindowPlan, height: int, width: int, step: int = 0,
               device: torch.device | str = "cpu") -> CropViews:
    """The windows used at sampling step ``step`` (Cross Sampling group
    ``step mod c``, or the grid shifted for that step)."""
    group, row_offset, column_offset = placement(plan, height, width, step)
    window_h, window_w = min(plan.window, height), min(plan.window, width)
    if effective_shift(plan, width).shift == "none":
        shift = group * plan.cross_stride if group else 0
        tops = axis_starts(height, plan.window, plan.stride, shift)
        lefts = axis_starts(width, plan.window, plan.stride, shift, plan.wrap_x)
    else:
        tops = shifted_starts(height, plan.window, plan.stride, row_offset)
        if not plan.wrap_x:
            lefts = shifted_starts(width, plan.window, plan.stride, column_offset)
        elif width > plan.window:
            lefts = axis_starts(width, plan.window, plan.stride, column_offset, wrap=True)
        else:
            lefts = [column_offset]  # the one window, turned around the circle
    weight = feathering(window_h, window_w, plan.window - plan.stride, device) if plan.blend == "feathered" else None
    top = torch.tensor(tops, device=device)
    left = torch.tensor(lefts, device=device)
    row_of = top[:, None] + torch.arange(window_h, device=device)
    col_of = (left[:, None] + torch.arange(window_w, device=device)) % width
    n_rows, n_cols = len(tops), len(lefts)
    rows = row_of.repeat_interleave(n_cols, dim=0)
    cols = col_of.repeat(n_rows, 1)
    return CropViews(height, width, tops, lefts, window_h, window_w, rows, cols, plan.wrap_x, weight)


def feathering(window_h: int, window_w: int, overlap: int, device=None) -> torch.Tensor | None:
    """A window's merge weights (h, w) for windows that overlap their
    neighbours by ``overlap`` pixels: rising linearly over the overlap from
    each edge, 1 inside, so that where two windows meet each fades into the
    other instead of ending in a step.  Never 0: where a window is the only
    one (at the latent's edge) its value is kept whatever its weight."""
    if overlap <= 0:
        return None

    def ramp(size):
        x = torch.arange(size, dtype=torch.float64, device=device) + 0.5
        return torch.minimum(x, size - x).div(overlap).clamp(1.0 / (2 * overlap), 1.0)
    return (ramp(window_h)[:, None] * ramp(window_w)[None, :]).float()


def window_count(plan, height: int, width: int, steps: int) -> int:
    """Window evaluations over a whole run of ``steps`` model steps."""
    return sum(len(plan_views(plan, height, width, i)) for i in range(steps))
