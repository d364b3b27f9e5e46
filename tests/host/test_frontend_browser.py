"""The pack in ComfyUI's real frontend: a ComfyUI server started on
127.0.0.1 with the pack, and headless Chromium (Debian's ``chromium``; .ci/run
installs it) driven over the DevTools protocol.

Each host is tested against its own frontend package (ComfyUI 0.3.64 ships
frontend 1.27, 0.33 ships 1.49), and the newest host also against the newest
frontend (scripts/requirements-frontend.txt: 1.58, served with
--front-end-root from the folder scripts/setup.sh installs it in); each
test's id names its frontend.  Where frontends differ the tests look for what
the running frontend shows a user rather than at its version number or its
class names.

* The 360 viewer extension loads without console errors, shows an executed
  panorama as a sphere instead of ComfyUI's flat preview, a drag turns the
  view (screenshots compared) and the wheel zooms it: on the LiteGraph canvas,
  and in the Vue node UI ("Nodes 2.0") where the frontend offers it to users.
  Save 360 Video's WebM plays on the sphere (the canvas changes while it
  plays, stays still once its button pauses it), drag and wheel as for a picture.
* Every template is listed with its thumbnail (by the server, and in the
  frontend's template browser, from which one opens), loads without missing nodes,
  has no overlapping nodes and no cut titles at the sizes the frontend gives
  them, and the frontend's missing-models UI (1.27: a dialog; 1.49: an error
  overlay leading to the Errors tab of the right side panel, 1.58 likewise) lists each model
  it names, whose Download opens the template's download URL.
* The node docs (web/docs/) and translations (locales/): the server serves
  them (/extensions/<pack>/docs/, /i18n), the English locale says what the
  nodes say, the docs panel (1.27: the node library's side bar; 1.49 and
  1.58: the Info tab of the right side panel, opened by the selection toolbox's
  info button) shows a node's page with its picture, and with Comfy.Locale =
  zh the node names, the node search and the docs page are the Chinese ones.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import tempfile
import time
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


def equirect_test_video_frames(frames=16, width=256, height=128):
    """The test picture turning once around per loop: each frame rolled by
    1/frames of the circle, so any two frames differ."""
    picture = equirect_test_image(width, height)
    return [numpy.roll(picture, k * width // frames, axis=1) for k in range(frames)]


def _version_key(version):
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def host_frontends():
    """The frontends the browser tests run on with this host, as
    (version, --front-end-root or None for the host's own): the host's own
    package, and the newest one (scripts/requirements-frontend.txt) on the
    hosts it names, served from the folder scripts/setup.sh installs it in.
    Known at collection, so that each test's id names its frontend."""
    host = harness.comfyui_path()
    own = "own"
    try:
        own = importlib.metadata.version("comfyui_frontend_package")
    except importlib.metadata.PackageNotFoundError:
        pinned = re.search(r"^comfyui-frontend-package==(\S+)", _read(host / "requirements.txt"), re.M)
        own = pinned.group(1) if pinned else own
    frontends = [(own, None)]
    spec = _read(NEWEST_FRONTEND_SPEC)
    newest = re.search(r"^comfyui-frontend-package==(\S+)", spec, re.M).group(1)
    min_host = re.search(r"^# min-comfyui: *(\S+)", spec, re.M).group(1)
    version = re.search(r'__version__ = "([^"]+)"', _read(host / "comfyui_version.py"))
    if version and _version_key(version.group(1)) >= _version_key(min_host) and newest != own:
        root = Path(os.environ.get("PANORAMA_VENV_ROOT", Path.home() / ".cache" / "comfy-panorama"))
        frontends.append((newest, root / f"frontend-{newest}" / "comfyui_frontend_package" / "static"))
    return frontends


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


NEWEST_FRONTEND_SPEC = harness.REPO_ROOT / "scripts" / "requirements-frontend.txt"
FRONTENDS = host_frontends()


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f"frontend-{version}" for version, _ in FRONTENDS])
def frontend(request):
    """A ComfyUI server with the pack and a browser page on its frontend, per
    frontend of this host (the module's tests run on one, then the next)."""
    version, root = request.param
    reason = harness.comfyui_missing_reason()
    if reason:
        pytest.skip(reason)
    if root is not None and not (root / "index.html").is_file():
        pytest.skip(f"frontend {version} is not installed at {root.parents[1]}: "
                    f"`bash scripts/setup.sh {harness.comfyui_path()}` installs it")
    executable = browser.find_browser()
    if executable is None:
        pytest.skip("no Chromium: install Debian's `chromium` (apt-get install chromium; .ci/run does) or set "
                    "PANORAMA_BROWSER to a Chromium/Chrome binary")
    from PIL import Image
    base = Path(tempfile.mkdtemp(prefix="panorama-frontend-"))
    server = browser.ComfyServer(base, front_end_root=root)
    server.frontend_version = version
    Image.fromarray(equirect_test_image()).save(server.input_dir / "equirect_test.png")
    # The image the ControlNet template loads (a user brings their own).
    Image.fromarray(equirect_test_image(2048, 512)).save(server.input_dir / "panorama_reference.png")
    # And the photos and the panorama the photo-extension, photo-to-360 and upscale templates load.
    Image.fromarray(equirect_test_image(512, 512)).save(server.input_dir / "photo_to_extend.png")
    Image.fromarray(equirect_test_image(512, 384)).save(server.input_dir / "photo_to_360.png")
    Image.fromarray(equirect_test_image(2048, 512)).save(server.input_dir / "panorama_to_upscale.png")
    # The wide photo the photo-to-wide-video template starts from.
    Image.fromarray(equirect_test_image(2560, 704)).save(server.input_dir / "wide_photo.png")
    # A 2:1 360 video's frames as an animated PNG: Load Image gives them as a batch.
    first, *rest = [Image.fromarray(frame) for frame in equirect_test_video_frames()]
    first.save(server.input_dir / "equirect_video_test.png", save_all=True, append_images=rest, duration=125, loop=0)
    page = None
    try:
        server.set_setting("Comfy.TutorialCompleted", True)
        page = browser.Browser(executable)
        # The frontend asks the model hosts how big each missing model is; offline
        # that fails and 1.27 then downloads from the repository page instead.
        page.answer_head_requests({m["url"]: 2_000_000_000 for path in TEMPLATES for m in template_models(path)})
        page.open_comfyui(server.url)
        # The page runs the frontend this test is named after (a --front-end-root the server ignored
        # would test the host's own twice).
        assert page.evaluate("window.__COMFYUI_FRONTEND_VERSION__") == version
        page.wait_for("Object.keys(LiteGraph.registered_node_types).includes('SavePanorama360')", 60,
                      "the pack's nodes in the frontend")
        yield server, page
    finally:
        if page is not None:
            page.close()
        server.close()


