"""fusion.sphere: cube faces and perspective views of an equirectangular
image, checked against cases whose answer is known in closed form.

Conventions under test: x right, y up, z forward (the image centre); yaw +90
looks at 3/4 of the width, pitch +90 at the top row; faces in the order
front, right, back, left, up, down."""

import math

import pytest
import torch

from fusion import sphere

H, W = 64, 128  # a 2:1 equirectangular image, 2.8 degrees per pixel
F64 = torch.float64


def of_direction(fn, height=H, width=W, dtype=F64):
    """An equirectangular image (1, 1, H, W) whose pixels are fn(direction)."""
    return fn(sphere.equirect_directions(height, width, dtype=dtype))[None, None]


def linear(d):
    """A smooth function of the direction: its dot product with a fixed axis."""
    return d @ torch.tensor([0.3, -0.5, 0.8], dtype=d.dtype)


def wavy(d):
    """A smooth function with more detail (a few cycles around the sphere)."""
    x, y, z = d.unbind(-1)
    return 0.5 + 0.25 * torch.sin(3 * x + 2 * y) * torch.cos(2 * z - y) + 0.1 * x * y


def column_ramp(height=H, width=W):
    """Each pixel holds its own column index: what a view reads is where it read."""
    return torch.arange(width, dtype=F64).expand(1, 1, height, width).clone()


def row_ramp(height=H, width=W):
    return torch.arange(height, dtype=F64)[:, None].expand(1, 1, height, width).clone()


def look(image, yaw=0.0, pitch=0.0, roll=0.0, mode="bilinear"):
    """The single pixel a 1x1 camera sees straight ahead."""
    return float(sphere.equirect_to_perspective(image, yaw, pitch, roll, 1.0, 1, 1, mode)[0, 0, 0, 0])


# --- the camera ---------------------------------------------------------------------------------------------


def test_rotation_is_a_proper_rotation_with_the_documented_axes():
    r = sphere.rotation(30.0, -20.0, 10.0, dtype=F64)
    assert torch.allclose(r @ r.T, torch.eye(3, dtype=F64), atol=1e-12)
    assert torch.det(r) == pytest.approx(1.0)
    forward = lambda yaw, pitch: sphere.rotation(yaw, pitch, dtype=F64)[:, 2].tolist()
    assert forward(0, 0) == pytest.approx([0, 0, 1])
    assert forward(90, 0) == pytest.approx([1, 0, 0], abs=1e-12)  # yaw +90: to the right
    assert forward(-90, 0) == pytest.approx([-1, 0, 0], abs=1e-12)
    assert forward(0, 90) == pytest.approx([0, 1, 0], abs=1e-12)  # pitch +90: up
    # Roll +90 (clockwise): the camera's up points to the world's right.
    assert sphere.rotation(0, 0, 90, dtype=F64)[:, 1].tolist() == pytest.approx([1, 0, 0], abs=1e-12)


def test_camera_rays_span_the_field_of_view():
    rays = sphere.camera_rays(3, 5, 90.0, dtype=F64)
    assert torch.allclose(rays.norm(dim=-1), torch.ones(3, 5, dtype=F64))
    assert rays[1, 2].tolist() == pytest.approx([0, 0, 1])  # the centre pixel looks ahead
    # The outer pixel centres of a 90-degree view: the edge is 45 degrees out, its centre 4/5 of the way.
    assert math.degrees(math.atan2(rays[1, 4, 0], rays[1, 4, 2])) == pytest.approx(math.degrees(math.atan(0.8)))
    assert rays[0, 2, 1] > 0 and rays[2, 2, 1] < 0  # the top row looks up


def test_roll_tilts_the_picture():
    # Rolled clockwise by 90 degrees, the top of the picture shows the right of the world.
    rays = sphere.view_directions(0.0, 0.0, 90.0, 90.0, 5, 5, dtype=F64)
    assert rays[0, 2, 0] > 0.5 and rays[0, 2, 1] == pytest.approx(0, abs=1e-12)


# --- equirectangular coordinates ----------------------------------------------------------------------------


