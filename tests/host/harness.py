"""Host test harness: a real ComfyUI, booted in-process, with our pack loaded.

Plain functions, importable without pytest (``conftest.py`` wraps them in
fixtures).  The point of this tier is to meet the real host: prompts are
validated by ComfyUI's ``execution.validate_prompt`` and run by its
``execution.PromptExecutor``, models come from ``CheckpointLoaderSimple``,
and the pack is imported by ``nodes.load_custom_node`` exactly as ComfyUI
imports a folder in ``custom_nodes/``.

Public API
    comfyui_path() / comfyui_missing_reason()
    prepare_comfy_imports()            ComfyUI first on sys.path, CPU forced
    boot_comfyui(base_dir=None)        -> BootInfo (idempotent)
    add_checkpoint_folder(path)
    load_checkpoint(name)              -> (MODEL, CLIP, VAE) via CheckpointLoaderSimple
    ui_to_api(workflow, overrides=None)
    run_prompt(api_prompt, outputs=None, ...) -> PromptResult
    new_executor(), request_interrupt()

Name clash to keep in mind: the pack has a subpackage ``nodes`` and ComfyUI
has a top-level module ``nodes``.  Everything here makes sure the latter is
the one in ``sys.modules["nodes"]``; the repo root must never be on
``sys.path`` ahead of ComfyUI (``python -m pytest`` run from the repo root
puts it there, which is why ComfyUI is moved to the front before any import).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
# The folder name a user would clone the pack into under ComfyUI/custom_nodes.
PACK_DIRNAME = "comfyui_panorama_diffusion"

# "cpu" (default) forces --cpu; "auto" lets ComfyUI pick (e.g. on a GPU box).
DEVICE_ENV = "PANORAMA_HOST_DEVICE"
# torch.set_num_threads(N) at boot.  On a small box shared with other jobs,
# 1 thread is often 2-3x faster than 2 (OpenMP threads wait on each other).
THREADS_ENV = "PANORAMA_HOST_THREADS"


class HarnessError(RuntimeError):
    """The host could not be prepared (ComfyUI missing, module clash, ...)."""


class WorkflowConversionError(ValueError):
    """A UI-format workflow could not be turned into an API prompt."""


class PromptFailed(AssertionError):
    """ComfyUI rejected or failed a prompt; the message is ComfyUI's own."""

    def __init__(self, message: str, result: "PromptResult"):
        super().__init__(message)
        self.result = result


# ---------------------------------------------------------------------------
# Locating and importing ComfyUI
# ---------------------------------------------------------------------------

def comfyui_path() -> Path:
    """$COMFYUI_PATH; else the ComfyUI whose custom_nodes/ holds the pack;
    else ~/ComfyUI (resolved; may not exist)."""
    if os.environ.get("COMFYUI_PATH"):
        return Path(os.environ["COMFYUI_PATH"]).expanduser().resolve()
    parent = REPO_ROOT.parent
    if parent.name == "custom_nodes" and (parent.parent / "nodes.py").exists():
        return parent.parent.resolve()
    return Path("~/ComfyUI").expanduser().resolve()


def _checkout_missing_reason() -> Optional[str]:
    root = comfyui_path()
    if not all((root / name).exists() for name in ("nodes.py", "execution.py", "folder_paths.py", "comfy")):
        return f"ComfyUI not found at {root}; set COMFYUI_PATH to a ComfyUI checkout"
    return None


def comfyui_missing_reason() -> Optional[str]:
    """Why the host tier cannot run here, or None if it can."""
    reason = _checkout_missing_reason()
    if reason:
        return reason
    # ComfyUI imports both at start-up; a torchvision built for another torch
    # fails at import time, not at find_spec time, so really import them.
    for module in ("torch", "torchvision"):
        try:
            __import__(module)
        except Exception as exc:  # ImportError, or a binary mismatch (RuntimeError/OSError)
            return f"{module} is not importable in {sys.executable} ({type(exc).__name__}: {exc}); ComfyUI needs it"
    return None


def _put_first_on_sys_path(path: str) -> None:
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def _is_under(module, root: Path) -> bool:
    # `comfy` is a namespace package (no __init__.py): look at __path__ too.
    locations = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", []) or [])
    return any(loc and Path(loc).resolve().is_relative_to(root) for loc in locations)


def _check_nodes_module() -> None:
    """Fail loudly if ``nodes`` in sys.modules is not ComfyUI's nodes.py."""
    mod = sys.modules.get("nodes")
    if mod is None:
        return
    expected = comfyui_path() / "nodes.py"
    file = getattr(mod, "__file__", None)
    if not file or Path(file).resolve() != expected:
        raise HarnessError(
            f"sys.modules['nodes'] is {file or mod!r}, not ComfyUI's {expected}. "
            "Something imported the pack's `nodes` subpackage as a top-level module: "
            "the repo root must not be on sys.path ahead of ComfyUI (no tests/__init__.py, "
            "no pythonpath=. in the pytest config)."
        )