def template_models(path):
    """The models a template's nodes name, each once: name, url, directory."""
    models = {}
    for node in json.loads(Path(path).read_text())["nodes"]:
        for model in node.get("properties", {}).get("models", []):
            models.setdefault(model["name"], model)
    return list(models.values())


def pack_errors(errors):
    return [e for e in errors if "panorama" in e.lower()]


def interaction_errors(errors):
    return [e for e in errors if not any(noise in e for noise in HOST_NOISE)]


def load(page, workflow, *, missing_models=False):
    """Loads a workflow as a user's file would be.  `showMissingModelsDialog` is
    frontend 1.27's option; 1.49 has none and always reports missing models."""
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


VUE_NODES = "Comfy.VueNodes.Enabled"
# The setting's definition: frontend 1.49 offers the Vue node UI ("Nodes 2.0")
# in its settings; 1.27 has it only as a hidden experiment.
VUE_NODES_SETTING = f"JSON.stringify({APP}.ui.settings.settingsParamLookup?.['{VUE_NODES}'] ?? null)"
SCREENSHOTS = Path(tempfile.gettempdir()) / "panorama-frontend-screenshots"


def set_setting(page, key, value):
    page.evaluate(f"{APP}.extensionManager.setting.set({json.dumps(key)}, {json.dumps(value)}).then(() => true)")


@pytest.fixture(params=["litegraph", "vue-nodes"])
def node_ui(request, frontend):
    """The node UI the viewer is shown in: LiteGraph's canvas, or the Vue node
    UI where this frontend offers it (set back to the canvas afterwards)."""
    _, page = frontend
    if request.param == "litegraph":
        yield request.param
        return
    setting = json.loads(page.evaluate(VUE_NODES_SETTING))
    if not setting or setting.get("type") == "hidden":
        kind = f"{setting.get('type')!r} ({setting.get('name')})" if setting else "absent"
        pytest.skip(f"this frontend does not offer the Vue node UI to users: its setting {VUE_NODES} is {kind}")
    set_setting(page, VUE_NODES, True)
    try:
        yield request.param
    finally:
        set_setting(page, VUE_NODES, False)


def test_viewer_renders_the_panorama_and_drag_turns_the_view(frontend, node_ui):
    server, page = frontend
    before = len(page.errors)
    load(page, viewer_workflow())
    if node_ui == "vue-nodes":
        page.wait_for("!!document.querySelector('[data-node-id=\"2\"]')", 20, "the viewer node drawn as a Vue node")
    page.evaluate(f"{APP}.queuePrompt(0, 1).then(() => true)")
    page.wait_for(f"{VIEWER}?.dataset.state === 'ready' && Number({VIEWER}.dataset.frames) > 0", 90,
                  "the viewer showing the executed image")
    page.sleep(0.5)
    rect = page.evaluate(f"(() => {{ const r = {VIEWER}.querySelector('canvas').getBoundingClientRect(); "
                         f"return {{x: r.x, y: r.y, width: r.width, height: r.height}} }})()")
    assert rect["width"] > 200 and rect["height"] > 150, rect
    first = page.screenshot_array(rect)
    assert first.std() > 10, "the viewer shows a blank frame"
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"viewer-{node_ui}-{screenshot_name(server)}.png").write_bytes(page.screenshot())

    # No flat preview: the sphere replaces it, though the frontend has the image.
    assert page.evaluate(f"{APP}.nodeOutputs['2']?.images?.length") == 1
    if node_ui == "litegraph":
        assert page.evaluate(f"!{APP}.graph.getNodeById(2).widgets.some(w => w.name === '$$canvas-image-preview')")
    else:
        node = "document.querySelector('[data-node-id=\"2\"]')"
        assert page.evaluate(f"{node}.contains({VIEWER})")
        assert page.evaluate(f"{node}.querySelectorAll('img, video').length") == 0, "a flat preview beside the sphere"

    position = page.evaluate(f"Array.from({APP}.graph.getNodeById(2).pos)")
    scale = page.evaluate(f"{APP}.canvas.ds.scale")
    centre = (rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)
    page.drag(centre, (centre[0] + 150, centre[1] + 40))
    page.sleep(0.5)
    view = page.evaluate(f"({{...{VIEWER}.dataset}})")
    assert abs(float(view["yaw"])) > 10 and abs(float(view["pitch"])) > 2, view
    turned = page.screenshot_array(rect)
    assert numpy.abs(turned - first).mean() > 5, "a drag did not change the view"
    assert page.evaluate(f"Array.from({APP}.graph.getNodeById(2).pos)") == position, "the drag moved the node"

    # The drag focused the viewer: the Vue node UI hands the wheel to a focused widget only.
    page.call("Input.dispatchMouseEvent", type="mouseWheel", x=centre[0], y=centre[1], deltaX=0, deltaY=-400)
    page.sleep(0.3)
    assert float(page.evaluate(f"{VIEWER}.dataset.fov")) < 90
    assert page.evaluate(f"{APP}.canvas.ds.scale") == scale, "the wheel zoomed the graph too"

    new = page.errors[before:]
    assert not interaction_errors(new) and not pack_errors(page.errors), new


