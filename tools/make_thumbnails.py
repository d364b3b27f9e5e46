"""Draws the template browser's thumbnail for every workflow in
example_workflows/ (``<name>.jpg`` beside ``<name>.json``): the window plan the
workflow runs, drawn over a painted panorama of its aspect ratio.

Run: python tools/make_thumbnails.py  (after tools/make_workflows.py)

The windows come from the workflow's own widget values through the pack's
window planner; the picture is drawn, not generated (no weights here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fusion.windows import WindowPlan, plan_views, resolve_plan  # noqa: E402

OUT = REPO / "example_workflows"
SIZE = (640, 400)
GROUP_COLOURS = [(255, 214, 90), (90, 200, 255), (255, 120, 200), (150, 255, 150)]
NATIVE_PX = {"sd15": 512, "sdxl": 1024, "flux": 1024, "sd35": 1024, "qwen": 1024, "terrain": 128, "wan22": 1280}
# Pixels per latent pixel: 8 for the VAE models, 16 for Wan 2.2 5B's VAE, 1 for the terrain model (its latent is
# its pixels).
LATENT_PX = {"terrain": 1, "wan22": 16}


def landscape(width: int, height: int, seed: int) -> Image.Image:
    """Sky, sun, three mountain ranges and a lake; periodic across the width,
    so a 360 picture joins at its ends too."""
    rng = np.random.default_rng(seed)
    x = np.arange(width) / width * 2 * np.pi
    y = np.arange(height)[:, None] / height
    sky = np.stack([0.35 + 0.5 * y, 0.5 + 0.35 * y, 0.85 - 0.1 * y], -1) * np.ones((1, width, 1))
    radius = 0.07 * height
    sun = np.exp(-(((x[None] - 2.0) * width / (2 * np.pi)) ** 2 + ((y - 0.3) * height) ** 2) / radius ** 2)[..., None]
    image = sky + sun * np.array([1.0, 0.85, 0.5])
    for layer, (base, colour) in enumerate([(0.45, (0.45, 0.5, 0.65)), (0.55, (0.3, 0.38, 0.45)),
                                            (0.66, (0.18, 0.3, 0.22))]):
        ridge = base + sum(rng.uniform(0.02, 0.08) / k * np.sin(k * x + rng.uniform(0, 2 * np.pi))
                           for k in range(1, 9))
        image = np.where((y > ridge[None])[..., None], np.array(colour) * (1 - 0.3 * (y - ridge[None])[..., None]), image)
    lake = y > 0.8
    reflection = image[np.clip((1.6 - y[:, 0]) * height, 0, height - 1).astype(int)] * 0.6 + 0.1
    image = np.where(lake[..., None] * np.ones((1, width, 1), bool), reflection, image)
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))


def terrain(width: int, height: int, seed: int) -> Image.Image:
    """A made-up heightmap (random waves, larger ones stronger) drawn as the
    terrain template draws its result: Terrain Relief's hillshade with
    hypsometric tints (terrain/render.py)."""
    import torch
    from terrain.render import relief
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / height
    heights = np.zeros((height, width))
    for k in range(1, 60):
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        frequency = 0.6 * k
        heights += rng.normal() / frequency ** 1.3 * np.sin(frequency * (np.cos(angle) * x + np.sin(angle) * y) + phase)
    heights = (heights - heights.mean()) / (heights.std() * 2.5) - 0.25
    image = relief(torch.from_numpy(heights).float()[None, None], tint_range=(-1.0, 0.6))
    return Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))


def widgets(workflow: dict, type_: str):
    return next((n["widgets_values"] for n in workflow["nodes"] if n["type"] == type_), None)


def latent_size(workflow: dict, native: int) -> tuple[int, int]:
    video = widgets(workflow, "Wan22ImageToVideoLatent")
    if video is not None:  # width, height, length, batch_size
        return video[0], video[1]
    if widgets(workflow, "Panorama360Latent") is not None:
        height = widgets(workflow, "Panorama360Latent")[0] or native
        return 2 * height, height
    placed = widgets(workflow, "PanoramaPhotoTo360")
    if placed is not None:  # fov, yaw, pitch, width, fill: a 2:1 360 width px wide
        return placed[3], placed[3] // 2
    pad = widgets(workflow, "ImagePadForOutpaint")
    if pad is not None:  # the photo (as Upscale Image sizes it) in its canvas
        _, width, height, _ = widgets(workflow, "ImageScale")
        left, top, right, bottom, _ = pad
        return width + left + right, height + top + bottom
    upscale = widgets(workflow, "ImageScaleBy")
    if upscale is not None:  # a panorama of twin_panorama_sd15's size, upscaled
        return round(2048 * upscale[1]), round(512 * upscale[1])
    width, height, _ = widgets(workflow, "PanoramaLatent")
    return width, height


def plan_of(workflow: dict, native: int, px: int = 8) -> WindowPlan:
    shifted = widgets(workflow, "PanoramaShiftedWindows")
    if shifted is not None:  # window_size, view_stride, shift, shift_seed, wrap_around, blend
        window, stride, shift, seed, wrap, blend = shifted
        return resolve_plan(WindowPlan(window // px or None, stride // px or None, 1, None, wrap, shift, seed,
                                       blend=blend), native // px)
    window, stride, count, cross, wrap = widgets(workflow, "CrossSamplingScheduler")
    return resolve_plan(WindowPlan(window // px or None, stride // px or None, count, cross // px or None, wrap),
                        native // px)


def draw_windows(draw, plan, width, height, box, steps, px=8):
    """A few windows of the plan, so their size and overlap read at a glance:
    the first three of group 0 (filled), one of group 1 (shifted by the cross
    stride), and with wrap-around the window across the seam, at both ends.
    Ticks under the picture mark where every window of group 0 starts.
    ``px``: image pixels per latent pixel."""
    left, top, scale = box
    latent_w, latent_h = width // px, height // px

    def rectangle(t, l, views, colour, fill):
        for shift in (0, -latent_w) if l + views.window_w > latent_w else (0,):
            x0, y0 = left + (l + shift) * px * scale, top + t * px * scale
            x1, y1 = x0 + views.window_w * px * scale, y0 + views.window_h * px * scale
            draw.rectangle([max(x0, left), y0 + 2, min(x1, left + width * scale), y1 - 2],
                           outline=colour, width=3, fill=fill)

    first = plan_views(plan, latent_h, latent_w, step=0)
    colour = GROUP_COLOURS[0]
    for i, l in enumerate(first.lefts[:3]):
        rectangle(first.tops[0], l, first, colour, colour + (40 + 25 * i,))
    if plan.wrap_x:
        rectangle(first.tops[0], first.lefts[-1], first, colour, colour + (60,))
    if steps > 1:
        second = plan_views(plan, latent_h, latent_w, step=1)
        l = second.lefts[min(1, len(second.lefts) - 1)]
        rectangle(second.tops[-1], l, second, GROUP_COLOURS[1], None)
    for l in first.lefts:
        x = left + l * px * scale
        draw.line([x, top + height * scale + 3, x, top + height * scale + 11], fill=colour, width=2)


def view_outlines(widgets_values, width: int, height: int, samples: int = 48) -> list:
    """The frames of the sphere views a Panorama Windows (Sphere) node plans
    (its widget values; the unturned set of step 0), each as polylines of
    (x, y) points on a ``width`` x ``height`` equirectangular picture, cut
    where a frame crosses the seam."""
    import torch

    from fusion.sphere import equirect_pixels
    from fusion.sphere_views import DEFAULT_FOV, view_cameras, views_to_cover

    _, fov, overlap, count, _, _ = widgets_values
    fov = fov or DEFAULT_FOV
    count = count or views_to_cover(fov, overlap)
    edge = torch.linspace(-1.0, 1.0, samples, dtype=torch.float64)
    ones = torch.ones_like(edge)
    square = torch.cat([torch.stack([edge, ones], -1), torch.stack([ones, -edge], -1),
                        torch.stack([-edge, -ones], -1), torch.stack([-ones, edge], -1)])
    t = torch.tan(torch.tensor(fov / 2 * torch.pi / 180, dtype=torch.float64))
    rays = torch.cat([square * t, torch.ones(len(square), 1, dtype=torch.float64)], -1)
    rays = rays / rays.norm(dim=-1, keepdim=True)
    out = []
    for camera in view_cameras(count):
        col, row = equirect_pixels(rays @ camera.T, height, width)
        points = [(float(c) + 0.5, float(r) + 0.5) for c, r in zip(col, row)]
        lines, line = [], [points[0]]
        for a, b in zip(points, points[1:]):
            if abs(b[0] - a[0]) > width / 2:  # across the seam: continue on the other side
                lines.append(line)
                line = []
            line.append(b)
        lines.append(line)
        out.append(lines)
    return out


def draw_sphere_views(draw, widgets_values, box, w, h):
    """Every view's frame on the picture (the first, looking straight up,
    and one at the horizon filled), and the equirectangular grid."""
    left, top = box
    outlines = view_outlines(widgets_values, w, h)
    horizon = min(range(len(outlines)), key=lambda i: abs(i - (len(outlines) - 1) / 2))
    for k in range(1, 12):
        draw.line([left + k * w / 12, top, left + k * w / 12, top + h], fill=(255, 255, 255, 50))
    for k in range(1, 6):
        draw.line([left, top + k * h / 6, left + w, top + k * h / 6], fill=(255, 255, 255, 50))
    for i, lines in enumerate(outlines):
        colour = GROUP_COLOURS[0] if i in (0, horizon) else GROUP_COLOURS[1]
        for line in lines:
            points = [(left + x, top + y) for x, y in line]
            if len(points) > 1:
                draw.line(points, fill=colour + ((255,) if i in (0, horizon) else (170,)),
                          width=3 if i in (0, horizon) else 2)
    frame = [(left + x, top + y) for line in outlines[horizon] for x, y in line]
    draw.polygon(frame, fill=GROUP_COLOURS[0] + (60,))
    for x in (left, left + w):
        draw.line([x, top - 8, x, top + h + 8], fill=(255, 255, 255), width=3)


def caption(draw, text, lines, font, small):
    draw.rectangle([0, SIZE[1] - 92, SIZE[0], SIZE[1]], fill=(20, 22, 28))
    draw.text((16, SIZE[1] - 84), text, fill=(255, 255, 255), font=font)
    for i, line in enumerate(lines):
        draw.text((16, SIZE[1] - 52 + 20 * i), line, fill=(200, 205, 215), font=small)


def fonts():
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, 22), ImageFont.truetype(name, 15)
        except OSError:
            continue
    return ImageFont.load_default(), ImageFont.load_default()


DESCRIPTIONS = {
    "twin_panorama_sd15": ("TwinDiffusion panorama · SD1.5", ["Crop Fusion + Cross Sampling (2 window groups)",
                                                            "512x2048, 512 px windows"]),
    "twin_panorama_feathered_sd15": ("Feathered TwinDiffusion · SD1.5", ["Crop Fusion fading across overlaps",
                                                                       "512x2048, 512 px windows"]),
    "twin_panorama_sdxl": ("TwinDiffusion panorama · SDXL", ["1024x4096, 1024 px windows, 2 groups",
                                                           "per-window crop conditioning"]),
    "panorama_360_sd15": ("360° panorama · SD1.5", ["2:1 equirectangular, windows wrap around the seam",
                                                  "seamless decode · sphere viewer · photo-sphere file"]),
    "msd_panorama_sd15": ("Multi-Scale Diffusion · SD1.5", ["1024x4096: windows in both directions",
                                                          "guided by a half-resolution pass (inset)"]),
    "regional_panorama_sd15": ("Regional prompts · SD1.5", ["mountains · lake · forest along the panorama",
                                                          "areas and a mask, cut per window"]),
    "controlnet_panorama_sd15": ("ControlNet panorama · SD1.5", ["a panorama-size Canny hint",
                                                               "each window gets the part under it"]),
    "twin_model_patch_sd15": ("TwinDiffusion model patch · SD1.5", ["any sampler: SamplerCustomAdvanced,",
                                                                  "CFGGuider, BasicScheduler, RandomNoise"]),
    "flux_panorama": ("TwinDiffusion panorama · Flux.1-dev", ["1024x4096, 1024 px windows, 2 groups",
                                                            "Flux Guidance 3.5 at cfg 1"]),
    "sd35_panorama": ("TwinDiffusion panorama · SD3.5 Large", ["1024x4096, 1024 px windows, 2 groups",
                                                             "three text encoders, cfg 4.5"]),
    "panorama_360_lora_flux": ("360° panorama with a 360 LoRA · Flux.1-dev", [
        "DiT360 LoRA, one 2048x1024 window over the whole panorama", "wrap-around moves the seam every step"]),
    "photo_extension_sd15": ("Extend a photo into a panorama · SD1.5", [
        "the photo in a 512x2048 canvas, only the new area sampled", "the photo's own pixels pasted back"]),
    "photo_to_360_sphere_sd15": ("Photo to 360 through sphere views · SD1.5", [
        "the photo placed on the sphere and kept", "16 views generated around it, 2816x1408"]),
    "panorama_360_qwen_2512": ("360° panorama, seamless · Qwen-Image 2512", [
        "ComfyUI's 360 LoRA graph: one 2048x1024 window, turned", "every step, and the seamless decode"]),
    "photo_to_360_qwen_edit": ("Photo to 360 with an edit model · Qwen-Image-Edit", [
        "the photo on the sphere as the reference latent", "an exactly 2:1 360 whose ends meet, 2048x1024"]),
    "panorama_360_sphere_flux": ("360° through sphere views · Flux.1-dev", [
        "16 perspective views, zenith to nadir, turned every step", "4096x2048, 768 px views, no 360 LoRA"]),
    "upscale_panorama_sd15": ("Upscale a panorama · SD1.5", ["2x lanczos, then denoise 0.4 in 512 px windows",
                                                            "tiled VAE encode and decode"]),
    "panorama_360_sphere_sd15": ("360° through sphere views · SD1.5", [
        "16 perspective views, zenith to nadir, turned every step", "2816x1408, 512 px views: 2.75 views high"]),
    "panorama_360_sphere_sdxl": ("360° through sphere views · SDXL", [
        "16 perspective views, zenith to nadir, turned every step", "4096x2048, 768 px views: 2.75 views high"]),
    "fast_panorama_sdxl_lightning": ("Fast panorama · SDXL + Lightning 4-step LoRA", [
        "1024x4096, 1024 px windows moved every step (step 2 outlined)",
        "1/8 overlap, feathered · 4 steps, cfg 1, euler, sgm_uniform"]),
    "wide_video_wan22_5b": ("Wide video · Wan 2.2 TI2V 5B", [
        "2560x704, 121 frames: 1280x704 windows of all frames", "stride 640, 2 groups, Crop Fusion (model patch)"]),
    "panorama_360_video_wan22_5b": ("360° video · Wan 2.2 TI2V 5B", [
        "1408x704, 121 frames: 2 windows of 1280x704 around the circle", "wrap-around, seamless decode in every frame"]),
    "photo_to_wide_video_wan22_5b": ("Wide photo to wide video · Wan 2.2 TI2V 5B", [
        "your wide photo is the first frame, 2560x704", "1280x704 windows of all frames move it"]),
    "terrain_panorama": ("Terrain panorama · trained terrain model", [
        "128x1024 heightmap, 128 px windows, 2 groups, 4 lcm steps",
        "weights from pip: adaptive-terrain-diffusion"]),
}


def thumbnail(path: Path) -> Image.Image:
    workflow = json.loads(path.read_text())
    native = next((px for model, px in NATIVE_PX.items() if model in path.stem), NATIVE_PX["sd15"])
    px = next((px for model, px in LATENT_PX.items() if model in path.stem), 8)
    width, height = latent_size(workflow, native)
    sphere = widgets(workflow, "PanoramaSphereWindows")
    plan = None if sphere is not None else plan_of(workflow, native, px)
    scale = min((SIZE[0] - 32) / width, (SIZE[1] - 92 - 32) / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (SIZE[0] - w) // 2, (SIZE[1] - 92 - h) // 2
    canvas = Image.new("RGB", SIZE, (30, 33, 40))
    seed = sum(map(ord, path.stem))
    # The terrain's relief is shaded at the panorama's own pixels (its slopes are per pixel), then shrunk.
    picture = terrain(width, height, seed).resize((w, h), Image.LANCZOS) if px == 1 else landscape(w, h, seed)
    canvas.paste(picture, (left, top))
    draw = ImageDraw.Draw(canvas, "RGBA")
    if "regional" in path.stem:
        for (x0, x1), colour in zip([(0.0, 0.4), (0.3, 0.7), (0.6, 1.0)],
                                    [(120, 180, 255, 70), (120, 255, 200, 70), (60, 160, 60, 90)]):
            draw.rectangle([left + x0 * w, top, left + x1 * w, top + h], fill=colour)
    if "controlnet" in path.stem:
        edges = np.asarray(canvas.crop((left, top, left + w, top + h)).convert("L"), dtype=np.float32)
        mask = np.abs(np.diff(edges, axis=0, prepend=edges[:1])) > 12
        overlay = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))
        canvas.paste((255, 255, 255), (left, top), overlay)
    if widgets(workflow, "ImageScaleBy") is not None:
        # Left of the line: the panorama as loaded (coarse); right: after the windows added detail.
        half = canvas.crop((left, top, left + w // 2, top + h))
        coarse = half.resize((max(1, half.width // 10), max(1, half.height // 10))).resize(half.size, Image.NEAREST)
        canvas.paste(coarse, (left, top))
        draw.line([left + w // 2, top - 8, left + w // 2, top + h + 8], fill=(255, 255, 255), width=3)
    if sphere is not None:
        draw_sphere_views(draw, sphere, (left, top), w, h)
    else:
        # A shifted plan: step 0 filled, the moved grid of step 1 outlined (as a second Cross Sampling group).
        steps = 2 if plan.shift != "none" else plan.cross_count
        draw_windows(draw, plan, width, height, (left, top, scale), steps=steps, px=px)
    pad = widgets(workflow, "ImagePadForOutpaint")
    if pad is not None:
        # The photo: kept as it is; the rest of the canvas is generated around it.
        x0, y0 = left + pad[0] * scale, top + pad[1] * scale
        x1, y1 = left + (width - pad[2]) * scale, top + (height - pad[3]) * scale
        draw.rectangle([x0, y0, x1, y1], outline=(255, 255, 255), width=4)
        draw.text((x0 + 8, y0 + 6), "your photo", fill=(255, 255, 255), font=fonts()[1])
    placed = widgets(workflow, "PanoramaPhotoTo360")
    if placed is not None:
        # The photo on the sphere (about its place for a 4:3 photo at fov, yaw, pitch): kept; the rest generated.
        fov, yaw, pitch = placed[:3]
        vfov = 2 * np.degrees(np.arctan(np.tan(np.radians(fov / 2)) * 0.75))
        cx, cy = left + (0.5 + yaw / 360) * w, top + (0.5 - pitch / 180) * h
        x0, x1 = cx - fov / 360 * w / 2, cx + fov / 360 * w / 2
        y0, y1 = cy - vfov / 180 * h / 2, cy + vfov / 180 * h / 2
        draw.rectangle([x0, y0, x1, y1], outline=(255, 255, 255), width=4)
        draw.text((x0 + 8, y0 + 6), "your photo", fill=(255, 255, 255), font=fonts()[1])
    if plan is not None and plan.wrap_x and len(plan_views(plan, height // px, width // px).lefts) == 1:
        # One window and the seam it moves every step (a few of its positions).
        for k in range(1, 6):
            x = left + (k * 0.17 + 0.07) * w
            for y in range(top, top + h, 14):
                draw.line([x, y, x, min(y + 7, top + h)], fill=(255, 120, 200), width=2)
    if plan is not None and plan.wrap_x:
        # The equirectangular grid (every 30 degrees) and the seam, whose two sides join.
        for k in range(1, 12):
            draw.line([left + k * w / 12, top, left + k * w / 12, top + h], fill=(255, 255, 255, 60))
        for k in range(1, 6):
            draw.line([left, top + k * h / 6, left + w, top + k * h / 6], fill=(255, 255, 255, 60))
        for x in (left, left + w):
            draw.line([x, top - 8, x, top + h + 8], fill=(255, 255, 255), width=3)
    if widgets(workflow, "MultiScaleGuidance") is not None:
        inset = canvas.crop((left, top, left + w, top + h)).resize((w // 4, h // 4))
        canvas.paste(inset, (left + w - w // 4 - 6, top + 6))
        draw.rectangle([left + w - w // 4 - 6, top + 6, left + w - 6, top + 6 + h // 4], outline=(255, 255, 255))
    if widgets(workflow, "Wan22ImageToVideoLatent") is not None:
        # A film strip: sprocket holes above and below the picture (every window is a video of all frames).
        for y in (top - 12, top + h + 14):
            for x in range(left + 6, left + w - 6, 22):
                draw.rectangle([x, y, x + 10, y + 6], fill=(230, 230, 230))
        if widgets(workflow, "LoadImage") is not None:
            draw.rectangle([left + 2, top + 2, left + w - 2, top + h - 2], outline=(255, 255, 255), width=4)
            draw.text((left + 10, top + 8), "your wide photo = frame 1", fill=(255, 255, 255), font=fonts()[1])
    title, lines = DESCRIPTIONS.get(path.stem, (path.stem, []))
    font, small = fonts()
    caption(draw, title, lines, font, small)
    return canvas


def main(names=()):
    """Every template's thumbnail, or those of the templates named (stems)."""
    for path in sorted(OUT.glob("*.json")):
        if names and path.stem not in names:
            continue
        thumbnail(path).save(path.with_suffix(".jpg"), quality=88)
        print(f"wrote {path.with_suffix('.jpg').relative_to(REPO)}")


if __name__ == "__main__":
    main(sys.argv[1:])