def prepare_comfy_imports() -> Path:
    """Make ``import comfy`` / ``import nodes`` resolve to the ComfyUI checkout.

    Cheap: imports only ``comfy.options`` and ``comfy.cli_args``.  Forces
    ``args.cpu`` (unless $PANORAMA_HOST_DEVICE=auto) while it still matters,
    i.e. before ``comfy.model_management`` picks its device at import time.
    Safe to call many times.
    """
    reason = _checkout_missing_reason()
    if reason:
        raise HarnessError(reason)
    root = comfyui_path()
    _put_first_on_sys_path(str(root))
    _check_nodes_module()

    import comfy.options  # noqa: F401  (args parsing stays off: pytest's argv is not ComfyUI's)
    import comfy.cli_args

    # ComfyUI has a top-level package `utils`, and importing `nodes` puts
    # ComfyUI/comfy (which holds comfy/utils.py) at sys.path[0].  main.py
    # imports `utils.extra_config` first, which pins the package; do the same
    # or `server` later fails on `utils.install_util`.
    import utils.extra_config  # noqa: F401

    if not _is_under(sys.modules["comfy"], root):
        raise HarnessError(f"`comfy` was imported from {sys.modules['comfy']!r}, not from {root}")

    if os.environ.get(DEVICE_ENV, "cpu").lower() == "cpu" and not comfy.cli_args.args.cpu:
        if "comfy.model_management" in sys.modules:
            import comfy.model_management as mm

            if mm.get_torch_device().type != "cpu":
                raise HarnessError(
                    "comfy.model_management was imported before the harness could force --cpu; "
                    f"set {DEVICE_ENV}=auto to run on {mm.get_torch_device()}"
                )
        comfy.cli_args.args.cpu = True
    return root


# ---------------------------------------------------------------------------
# A stand-in for server.PromptServer
# ---------------------------------------------------------------------------

class RecordingServer:
    """What PromptExecutor, the progress hook and nodes call on the server.

    ComfyUI's executor only needs ``send_sync``, ``client_id``,
    ``last_node_id``/``last_prompt_id`` and ``sockets_metadata``; the real
    PromptServer would also start the frontend, user manager and aiohttp app.
    Every event is recorded as (event, data).  It is also installed as
    ``server.PromptServer.instance`` so nodes and packs that reach for it at
    import or run time (``routes``, ``send_progress_text``) find one.
    """

    def __init__(self):
        self.client_id: Optional[str] = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: Dict[str, dict] = {}
        self.supports: List[str] = []
        self.events: List[Tuple[Any, Any]] = []
        self.event_times: List[float] = []  # time.perf_counter() of each event
        self.listeners: List[Callable[[Any, Any], None]] = []
        try:  # v0.2x: nodes register replacements for old node ids with the server
            from app.node_replace_manager import NodeReplaceManager

            self.node_replace_manager = NodeReplaceManager()
        except ImportError:
            pass
        try:
            from aiohttp import web

            self.routes = web.RouteTableDef()  # accepts registrations, never served
        except ImportError:  # pragma: no cover
            self.routes = None

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data))
        self.event_times.append(time.perf_counter())
        for listener in list(self.listeners):
            listener(event, data)

    async def send(self, event, data, sid=None):
        self.send_sync(event, data, sid)

    async def send_json(self, event, data, sid=None):
        self.send_sync(event, data, sid)

    def send_progress_text(self, text, node_id, sid=None):
        self.send_sync("progress_text", {"text": text, "node": node_id}, sid)

    def queue_updated(self):
        pass


def _install_progress_hook(srv: RecordingServer) -> None:
    """Mirror main.py's ``hijack_progress``.

    This hook is the only place where ComfyUI checks for an interrupt while a
    sampler runs (every ProgressBar update calls it), so without it
    ``interrupt_current_processing()`` would only take effect between nodes.
    """
    import comfy.model_management
    import comfy.utils
    from comfy_execution.progress import get_progress_state
    from comfy_execution.utils import get_executing_context

    def hook(value, total, preview_image, prompt_id=None, node_id=None):
        ctx = get_executing_context()
        if prompt_id is None and ctx is not None:
            prompt_id = ctx.prompt_id
        if node_id is None and ctx is not None:
            node_id = ctx.node_id
        comfy.model_management.throw_exception_if_processing_interrupted()
        if prompt_id is None:
            prompt_id = srv.last_prompt_id
        if node_id is None:
            node_id = srv.last_node_id
        if node_id is not None:
            get_progress_state().update_progress(node_id, value, total, preview_image)
        srv.send_sync("progress", {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id}, srv.client_id)
        if preview_image is not None:
            srv.send_sync("preview_image", {"node": node_id, "prompt_id": prompt_id}, srv.client_id)

    comfy.utils.set_progress_bar_global_hook(hook)


# ---------------------------------------------------------------------------
# Boot
# ---------------------------------------------------------------------------

@dataclass
class BootInfo:
    comfyui_path: Path
    base_dir: Path  # temp root holding output/input/temp/user/models/custom_nodes
    checkpoints_dir: Path
    pack_link: Path  # custom_nodes/comfyui_panorama_diffusion -> REPO_ROOT
    pack_loaded: bool  # what load_custom_node returned
    pack_nodes: Tuple[str, ...]  # names the pack added to NODE_CLASS_MAPPINGS
    pack_module_name: str  # its key in sys.modules (ComfyUI uses the path)
    pack_load_log: Tuple[str, ...]  # warnings/errors logged while loading it
    builtin_load_log: Tuple[str, ...]  # warnings logged by init_extra_nodes
    server: RecordingServer
    loop: asyncio.AbstractEventLoop
    boot_seconds: float

    @property
    def pack_error(self) -> str:
        return "\n".join(self.pack_load_log)