def video_viewer_workflow():
    workflow = viewer_workflow()
    load_image, save = workflow["nodes"]
    load_image["widgets_values"] = ["equirect_video_test.png", "image"]
    save.update({"type": "SavePanorama360Video", "properties": {"Node name for S&R": "SavePanorama360Video"},
                 "widgets_values": ["panorama360_video_test", 8.0, 32.0]})
    return workflow


def viewer_canvas_rect(page):
    return page.evaluate(f"(() => {{ const r = {VIEWER}.querySelector('canvas').getBoundingClientRect(); "
                         f"return {{x: r.x, y: r.y, width: r.width, height: r.height}} }})()")


def wait_for_screenshot(page, rect, check, timeout, what):
    """Screenshots of the canvas until one passes `check` (a condition on
    the pixels: nothing to wait on in the page says when a video frame is
    on screen)."""
    deadline = time.monotonic() + timeout
    while True:
        shot = page.screenshot_array(rect)
        if check(shot):
            return shot
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        page.sleep(0.2)


def test_viewer_plays_the_360_video_and_pauses(frontend, node_ui):
    """Save 360 Video's WebM on the sphere: it plays (the canvas changes
    over time), the button pauses it (the canvas stays still), drag and
    wheel turn and zoom it as for a picture."""
    server, page = frontend
    before = len(page.errors)
    load(page, video_viewer_workflow())
    if node_ui == "vue-nodes":
        page.wait_for("!!document.querySelector('[data-node-id=\"2\"]')", 20, "the viewer node drawn as a Vue node")
    page.evaluate(f"{APP}.queuePrompt(0, 1).then(() => true)")
    page.wait_for(f"{VIEWER}?.dataset.state === 'ready' && {VIEWER}.dataset.kind === 'video' && "
                  f"{VIEWER}.dataset.playing === 'true' && Number({VIEWER}.dataset.uploads) > 2", 120,
                  "the viewer playing the saved video")
    # The node's output is ComfyUI's animated one (as Save WEBM's): one WebM in the output folder.
    output = json.loads(page.evaluate(f"JSON.stringify({APP}.nodeOutputs['2'])"))
    assert output["animated"] == [True] and len(output["images"]) == 1, output
    saved = output["images"][0]
    assert saved["filename"].endswith(".webm") and saved["type"] == "output", saved
    assert (server.base / "output" / saved["subfolder"] / saved["filename"]).stat().st_size > 0
    rect = viewer_canvas_rect(page)
    assert rect["width"] > 200 and rect["height"] > 150, rect
    first = page.screenshot_array(rect)
    assert first.std() > 10, "the viewer shows a blank frame"
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"video-viewer-{node_ui}-{screenshot_name(server)}.png").write_bytes(page.screenshot())
    # Playing: the texture follows the video (each frame turns the picture by 1/16 of the circle).
    wait_for_screenshot(page, rect, lambda shot: numpy.abs(shot - first).mean() > 3, 30,
                        "the playing video to change the sphere")
    # No flat video beside the sphere.
    if node_ui == "vue-nodes":
        node = "document.querySelector('[data-node-id=\"2\"]')"
        assert page.evaluate(f"{node}.contains({VIEWER})")
        assert page.evaluate(f"{node}.querySelectorAll('img, video').length") == 0, "a flat preview beside the sphere"
    else:
        widgets = page.evaluate(f"{APP}.graph.getNodeById(2).widgets.map(w => w.name)")
        assert not any("preview" in name for name in widgets), widgets

    # The button pauses: the sphere keeps the frame it stopped at.
    button = page.evaluate(f"(() => {{ const r = {VIEWER}.querySelector('.panorama-360-play').getBoundingClientRect(); "
                           f"return [r.x + r.width / 2, r.y + r.height / 2] }})()")
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=button[0], y=button[1])
    page.call("Input.dispatchMouseEvent", type="mousePressed", x=button[0], y=button[1], button="left", buttons=1,
              clickCount=1)
    page.call("Input.dispatchMouseEvent", type="mouseReleased", x=button[0], y=button[1], button="left", buttons=0,
              clickCount=1)
    page.wait_for(f"{VIEWER}.dataset.playing === 'false'", 10, "the video paused")
    # Two animation frames after the pause, the paused frame is on screen.
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
    paused = page.screenshot_array(rect)
    uploads, video_time = page.evaluate(f"[{VIEWER}.dataset.uploads, {VIEWER}.dataset.videoTime]")
    page.sleep(1.0)  # longer than the video's frames (1/8 s): nothing to wait for, the point is that nothing happens
    assert page.evaluate(f"[{VIEWER}.dataset.uploads, {VIEWER}.dataset.videoTime]") == [uploads, video_time]
    assert numpy.abs(page.screenshot_array(rect) - paused).max() < 1, "the sphere changed while paused"

    # Drag and wheel as for a picture, paused.
    centre = (rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2)
    position = page.evaluate(f"Array.from({APP}.graph.getNodeById(2).pos)")
    scale = page.evaluate(f"{APP}.canvas.ds.scale")
    page.drag(centre, (centre[0] + 150, centre[1] + 40))
    page.wait_for(f"Math.abs(Number({VIEWER}.dataset.yaw)) > 10", 10, "the drag turning the view")
    wait_for_screenshot(page, rect, lambda shot: numpy.abs(shot - paused).mean() > 5, 10,
                        "the turned view on screen")
    assert page.evaluate(f"Array.from({APP}.graph.getNodeById(2).pos)") == position, "the drag moved the node"
    page.call("Input.dispatchMouseEvent", type="mouseWheel", x=centre[0], y=centre[1], deltaX=0, deltaY=-400)
    page.wait_for(f"Number({VIEWER}.dataset.fov) < 90", 10, "the wheel zooming the view")
    assert page.evaluate(f"{APP}.canvas.ds.scale") == scale, "the wheel zoomed the graph too"

    # And the button plays it again.
    page.call("Input.dispatchMouseEvent", type="mousePressed", x=button[0], y=button[1], button="left", buttons=1,
              clickCount=1)
    page.call("Input.dispatchMouseEvent", type="mouseReleased", x=button[0], y=button[1], button="left", buttons=0,
              clickCount=1)
    page.wait_for(f"{VIEWER}.dataset.playing === 'true' && {VIEWER}.dataset.uploads !== {json.dumps(uploads)}", 10,
                  "the video playing again")

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


