"""The main job on a trained diffusion model: terrain panoramas from
``adaptive-terrain-diffusion``'s consistency U-Net (``terrain/``), sampled
with the pack's own ``fusion`` code -- the same PanoramaDenoiser /
MultiScaleDenoiser the ComfyUI nodes use -- under MultiDiffusion,
TwinDiffusion (Crop Fusion, the paper's and feathered weights), Cross
Sampling at twice the stride and Multi-Scale Diffusion, with the same seeds,
and scored the TwinDiffusion paper's way: LPIPS (AlexNet, VGG) and DISTS
between adjacent crops, plus the seam score and MSD's layout score.

Three scenes: a 1-D strip (3 windows wide, base stride 32 px, a quarter of
the window as in the paper), a 2-D panorama (2 x 2 windows at stride 64 px,
MultiDiffusion against MSD, whose gradient pass makes it the costly one)
and a 2:1 360-degree one (wrap-around windows, stride 32 px).
Everything is drawn as hillshaded relief with hypsometric tints
(``terrain.render``); the metrics are computed on those pictures.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from fusion import FusionSettings, MultiScaleDenoiser, MultiScaleSettings, PanoramaDenoiser, WindowPlan, plan_views
from fusion.multiscale import noisy_pyramid
from refmodel import metrics as seam_metrics
from terrain.denoiser import NATIVE, karras_sigmas
from terrain.render import relief

from .report import summarise
from .sampling import CountingModel  # a gradient pass's forward counts as one evaluation

TINT_RANGE = (-1.0, 0.6)  # model-space heights the tints span, shared by every picture
LABEL_HEIGHT = 16


@dataclass(frozen=True)
class Method:
    """One way to sample a panorama: windows, fusion and guidance."""

    key: str
    label: str
    stride: int
    cross_count: int = 1
    crop_fusion: bool = False
    feather: bool = False
    lam: float = 1.0
    tau: float = 0.5
    multiscale: MultiScaleSettings | None = None


@dataclass(frozen=True)
class Scene:
    key: str
    title: str
    height: int
    width: int
    wrap: bool = False
    stride: int = 32  # the scene's base view stride s


@dataclass
class Result:
    method: Method
    scene: Scene
    seed: int
    latent: torch.Tensor
    low_res: torch.Tensor | None
    evaluations: int
    seconds: float
    boundaries_x: list[int] = field(default_factory=list)
    boundaries_y: list[int] = field(default_factory=list)


def methods(stride: int, omega: float = 10.0) -> dict[str, Method]:
    s, s2 = stride, 2 * stride
    return {m.key: m for m in (
        Method("md", f"MultiDiffusion, stride {s}", s),
        Method("twin", f"TwinDiffusion Crop Fusion, stride {s}", s, crop_fusion=True),
        Method("feathered", f"Crop Fusion feathered, stride {s}", s, crop_fusion=True, feather=True),
        Method("md2", f"MultiDiffusion, stride {s2}", s2),
        Method("cross", f"Crop Fusion + Cross Sampling c=2, stride {s2}", s2, 2, crop_fusion=True),
        Method("msd", f"Multi-Scale Diffusion (omega {omega:g}), stride {s}", s,
               multiscale=MultiScaleSettings(omega=omega)),
    )}


def plan_for(method: Method, wrap: bool) -> WindowPlan:
    return WindowPlan(window=NATIVE, stride=method.stride, cross_count=method.cross_count,
                      cross_stride=max(method.stride // method.cross_count, 1), wrap_x=wrap)


def window_edges(plan: WindowPlan, height: int, width: int) -> tuple[list[int], list[int]]:
    """Columns and rows where a window of some group begins or ends; on a
    circle column 0 stands for the wrap seam."""
    wrap = plan.wrap_x and width > plan.window
    cols, rows = set(), set()
    for group in range(plan.cross_count):
        views = plan_views(plan, height, width, group)
        for left in views.lefts:
            cols.update({left, left + views.window_w})
        for top in views.tops:
            rows.update({top, top + views.window_h})
    cols = sorted({c % width for c in cols}) if wrap else sorted(c for c in cols if 0 < c < width)
    return cols, sorted(r for r in rows if 0 < r < height)


def sample(denoiser, method: Method, scene: Scene, steps: int, seed: int, sampler: str = "lcm",
           progress=None) -> Result:
    """One panorama: k-diffusion's Euler or LCM (consistency) sampler on a
    Karras schedule from sigma 80, the model's range."""
    plan = plan_for(method, scene.wrap)
    settings = FusionSettings(lam=method.lam, tau=method.tau, crop_fusion=method.crop_fusion,
                              view_batch_size=8, feather=method.feather)
    panorama = PanoramaDenoiser(plan, settings)
    msd = MultiScaleDenoiser(panorama, method.multiscale) if method.multiscale else None
    sigmas = karras_sigmas(steps)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 1, scene.height, scene.width, generator=generator) * sigmas[0]
    start_x = x
    model = CountingModel(denoiser)
    start = time.perf_counter()
    noises = []
    for i in range(steps):
        sigma, sigma_next = sigmas[i].expand(1), float(sigmas[i + 1])
        if msd is None:
            denoised = panorama(model, x, sigma, i, steps)
        else:
            denoised = msd(model, x, sigma, i, steps, sigma_next)
        noise = torch.randn(x.shape, generator=generator) if sampler == "lcm" and sigma_next > 0 else None
        noises.append(noise)
        x = step(sampler, x, denoised, float(sigmas[i]), sigma_next, noise)
        if progress:
            progress()
    seconds = time.perf_counter() - start
    low = None
    if msd is not None or min(scene.height, scene.width) > NATIVE:
        # the layout's reference (2-D scenes, MSD or not): MultiDiffusion at
        # half resolution from the lowest level of the first step's pyramid
        # (what MSD's low level starts from), driven by the same noise (each
        # step's fresh lcm noise down-sampled, at unit variance again); not
        # counted in the cost
        mode = (method.multiscale or MultiScaleSettings()).downsample
        low_plan = PanoramaDenoiser(plan, FusionSettings(crop_fusion=False, view_batch_size=8))
        low = noisy_pyramid(start_x, float(sigmas[0]), 2, mode)[0][0]
        low_model = CountingModel(denoiser)
        for i in range(steps):
            denoised = low_plan(low_model, low, sigmas[i].expand(1), i, steps)
            noise = None if noises[i] is None else F.avg_pool2d(noises[i], 2) * 2
            low = step(sampler, low, denoised, float(sigmas[i]), float(sigmas[i + 1]), noise)
    cols, rows = window_edges(plan, scene.height, scene.width)
    return Result(method, scene, seed, x, low, model.evaluations, seconds, cols, rows)


