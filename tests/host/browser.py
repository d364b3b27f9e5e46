"""ComfyUI's real frontend in a real browser, for tests and screenshots.

``ComfyServer`` starts ComfyUI's own server (``main.py --cpu``) on 127.0.0.1
with this pack linked into a temporary base directory.  ``Browser`` starts
headless Chromium and drives one page over the DevTools protocol (a
websocket, through aiohttp, which ComfyUI already requires), collecting the
page's console errors and exceptions as it goes.

Nothing here imports ComfyUI: the server runs in its own process, with the
venv's Python.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List, Optional


import harness

REPO = Path(__file__).resolve().parents[2]
PACK_DIR_NAME = "comfyui_panorama_diffusion"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The frontend has started.  Frontend 1.49 makes its graph during start-up and
# says so in `isGraphReady` (reading `rootGraph` before logs an error); 1.27 has
# the graph from the start.  Both turn the workspace spinner off and have an
# active workflow only once the start-up workflow is loaded (1.49 turns the
# spinner off last, 1.27 before loading that workflow).
FRONTEND_STARTED = """(() => {
  const app = window.comfyAPI?.app?.app;
  const workspace = app?.extensionManager;
  if (!app || !workspace || !('isGraphReady' in app ? app.isGraphReady : app.graph)) return false;
  return !workspace.spinner && !!workspace.workflow?.activeWorkflow
    && Object.keys(window.LiteGraph?.registered_node_types ?? {}).length > 0;
})()"""


def find_browser() -> Optional[str]:
    override = os.environ.get("PANORAMA_BROWSER")
    if override:
        return override
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, proc: Optional[subprocess.Popen] = None, log: Optional[Path] = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}\n{tail}")
        try:
            value = check()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.25)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s\n{tail}")


class ComfyServer:
    """ComfyUI's server with the pack, on 127.0.0.1; files in ``base``; the
    host's own frontend, or the one in ``front_end_root`` (a frontend
    package's ``static/`` folder)."""

    def __init__(self, base: Path, python: str = sys.executable, timeout: float = 180,
                 front_end_root: Optional[Path] = None):
        self.base = Path(base)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.input_dir = self.base / "input"
        self.log = self.base / "server.log"
        custom_nodes = self.base / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        self.input_dir.mkdir(exist_ok=True)
        link = custom_nodes / PACK_DIR_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                 "--base-directory", str(self.base), "--disable-auto-launch",
                 *(["--front-end-root", str(front_end_root)] if front_end_root else [])],
                cwd=harness.comfyui_path(), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait("ComfyUI server", lambda: self.get_json("/object_info/SavePanorama360"), timeout, self.proc, self.log)
        except BaseException:
            self.close()
            raise

    def get(self, path: str) -> tuple[int, str, bytes]:
        import urllib.request
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()

    def set_setting(self, key: str, value: Any) -> None:
        """A frontend setting of the server's default user, e.g.
        Comfy.TutorialCompleted (else a first start opens the template browser)."""
        import urllib.request
        request = urllib.request.Request(f"{self.url}/settings/{key}", data=json.dumps(value).encode(),
                                         method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path)[2])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Browser:
    """Headless Chromium with one page, driven synchronously over CDP."""

    def __init__(self, executable: str, width: int = 1600, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="panorama-chromium-")
        self.port = free_port()
        self.errors: List[str] = []
        self.loop = asyncio.new_event_loop()
        self.proc = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--no-first-run", "--disable-gpu",
             "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._id = 0
        self._pending: dict = {}
        self._head_sizes: dict = {}
        self._tasks: set = set()
        try:
            self.run(self._connect())
        except BaseException:
            self.close()
            raise

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def _connect(self):
        import aiohttp  # ComfyUI's requirement: imported here so that without a host this module still loads

        self.session = aiohttp.ClientSession()
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = await (await self.session.get(f"http://127.0.0.1:{self.port}/json")).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("Chromium did not open its DevTools port")
                await asyncio.sleep(0.2)
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = self.loop.create_task(self._read())
        for domain in ("Runtime", "Log", "Page"):
            await self._call(f"{domain}.enable")
        # $PANORAMA_BROWSER_SLOWDOWN=N runs the page's scripts N times slower, as on a busy machine:
        # what a test waits for has to be what the page shows, not what it showed a moment before.
        slowdown = float(os.environ.get("PANORAMA_BROWSER_SLOWDOWN") or 1)
        if slowdown > 1:
            await self._call("Emulation.setCPUThrottlingRate", rate=slowdown)

    async def _read(self):
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._event(data["method"], data.get("params", {}))

    def _event(self, method: str, params: dict):
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append(f"exception: {text} ({details.get('url', '')}:{details.get('lineNumber', '')})")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text', '')} {entry.get('url', '')}")
        elif method == "Fetch.requestPaused":
            self._spawn(self._answer_paused(params))
        elif method == "Page.javascriptDialogOpening":
            # e.g. "leave the page with unsaved work?" on a reload: a dialog would stall the page.
            self._spawn(self._call("Page.handleJavaScriptDialog", accept=True))

    def _spawn(self, coroutine):
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_paused(self, params: dict):
        request = params["request"]
        size = self._head_sizes.get(request["url"])
        try:
            if request["method"] == "HEAD" and size is not None:
                headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream",
                           "Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Content-Length"}
                await self._call("Fetch.fulfillRequest", requestId=params["requestId"], responseCode=200,
                                 responseHeaders=[{"name": k, "value": v} for k, v in headers.items()])
            else:
                await self._call("Fetch.continueRequest", requestId=params["requestId"])
        except Exception as error:  # the page went away meanwhile
            self.errors.append(f"driver: answering {request['method']} {request['url']}: {error}")

    async def _call(self, method: str, **params):
        self._id += 1
        future = self.loop.create_future()
        self._pending[self._id] = future
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def call(self, method: str, **params):
        return self.run(self._call(method, **params))

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression (awaited when it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.run(asyncio.sleep(0.25))
        raise TimeoutError(f"{what or expression}: not true after {timeout:.0f} s; page errors: {self.errors}")

    def sleep(self, seconds: float):
        self.run(asyncio.sleep(seconds))

    def answer_head_requests(self, sizes: dict):
        """Answers the page's HEAD requests for these URLs with a size, as the
        model hosts would (the frontend asks them how big a missing model is;
        this machine is offline).  Other requests to them go on unchanged."""
        self._head_sizes.update(sizes)
        self.call("Fetch.enable", patterns=[{"urlPattern": url, "requestStage": "Request"} for url in self._head_sizes])

    def open_comfyui(self, url: str, timeout: float = 120):
        """Loads the frontend and waits until it has started: its graph made,
        the server's node types registered and the first workflow (the default
        one on a fresh user) loaded, so that nothing replaces a graph a test
        loads next."""
        self.call("Page.navigate", url=url)
        self.wait_for(FRONTEND_STARTED, timeout, "ComfyUI's frontend")

    def key(self, key: str, code: Optional[int] = None):
        codes = {"Escape": 27}
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key,
                      windowsVirtualKeyCode=code or codes.get(key, 0))

    def drag(self, start, end, steps: int = 12):
        (x0, y0), (x1, y1) = start, end
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x0, y=y0)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x0, y=y0, button="left", buttons=1, clickCount=1)
        for i in range(1, steps + 1):
            t = i / steps
            self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x0 + (x1 - x0) * t, y=y0 + (y1 - y0) * t,
                      button="left", buttons=1)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x1, y=y1, button="left", buttons=0, clickCount=1)

    def screenshot(self, clip: Optional[dict] = None) -> bytes:
        params = {"format": "png"}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])

    def screenshot_array(self, clip: Optional[dict] = None):
        import numpy
        from PIL import Image
        return numpy.asarray(Image.open(io.BytesIO(self.screenshot(clip))).convert("RGB"), dtype=numpy.float32)

    def close(self):
        async def shutdown():
            for task in list(getattr(self, "_tasks", ())):
                task.cancel()
            if getattr(self, "reader", None):
                self.reader.cancel()
            if getattr(self, "ws", None):
                await self.ws.close()
            if getattr(self, "session", None):
                await self.session.close()
        try:
            self.run(shutdown())
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.loop.close()
            shutil.rmtree(self.profile, ignore_errors=True)