_BOOT: Optional[BootInfo] = None


@contextlib.contextmanager
def _captured_logs(level=logging.WARNING):
    records: List[str] = []

    class _Handler(logging.Handler):
        def emit(self, record):
            records.append(f"{record.levelname}: {record.getMessage()}")

    handler = _Handler(level)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)


def boot_comfyui(base_dir=None) -> BootInfo:
    """Boot ComfyUI in this process once, load our pack, return what happened.

    Idempotent: later calls return the first BootInfo (``base_dir`` is then
    ignored).  Nothing is written into the ComfyUI checkout or the repo: all
    of ComfyUI's writable directories point into ``base_dir`` (a new temp dir
    by default).
    """
    global _BOOT
    if _BOOT is not None:
        return _BOOT
    t0 = time.perf_counter()
    reason = comfyui_missing_reason()
    if reason:
        raise HarnessError(reason)
    root = prepare_comfy_imports()

    base = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="comfy_host_"))
    dirs = {name: base / name for name in ("output", "input", "temp", "user", "custom_nodes")}
    checkpoints = base / "models" / "checkpoints"
    for path in (*dirs.values(), checkpoints):
        path.mkdir(parents=True, exist_ok=True)

    import folder_paths

    folder_paths.set_output_directory(str(dirs["output"]))
    folder_paths.set_input_directory(str(dirs["input"]))
    folder_paths.set_temp_directory(str(dirs["temp"]))
    folder_paths.set_user_directory(str(dirs["user"]))
    add_checkpoint_folder(checkpoints)

    # Same import order as main.py: comfy.utils, execution, server, nodes.
    import comfy.utils  # noqa: F401
    import execution  # noqa: F401
    import server as comfy_server
    import nodes
    import comfy.model_management  # noqa: F401  (device chosen at import: CPU already forced)
    import hook_breaker_ac10a0

    if os.environ.get(THREADS_ENV):
        import torch

        torch.set_num_threads(int(os.environ[THREADS_ENV]))

    _check_nodes_module()

    srv = RecordingServer()
    if getattr(comfy_server.PromptServer, "instance", None) is None:
        comfy_server.PromptServer.instance = srv
    _install_progress_hook(srv)

    # One loop for the whole session, as the real server has: ComfyUI's
    # async APIs (init_extra_nodes, load_custom_node, validate_prompt,
    # execute_async) all run on it.
    loop = asyncio.new_event_loop()

    # main.py brackets node loading with hook_breaker so packs cannot keep
    # monkey-patches of core functions; do the same.
    hook_breaker_ac10a0.save_functions()
    try:
        with _captured_logs() as builtin_log:
            loop.run_until_complete(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
        link, loaded, added, module_name, pack_log = _load_pack(loop, nodes, dirs["custom_nodes"])
    finally:
        hook_breaker_ac10a0.restore_functions()
    _check_nodes_module()

    _BOOT = BootInfo(
        comfyui_path=root,
        base_dir=base,
        checkpoints_dir=checkpoints,
        pack_link=link,
        pack_loaded=loaded,
        pack_nodes=tuple(added),
        pack_module_name=module_name,
        pack_load_log=tuple(pack_log),
        builtin_load_log=tuple(builtin_log),
        server=srv,
        loop=loop,
        boot_seconds=time.perf_counter() - t0,
    )
    return _BOOT


def _load_pack(loop, nodes, custom_nodes_dir: Path):
    """Import the repo as ComfyUI imports a folder in custom_nodes/."""
    link = custom_nodes_dir / PACK_DIRNAME
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    # init_external_custom_nodes passes the names that exist before any pack
    # loads as `ignore`, so a pack cannot replace a core node.
    before = set(nodes.NODE_CLASS_MAPPINGS)
    with _captured_logs() as log:
        loaded = loop.run_until_complete(nodes.load_custom_node(str(link), ignore=set(before), module_parent="custom_nodes"))
    added = sorted(set(nodes.NODE_CLASS_MAPPINGS) - before)
    # load_custom_node registers a folder under its full path with dots escaped.
    module_name = str(link).replace(".", "_x_")
    return link, bool(loaded), added, module_name, log


def pack_module(name: str):
    """A module of the pack as ComfyUI loaded it (e.g. ``"nodes.panorama_360"``)."""
    import importlib
    return importlib.import_module(f"{boot_comfyui().pack_module_name}.{name}")


def msd_gradient_errors(model_fn, x, target, sigma, views, ids, grad_context, generator, r=0.7, directions=3):
    """MSD's gradient step (``fusion.multiscale.guided_windows``, omega 1)
    against central finite differences of eq. 9's loss along random
    directions: the relative error of each directional derivative.  Call
    under inference mode with inference tensors, as in a ComfyUI run."""
    import torch

    multiscale = pack_module("fusion.multiscale")

    def loss(v):
        phi = model_fn(v, sigma) * (1 - r) + r * v
        return ((multiscale.downsample(phi.double()) - target.double()) ** 2).flatten(2).sum(2).mean(1).sum()

    grad = x - multiscale.guided_windows(model_fn, x, target, sigma, views, ids, r, 1.0, "bilinear", grad_context)
    errors = []
    for _ in range(directions):
        direction = torch.randn(x.shape, generator=generator)
        eps = 1e-2
        numeric = (loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)
        analytic = (grad.double() * direction.double()).sum()
        errors.append(abs(float(analytic - numeric)) / abs(float(numeric)))
    return errors


class WindowCounter:
    """DIFFUSION_MODEL wrapper: how many windows (batch items of the model's
    input) and of which sizes the model was given."""

    def __init__(self):
        self.items, self.shapes = 0, set()

    def __call__(self, executor, x, *args, **kwargs):
        self.items += x.shape[0]
        self.shapes.add(tuple(x.shape[-2:]))
        return executor(x, *args, **kwargs)


def add_checkpoint_folder(path, folder: str = "checkpoints") -> None:
    """Put ``path`` first among ComfyUI's ``folder`` folders (checkpoints,
    diffusion_models, vae...)."""
    prepare_comfy_imports()
    import folder_paths

    path = str(Path(path).resolve())
    folder_paths.add_model_folder_path(folder, path, is_default=True)
    # The listing is cached (invalidated by folder mtime); drop it so files
    # written within the same mtime tick are seen.
    folder_paths.filename_list_cache.pop(folder, None)


def replace_text_encoders(prompt: dict, kind: str, node_type: str = "PanoramaTestConditioning") -> dict:
    """The prompt with every CLIPTextEncode made a test conditioning node of
    ``kind``'s shapes (same text) and the text-encoder loaders dropped: for
    families whose encoders (T5-XXL, Llama...) ComfyUI builds at full size
    whatever the file holds."""
    out = {}
    for node_id, entry in prompt.items():
        if entry["class_type"] in ("CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "QuadrupleCLIPLoader"):
            continue
        if entry["class_type"] == "CLIPTextEncode":
            entry = {**entry, "class_type": node_type, "inputs": {"kind": kind, "text": entry["inputs"]["text"]}}
        out[node_id] = entry
    return out


def register_test_nodes(mappings: dict) -> None:
    """Adds test-only nodes (e.g. conditioning of a model's shapes where its
    text encoder cannot be built here) to ComfyUI's node list."""
    boot_comfyui()
    import nodes

    for name, cls in mappings.items():
        nodes.NODE_CLASS_MAPPINGS.setdefault(name, cls)
        nodes.NODE_DISPLAY_NAME_MAPPINGS.setdefault(name, name)


def call_node(name: str, *args, hidden: Optional[dict] = None, **inputs):
    """A node's outputs for its inputs, called as ComfyUI's executor calls
    it (under inference mode), whichever schema the node is written in:
    V1 (``FUNCTION``) or V3 (``execute`` classmethod, ``io.NodeOutput``).
    ``hidden``: the hidden inputs ({"prompt": ..., "extra_pnginfo": ...}),
    which a V3 node reads from its class as the executor sets them.  A tuple
    of outputs, or an output node's {"ui": ...}."""
    boot_comfyui()
    import nodes
    import torch

    cls = nodes.NODE_CLASS_MAPPINGS[name]
    with torch.inference_mode():
        if hasattr(cls, "define_schema"):
            from comfy_api.latest._io import Hidden, HiddenHolder

            clone = type(cls.__name__, (cls,), {})  # as the executor's class clone
            clone.hidden = HiddenHolder.from_dict({Hidden(f"{k.upper()}"): v for k, v in (hidden or {}).items()})
            out = clone.execute(*args, **inputs)
            result = getattr(out, "result", out)
            if not result and getattr(out, "ui", None) is not None:
                ui = out.ui if isinstance(out.ui, dict) else out.ui.as_dict()
                return {"ui": ui}
            return tuple(result or ())
        out = getattr(cls(), cls.FUNCTION)(*args, **inputs, **(hidden or {}))
        return out if isinstance(out, dict) else tuple(out)


class NodeCaller:
    """``node(name).any_function(...)``: calls the node as ComfyUI does
    (``call_node``), whatever its schema and function name."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, function: str):
        return lambda *args, **kwargs: call_node(self.name, *args, **kwargs)


def node(name: str) -> NodeCaller:
    return NodeCaller(name)


def node_defaults(name: str, given: Optional[dict] = None) -> dict:
    """Every required widget input of node ``name`` at the value a fresh
    frontend widget starts with, updated with ``given``."""
    boot_comfyui()
    import nodes

    out = {}
    for input_name, spec in nodes.NODE_CLASS_MAPPINGS[name].INPUT_TYPES()["required"].items():
        opts = spec[1] if len(spec) > 1 else {}
        io_type = spec[0]
        if isinstance(io_type, (list, tuple)) or io_type in _SCALAR_WIDGET_TYPES:
            out[input_name] = _widget_default(io_type, opts)
    out.update(given or {})
    return out


def load_checkpoint(name: str):
    """(MODEL, CLIP, VAE) as CheckpointLoaderSimple returns them."""
    boot_comfyui()
    import folder_paths
    import nodes

    folder_paths.filename_list_cache.pop("checkpoints", None)
    return nodes.CheckpointLoaderSimple().load_checkpoint(name)


def request_interrupt() -> None:
    """What the server's POST /interrupt does (global interrupt)."""
    boot_comfyui()
    import nodes

    nodes.interrupt_processing(True)


# ---------------------------------------------------------------------------
# UI workflow -> API prompt
# ---------------------------------------------------------------------------

# Frontend-only ("virtual") nodes: never sent to the backend.
NOTE_TYPES = frozenset({"Note", "MarkdownNote"})
REROUTE_TYPES = frozenset({"Reroute"})
PRIMITIVE_TYPES = frozenset({"PrimitiveNode"})
UI_ONLY_TYPES = NOTE_TYPES | REROUTE_TYPES | PRIMITIVE_TYPES

MODE_MUTED = 2  # LGraphEventMode.NEVER
MODE_BYPASS = 4  # LGraphEventMode.BYPASS

_SCALAR_WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
# Input types the frontend draws a widget of its own for (RecordAudio's
# recorder, the webcam capture, ImageCompare's slider: a required input the
# server wants in the prompt); their value is stored like a scalar's.
_FRONTEND_WIDGET_TYPES = frozenset({"AUDIO_RECORD", "WEBCAM", "IMAGECOMPARE"})
_UPLOAD_KEYS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "model_upload", "upload")


def _widget_default(io_type, opts: dict):
    """The value a fresh frontend widget starts with."""
    if "default" in opts:
        return opts["default"]
    if isinstance(io_type, (list, tuple)) or io_type == "COMBO":
        options = list(io_type) if isinstance(io_type, (list, tuple)) else list(opts.get("options") or [])
        return options[0] if options else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(io_type)


def _widget_slots(class_def) -> List[Tuple[str, str, Any]]:
    """[(input name, role, default)] in the order the frontend stores widgets_values.

    The frontend creates one widget per widget-typed input, required then
    optional, in INPUT_TYPES order, and puts helper widgets right after their
    input: a "control_after_generate" combo (fixed/increment/randomize...) for
    INT inputs that ask for one or, when they say nothing, are named
    seed/noise_seed (useIntWidget: ``control_after_generate ?? name in
    [seed, noise_seed]``), and for combos that ask; an upload button for
    *_upload combos.  Roles: value, control, upload, forced (a forceInput
    input: no widget today, but old workflows stored a value for it).
    """
    spec = class_def.INPUT_TYPES()
    slots = []
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            if not isinstance(entry, (tuple, list)) or not entry:
                continue
            io_type = entry[0]
            opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            is_combo = isinstance(io_type, (list, tuple)) or io_type == "COMBO"
            if not (is_combo or io_type in _SCALAR_WIDGET_TYPES or io_type in _FRONTEND_WIDGET_TYPES):
                continue
            if opts.get("forceInput"):
                slots.append((name, "forced", None))
                continue
            slots.append((name, "value", _widget_default(io_type, opts)))
            control = opts.get("control_after_generate")
            if io_type == "INT" and control is None:
                control = name in ("seed", "noise_seed")
            if control and (io_type in ("INT", "FLOAT") or is_combo):
                slots.append((name, "control", None))
            if is_combo and any(opts.get(k) for k in _UPLOAD_KEYS):
                slots.append((name, "upload", None))
    return slots


def _map_widget_values(node: dict, class_def, strict: bool) -> Dict[str, Any]:
    """{input name: value} for the node's widgets.

    Exact layouts first (the current one, then the ones older frontends
    saved).  Otherwise ``strict`` raises, naming the node; non-strict does
    what the frontend does when it loads the workflow: assign by position,
    ignore values past the last widget (extension widgets such as a 3D
    preview or a refresh button add some), and leave widgets without a
    value at their default.
    """
    slots = _widget_slots(class_def)
    current = [s for s in slots if s[1] != "forced"]
    defaults = {name: default for name, role, default in current if role == "value" and default is not None}
    values = node.get("widgets_values")
    if values is None:  # saved without widget values: fresh widgets
        return defaults
    if isinstance(values, dict):  # some frontends/extensions store them by name
        names = {name for name, role, _ in current if role == "value"}
        return {**defaults, **{k: v for k, v in values.items() if k in names}}
    values = list(values)
    layouts = [
        current,
        [s for s in current if s[1] != "upload"],
        slots,  # pre-1.16 workflows kept a slot for forceInput inputs
        [s for s in current if s[1] != "control"],
    ]
    for layout in layouts:
        if len(layout) == len(values):
            return {name: value for (name, role, _), value in zip(layout, values) if role == "value"}
    # saved before the node gained optional inputs after its last widget:
    # the frontend gives those their defaults
    added = current[len(values):]
    optional = set(class_def.INPUT_TYPES().get("optional", {}))
    if 0 < len(added) < len(current) and all(role == "value" and name in optional for name, role, _ in added):
        return {**defaults, **{name: value for (name, role, _), value in zip(current, values) if role == "value"}}
    if strict:
        raise WorkflowConversionError(
            f"{_describe(node)}: {len(values)} widgets_values {values!r} do not fit the widgets of "
            f"{node.get('type')} (expected {len(current)}: "
            f"{', '.join(n if r == 'value' else f'{n}<{r}>' for n, r, _ in current)}); "
            "pass strict=False to map them by position as the frontend does"
        )
    mapped = dict(defaults)
    for (name, role, _), value in zip(current, values):
        if role == "value":
            mapped[name] = value
    return mapped


def _describe(node: dict) -> str:
    title = node.get("title")
    return f"node {node.get('id')} ({node.get('type')}{', ' + repr(title) if title else ''})"


def _links_by_id(workflow: dict) -> Dict[Any, dict]:
    """Links in either serialisation: [id, from, from_slot, to, to_slot, type] or objects."""
    out = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            entry = {
                "id": link["id"], "origin_id": link["origin_id"], "origin_slot": link["origin_slot"],
                "target_id": link["target_id"], "target_slot": link["target_slot"], "type": link.get("type"),
            }
        else:
            lid, origin_id, origin_slot, target_id, target_slot = link[:5]
            entry = {
                "id": lid, "origin_id": origin_id, "origin_slot": origin_slot,
                "target_id": target_id, "target_slot": target_slot, "type": link[5] if len(link) > 5 else None,
            }
        out[entry["id"]] = entry
    return out


def _resolve_link(link: dict, want_type, nodes_by_id, links, seen=()) -> Optional[tuple]:
    """Follow a link through reroutes, primitives and bypassed nodes.

    Returns ("link", origin_id, slot), ("value", v), or None (dropped, as the
    frontend drops an input it cannot resolve).
    """
    origin = nodes_by_id.get(link["origin_id"])
    if origin is None:
        raise WorkflowConversionError(f"link {link['id']} comes from missing node {link['origin_id']}")
    if origin["id"] in seen:
        raise WorkflowConversionError(f"{_describe(origin)}: cycle through reroute/bypass nodes")
    seen = (*seen, origin["id"])
    otype = origin.get("type")

    def follow_input(index):
        inputs = origin.get("inputs") or []
        if index >= len(inputs) or inputs[index].get("link") is None:
            return None
        upstream = links.get(inputs[index]["link"])
        if upstream is None:
            raise WorkflowConversionError(f"{_describe(origin)}: input {index} names missing link {inputs[index]['link']}")
        return _resolve_link(upstream, want_type, nodes_by_id, links, seen)

    if otype in REROUTE_TYPES:
        return follow_input(0)
    if otype in PRIMITIVE_TYPES:
        values = origin.get("widgets_values") or []
        if not values:
            raise WorkflowConversionError(f"{_describe(origin)}: PrimitiveNode without a value")
        return ("value", values[0])
    if otype in NOTE_TYPES:
        raise WorkflowConversionError(f"{_describe(origin)}: a note cannot feed an input")
    if origin.get("mode", 0) == MODE_BYPASS:
        # The frontend passes the bypassed node's input through: first the
        # input at the same index as the output slot if its type matches the
        # consumer's input type, else the first input of that type.
        inputs = origin.get("inputs") or []
        order = [link["origin_slot"]] + list(range(len(inputs)))
        for index in order:
            if index < len(inputs) and inputs[index].get("type") == want_type:
                return follow_input(index)
        return None
    # Muted nodes resolve normally; the final pruning drops links to them.
    return ("link", str(origin["id"]), int(link["origin_slot"]))


def _match_override_targets(key, nodes: List[dict], display_names: Dict[str, str]) -> List[dict]:
    skey = str(key)
    by_id = [n for n in nodes if str(n["id"]) == skey]
    if by_id:
        return by_id
    by_title = [n for n in nodes if (n.get("title") or display_names.get(n.get("type"))) == skey]
    if by_title:
        return by_title
    return [n for n in nodes if n.get("type") == skey]


def ui_to_api(
    workflow: dict,
    overrides: Optional[Dict[Any, Dict[str, Any]]] = None,
    *,
    strict: bool = True,
    node_class_mappings=None,
) -> dict:
    """Convert a UI-format workflow (what the frontend saves and loads as a
    template) into an API prompt, the way the frontend's graphToPrompt does.

    ``overrides`` = {node id | title | class type: {input name: value}} is
    applied last (a class type hits every node of that type), so tests can
    shrink steps and sizes.  ``strict`` (default) rejects widgets_values that
    do not fit the node's current widgets -- what a stale template looks
    like; ``strict=False`` maps them by position as the frontend does.
    Raises WorkflowConversionError naming the node.
    """
    if node_class_mappings is None:
        boot_comfyui()
        import nodes as comfy_nodes

        node_class_mappings = comfy_nodes.NODE_CLASS_MAPPINGS
        display_names = comfy_nodes.NODE_DISPLAY_NAME_MAPPINGS
    else:
        display_names = {}
    if "nodes" not in workflow:
        raise WorkflowConversionError("not a UI-format workflow (no top-level 'nodes'); API prompts need no conversion")
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowConversionError("workflows with subgraphs are not supported by ui_to_api")

    ui_nodes = list(workflow["nodes"])
    nodes_by_id = {n["id"]: n for n in ui_nodes}
    links = _links_by_id(workflow)
    prompt: Dict[str, dict] = {}

    for node in ui_nodes:
        ntype = node.get("type")
        mode = node.get("mode", 0)
        if ntype in UI_ONLY_TYPES or mode in (MODE_MUTED, MODE_BYPASS):
            continue
        class_def = node_class_mappings.get(ntype)
        if class_def is None:
            raise WorkflowConversionError(f"{_describe(node)}: unknown node type {ntype!r} (not in NODE_CLASS_MAPPINGS; is its pack loaded?)")
        try:
            inputs = _map_widget_values(node, class_def, strict)
        except WorkflowConversionError:
            raise
        except Exception as exc:
            raise WorkflowConversionError(f"{_describe(node)}: cannot read its INPUT_TYPES: {exc}") from exc
        # A widget value that is a list would read as a link; the frontend wraps it.
        inputs = {k: ({"__value__": v} if isinstance(v, list) else v) for k, v in inputs.items()}

        for slot in node.get("inputs") or []:
            link_id = slot.get("link")
            if link_id is None:
                continue
            link = links.get(link_id)
            if link is None:
                raise WorkflowConversionError(f"{_describe(node)}: input {slot.get('name')!r} names missing link {link_id}")
            name = (slot.get("widget") or {}).get("name") or slot["name"]
            resolved = _resolve_link(link, slot.get("type", link.get("type")), nodes_by_id, links, (node["id"],))
            if resolved is None:
                inputs.pop(name, None)
            elif resolved[0] == "value":
                value = resolved[1]
                inputs[name] = {"__value__": value} if isinstance(value, list) else value
            else:
                inputs[name] = [resolved[1], resolved[2]]

        prompt[str(node["id"])] = {
            "class_type": ntype,
            "inputs": inputs,
            "_meta": {"title": node.get("title") or display_names.get(ntype, ntype)},
        }

    # As the frontend does: inputs linked to nodes that are not sent (muted,
    # or bypassed without a pass-through) are removed.
    for entry in prompt.values():
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]

    for key, values in (overrides or {}).items():
        targets = _match_override_targets(key, [n for n in ui_nodes if str(n["id"]) in prompt], display_names)
        if not targets:
            raise WorkflowConversionError(f"override {key!r} matches no node id, title or class type in the converted prompt")
        for target in targets:
            prompt[str(target["id"])]["inputs"].update(values)
    return prompt


