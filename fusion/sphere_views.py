"""Sphere views: windows that are perspective cameras looking out from the
centre of a 360 panorama (SphereDiff, arXiv 2504.14396), on the
equirectangular latent ComfyUI samples.

A crop of an equirectangular latent is an ordinary picture only near the
horizon: at the top and bottom rows, single points of the sphere, a crop
shows a whole row of sky or ground, and the model draws a pinched swirl
there.  A camera view is an ordinary picture in every direction, so the
model sees the zenith as it would in a photo taken straight up.

The views are square, of the model's native window size, with one field of
view, pointed along a Fibonacci spiral from the zenith to the nadir (both
poles get a view centred on them) with as many views as it takes to cover
the sphere with the asked overlap.  Each step may turn the whole set about
the vertical axis (golden-ratio offsets, or c alternating sets: Cross
Sampling's idea), so that no direction stays on a view's edge.

There: each view pixel reads the latent pixel its direction falls in
(nearest neighbour).  Noise is never interpolated, which would average it
and hand the model less noise than its sigma.  A view pixel must also not
be smaller than a latent pixel, or neighbouring view pixels read the same
latent pixel and the model sees correlated noise: a pinhole view's corner
pixels span a third of its centre pixel's angle at 90 degrees, so the
latent must be finer than the views.  At most ``MAX_SHARED`` of the
neighbouring pixel pairs of any view may read one latent pixel (about a
latent 2.75 windows high at 90 degrees); a smaller latent is refused with
the size it needs.  Latent pixels that no view pixel reads keep their own
noise and get a prediction from the map back.

Back: every latent pixel takes the views whose frame holds its direction,
each read by bilinear interpolation at the exact place the direction lands
(a prediction is smooth, so it may be interpolated), weighted by the solid
angle its view pixel spans there (cos^3 of the angle off the view's axis:
SphereDiff's distortion-aware weights) and faded out over the outer
``overlap`` of the frame so that view edges leave no step.  The weights of
every latent pixel sum to 1, at the poles and the seam as anywhere.

Merging predictions is still exact with respect to the sampler: the map back
is a per-pixel affine combination of the views' predictions, which commutes
with a first-order step (see :mod:`.panorama`).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import torch

from .sphere import camera_rays, equirect_directions, equirect_pixels, lon_lat, rotation
from .windows import LatentGrid, Views

ROTATIONS = ("golden", "alternate", "none")
FOV_RANGE = (30.0, 120.0)  # degrees: wider pinhole views stretch their corners past what a model draws well
# The most neighbouring pixel pairs of a view that may read one latent pixel
# (their noise is then one value: a correlation of that fraction).
MAX_SHARED = 0.02
NOISE_PROBES = 48  # view directions the noise check looks in, whatever the view count
DEFAULT_FOV = 90.0
MAX_VIEWS = 400
GOLDEN_ANGLE = 180.0 * (3.0 - math.sqrt(5.0))  # degrees between consecutive Fibonacci spiral points
GOLDEN_FRACTION = (math.sqrt(5.0) - 1.0) / 2.0
COVERAGE_SAMPLES = 20000  # directions the coverage of a view set is checked on


@dataclass(frozen=True)
class SphereSettings:
    """Sphere views as the node takes them: ``window`` in image pixels (0 =
    the model's native size), ``fov`` in degrees (0 = 90), ``view_count``
    (0 = as many as cover the sphere with ``overlap``)."""

    window: int = 0
    fov: float = 0.0
    overlap: float = 0.25
    view_count: int = 0
    rotation: str = "golden"
    cross_count: int = 2

    def latent_plan(self, grid: LatentGrid) -> "SpherePlan":
        return sphere_plan(self, grid)


@dataclass(frozen=True)
class SpherePlan:
    """Sphere views on a model's latent grid (``window`` in latent pixels)."""

    window: int
    fov: float = 0.0
    overlap: float = 0.25
    view_count: int = 0
    rotation: str = "golden"
    cross_count: int = 2
    unit: int = 1  # latent pixels per model token
    min_window: int = 8  # the smallest window the model takes, latent pixels
    wrap_x = True  # the latent's columns are a circle
    cross_stride = None

    def check(self, height: int, width: int, scale: int = 8) -> None:
        """Raises ValueError, naming the input and the fix, for a latent the
        views cannot sample (``scale``: image pixels per latent pixel, for
        the message)."""
        check_equirect(height, width, self.window, scale)
        fov = self.fov_for(height)
        check_noise(self.window, height, fov, scale, self.unit, self.min_window)
        self.count_for(fov)

    def fov_for(self, height: int) -> float:
        return resolve_fov(self.fov, self.window, height)

    def count_for(self, fov: float) -> int:
        if self.view_count:
            check_covered(view_cameras(self.view_count, 0.0), fov, 0.0)
            return self.view_count
        return views_to_cover(fov, self.overlap)

    def turn(self, count: int, step: int, width: int) -> int:
        """How far the view set is turned at ``step``, in whole latent
        columns: a turn by whole columns maps the latent's pixels onto each
        other, so a step's views are the unturned ones with their columns
        moved (:meth:`SphereViews.turned`), and nothing is projected again."""
        if self.rotation == "golden":
            fraction = step * GOLDEN_FRACTION % 1.0
        elif self.rotation == "alternate":
            spacing = math.sqrt(4 * math.pi / count) / (2 * math.pi)  # of a turn, between neighbouring views
            fraction = (step % self.cross_count) * spacing / self.cross_count
        else:
            fraction = 0.0
        return int(fraction * width) % width

    def placement(self, height: int, width: int, step: int) -> tuple:
        fov = self.fov_for(height)
        count = self.count_for(fov)
        return "sphere", fov, count, self.turn(count, step, width)

    def views(self, height: int, width: int, step: int = 0, device: torch.device | str = "cpu") -> "SphereViews":
        check_equirect(height, width, self.window)
        _, fov, count, columns = self.placement(height, width, step)
        return unturned_views(height, width, self.window, fov, self.overlap, count, str(device)).turned(columns)


def validate_sphere(settings: SphereSettings) -> None:
    resolve_fov(settings.fov, 0, 0)
    if not 0.0 <= settings.overlap < 0.5:
        raise ValueError(f"overlap = {settings.overlap} must lie in [0, 0.5): the fraction of a view's half-width "
                         f"shared with its neighbours and faded over (0.25 is the default)")
    if settings.rotation not in ROTATIONS:
        raise ValueError(f"rotation = {settings.rotation!r}: use one of {list(ROTATIONS)}")
    if settings.view_count and not 2 <= settings.view_count <= MAX_VIEWS:
        raise ValueError(f"view_count = {settings.view_count}: use 2 to {MAX_VIEWS}, or 0 for as many as cover "
                         f"the sphere")
    if settings.cross_count < 1:
        raise ValueError(f"cross_count = {settings.cross_count} must be at least 1")


def sphere_plan(settings: SphereSettings, grid: LatentGrid) -> SpherePlan:
    validate_sphere(settings)
    window = grid.to_latent(settings.window, "window_size") if settings.window else grid.native
    if window < grid.min_window:
        raise ValueError(f"window_size {settings.window} px is too small: use at least "
                         f"{grid.min_window * grid.scale} px (0 = the model's native size)")
    return SpherePlan(window, settings.fov, settings.overlap, settings.view_count, settings.rotation,
                      settings.cross_count, grid.patch, grid.min_window)


def check_equirect(height: int, width: int, window: int, scale: int = 8) -> None:
    """``scale``: image pixels per latent pixel, for the message."""
    if width != 2 * height:
        raise ValueError(
            f"latent_image is {height * scale}x{width * scale} px ({width / height:.3g}:1): sphere views sample a "
            f"whole 360 degree sphere, an equirectangular image twice as wide as high; make it "
            f"{width // 2 * scale} px high or {2 * height * scale} px wide (Empty 360° Panorama Latent), or use "
            f"Panorama Windows with wrap_around for a band around the horizon")


def shared_fraction(reads: torch.Tensor) -> float:
    """The largest fraction, over views, of neighbouring pixel pairs (along a
    row or a column) that read the same latent pixel."""
    across = (reads[:, :, 1:] == reads[:, :, :-1]).double().mean((1, 2))
    down = (reads[:, 1:] == reads[:, :-1]).double().mean((1, 2))
    return float(torch.maximum(across, down).max())


@functools.lru_cache(maxsize=256)
def noise_sharing(window: int, height: int, fov: float) -> float:
    """``shared_fraction`` of views looking in ``NOISE_PROBES`` directions
    from the zenith to the nadir: the worst a view set of any count meets."""
    return shared_fraction(view_reads(view_cameras(NOISE_PROBES), fov, window, height))


def needed_height(window: int, fov: float) -> int:
    """The lowest latent height (latent pixels, in steps of an eighth of the
    window, from two windows) at which views share no more than
    ``MAX_SHARED``."""
    height = 2 * window
    while noise_sharing(window, height, fov) > MAX_SHARED and height < 16 * window:
        height += max(window // 8, 1)
    return height


def resolve_fov(fov: float, window: int, height: int) -> float:
    """The views' field of view (0: the default), refused where the latent is
    too coarse for views of this size to read native noise."""
    fov = fov or DEFAULT_FOV
    lo, hi = FOV_RANGE
    if not lo <= fov <= hi:
        raise ValueError(f"fov = {fov} degrees is out of range: use {lo:.0f} to {hi:.0f} (0 picks {DEFAULT_FOV:.0f})")
    return fov


def check_noise(window: int, height: int, fov: float, scale: int = 8, unit: int = 1, min_window: int = 8) -> None:
    # below two windows no field of view keeps the noise (the corners of a
    # pinhole view span a third of its centre): refused before projecting
    shared = 1.0 if height < 2 * window else noise_sharing(window, height, fov)
    if shared <= MAX_SHARED:
        return
    # searched where projecting is cheap, else the ratio searched for 512 and 1024 px views
    rows = needed_height(window, fov) if window <= 256 else -(-window * 11 // 4 // unit) * unit
    smaller = height * window // rows // unit * unit
    what = (f"{100 * shared:.1f} % of neighbouring view pixels would read the same latent pixel" if shared < 1
            else "the 360 is less than two views high")
    instead = f", or set window_size to {smaller * scale} px or less" if smaller >= min_window else ""
    raise ValueError(
        f"latent_image is {height * scale}x{2 * height * scale} px, too small for sphere views of {window * scale} px "
        f"(window_size) and {fov:.0f} degrees: {what}, and the model would see smoother noise than its sigma. Make the 360 at least "
        f"{rows * scale}x{2 * rows * scale} px{instead}")


def view_cameras(count: int, yaw_offset: float = 0.0) -> torch.Tensor:
    """(count, 3, 3) camera-to-world rotations (float64) looking along a
    Fibonacci spiral from the zenith (view 0) to the nadir (the last view),
    turned by ``yaw_offset`` degrees about the vertical axis."""
    cameras = []
    for k in range(count):
        y = 1.0 - 2.0 * k / (count - 1)
        pitch = math.degrees(math.asin(max(-1.0, min(1.0, y))))
        yaw = (k * GOLDEN_ANGLE + yaw_offset + 180.0) % 360.0 - 180.0
        cameras.append(rotation(yaw, pitch, 0.0, dtype=torch.float64))
    return torch.stack(cameras)


def camera_coords(directions: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
    """World directions (..., 3) in each camera's frame: (n, ..., 3)."""
    return torch.einsum("...k,nkj->n...j", directions, cameras.to(directions))


def frame_position(coords: torch.Tensor, fov: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(largest of |x/z|, |y/z| over tan(fov/2): 1 at the frame's edge, valid
    where in front), (in front of the camera)."""
    x, y, z = coords.unbind(-1)
    front = z > 1e-6
    t = math.tan(math.radians(fov) / 2)
    reach = torch.maximum(x.abs(), y.abs()) / (z.clamp_min(1e-6) * t)
    return reach, front


def fibonacci_directions(count: int) -> torch.Tensor:
    k = torch.arange(count, dtype=torch.float64) + 0.5
    y = 1 - 2 * k / count
    r = (1 - y * y).sqrt()
    phi = k * math.radians(GOLDEN_ANGLE)
    return torch.stack([r * torch.sin(phi), y, r * torch.cos(phi)], -1)


def uncovered(cameras: torch.Tensor, fov: float, overlap: float,
              directions: torch.Tensor | None = None) -> torch.Tensor:
    """The directions (M, 3) that no view holds within the inner
    ``1 - overlap`` of its frame."""
    directions = fibonacci_directions(COVERAGE_SAMPLES) if directions is None else directions
    reach, front = frame_position(camera_coords(directions, cameras), fov)
    held = (front & (reach <= 1.0 - overlap)).any(0)
    return directions[~held]


def check_covered(cameras: torch.Tensor, fov: float, overlap: float) -> None:
    left = uncovered(cameras, fov, overlap)
    if len(left):
        lon, lat = lon_lat(left)
        where = sorted({(round(math.degrees(a) / 15) * 15, round(math.degrees(b) / 15) * 15)
                        for a, b in zip(lon.tolist(), lat.tolist())}, key=lambda d: (-d[1], d[0]))
        shown = ", ".join(f"yaw {a:+d} pitch {b:+d}" for a, b in where[:6])
        more = f" and {len(where) - 6} more" if len(where) > 6 else ""
        needed = views_to_cover(fov, overlap)
        raise ValueError(
            f"view_count = {len(cameras)} views of {fov:.0f} degrees leave {100 * len(left) / COVERAGE_SAMPLES:.1f} % "
            f"of the sphere uncovered, around {shown}{more} (degrees): use view_count >= {needed} (0 picks it), or a "
            f"wider fov")


@functools.lru_cache(maxsize=64)
def views_to_cover(fov: float, overlap: float) -> int:
    """The fewest views of the spiral that hold every direction within the
    inner ``1 - overlap`` of a frame."""
    half = math.radians(fov) / 2 * (1 - overlap)
    # a square of half-angle a covers at most the cap of radius a*sqrt(2)
    count = max(2, math.floor(4 * math.pi / (2 * math.pi * (1 - math.cos(min(half * math.sqrt(2), math.pi))))))
    directions = fibonacci_directions(COVERAGE_SAMPLES)
    while count <= MAX_VIEWS:
        if not len(uncovered(view_cameras(count), fov, overlap, directions)):
            return count
        count += 1
    raise ValueError(f"fov = {fov:.0f} degrees with overlap {overlap}: more than {MAX_VIEWS} views would be needed; "
                     f"use a wider fov or less overlap")


def nearest_pixels(directions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Flat index of the equirectangular pixel each direction falls in."""
    col, row = equirect_pixels(directions, height, width)
    row = row.round().long().clamp(0, height - 1)
    col = col.round().long() % width
    return row * width + col


def view_reads(cameras: torch.Tensor, fov: float, window: int, height: int, scale: int = 1) -> torch.Tensor:
    """(n, window*scale, window*scale): the flat index of the latent pixel
    (of a ``height*scale`` x ``2*height*scale`` latent) each view pixel
    reads."""
    size = window * scale
    rays = camera_rays(size, size, fov, dtype=torch.float64)
    directions = torch.einsum("hwk,njk->nhwj", rays, cameras)
    return nearest_pixels(directions, height * scale, 2 * height * scale)


def turn_columns(index: torch.Tensor, width: int, columns: int) -> torch.Tensor:
    """Flat indices into a latent ``width`` wide, moved ``columns`` to the
    right around the circle."""
    return index - index % width + (index % width + columns) % width


@functools.lru_cache(maxsize=16)
def unturned_views(height: int, width: int, window: int, fov: float, overlap: float, count: int,
                   device: str) -> "SphereViews":
    return SphereViews(height, width, window, fov, overlap, count, 0, device)


class SphereViews(Views):
    """One step's sphere views (see the module's docstring): ``count``
    square views of ``window`` latent pixels and ``fov`` degrees along the
    spiral, turned by ``columns`` latent columns about the vertical axis."""

    def __init__(self, height: int, width: int, window: int, fov: float, overlap: float, count: int,
                 columns: int = 0, device: torch.device | str = "cpu"):
        self.fov, self.overlap, self.device, self.columns = fov, overlap, device, columns
        self.cameras = view_cameras(count, columns * 360.0 / width)
        read = view_reads(self.cameras, fov, window, height).to(device)
        super().__init__(height, width, window, window, read, True,
                         ("sphere", height, width, window, fov, overlap, count, columns))
        self._reads = {1: read}
        self._links: dict = {}
        self.blend = self.map_back()

    def turned(self, columns: int) -> "SphereViews":
        """These views turned by ``columns`` more latent columns: the same
        maps with their latent columns moved (exact: a turn by whole columns
        maps latent pixels onto latent pixels); Crop Fusion's links, which
        only relate views to each other, are shared."""
        if columns % self.width == 0:
            return self
        out = copy.copy(self)
        out.columns = (self.columns + columns) % self.width
        out.cameras = view_cameras(len(self), out.columns * 360.0 / self.width)
        out.key = (*self.key[:-1], out.columns)
        out.read = turn_columns(self.read, self.width, columns)
        out._reads = {scale: turn_columns(read, self.width * scale, columns * scale)
                      for scale, read in self._reads.items()}
        target, source, weight = self.blend
        out.blend = (turn_columns(target, self.width, columns), source, weight)
        out._unturned = getattr(self, "_unturned", self)
        return out

    def read_at(self, scale: int) -> torch.Tensor:
        if scale not in self._reads:
            base = getattr(self, "_unturned", self)
            if base is self:
                self._reads[scale] = view_reads(self.cameras, self.fov, self.window_h, self.height, scale).to(self.device)
            else:
                turn = (self.columns - base.columns) % self.width
                self._reads[scale] = turn_columns(base.read_at(scale), self.width * scale, turn * scale)
        return self._reads[scale]

    def frame(self, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For directions (..., 3): each view's (column, row) where they land
        (n, ..., 2), whether its frame holds them, and their weight there."""
        coords = camera_coords(directions, self.cameras)
        reach, front = frame_position(coords, self.fov)
        x, y, z = coords.unbind(-1)
        focal = (self.window_w / 2) / math.tan(math.radians(self.fov) / 2)
        z = z.clamp_min(1e-6)
        place = torch.stack([x / z * focal + self.window_w / 2 - 0.5, -y / z * focal + self.window_h / 2 - 0.5], -1)
        held = front & (reach <= 1.0)
        # the solid angle a view pixel spans falls as cos^3 off the axis; the
        # outer `overlap` of the frame fades to 0 so that a view's edge leaves no step
        fade = ((1.0 - reach) / self.overlap).clamp(0.0, 1.0) if self.overlap > 0 else torch.ones_like(reach)
        weight = torch.where(held, (z * z * z) * fade.clamp_min(1e-6), torch.zeros_like(z))
        return place, held, weight

    def map_back(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target, source, weight): every latent pixel from the bilinear taps
        of the views that hold it, the weights summing to 1 per pixel."""
        h, w = self.window_h, self.window_w
        directions = equirect_directions(self.height, self.width, dtype=torch.float64).reshape(-1, 3)
        place, held, weight = self.frame(directions)
        total = weight.sum(0)
        if not bool((total > 0).all()):
            raise ValueError("sphere views leave latent pixels without a view: use more views or more overlap")
        view, pixel = held.nonzero(as_tuple=True)
        col, row = place[view, pixel].unbind(-1)
        col, row = col.clamp(0, w - 1), row.clamp(0, h - 1)
        col0, row0 = col.floor().clamp(max=w - 2), row.floor().clamp(max=h - 2)
        fc, fr = col - col0, row - row0
        share = weight[view, pixel] / total[pixel]
        targets, sources, weights = [], [], []
        for dr, dc, part in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            targets.append(pixel)
            sources.append(view * h * w + (row0.long() + dr) * w + col0.long() + dc)
            weights.append(share * part)
        return (torch.cat(targets).to(self.device), torch.cat(sources).to(self.device),
                torch.cat(weights).float().to(self.device))

    def fusion_links(self, dtype: torch.dtype, feather: bool = False) -> list:
        """Crop Fusion on views: each view's neighbours are the views before it
        (zenith to nadir) whose frame holds some of its pixels' directions;
        on those pixels it sees the neighbour's nearest pixel, weighted 0/1,
        or by the neighbour's fade towards its edge (``feather``).  Made once
        for all turns of the set."""
        base = getattr(self, "_unturned", self)
        if base is not self:
            return base.fusion_links(dtype, feather)
        if (dtype, feather) not in self._links:
            self._links[(dtype, feather)] = self.make_links(dtype, feather)
        return self._links[(dtype, feather)]

    def make_links(self, dtype: torch.dtype, feather: bool) -> list:
        from .crop_fusion import Link

        h, w = self.window_h, self.window_w
        rays = camera_rays(h, w, self.fov, dtype=torch.float64)
        directions = torch.einsum("hwk,njk->nhwj", rays, self.cameras)
        links = []
        for i in range(len(self)):
            place, held, weight = self.frame(directions[i])
            found = []
            for n in range(i):
                if not bool(held[n].any()):
                    continue
                col = place[n, ..., 0].round().long().clamp(0, w - 1)
                row = place[n, ..., 1].round().long().clamp(0, h - 1)
                mask = weight[n] / weight[n].amax() if feather else held[n].double()
                found.append(Link(n, (row * w + col).to(self.device), mask.to(dtype=dtype, device=self.device)))
            links.append(found)
        return links