def test_equirect_pixels_invert_equirect_directions():
    col, row = sphere.equirect_pixels(sphere.equirect_directions(H, W, dtype=F64), H, W)
    assert torch.allclose(col, torch.arange(W, dtype=F64).expand(H, W), atol=1e-9)
    assert torch.allclose(row, torch.arange(H, dtype=F64)[:, None].expand(H, W), atol=1e-9)


def test_straight_ahead_reads_the_centre_and_yaw_turns_right():
    ramp = column_ramp()
    assert look(ramp) == pytest.approx(W / 2 - 0.5)  # between the two centre columns
    assert look(ramp, yaw=90) == pytest.approx(3 * W / 4 - 0.5)  # yaw +90: 3/4 of the width
    assert look(ramp, yaw=-90) == pytest.approx(W / 4 - 0.5)
    assert look(ramp, yaw=45) == pytest.approx(5 * W / 8 - 0.5)
    assert look(row_ramp()) == pytest.approx(H / 2 - 0.5)
    assert look(row_ramp(), pitch=30) == pytest.approx(H / 2 - 0.5 - H / 6)  # 30 degrees up: H/6 rows higher


def test_pitch_90_reads_the_top_row_and_minus_90_the_bottom():
    assert look(row_ramp(), pitch=90) == pytest.approx(0.0)
    assert look(row_ramp(), pitch=-90) == pytest.approx(H - 1)
    # At a pole every longitude meets: a picture that is a function of the direction reads its value there.
    assert look(of_direction(linear), pitch=90) == pytest.approx(-0.5, abs=2e-3)


def test_the_seam_reads_both_edges_not_zeros():
    # A constant picture stays constant in every view: no zero padding anywhere (seam, poles).
    ones = torch.ones(1, 3, H, W, dtype=F64)
    for yaw, pitch in [(180, 0), (-180, 0), (179, 0), (0, 90), (0, -90), (180, 89)]:
        view = sphere.equirect_to_perspective(ones, yaw, pitch, 0.0, 120.0, 32, 48)
        assert torch.allclose(view, torch.ones_like(view)), (yaw, pitch)
    # Behind the viewer (yaw 180) half a pixel on either side of the seam: the mean of the last and the first column.
    ramp = column_ramp()
    assert look(ramp, yaw=180) == pytest.approx((W - 1 + 0) / 2)
    # A picture that is continuous across the seam is continuous in a view across it.
    seam = of_direction(lambda d: torch.atan2(d[..., 0], d[..., 2]).cos())
    directions = sphere.view_directions(180.0, 0.0, 0.0, 60.0, 16, 32, dtype=F64)
    expected = torch.atan2(directions[..., 0], directions[..., 2]).cos()
    assert (sphere.equirect_to_directions(seam, directions)[0, 0] - expected).abs().max() < 2e-3


def test_sphere_pad_continues_across_the_seam_and_the_poles():
    image = torch.rand(2, 3, 8, 16, dtype=F64)
    padded = sphere.sphere_pad(image, 2)
    assert padded.shape == (2, 3, 12, 20)
    assert torch.equal(padded[..., 2:-2, :2], image[..., :, -2:])  # left of column 0: the last columns
    # Above row 0: row 0 half a turn round; above that, row 1.
    assert torch.equal(padded[..., 1, 2:-2], torch.roll(image[..., 0, :], 8, dims=-1))
    assert torch.equal(padded[..., 0, 2:-2], torch.roll(image[..., 1, :], 8, dims=-1))
    assert torch.equal(padded[..., -1, 2:-2], torch.roll(image[..., -2, :], 8, dims=-1))


# --- cube faces ---------------------------------------------------------------------------------------------


def test_face_centres_look_along_the_documented_axes():
    directions = sphere.cube_directions(33, dtype=F64)  # odd: a pixel at the centre
    centres = directions[:, 16, 16].tolist()
    expected = [[0, 0, 1], [1, 0, 0], [0, 0, -1], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]
    for name, got, want in zip(sphere.FACES, centres, expected):
        assert got == pytest.approx(want, abs=1e-12), name
    # The up face's bottom row borders the front face's top row (and down's top row front's bottom row).
    assert torch.allclose(directions[4, -1], directions[0, 0], atol=0.05)
    assert torch.allclose(directions[5, 0], directions[0, -1], atol=0.05)
    # The right face's left column borders the front face's right column.
    assert torch.allclose(directions[1, :, 0], directions[0, :, -1], atol=0.05)


