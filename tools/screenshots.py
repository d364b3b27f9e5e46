"""Screenshots of the pack in ComfyUI's real frontend (headless Chromium):
the 360 viewer showing a painted 2:1 panorama (docs/viewer_360.png, for the
README), with --terrain a 360 terrain panorama from the trained model
(docs/viewer_360_terrain.png; needs scripts/requirements-models.txt), and,
with --templates DIR, every template as a user opens it.

Run with the test venv's Python, ComfyUI at $COMFYUI_PATH (default ~/ComfyUI):
  python tools/screenshots.py [--terrain] [--templates /tmp/template_shots]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "host"))
sys.path.insert(0, str(REPO / "tools"))

import browser  # noqa: E402
from make_thumbnails import landscape  # noqa: E402
from test_frontend_browser import APP, VIEWER, load, viewer_workflow  # noqa: E402


def terrain_360(seed: int = 0):
    """The main job's 360 panorama (``bash scripts/demo.sh``, seed 0): 2:1,
    128 x 256 px, from the trained terrain model with wrap-around windows,
    Crop Fusion + Cross Sampling c = 2 at stride 64, 4 lcm steps, drawn as
    the demo draws it (hillshaded relief, hypsometric tints)."""
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from demo.terrain import Scene, methods, picture_of, sample
    from terrain.denoiser import NATIVE, TerrainDenoiser

    scene = Scene("360", "360 degrees", NATIVE, 2 * NATIVE, wrap=True, stride=32)
    result = sample(TerrainDenoiser.load(), methods(scene.stride)["cross"], scene, steps=4, seed=seed)
    pixels = picture_of(result.latent, wrap=True)[0].permute(1, 2, 0).mul(255).round().byte().numpy()
    return Image.fromarray(pixels)


def viewer_shot(server, page, out: Path, image=None):
    (image or landscape(2048, 1024, seed=7)).save(server.input_dir / "equirect_test.png")
    workflow = viewer_workflow()
    workflow["nodes"][1]["size"] = [760, 480]
    load(page, workflow)
    page.evaluate(f"{APP}.queuePrompt(0, 1).then(() => true)")
    page.wait_for(f"{VIEWER}?.dataset.state === 'ready'", 90)
    rect = page.evaluate(f"(() => {{ const r = {VIEWER}.querySelector('canvas').getBoundingClientRect(); "
                         f"return {{x: r.x, y: r.y, width: r.width, height: r.height}} }})()")
    centre = (rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)
    page.drag(centre, (centre[0] + 240, centre[1] + 30))
    page.sleep(0.5)
    # Both nodes: from the canvas' left edge to just past the viewer.
    view = page.evaluate(f"(() => {{ const r = {VIEWER}.getBoundingClientRect(); "
                         f"return {{x: r.x, y: r.y, width: r.width, height: r.height}} }})()")
    node = {"x": 60, "y": view["y"] - 80, "width": view["x"] + view["width"] + 20 - 60,
            "height": view["height"] + 100}
    out.write_bytes(page.screenshot(node))
    print(f"wrote {out}")


def template_shots(page, directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted((REPO / "example_workflows").glob("*.json")):
        load(page, json.loads(path.read_text()), missing_models=True)
        page.sleep(1)
        (directory / f"{path.stem}_dialog.png").write_bytes(page.screenshot())
        page.key("Escape")
        page.sleep(0.5)
        page.evaluate(f"(() => {{ const c = {APP}.canvas; c.ds.scale = 0.62; c.ds.offset = [40, 60]; "
                      f"c.setDirty(true, true); return true }})()")
        page.sleep(0.5)
        (directory / f"{path.stem}.png").write_bytes(page.screenshot())
        print(f"wrote {directory / path.stem}.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "viewer_360.png")
    parser.add_argument("--terrain", action="store_true",
                        help="show a 360 terrain panorama from the trained model instead (default out: "
                             "docs/viewer_360_terrain.png)")
    parser.add_argument("--templates", type=Path, help="also shoot every template into this folder")
    args = parser.parse_args()
    image = terrain_360() if args.terrain else None
    if args.terrain and args.out == parser.get_default("out"):
        args.out = REPO / "docs" / "viewer_360_terrain.png"
    executable = browser.find_browser()
    if executable is None:
        sys.exit("no Chromium found: apt-get install chromium, or set PANORAMA_BROWSER")
    server = browser.ComfyServer(Path(tempfile.mkdtemp(prefix="panorama-shots-")))
    page = None
    try:
        server.set_setting("Comfy.TutorialCompleted", True)
        page = browser.Browser(executable, width=1800, height=1100)
        page.open_comfyui(server.url)
        viewer_shot(server, page, args.out, image)
        if args.templates:
            template_shots(page, args.templates)
    finally:
        if page is not None:
            page.close()
        server.close()


if __name__ == "__main__":
    main()