# Where the frontend lists the missing models of a graph it loaded, found by
# what the page has: frontend 1.27 opens a dialog (PrimeVue's .p-dialog);
# 1.49 shows an error overlay whose "see errors" button opens the Errors tab of
# the right side panel, with a "Missing Models" group.  `box` is the element
# that lists every one of `names`; `form` says which one it is, or that only
# the overlay leading there is shown.
MISSING_MODELS = """const shown = e => !!e && e.getClientRects().length > 0;
const lists = e => shown(e) && names.every(n => e.innerText.includes(n));
const dialog = Array.from(document.querySelectorAll('.p-dialog')).find(lists);
const group = document.querySelector('[data-testid="error-group-missing-model"]');
const overlay = document.querySelector('[data-testid="error-overlay-see-errors"]');
const [form, box] = dialog ? ['dialog', dialog] : lists(group) ? ['errors panel', group]
  : shown(overlay) ? ['error overlay', overlay] : [null, null];"""


def missing_models_ui(names):
    return f"(() => {{ const names = {json.dumps(names)}; {MISSING_MODELS} return form; }})()"


# Clicks each Download button of the missing-models UI and records what it
# opens (the frontend clicks a link, or opens a window), instead of opening it;
# each button's row is its nearest ancestor that names a model.
DOWNLOADS = """(async () => {{
  const names = {names}; {find}
  const buttons = Array.from(box.querySelectorAll('button'))
    .filter(b => shown(b) && /^download\\b/i.test(b.innerText.trim()) && !/\\ball\\b/i.test(b.innerText));
  const opened = [], rows = [];
  const anchorClick = HTMLAnchorElement.prototype.click, windowOpen = window.open;
  HTMLAnchorElement.prototype.click = function () {{ opened.push(this.href); }};
  window.open = url => {{ opened.push(String(url)); return null; }};
  try {{
    for (const button of buttons) {{
      let row = button;
      while (row !== box && !names.some(n => row.innerText.includes(n))) row = row.parentElement;
      const start = opened.length;
      button.click();
      for (let i = 0; i < 50 && opened.length === start; i++) await new Promise(r => setTimeout(r, 100));
      rows.push({{button: button.innerText.trim(), names: names.filter(n => row.innerText.includes(n)),
                  opened: opened.slice(start)}});
    }}
  }} finally {{
    HTMLAnchorElement.prototype.click = anchorClick;
    window.open = windowOpen;
  }}
  return rows;
}})()"""

# The errors the Errors tab of frontend 1.49 shows, by group (missing models,
# missing nodes, missing media, ...).
ERROR_GROUPS = ("Array.from(document.querySelectorAll('[data-testid^=\"error-group-\"]'))"
                ".map(e => e.dataset.testid).filter(t => t !== 'error-group-display-message')")
# The close button of the right side panel (frontend 1.49) holding `box`.
CLOSE_PANEL = """(() => {{
  const names = {names}; {find}
  for (let e = box; e; e = e.parentElement) {{
    const close = e.querySelector('button[aria-pressed="true"]');
    if (close) {{ close.click(); return true; }}
  }}
  return false;
}})()"""


def check_missing_models_ui(page, models):
    """The frontend's missing-models UI lists each of `models` in a row of its
    own whose Download opens the model's URL, and no missing node beside them;
    closes it."""
    names = [m["name"] for m in models]
    form = page.wait_for(missing_models_ui(names), 20, f"the missing-models UI listing {names}")
    if form == "error overlay":
        page.evaluate("document.querySelector('[data-testid=\"error-overlay-see-errors\"]').click()")
        form = page.wait_for(f"(() => {{ const f = {missing_models_ui(names)}; return f !== 'error overlay' && f }})()",
                             10, f"the Errors tab listing {names}")
    # Only the models are missing: no missing nodes (or media) beside them.
    if form == "dialog":
        dialogs = page.evaluate("Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText).join('\\n')")
        assert "Some Nodes Are Missing" not in dialogs, dialogs[:500]
    else:
        assert page.evaluate(ERROR_GROUPS) == ["error-group-missing-model"], page.evaluate(ERROR_GROUPS)
    # Each model has its own row with a Download, which opens the template's URL.
    rows = page.evaluate(DOWNLOADS.format(names=json.dumps(names), find=MISSING_MODELS))
    assert all(len(row["names"]) == 1 for row in rows), rows
    downloads = {}
    for row in rows:
        downloads.setdefault(row["names"][0], []).extend(row["opened"])
    assert downloads == {m["name"]: [m["url"]] for m in models}, rows

    if form == "dialog":
        page.key("Escape")
    else:
        assert page.evaluate(CLOSE_PANEL.format(names=json.dumps(names), find=MISSING_MODELS))
    page.wait_for(f"!{missing_models_ui(names)}", 10, f"the {form} closing")


