"""Puts the pictures of the node docs (``web/docs/*.md``) where ComfyUI's docs
panel can load them: ``web/docs/images/``.

The docs panel resolves a relative image path against
``/extensions/<pack folder>/docs/``, i.e. the pack's ``web/docs/`` (ComfyUI
serves only the pack's WEB_DIRECTORY, ``web/``, under ``/extensions``), so the
pictures have to live there; ``example_workflows/`` and ``docs/`` are not
reachable from the panel.  This copies the small template thumbnails and the
360 viewer screenshot unchanged (``tests/test_node_docs.py`` checks that the
copies still equal their sources), cuts the Multi-Scale Diffusion
comparison out of ``docs/demo.png`` (the reference model) and the 2-D
terrain panoramas out of ``docs/terrain_demo.png`` (the trained model: the
main job's picture, ``bash scripts/demo.sh``).

Run: python tools/make_doc_images.py  (after tools/make_thumbnails.py or
python -m demo, whenever their pictures change)
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "web" / "docs" / "images"

# Copied byte for byte: source -> name under web/docs/images/.
COPIES = {
    "example_workflows/twin_panorama_sd15.jpg": "twin_panorama_sd15.jpg",
    "example_workflows/twin_model_patch_sd15.jpg": "twin_model_patch_sd15.jpg",
    "example_workflows/msd_panorama_sd15.jpg": "msd_panorama_sd15.jpg",
    "example_workflows/panorama_360_sd15.jpg": "panorama_360_sd15.jpg",
    "example_workflows/panorama_360_sphere_sd15.jpg": "panorama_360_sphere_sd15.jpg",
    "docs/viewer_360.png": "viewer_360.png",
    "docs/shifted_windows.png": "shifted_windows.png",  # tools/draw_diagrams.py
    "docs/rope_positions.png": "rope_positions.png",  # tools/draw_diagrams.py
}

# Boxes (left, top, right, bottom; None = the picture's width) of the
# demos' sheets, each panel a label strip and the image below it:
# docs/demo.png's last two panels, MultiDiffusion and Multi-Scale Diffusion
# at twice the window's height; docs/terrain_demo.png's 2-D scene (after the
# strip's title and five 128 px panels), MultiDiffusion and MSD, 256 px.
CROPS = {
    "demo_multiscale.jpg": ("docs/demo.png", (0, 730, None, 1278)),
    "terrain_relief.jpg": ("docs/terrain_demo.png", (0, 758, 256, 1302)),
}


def main() -> None:
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    for source, name in COPIES.items():
        shutil.copyfile(REPO / source, OUT / name)
        print(f"{source} -> {(OUT / name).relative_to(REPO)}")
    for name, (source, (left, top, right, bottom)) in CROPS.items():
        sheet = Image.open(REPO / source).convert("RGB")
        box = (left, top, right or sheet.width, min(bottom, sheet.height))
        sheet.crop(box).save(OUT / name, quality=88)
        print(f"{source} {box} -> {(OUT / name).relative_to(REPO)}")


if __name__ == "__main__":
    main()
