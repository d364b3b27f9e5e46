"""Draws the diagrams of two docs pages (copied to web/docs/images/ by
tools/make_doc_images.py):

- ``docs/shifted_windows.png``: where shifted windows (SpotDiffusion, the
  Panorama Windows (Shifted) node) sit in four consecutive steps;
- ``docs/rope_positions.png``: the token positions three overlapping windows
  see, as ComfyUI gives them and with Panorama Window Positions (RoPE).

Run: python tools/draw_diagrams.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fusion import LatentGrid, WindowSettings, latent_plan, plan_views  # noqa: E402

OUT = REPO / "docs" / "shifted_windows.png"
ROPE_OUT = REPO / "docs" / "rope_positions.png"
WIDTH, HEIGHT, SCALE = 2048, 512, 0.4  # an SD1.5 panorama, drawn at 40 %
ROW, MARGIN, LABEL = int(HEIGHT * SCALE) // 2, 16, 26
COLOURS = [(255, 196, 0), (80, 170, 255), (120, 220, 120), (255, 110, 110), (200, 140, 255)]


def font(size):
    try:
        return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def shifted_windows(steps: int = 4) -> None:
    plan = latent_plan(WindowSettings(shift="golden"), LatentGrid(native=64))
    width = int(WIDTH * SCALE)
    picture = Image.new("RGB", (width + 2 * MARGIN, steps * (ROW + LABEL) + MARGIN), (24, 26, 32))
    draw = ImageDraw.Draw(picture)
    text = font(15)
    for step in range(steps):
        views = plan_views(plan, HEIGHT // 8, WIDTH // 8, step)
        top = MARGIN // 2 + step * (ROW + LABEL)
        draw.text((MARGIN, top), f"step {step}: {len(views)} windows, the grid moved {views.lefts[1] % 64 * 8} px",
                  fill=(225, 228, 235), font=text)
        y0 = top + LABEL - 4
        draw.rectangle([MARGIN, y0, MARGIN + width, y0 + ROW], fill=(48, 52, 62))
        for i, left in enumerate(views.lefts):
            x0 = MARGIN + left * 8 * SCALE
            x1 = x0 + views.window_w * 8 * SCALE
            inset = 4 + 3 * (i % 2)  # overlapping windows at the edges stay apart
            draw.rectangle([x0 + 1, y0 + inset, x1 - 1, y0 + ROW - inset], outline=COLOURS[i % len(COLOURS)],
                           width=3)
    picture.save(OUT)
    print(f"wrote {OUT.relative_to(REPO)}")


def rope_positions(tokens: int = 64, stride: int = 32, count: int = 3) -> None:
    """Three windows of ``tokens`` tokens, ``stride`` apart: the x position
    range each one's RoPE sees, without and with the node."""
    scale, band = 4, 44
    width = (tokens + stride * (count - 1)) * scale
    picture = Image.new("RGB", (width + 2 * MARGIN, 2 * (count * band + LABEL) + MARGIN), (24, 26, 32))
    draw = ImageDraw.Draw(picture)
    text = font(14)
    rows = [("ComfyUI's default: every window sees x from 0", lambda i: 0),
            ("Panorama Window Positions (RoPE): x from the window's place", lambda i: i * stride)]
    for r, (title, start) in enumerate(rows):
        top = MARGIN // 2 + r * (count * band + LABEL)
        draw.text((MARGIN, top), title, fill=(225, 228, 235), font=text)
        for i in range(count):
            y0 = top + LABEL + i * band
            x0 = MARGIN + i * stride * scale
            colour = COLOURS[i]
            draw.rectangle([x0, y0, x0 + tokens * scale, y0 + band - 8], outline=colour, width=3)
            first = start(i)
            draw.text((x0 + 10, y0 + 10), f"window {i + 1}: x = {first} ... {first + tokens - 1}", fill=colour,
                      font=text)
    picture.save(ROPE_OUT)
    print(f"wrote {ROPE_OUT.relative_to(REPO)}")


if __name__ == "__main__":
    shifted_windows()
    rope_positions()
