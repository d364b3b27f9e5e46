"""Views of a 360 image: cube faces and perspective views cut out of an
equirectangular image, and cube faces put back together into one.

Every conversion here is the same two steps: a direction on the unit sphere
for each output pixel, then the input read where that direction lands
(``torch.nn.functional.grid_sample``).  No Python loop runs over pixels, and
every function takes a batch.

Conventions (the nodes and the README say the same):

* Images are (B, C, H, W), torch's layout (the nodes permute ComfyUI's
  (B, H, W, C) IMAGE).  The result has the input's device and dtype; the
  coordinates are worked out in float32 at least, since half precision
  cannot address the pixels of a 4096 px wide panorama (11-bit mantissa).
* Directions are unit vectors (x, y, z): x to the right, y up, z forward, the
  forward direction being the centre of the equirectangular image.
* Equirectangular: longitude ``lon = atan2(x, z)`` runs from -180 degrees at
  the left edge through 0 at the centre to +180 at the right edge (so +90
  degrees, to the right, is at 3/4 of the width); latitude ``lat = asin(y)``
  is +90 at the top row and -90 at the bottom row.  The left and right edges
  are the same meridian; the top and bottom rows are the poles.
* Pixel coordinates are (col, row) with pixel centres on integers, i.e. the
  image's left edge is at col = -0.5.
* A camera looks along yaw (degrees, positive turns right), pitch (positive
  looks up), roll (positive rolls the camera clockwise: its up leans right,
  so the picture's horizon tilts counter-clockwise) with a horizontal field of
  view ``fov`` (degrees).
* Cube faces come in the order of :data:`FACES`: front, right, back, left,
  up, down.  Each face is the 90-degree square view at yaw 0, 90, 180, -90
  (pitch 0), and at pitch +90 / -90 (yaw 0): the up face's bottom edge meets
  the front face's top edge, the down face's top edge the front face's
  bottom edge (the common "horizon" convention).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .wrap import equirect_band, wrap_pad

FACES = ("front", "right", "back", "left", "up", "down")
# (yaw, pitch) of each face's camera, in FACES order.
FACE_ANGLES = ((0.0, 0.0), (90.0, 0.0), (180.0, 0.0), (-90.0, 0.0), (0.0, 90.0), (0.0, -90.0))
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# Pixels of context around an image being sampled: bicubic reads 2 beyond
# the pixel before and after a coordinate.
SAMPLE_PADDING = 2
# Output pixels whose coordinates are worked out at once (bounds the memory of large outputs).
CHUNK_PIXELS = 1 << 22


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype coordinates and sampling run in: float32 at least."""
    return dtype if dtype == torch.float64 else torch.float32