def test_face_centres_read_the_equirect_where_they_look():
    faces = sphere.equirect_to_cube(column_ramp(), 33)[0, :, 0, 16, 16]
    assert faces[:4].tolist() == pytest.approx([W / 2 - 0.5, 3 * W / 4 - 0.5, (W - 1) / 2, W / 4 - 0.5])
    rows = sphere.equirect_to_cube(row_ramp(), 33)[0, :, 0, 16, 16]
    assert rows[4:].tolist() == pytest.approx([0.0, H - 1])


@pytest.mark.parametrize("fn,tolerance", [(linear, 1e-3), (wavy, 3e-3)])
def test_faces_of_a_function_of_the_direction_are_that_function(fn, tolerance):
    # Sampled bilinearly from 2.8-degree pixels: measured max errors 5.3e-4 (linear) and 1.2e-3 (wavy).
    faces = sphere.equirect_to_cube(of_direction(fn), 32)
    expected = fn(sphere.cube_directions(32, dtype=F64))
    assert faces.shape == (1, 6, 1, 32, 32)
    assert (faces[0, :, 0] - expected).abs().max() < tolerance


@pytest.mark.parametrize("yaw,pitch,roll,fov", [(0, 0, 0, 90), (123, 40, 15, 60), (-170, -75, -30, 120), (180, 0, 0, 10)])
def test_a_perspective_view_of_a_function_of_the_direction_is_that_function(yaw, pitch, roll, fov):
    view = sphere.equirect_to_perspective(of_direction(wavy), yaw, pitch, roll, fov, 24, 40)
    expected = wavy(sphere.view_directions(yaw, pitch, roll, fov, 24, 40, dtype=F64))
    assert view.shape == (1, 1, 24, 40)
    assert (view[0, 0] - expected).abs().max() < 3e-3  # measured 5e-4 to 1.1e-3


def test_cube_faces_of_a_function_of_the_direction_make_that_function():
    faces = wavy(sphere.cube_directions(32, dtype=F64))[None, :, None]
    equirect = sphere.cube_to_equirect(faces, H, W)
    # Measured max error 1.5e-3: bilinear on 2.8-degree face pixels, also across the cube's edges.
    assert (equirect - of_direction(wavy)).abs().max() < 3e-3