# ---------------------------------------------------------------------------
# Running prompts
# ---------------------------------------------------------------------------

@dataclass
class PromptResult:
    success: bool
    prompt_id: str
    outputs: Dict[str, tuple]  # node id -> one value per output slot
    ui: Dict[str, Any]  # what the node sent to the UI (history "outputs")
    events: List[Tuple[Any, Any]]  # (event, data) as sent to the client
    status_messages: List[Tuple[str, dict]]  # executor.status_messages
    errors: List[str]
    node_errors: Dict[str, Any]  # validation errors per node
    interrupted: bool
    executed: List[str]  # node ids in the order they ran
    seconds: float
    node_seconds: Dict[str, float]  # wall time per executed node (from "executing" events)
    executor: Any = field(repr=False, default=None)

    def output(self, node_id, slot: int = 0):
        return self.outputs[str(node_id)][slot]

    def events_named(self, name) -> List[Any]:
        return [data for event, data in self.events if event == name]

    def event_names(self) -> List[Any]:
        return [event for event, _ in self.events]


def new_executor():
    """A PromptExecutor that drops outputs as soon as they are consumed
    (CLASSIC, main.py's default up to v0.18).  From v0.19 the executor reads
    RAM-pressure thresholds from ``cache_args`` whatever the cache type; 0
    disables them, as ``--cache-classic`` does."""
    boot = boot_comfyui()
    import inspect
    import execution

    kwargs = {}
    if "cache_args" in inspect.signature(execution.PromptExecutor).parameters:
        kwargs["cache_args"] = {"lru": 0, "ram": 0, "ram_inactive": 0}
    return execution.PromptExecutor(boot.server, cache_type=execution.CacheType.CLASSIC, **kwargs)