def step(sampler: str, x, denoised, sigma: float, sigma_next: float, noise=None) -> torch.Tensor:
    """One step of ComfyUI's euler or lcm sampler to ``sigma_next``
    (lcm: the estimate re-noised with ``noise``)."""
    if sampler == "euler":
        return denoised + (x - denoised) * (sigma_next / sigma)
    if sampler == "lcm":  # consistency sampling: the estimate, re-noised to the next level
        return denoised if sigma_next == 0 else denoised + sigma_next * noise
    raise ValueError(f"sampler {sampler!r}: use lcm or euler")


def picture_of(latent: torch.Tensor, wrap: bool = False) -> torch.Tensor:
    """(1, 1, H, W) model space -> (1, 3, H, W) relief in [0, 1]."""
    return relief(latent.float(), wrap=wrap, tint_range=TINT_RANGE)


def crop_pairs(scene: Scene, stride: int) -> list:
    """Adjacent, non-overlapping window-size crops stepping by the base
    stride (every pair meets on a window edge of the stride grid): the
    TwinDiffusion protocol.  On a circle, pairs also run across the wrap."""
    pairs, _ = seam_metrics.adjacent_crop_pairs(scene.height, scene.width, NATIVE, stride)
    if scene.wrap:
        pairs = [((0, left), (0, (left + NATIVE) % scene.width)) for left in range(0, scene.width, stride)]
    return pairs