def check_nothing_missing(page):
    """A template naming no model file: the frontend reports nothing missing
    (1.27: no dialog; 1.49: no error overlay, no error group)."""
    page.sleep(1.5)
    shown = page.evaluate("""(() => {
      const shown = e => !!e && e.getClientRects().length > 0;
      return {dialogs: Array.from(document.querySelectorAll('.p-dialog')).filter(shown).map(d => d.innerText),
              overlay: shown(document.querySelector('[data-testid="error-overlay-see-errors"]'))};
    })()""")
    assert not shown["dialogs"] and not shown["overlay"], shown
    assert page.evaluate(ERROR_GROUPS) == [], page.evaluate(ERROR_GROUPS)


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_template_loads_clean_in_the_frontend(path, frontend):
    _, page = frontend
    before = len(page.errors)
    workflow = json.loads(path.read_text())
    models = template_models(path)
    # terrain_panorama names none: its weights come from a pip package (its note says which), not a file.
    package_loaders = [n for n in workflow["nodes"] if n["type"] == "PanoramaTerrainModelLoader"]
    assert models or package_loaders, "the template names no model"
    missing_types = sorted({n["type"] for n in workflow["nodes"]}
                           - set(page.evaluate("Object.keys(LiteGraph.registered_node_types)")))
    assert not missing_types, f"node types the frontend does not know: {missing_types}"

    load(page, workflow, missing_models=True)
    if models:
        check_missing_models_ui(page, models)
    else:
        check_nothing_missing(page)

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


# The frontend's template browser (a dialog in 1.27, 1.49 and 1.58), found
# by what it shows: the last shown dialog naming the pack's category; in it
# the element showing exactly `text` (a leaf), the card of each template (the
# largest ancestor of its title holding no other template's title) and the
# list the cards scroll in.  The list mounts the cards, but not all of what
# they show: 1.27 renders them a page (12) at a time, the next page when the
# list is scrolled to its end, and every frontend mounts a card's thumbnail
# <img> only while the card is in or near the view (a skeleton before), so
# right after a scroll, on a busy machine, no card may have its image.  So
# each card and its image are looked up again at each use, never kept across
# two evaluations, and what the list shows is collected while it is scrolled
# through a step at a time.
STEMS = [p.stem for p in TEMPLATES]
BROWSER_JS = """const dialog = Array.from(document.querySelectorAll('[role="dialog"]'))
  .filter(d => d.getClientRects().length && d.textContent.includes(%(pack)s)).at(-1);
const leaves = dialog ? Array.from(dialog.querySelectorAll('*')).filter(e => e.children.length === 0) : [];
const leaf = text => leaves.find(e => e.textContent.trim() === text);
const titles = leaves.filter(e => %(names)s.includes(e.textContent.trim()));
const card = name => {
  let e = leaf(name);
  while (e && e.parentElement && e.parentElement !== dialog
         && !titles.some(t => t !== e && e.parentElement.contains(t) && !e.contains(t))) e = e.parentElement;
  return e ?? null;
};
const thumbnail = name => {
  const img = card(name)?.querySelector('img');
  return img && img.complete && img.naturalWidth ? img : null;
};
// An image as the mean colour of each of 8 x 5 blocks (the frontend shows
// thumbnails from blob: addresses, so the picture itself says which it is).
const blocks = img => {
  const canvas = document.createElement('canvas'), w = img.naturalWidth, h = img.naturalHeight;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, w, h).data, out = [];
  for (let by = 0; by < 5; by++) for (let bx = 0; bx < 8; bx++) {
    const sum = [0, 0, 0]; let n = 0;
    for (let y = Math.floor(by * h / 5); y < Math.floor((by + 1) * h / 5); y++)
      for (let x = Math.floor(bx * w / 8); x < Math.floor((bx + 1) * w / 8); x++, n++)
        for (let c = 0; c < 3; c++) sum[c] += data[(y * w + x) * 4 + c];
    out.push(...sum.map(v => v / n));
  }
  return out;
};
const scroller = () => {
  let e = titles[0]?.parentElement;
  while (e && e !== dialog && !(e.scrollHeight > e.clientHeight + 1
         && /auto|scroll/.test(getComputedStyle(e).overflowY))) e = e.parentElement;
  return e && e !== dialog ? e : null;
};
const scrollOn = list => {
  list.scrollTop = list.scrollTop + list.clientHeight >= list.scrollHeight - 1 ? 0
    : list.scrollTop + Math.max(1, list.clientHeight / 2);
};""" % {"pack": json.dumps(browser.PACK_DIR_NAME), "names": json.dumps(STEMS)}

# One step through the template list: records each card shown whose image
# has loaded (in window.__panoramaThumbnails: its image's size and blocks),
# then, once the cards in view have their images (or after 2 s), scrolls the
# list on by half its height, back to the top from its end (a card passed
# before its image loaded is seen again).  True once every template was seen.
COLLECT_THUMBNAILS = """(() => {{ {browser}
  const state = window.__panoramaThumbnails, list = scroller(), view = list?.getBoundingClientRect();
  const inView = e => {{ const r = e.getBoundingClientRect(); return !!view && r.bottom > view.top && r.top < view.bottom; }};
  let waiting = false;
  for (const name of {names}) {{
    const img = thumbnail(name), shown = card(name);
    if (img && !(name in state.seen)) state.seen[name] = {{size: [img.naturalWidth, img.naturalHeight], blocks: blocks(img)}};
    else if (shown && inView(shown)) waiting = true;
  }}
  if ({names}.every(name => name in state.seen)) return true;
  if (list && (!waiting || ++state.polls >= 8)) {{ scrollOn(list); state.polls = 0; }}
  return false;
}})()"""