def cached_outputs(executor, node_id):
    """A node's outputs from the executor's cache: the list of values per
    output slot, or None.  The cache's ``get`` is a coroutine from v0.18 and
    returns a CacheEntry (ui, outputs) from v0.14."""
    entry = executor.caches.outputs.get(node_id)
    if asyncio.iscoroutine(entry):
        entry = boot_comfyui().loop.run_until_complete(entry)
    return getattr(entry, "outputs", entry)


def _unwrap_outputs(data, class_def) -> tuple:
    # The cache holds, per output slot, the list of values of each call
    # (several when inputs were lists); OUTPUT_IS_LIST slots are already flat.
    is_list = tuple(getattr(class_def, "OUTPUT_IS_LIST", ()) or ())
    out = []
    for i, slot in enumerate(data):
        if (i < len(is_list) and is_list[i]) or len(slot) != 1:
            out.append(list(slot))
        else:
            out.append(slot[0])
    return tuple(out)


def _node_seconds(srv: RecordingServer) -> Dict[str, float]:
    # A node runs from its "executing" event to the next one (the last is
    # closed by the {"node": None} event run_prompt sends at the end).
    marks = [(d.get("node"), t) for (e, d), t in zip(srv.events, srv.event_times) if e == "executing" and isinstance(d, dict)]
    return {node: round(t_next - t, 4) for (node, t), (_, t_next) in zip(marks, marks[1:]) if node is not None}


