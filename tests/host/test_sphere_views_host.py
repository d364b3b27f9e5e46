"""Views of a 360 image on the real host: the cube-face and perspective nodes
run through ComfyUI's executor on an image loaded by LoadImage, and come
back to the image they started from; their bad inputs end in messages that
name the input and say what to do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import harness

pytestmark = pytest.mark.host

W, H = 256, 128
VIEW_NODES = ("PanoramaEquirectToCubeFaces", "PanoramaCubeFacesToEquirect", "PanoramaEquirectToPerspective")


def smooth_panorama() -> np.ndarray:
    """A 2:1 image (H, W, 3) in [0, 1] that is a smooth function of the
    direction on the sphere (so it joins across the seam and the poles)."""
    lon = ((np.arange(W) + 0.5) / W - 0.5) * 2 * math.pi
    lat = (0.5 - (np.arange(H) + 0.5) / H) * math.pi
    lon, lat = np.meshgrid(lon, lat)
    x, y, z = np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)
    channels = [0.5 + 0.4 * x * z + 0.1 * y, 0.5 + 0.3 * np.sin(2 * x + y), 0.5 + 0.4 * z]
    return np.stack(channels, axis=-1)


def coordinates_panorama() -> np.ndarray:
    """Red = column / 255, green = row / 255 (8-bit exact): a pixel's colour says where it is."""
    col = np.broadcast_to(np.arange(W) / 255.0, (H, W))
    row = np.broadcast_to((np.arange(H) / 255.0)[:, None], (H, W))
    return np.stack([col, row, np.zeros((H, W))], axis=-1)


def save_input(name: str, pixels: np.ndarray) -> str:
    import folder_paths
    from PIL import Image
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(f"{folder_paths.get_input_directory()}/{name}")
    return name


@pytest.fixture(scope="module")
def inputs(comfy):
    return {"smooth": save_input("panorama_views_smooth.png", smooth_panorama()),
            "coordinates": save_input("panorama_views_coordinates.png", coordinates_panorama())}


def test_the_view_nodes_are_registered_with_tooltips(comfy):
    import nodes
    for name in VIEW_NODES:
        assert name in comfy.pack_nodes, comfy.pack_error
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        assert cls.CATEGORY == "sampling/panorama/360" and cls.DESCRIPTION
        for input_name, spec in cls.INPUT_TYPES()["required"].items():
            assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
        assert all(cls.OUTPUT_TOOLTIPS) and len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