# Clicks the card `name` as a user does: scrolled to until it is there, brought
# to the middle of the list, and clicked (looked up again) once its place has
# held for 3 checks 50 ms apart: a click on a card the list is still
# scrolling, or on one it has just replaced by a new element, is lost.
CLICK_CARD = """(async () => {{
  const name = {name}, pause = ms => new Promise(r => setTimeout(r, ms));
  const find = () => {{ {browser} return {{card: card(name), list: scroller(), scrollOn}}; }};
  for (let tries = 0; tries < 200; tries++) {{
    const {{card, list, scrollOn}} = find();
    if (!card) {{
      if (list) scrollOn(list);
      await pause(100);
      continue;
    }}
    card.scrollIntoView({{block: 'center'}});
    let last = null, held = 0;
    while (held < 3) {{
      await pause(50);
      const r = find().card?.getBoundingClientRect(), place = r && `${{r.x}},${{r.y}},${{r.width}},${{r.height}}`;
      if (!place) break;
      held = place === last ? held + 1 : 0;
      last = place;
    }}
    const shown = find().card;
    if (held >= 3 && shown) {{ shown.click(); return true; }}
  }}
  return false;
}})()"""


def test_template_browser_lists_the_templates_and_opens_one(frontend):
    server, page = frontend
    before = len(page.errors)
    page.evaluate(f"{APP}.extensionManager.command.execute('Comfy.BrowseTemplates').then(() => true)")
    # The pack's templates are a category of their own, named after the pack's directory.
    pack = json.dumps(browser.PACK_DIR_NAME)
    page.wait_for(f"(() => {{ {BROWSER_JS} return !!leaf({pack}) }})()", 30,
                  "the template browser with the pack's category")
    page.evaluate(f"(() => {{ {BROWSER_JS} leaf({pack}).click(); return true }})()")
    names = json.dumps(STEMS)
    page.wait_for(f"(() => {{ {BROWSER_JS} return titles.length > 0 }})()", 30, "the pack's template cards")
    # Each template has a card showing its thumbnail (the browser loads them as they scroll into view).
    page.evaluate("window.__panoramaThumbnails = {seen: {}, polls: 0}, true")
    try:
        page.wait_for(COLLECT_THUMBNAILS.format(browser=BROWSER_JS, names=names), 120,
                      f"a card with its thumbnail for each of {STEMS}")
    except TimeoutError:
        pass  # the comparison below names the cards not seen
    seen = page.evaluate("window.__panoramaThumbnails.seen")
    assert sorted(seen) == STEMS, f"no card with its thumbnail shown for {sorted(set(STEMS) - set(seen))}"
    from PIL import Image
    for path in TEMPLATES:
        thumbnail = numpy.asarray(Image.open(path.with_suffix(".jpg")).convert("RGB"), dtype=numpy.float64)
        assert seen[path.stem]["size"] == [thumbnail.shape[1], thumbnail.shape[0]], path.stem
        # The card shows this template's picture (JPEG decoders differ by a level or so).
        h, w = thumbnail.shape[:2]
        expected = [thumbnail[by * h // 5:(by + 1) * h // 5, bx * w // 8:(bx + 1) * w // 8].mean((0, 1))
                    for by in range(5) for bx in range(8)]
        difference = numpy.abs(numpy.array(seen[path.stem]["blocks"]) - numpy.concatenate(expected)).max()
        assert difference < 4, f"{path.stem}: its card shows another picture (blocks differ by {difference:.1f})"
    # The screenshot: the top of the list, once each card in view shows its thumbnail.
    page.evaluate(f"(() => {{ {BROWSER_JS} const list = scroller(); if (list) list.scrollTop = 0; return true }})()")
    page.wait_for(f"""(() => {{ {BROWSER_JS}
      const view = scroller()?.getBoundingClientRect();
      const shown = view && titles.filter(t => {{ const r = t.getBoundingClientRect();
        return r.height && r.bottom > view.top && r.top < view.bottom; }});
      return !!shown?.length && shown.every(t => thumbnail(t.textContent.trim())) }})()""", 30,
                  "the cards in view with their thumbnails")
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"template-browser-{screenshot_name(server)}.png").write_bytes(page.screenshot())

    # A click on a card opens the template as a workflow of its own.
    path = harness.REPO_ROOT / "example_workflows" / "panorama_360_sd15.json"
    workflow = json.loads(path.read_text())
    assert page.evaluate(CLICK_CARD.format(browser=BROWSER_JS, name=json.dumps(path.stem))), \
        f"the card {path.stem} did not hold its place in the list"
    types = json.dumps(sorted(n["type"] for n in workflow["nodes"]), separators=(",", ":"))
    page.wait_for(f"{APP}.extensionManager.workflow.activeWorkflow?.path?.endsWith({json.dumps(path.name)}) && "
                  f"JSON.stringify({APP}.graph.nodes.map(n => n.type).sort()) === {json.dumps(types)}",
                  30, f"the workflow {path.name} open")
    check_missing_models_ui(page, template_models(path))
    assert page.evaluate(f"{APP}.graph.nodes.find(n => n.type === 'SavePanorama360')"
                         ".widgets.some(w => w.name === 'panorama_360_viewer')"), "the 360 node without its viewer"
    assert not interaction_errors(page.errors[before:]), page.errors[before:]


# ---------------------------------------------------------------------------
# Node docs (web/docs/) and translations (locales/)
# ---------------------------------------------------------------------------