def _format_validation(error, node_errors) -> List[str]:
    lines = []
    if error:
        lines.append(f"{error.get('message')}: {error.get('details')}".rstrip(": "))
    for node_id, info in (node_errors or {}).items():
        for reason in info.get("errors", []):
            lines.append(f"node {node_id} ({info.get('class_type')}): {reason.get('message')}: {reason.get('details')}")
    return lines


def run_prompt(
    api_prompt: dict,
    outputs: Optional[Iterable] = None,
    *,
    check: bool = True,
    executor=None,
    extra_data: Optional[dict] = None,
    on_event: Optional[Callable[[Any, Any], None]] = None,
    prompt_id: Optional[str] = None,
    client_id: str = "host-harness",
) -> PromptResult:
    """Validate and execute an API prompt in-process, as the server would.

    ``outputs``: node ids whose outputs to return (and to execute, even if
    they are not output nodes: ComfyUI's validate_prompt only accepts prompts
    with an OUTPUT_NODE, so other requested nodes are validated with
    ``execution.validate_inputs``, the same check applied per node).  By
    default every output node runs and every executed node's outputs are
    returned.  A fresh executor (empty cache) is used unless ``executor`` is
    given.  ``on_event(event, data)`` sees every event as it is sent, which
    is where a test can call ``request_interrupt()``.  With ``check`` (the
    default) a rejected, failed or interrupted prompt raises PromptFailed with
    ComfyUI's own message.
    """
    boot = boot_comfyui()
    import execution
    import nodes

    loop = boot.loop
    prompt = {str(k): copy.deepcopy(v) for k, v in api_prompt.items()}
    prompt_id = prompt_id or str(uuid.uuid4())
    requested = [str(n) for n in outputs] if outputs is not None else None
    for node_id in requested or []:
        if node_id not in prompt:
            raise KeyError(f"requested output node {node_id!r} is not in the prompt (ids: {sorted(prompt)})")

    def finish(success, errors, node_errors=None, ex=None, interrupted=False, executed=(), outs=None, ui=None, seconds=0.0):
        result = PromptResult(
            success=success, prompt_id=prompt_id, outputs=outs or {}, ui=ui or {},
            events=list(boot.server.events), status_messages=list(getattr(ex, "status_messages", []) or []),
            errors=errors, node_errors=node_errors or {}, interrupted=interrupted, executed=list(executed),
            seconds=seconds, node_seconds=_node_seconds(boot.server), executor=ex,
        )
        if check and not success:
            raise PromptFailed("ComfyUI prompt failed:\n" + "\n".join(errors or ["(no message)"]), result)
        return result

    boot.server.events.clear()
    boot.server.event_times.clear()
    valid, error, good_outputs, node_errors = loop.run_until_complete(execution.validate_prompt(prompt_id, prompt, None))
    if not valid and not (requested and error and error.get("type") == "prompt_no_outputs"):
        return finish(False, _format_validation(error, node_errors), node_errors)
    node_errors = dict(node_errors or {})
    targets = list(good_outputs or [])
    validated: dict = {}
    for node_id in requested or []:
        if node_id in targets:
            continue
        ok, reasons, _ = loop.run_until_complete(execution.validate_inputs(prompt_id, prompt, node_id, validated))
        if ok is not True:
            for nid, (v_ok, v_reasons, _) in validated.items():
                if v_ok is not True and v_reasons:
                    node_errors.setdefault(nid, {"errors": v_reasons, "dependent_outputs": [], "class_type": prompt[nid]["class_type"]})
            continue
        targets.append(node_id)
    validation_lines = _format_validation(None, node_errors)
    if not targets:
        return finish(False, validation_lines or ["nothing to execute"], node_errors)

    ex = executor if executor is not None else new_executor()
    srv = boot.server
    srv.last_prompt_id = prompt_id
    if on_event is not None:
        srv.listeners.append(on_event)
    extra = {"client_id": client_id, **(extra_data or {})}
    # From v0.33 execute_async sets the preview method from extra_data (the
    # frontend's setting) and otherwise resets it: keep what the test set.
    from comfy.cli_args import args as comfy_args
    extra.setdefault("preview_method", getattr(comfy_args.preview_method, "value", comfy_args.preview_method))
    t0 = time.perf_counter()
    try:
        loop.run_until_complete(ex.execute_async(prompt, prompt_id, extra, targets))
        # main.py's prompt worker sends this once the prompt is done.
        if srv.client_id is not None:
            srv.send_sync("executing", {"node": None, "prompt_id": prompt_id}, srv.client_id)
    finally:
        if on_event is not None:
            srv.listeners.remove(on_event)
    seconds = time.perf_counter() - t0

    errors = list(validation_lines)
    interrupted = False
    for event, data in ex.status_messages:
        if event == "execution_error":
            errors.append(
                f"node {data.get('node_id')} ({data.get('node_type')}) raised {data.get('exception_type')}: "
                f"{str(data.get('exception_message', '')).strip()}\n" + "".join(data.get("traceback") or [])
            )
        elif event == "execution_interrupted":
            interrupted = True
            errors.append(f"interrupted at node {data.get('node_id')} ({data.get('node_type')})")
    executed = [d["node"] for e, d in srv.events if e == "executing" and isinstance(d, dict) and d.get("node") is not None]

    wanted = requested if requested is not None else list(prompt)
    outs = {}
    for node_id in wanted:
        data = cached_outputs(ex, node_id)
        if data is not None:
            outs[node_id] = _unwrap_outputs(data, nodes.NODE_CLASS_MAPPINGS[prompt[node_id]["class_type"]])
    success = bool(ex.success) and not interrupted and not errors
    return finish(success, errors, node_errors, ex, interrupted, executed, outs, (ex.history_result or {}).get("outputs", {}), seconds)
