"""Views of a 360 image: its six cube faces and back, and a perspective
view at any yaw, pitch and field of view (the maths is fusion/sphere.py).

Conventions (the README's "Views of a 360" says the same): the centre of the
equirectangular image is straight ahead; yaw turns right (+90 looks at 3/4
of the width), pitch looks up (+90 at the top row), roll turns the camera
clockwise.  Cube faces come as a batch of six per panorama in the order
front, right, back, left, up, down; the up face's bottom edge meets the
front face's top edge, the down face's top edge the front's bottom edge."""

from __future__ import annotations

import torch

import comfy.model_management
from comfy_api.latest import io

from ..fusion import sphere
from .host_versions import schema
from .panorama_360 import CATEGORY, SEARCH, check_image

FACE_ORDER = ", ".join(sphere.FACES)
LAYOUTS = ["faces", "cross", "strip"]
MAX_FACE = 2048  # faces of an 8192 px wide panorama (MAX_WIDTH)
MAX_WIDTH = 8192
INTERPOLATION_TOOLTIP = ("How pixels between the source's pixels are read: bilinear (smooth, the default), bicubic "
                         "(sharper, may overshoot a little at hard edges), nearest (blocky, keeps exact colours, for "
                         "masks and labels).")


def interpolation_input() -> io.Combo.Input:
    return io.Combo.Input("interpolation", options=list(sphere.INTERPOLATIONS), default="bilinear",
                          tooltip=INTERPOLATION_TOOLTIP)


def check_interpolation(interpolation: str) -> None:
    if interpolation not in sphere.INTERPOLATIONS:
        raise ValueError(f"interpolation = {interpolation!r}: use one of {list(sphere.INTERPOLATIONS)}")


def equirect_input(image: torch.Tensor, name: str) -> torch.Tensor:
    """A ComfyUI IMAGE (B, H, W, C) of a 360 panorama as the full 2:1 sphere
    (B, C, H, W): a band lower than 2:1 is the band around the horizon (as
    the pack's sampler makes them), black above and below; taller is refused."""
    check_image(image, name)
    height, width = image.shape[1:3]
    if 2 * height > width + 1:
        raise ValueError(f"{name} is {width}x{height} px, taller than 2:1: a 360 panorama (equirectangular) is twice "
                         f"as wide as high, 360 degrees across and 180 down. Connect a 2:1 panorama (e.g. from "
                         f"Empty 360° Panorama Latent) or crop / resize this image to {2 * height}x{height} first")
    if width < 4:
        raise ValueError(f"{name} is {width}x{height} px: use a panorama of at least 4x2 px")
    return sphere.sphere_from_band(image.movedim(-1, 1))


def to_image(tensor: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) back to ComfyUI's IMAGE layout (B, H, W, C)."""
    return tensor.movedim(1, -1).contiguous()


class PanoramaEquirectToCubeFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaEquirectToCubeFaces",
            display_name="360° Panorama to Cube Faces",
            category=CATEGORY,
            search_aliases=[*SEARCH, "cube", "cubemap", "cube faces", "skybox", "e2c", "equirect to cubemap"],
            description=("Cuts a 360-degree (equirectangular, 2:1) panorama into the six faces of a cube, each a "
                         f"90-degree square view: a batch of six per panorama ({FACE_ORDER}), and the same faces "
                         "as a cross. Edit or upscale the faces and put them back with Cube Faces to 360° "
                         "Panorama."),
            inputs=[
                io.Image.Input("image", tooltip=(
                    "A 360-degree panorama, twice as wide as high (its centre is the front face). A lower image is "
                    "taken as the band around the horizon, black above and below.")),
                io.Int.Input("face_size", default=0, min=0, max=MAX_FACE, step=8, tooltip=(
                    "Width and height of each face in pixels. 0 = a quarter of the panorama's width, which keeps "
                    "the detail of the horizon (each face spans 90 of its 360 degrees).")),
                interpolation_input(),
            ],
            outputs=[
                io.Image.Output(display_name="faces", tooltip=(
                    f"Six square faces per panorama, in the order {FACE_ORDER} (a batch of 6, or 6 per panorama "
                    "of a batch). The up face's bottom edge meets the front face's top edge.")),
                io.Image.Output(display_name="cross", tooltip=(
                    "The faces as a cross, 4 faces wide and 3 high: left, front, right, back in the middle row, "
                    "up above front, down below it; the corners black.")),
            ],
        )

    @classmethod
    def execute(cls, image, face_size=0, interpolation="bilinear") -> io.NodeOutput:
        check_interpolation(interpolation)
        equirect = equirect_input(image, "image")
        size = face_size or max(1, equirect.shape[-1] // 4)
        faces = sphere.equirect_to_cube(equirect, size, interpolation)
        return io.NodeOutput(to_image(faces.flatten(0, 1)), to_image(sphere.faces_to_cross(faces)))


def faces_input(faces: torch.Tensor, layout: str) -> torch.Tensor:
    """A ComfyUI IMAGE holding cube faces in ``layout`` as (B, 6, C, N, N)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout = {layout!r}: use one of {LAYOUTS}")
    check_image(faces, "faces")
    count, height, width = faces.shape[:3]
    images = faces.movedim(-1, 1)
    if layout == "faces":
        if height != width or count % 6:
            raise ValueError(f"faces is a batch of {count} image(s) of {width}x{height} px: with layout = faces "
                             f"connect square faces, 6 per panorama in the order {FACE_ORDER} (as 360° Panorama to "
                             f"Cube Faces makes them), or set layout to cross or strip for a single picture")
        return images.reshape(count // 6, 6, *images.shape[1:])
    if layout == "cross":
        if 3 * width != 4 * height or width % 4:
            raise ValueError(f"faces is {width}x{height} px, not a cross of 4x3 square faces: with layout = cross "
                             f"connect a 4:3 cross (left, front, right, back in the middle row, up above front, "
                             f"down below), or set layout to faces or strip")
        return sphere.cross_to_faces(images)
    if width != 6 * height:
        raise ValueError(f"faces is {width}x{height} px, not a strip of 6 square faces: with layout = strip connect "
                         f"a 6:1 strip ({FACE_ORDER} from left to right), or set layout to faces or cross")
    return sphere.strip_to_faces(images)


class PanoramaCubeFacesToEquirect(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaCubeFacesToEquirect",
            display_name="Cube Faces to 360° Panorama",
            category=CATEGORY,
            search_aliases=[*SEARCH, "cube", "cubemap", "cube faces", "skybox", "c2e", "cubemap to equirect"],
            description=("Puts the six faces of a cube back together into one 360-degree (equirectangular, 2:1) "
                         f"panorama: a batch of six faces per panorama ({FACE_ORDER}, as 360° Panorama to Cube "
                         "Faces makes them), a cross or a strip. Pixels next to a cube edge blend the two faces."),
            inputs=[
                io.Image.Input("faces", tooltip=(
                    f"The cube's faces: square images in the order {FACE_ORDER}, 6 per panorama (layout faces), "
                    "or one picture of them (layout cross or strip).")),
                io.Combo.Input("layout", options=LAYOUTS, default="faces", tooltip=(
                    "How the faces come: faces = a batch of 6 square images per panorama; cross = one 4:3 picture, "
                    "left, front, right, back in the middle row, up above front, down below; strip = one 6:1 "
                    f"picture, {FACE_ORDER} from left to right.")),
                io.Int.Input("width", default=0, min=0, max=MAX_WIDTH, step=8, tooltip=(
                    "Width of the panorama in pixels; its height is half of it. 0 = 4 times the face size, which "
                    "keeps the faces' detail at the horizon.")),
                interpolation_input(),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip=(
                "The 360-degree panorama, twice as wide as high; its left and right edges join.")),
            ],
        )

    @classmethod
    def execute(cls, faces, layout="faces", width=0, interpolation="bilinear") -> io.NodeOutput:
        check_interpolation(interpolation)
        cube = faces_input(faces, layout)
        width = width or 4 * cube.shape[-1]
        if width < 4:
            raise ValueError(f"width = {width} px: use 0 (4 times the face size) or at least 4 px")
        return io.NodeOutput(to_image(sphere.cube_to_equirect(cube, width // 2, width, interpolation)))


class PanoramaEquirectToPerspective(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaEquirectToPerspective",
            display_name="360° Panorama to Perspective View",
            category=CATEGORY,
            search_aliases=[*SEARCH, "perspective", "view", "camera", "e2p", "yaw", "pitch", "fov", "rectilinear"],
            description=("The picture an ordinary camera standing inside a 360-degree (equirectangular, 2:1) "
                         "panorama sees: turned by yaw, pitch and roll, with a field of view in degrees. Straight "
                         "lines stay straight. Yaw 0, pitch 0 looks at the centre of the panorama."),
            inputs=[
                io.Image.Input("image", tooltip=(
                    "A 360-degree panorama, twice as wide as high. A lower image is taken as the band around the "
                    "horizon, black above and below.")),
                io.Float.Input("yaw", default=0.0, min=-180.0, max=180.0, step=1.0, tooltip=(
                    "Degrees the camera turns to the right (negative: to the left). 0 looks at the centre of the "
                    "panorama, 90 at 3/4 of its width, 180 at its left and right edges.")),
                io.Float.Input("pitch", default=0.0, min=-90.0, max=90.0, step=1.0, tooltip=(
                    "Degrees the camera looks up (negative: down). 90 looks at the top row (the zenith), -90 at "
                    "the bottom row.")),
                io.Float.Input("roll", default=0.0, min=-180.0, max=180.0, step=1.0, tooltip=(
                    "Degrees the camera rolls clockwise around the way it looks (the horizon then tilts "
                    "counter-clockwise in the picture). 0 keeps the horizon level.")),
                io.Float.Input("fov", default=90.0, min=1.0, max=179.0, step=1.0, tooltip=(
                    "Horizontal field of view in degrees; the vertical one follows from width and height. About "
                    "60-90 looks natural; wider stretches the corners.")),
                io.Int.Input("width", default=1024, min=8, max=MAX_WIDTH, step=8,
                             tooltip="Width of the view in pixels."),
                io.Int.Input("height", default=768, min=8, max=MAX_WIDTH, step=8,
                             tooltip="Height of the view in pixels."),
                interpolation_input(),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip=(
                "The perspective view, one per panorama of the batch.")),
            ],
        )

    @classmethod
    def execute(cls, image, yaw=0.0, pitch=0.0, roll=0.0, fov=90.0, width=1024, height=768,
                interpolation="bilinear") -> io.NodeOutput:
        check_interpolation(interpolation)
        for name, value, low, high in (("yaw", yaw, -360, 360), ("pitch", pitch, -90, 90), ("roll", roll, -360, 360),
                                       ("fov", fov, 1, 179)):
            if not low <= value <= high:
                raise ValueError(f"{name} = {value}: use a value from {low} to {high} degrees")
        if width < 1 or height < 1:
            raise ValueError(f"the view is {width}x{height} px: set width and height to at least 8 px")
        equirect = equirect_input(image, "image")
        view = sphere.equirect_to_perspective(equirect, yaw, pitch, roll, fov, height, width, interpolation)
        return io.NodeOutput(to_image(view))


class PanoramaPhotoTo360(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaPhotoTo360",
            display_name="Place Photo in 360° Panorama",
            category=CATEGORY,
            search_aliases=[*SEARCH, "photo to 360", "image to panorama", "outpaint 360", "place photo", "p2e",
                            "inpaint", "sphere"],
            description=("Puts an ordinary photo into an empty 360-degree (2:1) panorama where a camera at yaw / "
                         "pitch with the photo's field of view would have taken it, and gives the mask of the rest. "
                         "VAE Encode the image, Set Latent Noise Mask with the mask, and sample with Panorama "
                         "Windows (Sphere): the sphere around the photo is generated, the photo stays."),
            inputs=[
                io.Image.Input("image", tooltip="The photo (the first of a batch is used for every panorama)."),
                io.Float.Input("fov", default=90.0, min=10.0, max=170.0, step=1.0, tooltip=(
                    "The photo's horizontal field of view in degrees (a phone's main camera: about 70; a 24 mm "
                    "lens: 74; a wide-angle: 100).")),
                io.Float.Input("yaw", default=0.0, min=-180.0, max=180.0, step=1.0, tooltip=(
                    "Where the photo looks, degrees to the right of the panorama's centre.")),
                io.Float.Input("pitch", default=0.0, min=-90.0, max=90.0, step=1.0,
                               tooltip="Degrees the photo looks up (negative: down)."),
                io.Int.Input("width", default=2816, min=64, max=MAX_WIDTH, step=8, tooltip=(
                    "Width of the 360 panorama in pixels (its height is half). For sphere views at SD1.5's 512 px "
                    "at least 2816.")),
                io.Combo.Input("fill", options=["grey", "black", "edge"], default="grey", tooltip=(
                    "What the image shows outside the photo (the mask marks it for generation): grey (neutral, "
                    "the default), black, or edge (the photo's edge colours smeared outward, which some models "
                    "continue more easily).")),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="The 2:1 panorama with the photo in place."),
                     io.Mask.Output(display_name="mask", tooltip=(
                         "1 where the panorama is to be generated, 0 where the photo is (for Set Latent Noise "
                         "Mask)."))],
        )

    @classmethod
    def execute(cls, image, fov=90.0, yaw=0.0, pitch=0.0, width=2816, fill="grey") -> io.NodeOutput:
        check_image(image, "image")
        if width % 2 or width < 64:
            raise ValueError(f"width = {width}: use an even width of at least 64 px (the height is half of it)")
        if not 10 <= fov <= 170:
            raise ValueError(f"fov = {fov}: use a field of view from 10 to 170 degrees")
        if fill not in ("grey", "black", "edge"):
            raise ValueError(f"fill = {fill!r}: use grey, black or edge")
        photo = image[:1].movedim(-1, 1)
        placed, seen = sphere.perspective_to_equirect(photo, yaw, pitch, 0.0, fov, width // 2, width)
        if fill == "edge":
            background = sphere.perspective_to_equirect(photo, yaw, pitch, 0.0, 179.0, width // 2, width)[0]
        else:
            background = torch.full_like(placed, 0.5 if fill == "grey" else 0.0)
        out = placed + background * (1 - seen)
        return io.NodeOutput(to_image(out), (1 - seen)[None])


class PanoramaDirectionMask(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="PanoramaDirectionMask",
            display_name="360° Direction Mask (sky / ground prompts)",
            category=CATEGORY,
            search_aliases=[*SEARCH, "sky prompt", "ground prompt", "multi prompt", "regional 360", "direction",
                            "mask", "zenith", "nadir", "pitch"],
            description=("A mask of the directions of a 360-degree (2:1) panorama between two pitches (and, if "
                         "asked, around a yaw): pitch 45 to 90 is the sky cap, -90 to -45 the ground. With "
                         "Conditioning (Set Mask) and Conditioning (Combine) it gives a prompt per direction "
                         "(SphereDiff's multi-prompt); sphere views cut it per view, so a view looking up gets "
                         "the sky prompt."),
            inputs=[
                io.Int.Input("width", default=2816, min=8, max=MAX_WIDTH, step=8, tooltip=(
                    "Width of the 360 panorama in pixels (its height is half): the latent's size, as the mask "
                    "is resized to it anyway.")),
                io.Float.Input("pitch_from", default=45.0, min=-90.0, max=90.0, step=1.0, tooltip=(
                    "Lowest pitch of the masked directions in degrees (-90: straight down).")),
                io.Float.Input("pitch_to", default=90.0, min=-90.0, max=90.0, step=1.0, tooltip=(
                    "Highest pitch in degrees (90: straight up).")),
                io.Float.Input("yaw", default=0.0, min=-180.0, max=180.0, step=1.0, tooltip=(
                    "Centre of the masked directions around the horizon (with yaw_span below 360).")),
                io.Float.Input("yaw_span", default=360.0, min=1.0, max=360.0, step=1.0, tooltip=(
                    "Degrees around the horizon the mask spans; 360 = all the way round.")),
                io.Float.Input("feather", default=10.0, min=0.0, max=90.0, step=1.0, tooltip=(
                    "Degrees over which the mask fades at its edges, so that neighbouring prompts blend.")),
            ],
            outputs=[io.Mask.Output(display_name="mask", tooltip=(
                "1 in the chosen directions, 0 elsewhere: for Conditioning (Set Mask)."))],
        )

    @classmethod
    def execute(cls, width=2816, pitch_from=45.0, pitch_to=90.0, yaw=0.0, yaw_span=360.0,
                feather=10.0) -> io.NodeOutput:
        if width % 2 or width < 8:
            raise ValueError(f"width = {width}: use an even width of at least 8 px (the height is half of it)")
        if not -90 <= pitch_from < pitch_to <= 90:
            raise ValueError(f"pitch_from = {pitch_from}, pitch_to = {pitch_to}: use -90 <= pitch_from < pitch_to "
                             f"<= 90 degrees (45 to 90 is the sky, -90 to -45 the ground)")
        if not 0 < yaw_span <= 360 or feather < 0:
            raise ValueError(f"yaw_span = {yaw_span}, feather = {feather}: use a yaw_span from 1 to 360 degrees "
                             f"and a feather of 0 or more")
        mask = sphere.direction_mask(width // 2, width, pitch_from, pitch_to, yaw, yaw_span, feather)
        return io.NodeOutput(mask[None].to(comfy.model_management.intermediate_device()))


VIEW_NODES: list[type[io.ComfyNode]] = [PanoramaEquirectToCubeFaces, PanoramaCubeFacesToEquirect,
                                        PanoramaEquirectToPerspective, PanoramaPhotoTo360, PanoramaDirectionMask]
