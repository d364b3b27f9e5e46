"""fusion.wrap: the columns a codec sees around a 360 image's seam."""

import pytest
import torch

from fusion.wrap import column_steps, equirect_band, seam_ratio, unpad, wrap_pad


def test_pad_puts_the_opposite_edges_around_and_unpad_drops_them():
    x = torch.arange(10.0).reshape(1, 10)
    padded = wrap_pad(x, 3)
    assert padded.tolist() == [[7, 8, 9, *range(10), 0, 1, 2]]
    assert torch.equal(unpad(padded, 3), x)
    assert wrap_pad(x, 0) is x and unpad(x, 0) is x
    image = torch.rand(2, 4, 6, 3)  # ComfyUI's IMAGE: width is dim 2
    assert torch.equal(wrap_pad(image, 2, dim=2)[:, :, :2], image[:, :, -2:])
    with pytest.raises(ValueError, match="cannot pad 11 columns"):
        wrap_pad(x, 11)


def test_column_steps_end_with_the_seam():
    ramp = torch.arange(8.0).expand(3, 8)
    steps = column_steps(ramp, dim=1)
    assert steps[:-1].tolist() == [1.0] * 7 and steps[-1] == 7.0
    assert seam_ratio(ramp, dim=1) == pytest.approx(7.0)
    periodic = torch.sin(torch.arange(64) * 2 * torch.pi / 64).expand(2, 64)
    steps = column_steps(periodic, dim=1)
    assert steps[-1] <= steps[:-1].max() + 1e-6


def test_equirect_band():
    assert equirect_band(2048, 1024) == (1024, 0)  # the whole sphere
    assert equirect_band(2048, 512) == (1024, 256)  # the band around the horizon
    assert equirect_band(1024, 1024) == (1024, 0)  # taller than 2:1: nothing above or below