@pytest.mark.parametrize("fn,max_error,mean_error", [(linear, 2e-3, 5e-4), (wavy, 3e-3, 7e-4)])
def test_equirect_to_cube_and_back_is_close_to_identity(fn, max_error, mean_error):
    # Faces of W/4 px (the equator's pixel density), bilinear both ways. Measured: linear max 1.4e-3,
    # mean 3.9e-4; wavy max 2.2e-3, mean 5.0e-4 (values of about 0 to 1).
    image = of_direction(fn)
    back = sphere.cube_to_equirect(sphere.equirect_to_cube(image, W // 4), H, W)
    error = (back - image).abs()
    assert error.max() < max_error and error.mean() < mean_error


def test_cube_pad_reads_the_neighbouring_faces():
    faces = wavy(sphere.cube_directions(16, dtype=F64))[None, :, None]
    grown = sphere.cube_pad(faces, 2)
    assert grown.shape == (1, 6, 1, 20, 20)
    assert torch.equal(grown[..., 2:-2, 2:-2], faces)
    fov = math.degrees(2 * math.atan(20 / 16))
    wide = torch.stack([wavy(sphere.view_directions(y, p, 0.0, fov, 20, 20, dtype=F64)) for y, p in sphere.FACE_ANGLES])
    error = (grown[0, :, 0] - wide).abs()
    corners = torch.zeros(20, 20, dtype=torch.bool)
    corners[:2, :2] = corners[:2, -2:] = corners[-2:, :2] = corners[-2:, -2:] = True
    # Measured: 2.2e-3 along the edges; 1.8e-2 in the 2x2 corners (beyond two edges at once).
    assert error[:, ~corners].max() < 3e-3 and error.max() < 3e-2


def test_modes_and_bad_mode():
    image = of_direction(wavy)
    for mode in sphere.INTERPOLATIONS:
        faces = sphere.equirect_to_cube(image, 16, mode)
        assert torch.isfinite(faces).all()
        assert (faces[0, :, 0] - wavy(sphere.cube_directions(16, dtype=F64))).abs().max() < 0.1
    with pytest.raises(ValueError, match="interpolation = 'area'"):
        sphere.equirect_to_cube(image, 16, "area")


# --- layouts, batches, dtypes -------------------------------------------------------------------------------


def test_cross_and_strip_layouts():
    faces = torch.rand(2, 6, 3, 8, 8)
    cross = sphere.faces_to_cross(faces)
    assert cross.shape == (2, 3, 24, 32)
    assert torch.equal(cross[..., 8:16, 8:16], faces[:, 0])  # front in the middle
    assert torch.equal(cross[..., 0:8, 8:16], faces[:, 4])  # up above it
    assert torch.equal(cross[..., 8:16, 24:32], faces[:, 2])  # back on the right
    assert cross[..., 0:8, 0:8].abs().sum() == 0
    assert torch.equal(sphere.cross_to_faces(cross), faces)
    strip = sphere.faces_to_strip(faces)
    assert strip.shape == (2, 3, 8, 48) and torch.equal(strip[..., 8:16], faces[:, 1])
    assert torch.equal(sphere.strip_to_faces(strip), faces)


def test_a_batch_is_each_image_on_its_own_and_the_dtype_stays():
    images = torch.rand(3, 3, 16, 32)
    faces = sphere.equirect_to_cube(images, 8)
    assert faces.shape == (3, 6, 3, 8, 8) and faces.dtype == torch.float32
    assert torch.allclose(faces[1], sphere.equirect_to_cube(images[1:2], 8)[0])
    view = sphere.equirect_to_perspective(images, 10, 20, 0, 90, 8, 12)
    assert torch.allclose(view[2], sphere.equirect_to_perspective(images[2:], 10, 20, 0, 90, 8, 12)[0])
    half = sphere.cube_to_equirect(faces.half(), 16, 32)
    assert half.dtype == torch.float16 and half.shape == (3, 3, 16, 32)
    assert (half.float() - sphere.cube_to_equirect(faces, 16, 32)).abs().max() < 2e-3


def test_a_band_becomes_the_full_sphere():
    band = torch.ones(1, 3, 16, 64)
    full = sphere.sphere_from_band(band)
    assert full.shape == (1, 3, 32, 64)
    assert full[..., 8:24, :].eq(1).all() and full[..., :8, :].eq(0).all() and full[..., 24:, :].eq(0).all()
    assert sphere.sphere_from_band(full).shape == full.shape


def test_cube_to_equirect_in_bands_of_rows_is_the_same(monkeypatch):
    faces = torch.rand(2, 6, 3, 16, 16)
    whole = sphere.cube_to_equirect(faces, 32, 64)
    monkeypatch.setattr(sphere, "CHUNK_PIXELS", 300)  # bands of 4 rows
    assert torch.equal(sphere.cube_to_equirect(faces, 32, 64), whole)


def test_a_photo_placed_on_the_sphere_is_the_view_seen_there_again():
    """perspective_to_equirect then equirect_to_perspective at the same
    camera gives the photo back (inside, away from the resampling at its
    border), and the mask is where the camera sees."""
    from fusion.sphere import equirect_to_perspective, perspective_to_equirect
    rows = torch.linspace(0, 1, 48)[:, None]
    cols = torch.linspace(0, 1, 64)[None, :]
    photo = torch.stack([rows.expand(48, 64), cols.expand(48, 64), (rows * cols)])[None].double()
    placed, seen = perspective_to_equirect(photo, 30.0, 10.0, 0.0, 70.0, 512, 1024)
    assert 0 < seen.mean() < 0.2 and seen.sum() > 48 * 64
    back = equirect_to_perspective(placed, 30.0, 10.0, 0.0, 70.0, 48, 64)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert (back[inner] - photo[inner]).abs().max() < 0.02
    # the mask's centre is the camera's direction: yaw 30 -> column 1024 * (0.5 + 30/360)
    centre_col = (seen.sum(0) * torch.arange(1024)).sum() / seen.sum()
    assert abs(float(centre_col) - 1024 * (0.5 + 30 / 360)) < 3