LOCALES = harness.REPO_ROOT / "locales"
DOCS = harness.REPO_ROOT / "web" / "docs"
PACK_NODES = list(json.loads((LOCALES / "en" / "nodeDefs.json").read_text(encoding="utf-8")))
DOCS_NODE = "TwinCropFusionSampler"
DOCS_PICTURE = "images/twin_panorama_sd15.jpg"
# The English locale is the nodes' own text with the other nodes called by
# their display names (the V3 schema may rename them in the code too).
RENAMED = [("A Panorama Latent", "An Empty Panorama Latent"),
           ("a Cross Sampling Scheduler", "Panorama Windows (Cross Sampling)"),
           ("Cross Sampling Scheduler", "Panorama Windows (Cross Sampling)"),
           ("Multi-Scale Guidance:", "Panorama Layout Guidance (MSD):"),
           ("add Multi-Scale Guidance", "add Panorama Layout Guidance (MSD)"),
           ("Preview / Save 360 Panorama", "Preview 360 Panorama (viewer) or Save 360 Panorama (viewer)")]
# The docs panel's page as a user sees it, found by what it shows rather than
# by the panel's classes (1.27 and 1.49 wrap it in .markdown-content, 1.58 in
# .comfy-markdown-content): the shown heading `heading` (the page's first
# line) and the element around it that holds the page's first picture.
HELP_JS = """const helpPage = heading => {
  const title = Array.from(document.querySelectorAll('h1'))
    .find(e => e.getClientRects().length && e.textContent.trim() === heading);
  let page = title;
  while (page && !page.querySelector('img')) page = page.parentElement;
  return page;
};"""


def help_page(heading):
    """The docs page headed `heading`, if shown: its picture's src and width
    once loaded, and its text."""
    return f"""(() => {{ {HELP_JS}
  const page = helpPage({json.dumps(heading)}), img = page?.querySelector('img');
  return page && {{src: img.getAttribute('src'), loaded: img.complete ? img.naturalWidth : 0, text: page.innerText}};
}})()"""


# The selection toolbox's info button, shown: its centre.
INFO_BUTTON = """(() => {
  const button = Array.from(document.querySelectorAll('[data-testid="info-button"]'))
    .find(b => b.getClientRects().length);
  const r = button?.getBoundingClientRect();
  return r ? [r.x + r.width / 2, r.y + r.height / 2] : null;
})()"""
OPEN_DIALOG = "Array.from(document.querySelectorAll('[role=\"dialog\"]')).some(d => d.getClientRects().length)"


def locale_file(language):
    return json.loads((LOCALES / language / "nodeDefs.json").read_text(encoding="utf-8"))


def renamed(text):
    for old, new in RENAMED:
        text = text.replace(old, new)
    return text


def docs_workflow():
    return {
        "last_node_id": 1, "last_link_id": 0, "version": 0.4, "groups": [], "config": {}, "links": [],
        "extra": {"ds": {"scale": 1, "offset": [520, 220]}},
        "nodes": [{"id": 1, "type": DOCS_NODE, "pos": [0, 0], "size": [340, 440], "flags": {}, "order": 0,
                   "mode": 0, "inputs": [], "outputs": [], "properties": {},
                   "widgets_values": [0, "fixed", 50, 7.5, "euler", "normal", 1.0, "twindiffusion", 1.0, 0.5, 4]}],
    }


def click(page, x, y):
    for kind, buttons in (("mousePressed", 1), ("mouseReleased", 0)):
        page.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", buttons=buttons, clickCount=1)


def open_docs_panel(page, heading, node_id=1):
    """As a user opens it: a click on the node's title selects it, and the
    selection toolbox's info button opens the node's docs (frontend 1.27: in
    the node library's side bar; 1.49 and 1.58: the Info tab of the right side
    panel).  Waits for the page headed `heading` with its picture loaded."""
    for _ in range(3):  # a dialog left open (e.g. by a failed test before) would take the click
        if not page.evaluate(OPEN_DIALOG):
            break
        page.key("Escape")
        page.sleep(0.5)
    x, y = page.evaluate(f"""(() => {{
      const node = {APP}.graph.getNodeById({node_id}), canvas = {APP}.canvas;
      const [x, y] = canvas.ds.convertOffsetToCanvas([node.pos[0] + 60, node.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2]);
      const box = canvas.canvas.getBoundingClientRect();
      return [x + box.left, y + box.top];
    }})()""")
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    click(page, x, y)
    page.wait_for(f"Object.keys({APP}.canvas.selected_nodes ?? {{}}).includes('{node_id}')", 10, "the node selected")
    click(page, *page.wait_for(INFO_BUTTON, 10, "the selection toolbox's info button"))
    return page.wait_for(f"(() => {{ const p = {help_page(heading)}; return p && p.loaded > 0 && p }})()", 20,
                         f"the docs panel showing the page {heading!r} with its picture")


def close_docs_panel(page, heading):
    """1.27: the info button toggles the side bar; 1.49 and 1.58: the right
    side panel's own toggle (the pressed button of the panel holding the page)."""
    button = page.evaluate(INFO_BUTTON)
    if button:
        click(page, *button)
        page.sleep(0.5)
    page.evaluate(f"""(() => {{ {HELP_JS}
      for (let e = helpPage({json.dumps(heading)}); e && e.getClientRects().length; e = e.parentElement) {{
        const toggle = e.querySelector('button[aria-pressed="true"]');
        if (toggle) {{ toggle.click(); return true; }}
      }}
      return false;
    }})()""")
    page.wait_for(f"!{help_page(heading)}", 10, "the docs panel closing")


def screenshot_name(server):
    """ComfyUI's and the frontend's version, e.g. 0.33.0-frontend-1.58.1."""
    return f"{server.get_json('/system_stats')['system']['comfyui_version']}-frontend-{server.frontend_version}"