def test_cube_faces_and_back_through_the_executor(inputs):
    """LoadImage -> cube faces -> back (from the faces batch and from the
    cross): the image it started from, within interpolation error."""
    prompt = {
        "load": {"class_type": "LoadImage", "inputs": {"image": inputs["smooth"]}},
        "cube": {"class_type": "PanoramaEquirectToCubeFaces",
                 "inputs": {"image": ["load", 0], "face_size": 0, "interpolation": "bilinear"}},
        "back": {"class_type": "PanoramaCubeFacesToEquirect",
                 "inputs": {"faces": ["cube", 0], "layout": "faces", "width": 0, "interpolation": "bilinear"}},
        "cross": {"class_type": "PanoramaCubeFacesToEquirect",
                  "inputs": {"faces": ["cube", 1], "layout": "cross", "width": 0, "interpolation": "bilinear"}},
    }
    result = harness.run_prompt(prompt, outputs=["load", "cube", "back", "cross"])
    image = result.outputs["load"][0]
    faces, cross = result.outputs["cube"]
    assert faces.shape == (6, 64, 64, 3) and cross.shape == (1, 192, 256, 3)
    assert torch.equal(cross[0, 64:128, 64:128], faces[0])  # the front face in the middle of the cross
    for node in ("back", "cross"):
        back = result.outputs[node][0]
        assert back.shape == image.shape == (1, H, W, 3)
        error = (back - image).abs()
        print(f"\n{node}: round trip max error {float(error.max()):.4f}, mean {float(error.mean()):.5f}")
        # 8-bit steps are 0.0039; measured max 0.0031, mean 0.00066 (ComfyUI v0.3.64 and v0.33.0).
        assert error.max() < 0.006 and error.mean() < 0.0015
    # The front face's centre is the panorama's centre (between its 4 centre pixels).
    centre = image[0, H // 2 - 1:H // 2 + 1, W // 2 - 1:W // 2 + 1].mean(dim=(0, 1))
    assert torch.allclose(faces[0, 31:33, 31:33].mean(dim=(0, 1)), centre, atol=2e-3)


@pytest.mark.parametrize("yaw,pitch,col,row", [(0, 0, W / 2 - 0.5, H / 2 - 0.5), (90, 0, 3 * W / 4 - 0.5, H / 2 - 0.5),
                                               (-90, 30, W / 4 - 0.5, H / 2 - 0.5 - H / 6),
                                               (45, -45, 5 * W / 8 - 0.5, 3 * H / 4 - 0.5)])
def test_perspective_view_looks_where_yaw_and_pitch_say(inputs, yaw, pitch, col, row):
    """A narrow view (1 degree) reads the panorama around one point: yaw +90
    at 3/4 of the width, pitch +30 H/6 rows above the horizon."""
    prompt = {
        "load": {"class_type": "LoadImage", "inputs": {"image": inputs["coordinates"]}},
        "view": {"class_type": "PanoramaEquirectToPerspective",
                 "inputs": {"image": ["load", 0], "yaw": yaw, "pitch": pitch, "roll": 0.0, "fov": 1.0,
                            "width": 8, "height": 8, "interpolation": "bilinear"}},
    }
    view = harness.run_prompt(prompt, outputs=["view"]).outputs["view"][0]
    assert view.shape == (1, 8, 8, 3)
    red, green = view[0, ..., 0].mean() * 255, view[0, ..., 1].mean() * 255
    assert float(red) == pytest.approx(col, abs=0.05) and float(green) == pytest.approx(row, abs=0.05)


def run_failing(prompt, node):
    result = harness.run_prompt(prompt, outputs=[node], check=False)
    failures = [data for event, data in result.status_messages if event == "execution_error"]
    assert failures, result.errors
    return failures[0]["exception_type"], failures[0]["exception_message"]


def test_bad_inputs_name_the_input_and_the_fix(comfy):
    harness.register_test_nodes({"SphereViewsTensor": SphereViewsTensor})
    tall = {"t": {"class_type": "SphereViewsTensor", "inputs": {"shape": "1,64,64,3"}},
            "n": {"class_type": "PanoramaEquirectToPerspective",
                  "inputs": {"image": ["t", 0], **harness.node_defaults("PanoramaEquirectToPerspective")}}}
    kind, message = run_failing(tall, "n")
    assert kind == "ValueError" and "image is 64x64 px, taller than 2:1" in message and "crop" in message
    five = {"t": {"class_type": "SphereViewsTensor", "inputs": {"shape": "5,16,16,3"}},
            "n": {"class_type": "PanoramaCubeFacesToEquirect",
                  "inputs": {"faces": ["t", 0], **harness.node_defaults("PanoramaCubeFacesToEquirect")}}}
    kind, message = run_failing(five, "n")
    assert kind == "ValueError" and "faces is a batch of 5" in message and "6 per panorama" in message
    five["n"]["inputs"]["layout"] = "cross"
    kind, message = run_failing(five, "n")
    assert kind == "ValueError" and "not a cross" in message and "set layout to faces" in message


def test_a_band_is_the_band_around_the_horizon(comfy):
    """A panorama lower than 2:1 (what the pack's sampler makes for a wide
    wrap-around band) sits around the horizon, black above and below."""
    band = torch.ones(1, 32, 128, 3)
    faces, cross = harness.call_node("PanoramaEquirectToCubeFaces", band, 32, "bilinear")
    assert faces.shape == (6, 32, 32, 3)
    assert float(faces[0, 16, 16].min()) == 1.0  # the horizon: the band
    # The up face's centre is the zenith, above the band's +-45 degrees (its corners reach down to 35).
    assert float(faces[4, 8:24, 8:24].max()) == 0.0
    view = harness.call_node("PanoramaEquirectToPerspective", band, 0.0, 0.0, 0.0, 60.0, 16, 16, "nearest")[0]
    assert float(view.min()) == 1.0


class SphereViewsTensor:
    """An IMAGE of any shape, for the messages about bad inputs."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"shape": ("STRING", {"default": "1,8,16,3"})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"
    CATEGORY = "testing"

    def make(self, shape):
        return (torch.rand(*(int(d) for d in shape.split(","))),)