def crops(image: torch.Tensor, pairs: list) -> tuple[torch.Tensor, torch.Tensor]:
    def cut(top, left):
        cols = torch.arange(left, left + NATIVE) % image.shape[-1]
        return image[0, :, top:top + NATIVE][:, :, cols]
    return (torch.stack([cut(*a) for a, _ in pairs]), torch.stack([cut(*b) for _, b in pairs]))


def scores(result: Result, perceptual, stride: int) -> dict:
    """Coherence of one panorama on its relief picture: the seam score on
    its window edges (1 = no seam), LPIPS (alex, vgg) and DISTS between
    adjacent crops, and for MSD the layout score against the low-resolution
    pass (model space)."""
    scene = result.scene
    image = picture_of(result.latent, scene.wrap)
    out = {"seam": float(seam_metrics.seam_score(image[0].double(), result.boundaries_x, result.boundaries_y,
                                                 wrap=scene.wrap))}
    if perceptual is not None:
        first, second = crops(image, crop_pairs(scene, stride))
        for name, values in perceptual(first, second).items():
            out[name] = float(values.mean())
    if result.low_res is not None:
        down = F.interpolate(result.latent.double(), size=result.low_res.shape[-2:], mode="area")
        out["layout"] = float(((down - result.low_res.double()) ** 2).mean())
    return out


COLUMNS = (("lpips_alex", "LPIPS alex"), ("lpips_vgg", "LPIPS vgg"), ("dists", "DISTS"), ("seam", "seam score"),
           ("layout", "layout (MSD)"))


def table(per_method: dict[str, list[dict]], columns=COLUMNS) -> str:
    present = [(k, name) for k, name in columns if any(k in r for rows in per_method.values() for r in rows)]
    lines = ["| scene | method | " + " | ".join(name for _, name in present) + " | window evals | seconds |",
             "|" + "---|" * (len(present) + 4)]
    for label, rows in per_method.items():
        scene, method = label.split(" / ", 1)
        cells = " | ".join(summarise(rows, k) for k, _ in present)
        lines.append(f"| {scene} | {method} | {cells} | {int(statistics.mean(r['evaluations'] for r in rows))} | "
                     f"{statistics.mean(r['seconds'] for r in rows):.1f} |")
    return "\n".join(lines)


def sheet(groups: list[tuple[str, list[tuple[str, torch.Tensor]]]], path: Path, gap: int = 6) -> None:
    """Each scene a block of panels (its methods) stacked under their
    labels, scenes one under another."""
    blocks = []
    for title, panels in groups:
        images = [(label, Image.fromarray((img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)))
                  for label, img in panels]
        width = max(p.width for _, p in images)
        height = LABEL_HEIGHT + sum(p.height + LABEL_HEIGHT for _, p in images) + gap
        block = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(block)
        draw.text((4, 2), title, fill=(120, 0, 0))
        y = LABEL_HEIGHT
        for label, panel in images:
            draw.text((4, y + 2), label, fill="black")
            block.paste(panel, (0, y + LABEL_HEIGHT))
            y += panel.height + LABEL_HEIGHT
        blocks.append(block)
    sheet_img = Image.new("RGB", (max(b.width for b in blocks), sum(b.height for b in blocks)), "white")
    y = 0
    for block in blocks:
        sheet_img.paste(block, (0, y))
        y += block.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet_img.save(path)


DEMO_SCENES = {
    "strip": ("md", "twin", "feathered", "md2", "cross"),
    "2d": ("md", "msd"),
    "360": ("md", "cross"),
}