def rotation(yaw: float, pitch: float, roll: float = 0.0, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The 3x3 matrix taking camera coordinates (x right, y up, z forward) to
    world coordinates: roll about the camera's forward axis first, then pitch
    about its right axis, then yaw about the world's up axis.  Its columns
    are the camera's right, up and forward directions in the world."""
    a, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    # Positive yaw turns forward (z) towards the right (x).
    yaw_m = [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]
    # Positive pitch turns forward (z) towards up (y).
    pitch_m = [[1.0, 0.0, 0.0], [0.0, math.cos(p), math.sin(p)], [0.0, -math.sin(p), math.cos(p)]]
    # Positive roll turns up (y) towards the right (x): a clockwise roll.
    roll_m = [[math.cos(r), math.sin(r), 0.0], [-math.sin(r), math.cos(r), 0.0], [0.0, 0.0, 1.0]]
    m = [torch.tensor(x, dtype=torch.float64) for x in (yaw_m, pitch_m, roll_m)]
    # Composed in float64 so that right angles stay exact enough to land on pixel centres.
    return (m[0] @ m[1] @ m[2]).to(device=device, dtype=dtype)


def camera_rays(height: int, width: int, fov: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """(height, width, 3) unit directions through the pixel centres of a
    pinhole camera looking along +z, ``fov`` degrees across its width
    (square pixels, so the vertical field of view follows from the aspect)."""
    focal = (width / 2) / math.tan(math.radians(fov) / 2)
    cols = torch.arange(width, device=device, dtype=dtype) + 0.5 - width / 2
    rows = torch.arange(height, device=device, dtype=dtype) + 0.5 - height / 2
    x = (cols / focal).expand(height, width)
    y = (-rows / focal)[:, None].expand(height, width)  # rows go down, y goes up
    rays = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    return rays / rays.norm(dim=-1, keepdim=True)


def view_directions(yaw: float, pitch: float, roll: float, fov: float, height: int, width: int, *, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """(height, width, 3) world directions seen by each pixel of the camera
    at (yaw, pitch, roll) with horizontal field of view ``fov``."""
    rays = camera_rays(height, width, fov, device=device, dtype=dtype)
    return rays @ rotation(yaw, pitch, roll, device=device, dtype=dtype).T


def cube_directions(size: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """(6, size, size, 3) world directions of the cube faces' pixels, in
    :data:`FACES` order: each face is a 90-degree square camera."""
    return torch.stack([view_directions(yaw, pitch, 0.0, 90.0, size, size, device=device, dtype=dtype)
                        for yaw, pitch in FACE_ANGLES])


def lon_lat(directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Longitude (0 forward, positive to the right) and latitude (positive up)
    in radians of unit directions (..., 3)."""
    x, y, z = directions.unbind(-1)
    return torch.atan2(x, z), torch.asin(y.clamp(-1.0, 1.0))


def equirect_directions(height: int, width: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """(height, width, 3) directions of an equirectangular image's pixel centres."""
    lon = ((torch.arange(width, device=device, dtype=dtype) + 0.5) / width - 0.5) * 2 * math.pi
    lat = (0.5 - (torch.arange(height, device=device, dtype=dtype) + 0.5) / height) * math.pi
    lon, lat = lon.expand(height, width), lat[:, None].expand(height, width)
    return torch.stack([torch.cos(lat) * torch.sin(lon), torch.sin(lat), torch.cos(lat) * torch.cos(lon)], dim=-1)


def equirect_pixels(directions: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(col, row) in an equirectangular image of ``height`` x ``width`` where
    the directions land.  The column wraps into [-0.5, width - 0.5): the seam
    is a place like any other."""
    lon, lat = lon_lat(directions)
    col = (lon / (2 * math.pi) + 0.5) * width - 0.5
    row = (0.5 - lat / math.pi) * height - 0.5
    return torch.remainder(col + 0.5, width) - 0.5, row


def sphere_pad(equirect: torch.Tensor, pixels: int) -> torch.Tensor:
    """An equirectangular image (..., H, W) with ``pixels`` rows above and
    below and columns left and right from where they are on the sphere:
    across the seam the opposite edge; across a pole the rows beside the pole
    on the other meridian (half a turn round, upside down).  Interpolation
    near the seam and the poles then reads true neighbours, not zeros."""
    if pixels <= 0:
        return equirect
    width = equirect.shape[-1]
    top = torch.roll(equirect[..., :pixels, :].flip(-2), width // 2, dims=-1)
    bottom = torch.roll(equirect[..., -pixels:, :].flip(-2), width // 2, dims=-1)
    return wrap_pad(torch.cat([top, equirect, bottom], dim=-2), pixels, dim=-1)


def sample(image: torch.Tensor, col: torch.Tensor, row: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``image`` (B, C, H, W) read at pixel coordinates ``col``, ``row``
    (both (h, w), shared by the batch): (B, C, h, w).  Outside the image the
    edge pixels are repeated; callers pad with true neighbours first."""
    if mode not in INTERPOLATIONS:
        raise ValueError(f"interpolation = {mode!r}: use one of {list(INTERPOLATIONS)}")
    height, width = image.shape[-2:]
    # grid_sample's (x, y) in [-1, 1] spans the outer edges of the image (align_corners=False).
    grid = torch.stack([(2 * col + 1) / width - 1, (2 * row + 1) / height - 1], dim=-1)
    grid = grid.to(image.dtype).expand(image.shape[0], *grid.shape)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=False)


def equirect_to_directions(equirect: torch.Tensor, directions: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """The equirectangular images (B, C, H, W) seen along ``directions``
    (h, w, 3): (B, C, h, w)."""
    dtype = work_dtype(equirect.dtype)
    height, width = equirect.shape[-2:]
    col, row = equirect_pixels(directions.to(equirect.device, dtype), height, width)
    padded = sphere_pad(equirect.to(dtype), SAMPLE_PADDING)
    return sample(padded, col + SAMPLE_PADDING, row + SAMPLE_PADDING, mode).to(equirect.dtype)


def equirect_to_perspective(equirect: torch.Tensor, yaw: float, pitch: float, roll: float, fov: float, height: int,
                            width: int, mode: str = "bilinear") -> torch.Tensor:
    """The perspective view (B, C, height, width) of equirectangular images
    (B, C, H, W) from a camera at (yaw, pitch, roll), ``fov`` degrees across."""
    directions = view_directions(yaw, pitch, roll, fov, height, width, device=equirect.device,
                                 dtype=work_dtype(equirect.dtype))
    return equirect_to_directions(equirect, directions, mode)


def perspective_to_equirect(view: torch.Tensor, yaw: float, pitch: float, roll: float, fov: float, height: int,
                            width: int, mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """A perspective picture (B, C, h, w) taken at (yaw, pitch, roll) with
    ``fov`` degrees across, put on an equirectangular image of ``height`` x
    ``width``: (B, C, height, width), zero where the camera does not see,
    and the (height, width) 0/1 mask of where it does.  The inverse of
    :func:`equirect_to_perspective` inside the view."""
    dtype = work_dtype(view.dtype)
    h, w = view.shape[-2:]
    directions = equirect_directions(height, width, device=view.device, dtype=dtype)
    camera = directions @ rotation(yaw, pitch, roll, device=view.device, dtype=dtype)  # world -> camera
    x, y, z = camera.unbind(-1)
    focal = (w / 2) / math.tan(math.radians(fov) / 2)
    depth = z.clamp_min(1e-6)
    col, row = x / depth * focal + w / 2 - 0.5, -y / depth * focal + h / 2 - 0.5
    seen = (z > 1e-6) & (col >= -0.5) & (col <= w - 0.5) & (row >= -0.5) & (row <= h - 0.5)
    placed = sample(view.to(dtype), col, row, mode) * seen.to(dtype)
    return placed.to(view.dtype), seen.to(view.dtype)


def direction_mask(height: int, width: int, pitch_from: float, pitch_to: float, yaw: float = 0.0,
                   yaw_span: float = 360.0, feather: float = 0.0) -> torch.Tensor:
    """(height, width) weights of an equirectangular image's pixels whose
    direction lies between two pitches (degrees, -90 to 90) and within
    ``yaw_span`` degrees around ``yaw``, fading over ``feather`` degrees
    (half inside, half outside the edge).  Angles are measured on the
    sphere, so a band above a pitch is a cap around the zenith."""
    lon = ((torch.arange(width, dtype=torch.float64) + 0.5) / width - 0.5) * 360.0
    lat = (0.5 - (torch.arange(height, dtype=torch.float64) + 0.5) / height) * 180.0

    def inside(distance: torch.Tensor) -> torch.Tensor:  # degrees inside the edge (negative: outside)
        return (distance / feather + 0.5).clamp(0.0, 1.0) if feather > 0 else (distance >= 0).double()

    rows = inside(torch.minimum(lat - pitch_from, pitch_to - lat))
    if yaw_span >= 360.0:
        return rows[:, None].expand(height, width).float().clone()
    off = (lon - yaw + 180.0) % 360.0 - 180.0
    columns = inside(yaw_span / 2 - off.abs())
    return (rows[:, None] * columns[None, :]).float()


def equirect_to_cube(equirect: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """The six cube faces (B, 6, C, size, size) of equirectangular images
    (B, C, H, W), in :data:`FACES` order."""
    # One face at a time: a sixth of the coordinates in memory at once (large faces).
    return torch.stack([equirect_to_perspective(equirect, yaw, pitch, 0.0, 90.0, size, size, mode)
                        for yaw, pitch in FACE_ANGLES], dim=1)


def cube_face_pixels(directions: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(face, col, row): the face (index into :data:`FACES`) each direction
    (..., 3) meets first, and where on that face of ``size`` px it lands."""
    rotations = [rotation(yaw, pitch, device=directions.device, dtype=directions.dtype) for yaw, pitch in FACE_ANGLES]
    # A ray leaves the cube through the face whose forward axis it points along most.
    forward = torch.stack([r[:, 2] for r in rotations])
    face = (directions @ forward.T).argmax(dim=-1)
    col = torch.zeros_like(directions[..., 0])
    row = torch.zeros_like(col)
    for index, r in enumerate(rotations):  # six faces, each a plain projection
        local = directions @ r  # camera coordinates: R^T d
        # Projected onto the face's plane z = 1, whose square spans [-1, 1] both ways.
        z = local[..., 2].clamp_min(1e-12)
        on = face == index
        col = torch.where(on, (local[..., 0] / z + 1) / 2 * size - 0.5, col)
        row = torch.where(on, (1 - local[..., 1] / z) / 2 * size - 0.5, row)
    return face, col.clamp(-0.5, size - 0.5), row.clamp(-0.5, size - 0.5)


def stack_faces(faces: torch.Tensor, pixels: int) -> torch.Tensor:
    """Faces (B, 6, C, N, N) as one tall image (B, C, 6 (N + 2 pixels),
    N + 2 pixels), each face with a margin of its own edge pixels, so that
    interpolation next to a face's edge never reads the face above or below.
    Face f's pixel (col, row) is the tall image's (col + pixels,
    row + pixels + f (N + 2 pixels))."""
    batch, _, channels, size, _ = faces.shape
    padded = F.pad(faces.flatten(0, 1), (pixels, pixels, pixels, pixels), mode="replicate")
    return padded.reshape(batch, 6, channels, size + 2 * pixels, size + 2 * pixels).transpose(1, 2).flatten(2, 3)


def sample_cube(faces: torch.Tensor, directions: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Cube faces (B, 6, C, N, N) seen along ``directions`` (h, w, 3): each
    direction reads the face it meets, (B, C, h, w)."""
    size, pad = faces.shape[-1], SAMPLE_PADDING
    face, col, row = cube_face_pixels(directions, size)
    return sample(stack_faces(faces, pad), col + pad, row + pad + face * (size + 2 * pad), mode)


def cube_pad(faces: torch.Tensor, pixels: int) -> torch.Tensor:
    """Faces (B, 6, C, N, N) grown by ``pixels`` on every side with what lies
    beyond their edges on the neighbouring faces (B, 6, C, N + 2 pixels, ...):
    interpolation across a cube edge then reads both faces.  Each grown face
    is the same camera with a wider field of view."""
    size = faces.shape[-1]
    fov = math.degrees(2 * math.atan((size + 2 * pixels) / size))
    directions = torch.stack([view_directions(yaw, pitch, 0.0, fov, size + 2 * pixels, size + 2 * pixels,
                                              device=faces.device, dtype=faces.dtype)
                              for yaw, pitch in FACE_ANGLES])
    grown = sample_cube(faces, directions.flatten(0, 1), "bilinear")
    grown = grown.reshape(faces.shape[0], faces.shape[2], 6, size + 2 * pixels, size + 2 * pixels).transpose(1, 2)
    # The face itself unchanged; only its margin comes from the neighbours.
    grown[..., pixels:pixels + size, pixels:pixels + size] = faces
    return grown


def cube_to_equirect(faces: torch.Tensor, height: int, width: int, mode: str = "bilinear") -> torch.Tensor:
    """The equirectangular images (B, C, height, width) of cube faces
    (B, 6, C, N, N) in :data:`FACES` order.  Each pixel reads the one face
    its direction meets, grown by its neighbours' pixels beyond its edges
    (:func:`cube_pad`), so a pixel next to a cube edge interpolates across it."""
    dtype = work_dtype(faces.dtype)
    size, pad = faces.shape[-1], SAMPLE_PADDING
    # The grown faces hold face pixel (col, row) at (col + pad, row + pad); beyond them, their edge repeats.
    tall = stack_faces(cube_pad(faces.to(dtype), pad), pad)
    directions = equirect_directions(height, width, device=faces.device, dtype=dtype)
    out = faces.new_empty(faces.shape[0], faces.shape[2], height, width, dtype=dtype)
    # A band of rows at a time: the coordinates of a large panorama need several times its size.
    rows = max(1, CHUNK_PIXELS // width)
    for start in range(0, height, rows):
        face, col, row = cube_face_pixels(directions[start:start + rows], size)
        out[..., start:start + rows, :] = sample(tall, col + 2 * pad, row + 2 * pad + face * (size + 4 * pad), mode)
    return out.to(faces.dtype)


# Where each face sits in the cross (dice) layout, in face sizes (col, row):
#        up
#  left front right back
#        down
CROSS_CELLS = {"front": (1, 1), "right": (2, 1), "back": (3, 1), "left": (0, 1), "up": (1, 0), "down": (1, 2)}


def faces_to_cross(faces: torch.Tensor) -> torch.Tensor:
    """Cube faces (B, 6, C, N, N) laid out as a cross (B, C, 3N, 4N), the
    unused cells zero."""
    batch, _, channels, size, _ = faces.shape
    cross = faces.new_zeros(batch, channels, 3 * size, 4 * size)
    for index, name in enumerate(FACES):  # six faces, not pixels
        col, row = CROSS_CELLS[name]
        cross[..., row * size:(row + 1) * size, col * size:(col + 1) * size] = faces[:, index]
    return cross


def cross_to_faces(cross: torch.Tensor) -> torch.Tensor:
    """The faces (B, 6, C, N, N) of a cross layout (B, C, 3N, 4N)."""
    size = cross.shape[-1] // 4
    return torch.stack([cross[..., row * size:(row + 1) * size, col * size:(col + 1) * size]
                        for col, row in (CROSS_CELLS[name] for name in FACES)], dim=1)


def faces_to_strip(faces: torch.Tensor) -> torch.Tensor:
    """Cube faces (B, 6, C, N, N) side by side in :data:`FACES` order: (B, C, N, 6N)."""
    return torch.cat(faces.unbind(1), dim=-1)


def strip_to_faces(strip: torch.Tensor) -> torch.Tensor:
    """The faces (B, 6, C, N, N) of a strip (B, C, N, 6N)."""
    return torch.stack(strip.chunk(6, dim=-1), dim=1)


def sphere_from_band(image: torch.Tensor) -> torch.Tensor:
    """A panorama (..., H, W) covering 360 degrees across but less than 180
    down (H < W / 2: the band around the horizon, as the pack's sampler makes
    them) as the full 2:1 sphere, black above and below the band."""
    full, top = equirect_band(image.shape[-1], image.shape[-2])
    return F.pad(image, (0, 0, top, full - image.shape[-2] - top))
