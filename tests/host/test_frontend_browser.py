"""The pack in ComfyUI's real frontend: a ComfyUI server started on
127.0.0.1 with the pack, and headless Chromium (Debian's ``chromium``; .ci/run
installs it) driven over the DevTools protocol.

* The 360 viewer extension loads without console errors, shows an executed
  panorama as a sphere, and a drag turns the view (screenshots compared).
* Every template is listed with its thumbnail, loads without missing nodes,
  has no overlapping nodes and no cut titles at the sizes the frontend gives
  them, and names its models with download locations the frontend offers.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy
import pytest

import browser
import harness

EXTENSION = "comfyui_panorama_diffusion.panorama360viewer"
TEMPLATES = sorted((harness.REPO_ROOT / "example_workflows").glob("*.json"))
APP = "window.comfyAPI.app.app"
# The host's own noise on an offline machine: lookups on api.comfy.org and
# files a fresh user directory does not have yet.
HOST_NOISE = ("net::ERR_NAME_NOT_RESOLVED", "net::ERR_INTERNET_DISCONNECTED", "/user.css", "/favicon.ico",
              "/api/userdata", "Error fetching file size")


def equirect_test_image(width=1024, height=512):
    """Hue by longitude, brighter to the north, a white 30-degree grid: any
    turn of the view changes what is seen."""
    lon = (numpy.arange(width) + 0.5) / width * 360 - 180
    lat = 90 - (numpy.arange(height) + 0.5) / height * 180
    lon, lat = numpy.meshgrid(lon, lat)
    hue = (lon + 180) / 360
    rgb = numpy.stack([0.5 + 0.5 * numpy.cos(2 * numpy.pi * (hue - k / 3)) for k in range(3)], -1)
    rgb *= (0.55 + 0.45 * (lat[..., None] + 90) / 180)
    grid = (numpy.abs((lon + 15) % 30 - 15) < 0.6) | (numpy.abs((lat + 15) % 30 - 15) < 0.6)
    rgb[grid] = 1.0
    return (rgb * 255).astype(numpy.uint8)


@pytest.fixture(scope="module")
def frontend():
    reason = harness.comfyui_missing_reason()
    if reason:
        pytest.skip(reason)
    executable = browser.find_browser()
    if executable is None:
        pytest.skip("no Chromium: install Debian's `chromium` (apt-get install chromium; .ci/run does) or set "
                    "PANORAMA_BROWSER to a Chromium/Chrome binary")
    from PIL import Image
    base = Path(tempfile.mkdtemp(prefix="panorama-frontend-"))
    server = browser.ComfyServer(base)
    Image.fromarray(equirect_test_image()).save(server.input_dir / "equirect_test.png")
    # The image the ControlNet template loads (a user brings their own).
    Image.fromarray(equirect_test_image(2048, 512)).save(server.input_dir / "panorama_reference.png")
    page = None
    try:
        server.set_setting("Comfy.TutorialCompleted", True)
        page = browser.Browser(executable)
        page.open_comfyui(server.url)
        page.wait_for("Object.keys(LiteGraph.registered_node_types).includes('SavePanorama360')", 60,
                      "the pack's nodes in the frontend")
        yield server, page
    finally:
        if page is not None:
            page.close()
        server.close()


def pack_errors(errors):
    return [e for e in errors if "panorama" in e.lower()]


def interaction_errors(errors):
    return [e for e in errors if not any(noise in e for noise in HOST_NOISE)]


def load(page, workflow, *, missing_models=False):
    page.evaluate(f"{APP}.loadGraphData({json.dumps(workflow)}, true, true, null, "
                  f"{{showMissingModelsDialog: {json.dumps(missing_models)}}}).then(() => true)")
    page.sleep(0.5)


def viewer_workflow():
    return {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {},
        "extra": {"ds": {"scale": 1, "offset": [20, 60]}},
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "nodes": [
            {"id": 1, "type": "LoadImage", "pos": [0, 0], "size": [300, 320], "flags": {}, "order": 0, "mode": 0,
             "inputs": [], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]},
                                       {"name": "MASK", "type": "MASK", "links": []}],
             "properties": {"Node name for S&R": "LoadImage"}, "widgets_values": ["equirect_test.png", "image"]},
            {"id": 2, "type": "PreviewPanorama360", "pos": [350, 0], "size": [520, 400], "flags": {}, "order": 1,
             "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 1}], "outputs": [],
             "properties": {"Node name for S&R": "PreviewPanorama360"}, "widgets_values": []},
        ],
    }


VIEWER = "document.querySelector('.panorama-360-viewer')"


def test_the_viewer_extension_is_served_and_registered(frontend):
    server, page = frontend
    assert "/extensions/comfyui_panorama_diffusion/panorama_360_viewer.js" in server.get_json("/extensions")
    assert page.evaluate(f"{APP}.extensions.some(e => e.name === '{EXTENSION}')")
    assert not pack_errors(page.errors), pack_errors(page.errors)


def test_viewer_renders_the_panorama_and_drag_turns_the_view(frontend):
    server, page = frontend
    before = len(page.errors)
    load(page, viewer_workflow())
    page.evaluate(f"{APP}.queuePrompt(0, 1).then(() => true)")
    page.wait_for(f"{VIEWER}?.dataset.state === 'ready' && Number({VIEWER}.dataset.frames) > 0", 90,
                  "the viewer showing the executed image")
    page.sleep(0.5)
    rect = page.evaluate(f"(() => {{ const r = {VIEWER}.querySelector('canvas').getBoundingClientRect(); "
                         f"return {{x: r.x, y: r.y, width: r.width, height: r.height}} }})()")
    assert rect["width"] > 200 and rect["height"] > 150, rect
    first = page.screenshot_array(rect)
    assert first.std() > 10, "the viewer shows a blank frame"
    # No flat preview: the sphere replaces it.
    assert page.evaluate(f"!{APP}.graph.getNodeById(2).widgets.some(w => w.name === '$$canvas-image-preview')")

    centre = (rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)
    page.drag(centre, (centre[0] + 150, centre[1] + 40))
    page.sleep(0.5)
    view = page.evaluate(f"({{...{VIEWER}.dataset}})")
    assert abs(float(view["yaw"])) > 10 and abs(float(view["pitch"])) > 2, view
    turned = page.screenshot_array(rect)
    assert numpy.abs(turned - first).mean() > 5, "a drag did not change the view"

    page.call("Input.dispatchMouseEvent", type="mouseWheel", x=centre[0], y=centre[1], deltaX=0, deltaY=-400)
    page.sleep(0.3)
    assert float(page.evaluate(f"{VIEWER}.dataset.fov")) < 90

    new = page.errors[before:]
    assert not interaction_errors(new) and not pack_errors(page.errors), new


def test_templates_are_listed_with_thumbnails(frontend):
    server, _ = frontend
    listed = server.get_json("/workflow_templates")[browser.PACK_DIR_NAME]
    assert sorted(listed) == [p.stem for p in TEMPLATES]
    for name in listed:
        status, content_type, body = server.get(f"/api/workflow_templates/{browser.PACK_DIR_NAME}/{name}.jpg")
        assert status == 200 and content_type == "image/jpeg" and len(body) > 5000, name


# Boxes as the frontend lays them out (title bar included) and whether each
# title fits its node's title bar, measured with the node's own font.
LAYOUT = f"""(() => {{
  const ctx = document.createElement('canvas').getContext('2d');
  return {APP}.graph.nodes.map(node => {{
    ctx.font = node.titleFontStyle;
    const title = node.getTitle();
    const space = node.size[0] - 2 * LiteGraph.NODE_TITLE_HEIGHT;
    return {{id: node.id, title, box: Array.from(node.getBounding()), fits: ctx.measureText(title).width <= space}};
  }});
}})()"""


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_template_loads_clean_in_the_frontend(path, frontend):
    _, page = frontend
    before = len(page.errors)
    workflow = json.loads(path.read_text())
    load(page, workflow, missing_models=True)
    dialogs = "Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText).join('\\n')"
    # The missing-models dialog lists every model the template names, with its download.
    models = [m["name"] for node in workflow["nodes"] for m in node["properties"].get("models", [])]
    assert models, "the template names no model"
    page.wait_for(f"(() => {{ const text = {dialogs}; return {json.dumps(models)}.every(m => text.includes(m)) }})()",
                  10, f"the missing-models dialog listing {models}")
    dialog = page.evaluate(dialogs)
    assert "Some Nodes Are Missing" not in dialog, dialog[:500]
    page.key("Escape")
    page.wait_for(f"!({dialogs})", 10, "the dialog closing")
    layout = page.evaluate(LAYOUT)
    assert len(layout) == len(workflow["nodes"])
    cut = [n["title"] for n in layout if not n["fits"]]
    assert not cut, f"titles cut at their node's width: {cut}"
    for i, a in enumerate(layout):
        for b in layout[i + 1:]:
            (ax, ay, aw, ah), (bx, by, bw, bh) = a["box"], b["box"]
            overlap = min(ax + aw, bx + bw) > max(ax, bx) and min(ay + ah, by + bh) > max(ay, by)
            assert not overlap, f"{a['title']!r} {a['box']} overlaps {b['title']!r} {b['box']}"
    assert not interaction_errors(page.errors[before:]), page.errors[before:]