def test_the_server_serves_the_node_docs_and_translations(frontend):
    server, _ = frontend
    served = server.get_json("/i18n")
    for language in ("en", "zh", "ja"):
        ours = locale_file(language)
        assert {node: served[language]["nodeDefs"].get(node) for node in ours} == ours, language
    assert served["zh"]["nodeCategories"]["panorama"] == "全景"
    base = f"/extensions/{browser.PACK_DIR_NAME}/docs"
    for node in PACK_NODES:
        # <node>/en.md too: every frontend asks for it first (a 404 in the console where it is missing)
        for path in (f"{node}.md", f"{node}/en.md", f"{node}/zh.md", f"{node}/ja.md"):
            status, _, body = server.get(f"{base}/{path}")
            assert status == 200 and body.decode("utf-8") == (DOCS / path).read_text(encoding="utf-8"), path
    for picture in sorted((DOCS / "images").iterdir()):
        status, content_type, body = server.get(f"{base}/images/{picture.name}")
        assert status == 200 and content_type.startswith("image/") and body == picture.read_bytes(), picture.name


def test_the_english_locale_says_what_the_nodes_say(frontend):
    """The English locale overrides the nodes' own texts in the frontend: it
    names the same inputs and outputs and says the same, other nodes called
    by their display names."""
    server, _ = frontend
    info = server.get_json("/object_info")
    for node, names in locale_file("en").items():
        definition = info[node]
        assert renamed(definition["description"]) == names["description"], node
        inputs = {**definition["input"]["required"], **definition["input"].get("optional", {})}
        expected = {}
        for key, spec in inputs.items():
            options = spec[1] if len(spec) > 1 else {}
            expected[key] = {"name": key}
            if options.get("tooltip"):
                expected[key]["tooltip"] = renamed(options["tooltip"])
            if options.get("control_after_generate"):
                expected["control_after_generate"] = {"name": "control after generate"}
        assert names["inputs"] == expected, node
        outputs = {str(i): {"name": name, "tooltip": renamed(tooltip)} for i, (name, tooltip)
                   in enumerate(zip(definition["output_name"], definition.get("output_tooltips") or []))}
        assert names.get("outputs", {}) == outputs, node


def test_docs_panel_shows_the_nodes_page(frontend):
    server, page = frontend
    before = len(page.errors)
    load(page, docs_workflow())
    heading = locale_file("en")[DOCS_NODE]["display_name"]
    shown = open_docs_panel(page, heading)
    # The picture's path is resolved against the pack's web/docs/.
    assert shown["src"] == f"/extensions/{browser.PACK_DIR_NAME}/docs/{DOCS_PICTURE}", shown
    from PIL import Image
    assert shown["loaded"] == Image.open(DOCS / DOCS_PICTURE).width
    for word in ("Crop Fusion", "Cross Sampling", "lam", "tau", "twin_panorama_sd15.json"):
        assert word in shown["text"], word
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"docs-panel-{screenshot_name(server)}.png").write_bytes(page.screenshot())
    close_docs_panel(page, heading)
    assert not interaction_errors(page.errors[before:]), page.errors[before:]


def test_the_frontend_in_chinese_shows_the_translations(frontend):
    """Comfy.Locale = zh: the node names (registered, on the node, in the node
    search) and the docs panel's page are the Chinese ones."""
    server, page = frontend
    zh = locale_file("zh")
    try:
        set_setting(page, "Comfy.Locale", "zh")
        page.open_comfyui(server.url)  # the frontend translates node names when it registers the nodes
        before = len(page.errors)  # a start-up has noise of its own (1.49: "graph accessed before initialization")
        titles = page.evaluate(f"Object.fromEntries({json.dumps(PACK_NODES)}"
                               ".map(id => [id, LiteGraph.registered_node_types[id]?.title]))")
        assert titles == {node: names["display_name"] for node, names in zh.items()}
        load(page, docs_workflow())
        assert page.evaluate(f"{APP}.graph.getNodeById(1).getTitle()") == zh[DOCS_NODE]["display_name"]
        # The node search finds the nodes by their Chinese names.
        page.evaluate(f"{APP}.extensionManager.command.execute('Workspace.SearchBox.Toggle').then(() => true)")
        page.wait_for("document.activeElement?.tagName === 'INPUT'", 10, "the node search box")
        page.call("Input.insertText", text="全景")
        wanted = [zh[node]["display_name"] for node in (DOCS_NODE, "CrossSamplingScheduler", "PanoramaLatent")]
        page.wait_for(f"""(() => {{
          const shown = Array.from(document.querySelectorAll('[role="option"]')).map(e => e.innerText);
          return {json.dumps(wanted)}.every(name => shown.some(text => text.includes(name)));
        }})()""", 20, f"the node search listing {wanted}")
        # Closed by its command, after the box lost focus: on 1.27, Escape removes the box while it has
        # focus, and PrimeVue's AutoComplete then logs a TypeError from its change handler.
        page.evaluate("document.activeElement?.blur(), true")
        page.sleep(0.3)
        if page.evaluate("!!document.querySelector('[role=\"option\"]')"):
            page.evaluate(f"{APP}.extensionManager.command.execute('Workspace.SearchBox.Toggle').then(() => true)")
        page.wait_for("!document.querySelector('[role=\"option\"]')", 10, "the node search closing")
        # The docs panel takes docs/<node>/zh.md.
        shown = open_docs_panel(page, zh[DOCS_NODE]["display_name"])
        assert "Crop Fusion（裁剪融合）" in shown["text"]
        SCREENSHOTS.mkdir(exist_ok=True)
        (SCREENSHOTS / f"docs-panel-zh-{screenshot_name(server)}.png").write_bytes(page.screenshot())
        close_docs_panel(page, zh[DOCS_NODE]["display_name"])
        assert not interaction_errors(page.errors[before:]), page.errors[before:]
    finally:
        server.set_setting("Comfy.Locale", "en")
        page.open_comfyui(server.url)
    assert page.evaluate(f"LiteGraph.registered_node_types.{DOCS_NODE}.title") == \
        locale_file("en")[DOCS_NODE]["display_name"]