def scenes_for(args) -> dict[str, Scene]:
    w, s = NATIVE, args.stride
    return {
        "strip": Scene("strip", f"1-D strip {w}x{w * args.aspect} px", w, w * args.aspect, stride=s),
        "2d": Scene("2d", f"2-D panorama {2 * w}x{2 * w} px", 2 * w, 2 * w, stride=2 * s),
        "360": Scene("360", f"360 degrees, 2:1, {w}x{2 * w} px, wrap-around", w, 2 * w, wrap=True, stride=s),
    }


def run(args, progress_factory) -> dict:
    """The demo: every scene's methods for ``args.seeds`` seeds; writes the
    picture (first seed) and the table; returns the per-method rows."""
    from terrain.denoiser import TerrainDenoiser, difficulty_label

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    denoiser = TerrainDenoiser.load(difficulty=difficulty_label(args.difficulty))
    perceptual = None
    if not args.no_perceptual:
        from perceptual import perceptual_metrics
        perceptual = perceptual_metrics()
    scenes = scenes_for(args)
    chosen = [(scenes[k], [methods(scenes[k].stride, args.omega)[m] for m in DEMO_SCENES[k]]) for k in args.scenes]
    print(f"terrain model: adaptive-terrain-diffusion's consistency U-Net (10.4 M parameters, trained), "
          f"difficulty {args.difficulty:g}; {args.sampler} sampler, {args.steps} steps, {args.seeds} seed(s)",
          file=sys.stderr)
    progress = progress_factory(sum(len(ms) for _, ms in chosen) * args.seeds * args.steps, "sampling")
    per_method, groups = {}, []
    for scene, scene_methods in chosen:
        panels = []
        for method in scene_methods:
            rows = []
            for seed in range(args.seeds):
                result = sample(denoiser, method, scene, args.steps, seed, args.sampler, progress)
                rows.append({**scores(result, perceptual, scene.stride), "evaluations": result.evaluations,
                             "seconds": result.seconds})
                if seed == 0:
                    panels.append((method.label, picture_of(result.latent, scene.wrap)))
            per_method[f"{scene.key} / {method.label}"] = rows
        groups.append((scene.title, panels))
    sheet(groups, args.out)
    text = table(per_method)
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"\n{args.seeds} seed(s), {args.steps} {args.sampler} steps (Karras sigmas 80 -> 0.002), "
          f"{NATIVE} px windows, base stride s = {args.stride} px (2-D: {2 * args.stride} px); metrics on the "
          f"relief pictures, mean ± std over seeds; LPIPS / DISTS between adjacent {NATIVE} px crops stepping "
          f"by s (lower = more coherent)")
    print(text)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return per_method


def add_arguments(p) -> None:
    p.add_argument("--seeds", type=int, default=1, help="seeds per method; metrics are mean ± std (default 1)")
    p.add_argument("--steps", type=int, default=4, help="sampler steps (default 4; a consistency model)")
    p.add_argument("--sampler", choices=("lcm", "euler"), default="lcm", help="default lcm (consistency sampling)")
    p.add_argument("--stride", type=int, default=32,
                   help="base view stride s in px, a quarter of the 128 px window (the 2-D scene uses 2s)")
    p.add_argument("--aspect", type=int, default=3, help="strip width in windows (default 3: 128x384 px)")
    p.add_argument("--omega", type=float, default=10.0, help="MSD gradient weight (default 10, the paper's)")
    p.add_argument("--difficulty", type=float, default=50.0, help="terrain difficulty label 1..100 (default 50)")
    p.add_argument("--scenes", nargs="+", choices=tuple(DEMO_SCENES), default=list(DEMO_SCENES),
                   help="which panoramas (default all: strip 2d 360)")
    p.add_argument("--no-perceptual", action="store_true", help="skip LPIPS / DISTS (seam and layout only)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path("out/demo.png"), help="PNG to write (default out/demo.png)")
