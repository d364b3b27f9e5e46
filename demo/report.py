"""Metrics, table and picture for the demo and the sweep."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from fusion.multiscale import downsample
from refmodel import metrics

LABEL_HEIGHT = 18


def scores(result, denoiser) -> dict:
    """Coherence of one panorama, on the decoded RGB image (what a user sees):
    seam score on its window boundaries (1.0 = no seam), the adjacent-crop
    1 - SSIM of the TwinDiffusion protocol, and for MSD runs the layout score
    against the low-resolution pass."""
    f = denoiser.config.downsample
    image = denoiser.decode(result.latent.double())[0].clamp(0, 1)
    window = denoiser.window[0] * f
    out = {
        "seam": float(metrics.seam_score(image, [c * f for c in result.boundaries])),
        "crop_1-ssim": float(metrics.adjacent_crop_distance(image, crop=image.shape[-2] if result.method.height_factor == 1 else window,
                                                             stride=result.method.stride * f)),
    }
    if result.low_res is not None:
        out["layout"] = float(metrics.layout_score(downsample(result.latent.double()), result.low_res.double()))
    return out


def summarise(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows if key in r]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(per_method: dict[str, list[dict]]) -> str:
    header = "| method | seam score (1 = none) | adjacent crops 1-SSIM | layout (MSD) | window evals | seconds |"
    lines = [header, "|" + "---|" * 6]
    for label, rows in per_method.items():
        lines.append(f"| {label} | {summarise(rows, 'seam')} | {summarise(rows, 'crop_1-ssim')} | "
                     f"{summarise(rows, 'layout')} | {int(statistics.mean(r['evaluations'] for r in rows))} | "
                     f"{statistics.mean(r['seconds'] for r in rows):.2f} |")
    return "\n".join(lines)


def to_image(latent: torch.Tensor, denoiser) -> Image.Image:
    rgb = denoiser.decode(latent.double())[0].clamp(0, 1)
    return Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def picture(panels: list[tuple[str, Image.Image]], path: Path) -> None:
    """The panels stacked, each under its label."""
    width = max(p.width for _, p in panels)
    height = sum(p.height + LABEL_HEIGHT for _, p in panels)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for label, panel in panels:
        draw.text((4, y + 3), label, fill="black")
        sheet.paste(panel, (0, y + LABEL_HEIGHT))
        y += panel.height + LABEL_HEIGHT
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
