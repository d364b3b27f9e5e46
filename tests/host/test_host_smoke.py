"""Smoke tests of the host tier: the harness itself against a real ComfyUI.

Core nodes only (plus the pack-loading check): if these fail, the pack's own
host tests cannot be trusted either.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import harness
import tiny_models

pytestmark = pytest.mark.host

PACK_INIT = harness.REPO_ROOT / "__init__.py"


def core_prompt(ckpt_name: str, *, width=64, height=64, steps=2, seed=7, cfg=6.0) -> dict:
    """txt2img with core nodes only: loader -> 2x CLIPTextEncode -> KSampler -> VAEDecode."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt_name}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a wide mountain panorama at dawn", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, seam", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}},
        "5": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0],
                "seed": seed, "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
            },
        },
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    }


def test_nodes_module_is_comfyui(comfy):
    import nodes

    assert sys.modules["nodes"] is nodes
    assert Path(nodes.__file__).resolve() == comfy.comfyui_path / "nodes.py"
    assert "KSampler" in nodes.NODE_CLASS_MAPPINGS
    # init_extra_nodes ran: a node from comfy_extras is registered too.
    assert "SamplerCustomAdvanced" in nodes.NODE_CLASS_MAPPINGS
    # ComfyUI's writable dirs point into the session's temp dir, not the checkout.
    import folder_paths

    for directory in (folder_paths.get_output_directory(), folder_paths.get_temp_directory(), folder_paths.get_input_directory()):
        assert Path(directory).resolve().is_relative_to(comfy.base_dir.resolve())


@pytest.mark.parametrize("kind", tiny_models.KINDS)
def test_core_txt2img(kind, comfy, tiny_checkpoints):
    # (`comfy` is the boot fixture here, so import ComfyUI's modules by name)
    from comfy import supported_models
    from comfy.model_base import ModelType

    result = harness.run_prompt(core_prompt(tiny_checkpoints[kind]), outputs=["1", "5", "6"])

    model = result.output("1", 0)
    config = model.model.model_config
    assert type(config).__name__ == tiny_models.expected_model_config(kind)
    assert isinstance(config, getattr(supported_models, tiny_models.stock_config_name(kind)))
    expected_type = ModelType.V_PREDICTION if kind == "sd2v" else ModelType.EPS
    assert model.model.model_type == expected_type

    latent = result.output("5")["samples"]
    assert latent.shape == (1, 4, 8, 8)
    image = result.output("6")
    assert image.shape == (1, 64, 64, 3)
    assert bool(image.isfinite().all())
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert float(image.std()) > 1e-4, "decoded image is constant"

    assert set(result.executed) == set(core_prompt("x"))
    assert set(result.node_seconds) == set(result.executed)
    progress = [d for d in result.events_named("progress") if d["node"] == "5"]
    assert [d["value"] for d in progress][-1] == 2 and progress[-1]["max"] == 2


@pytest.mark.parametrize(
    "kind",
    [
        "sd15_stock",
        # Full-size OpenCLIP-H / bigG text encoders: ~1 GB and ~2 GB to write
        # and load on CPU.  Checked when PANORAMA_HOST_ALL_STOCK=1.
        pytest.param("sd2v_stock", marks=pytest.mark.skipif(not os.environ.get("PANORAMA_HOST_ALL_STOCK"), reason="set PANORAMA_HOST_ALL_STOCK=1")),
        pytest.param("sdxl_stock", marks=pytest.mark.skipif(not os.environ.get("PANORAMA_HOST_ALL_STOCK"), reason="set PANORAMA_HOST_ALL_STOCK=1")),
    ],
)
def test_stock_detection(kind, comfy, checkpoint_dir):
    """The same layouts, 320 channels and full text encoders, are detected by
    ComfyUI's unmodified config list (no test config involved)."""
    from comfy.model_base import ModelType

    name = tiny_models.ensure_checkpoints(checkpoint_dir, [kind])[kind]
    harness.add_checkpoint_folder(checkpoint_dir)
    result = harness.run_prompt({"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}}}, outputs=["1"])
    model, clip, vae = result.outputs["1"]
    assert type(model.model.model_config).__name__ == tiny_models.expected_model_config(kind)
    expected_type = ModelType.V_PREDICTION if kind == "sd2v_stock" else ModelType.EPS
    assert model.model.model_type == expected_type
    assert clip is not None and vae is not None


def test_interrupt_stops_sampling(comfy, tiny_checkpoints):
    """request_interrupt() during sampling ends the prompt with execution_interrupted."""

    def interrupt_on_first_step(event, data):
        if event == "progress":
            harness.request_interrupt()

    prompt = core_prompt(tiny_checkpoints["sd15"], steps=4)
    result = harness.run_prompt(prompt, outputs=["6"], check=False, on_event=interrupt_on_first_step)
    assert result.interrupted and not result.success
    assert [d["node_id"] for d in result.events_named("execution_interrupted")] == ["5"]
    assert "6" not in result.outputs
    assert len(result.events_named("progress")) == 1


def test_failure_reports_comfy_message(comfy, tiny_checkpoints):
    prompt = core_prompt(tiny_checkpoints["sd15"])
    prompt["5"]["inputs"]["sampler_name"] = "no_such_sampler"
    with pytest.raises(harness.PromptFailed, match="sampler_name"):
        harness.run_prompt(prompt, outputs=["6"])


# A UI-format workflow as the frontend saves it: a Note, a Reroute on the
# MODEL link, a KSampler whose seed carries its control_after_generate value,
# a PrimitiveNode driving `steps`, a bypassed LatentUpscaleBy between the
# latent and the sampler, and a muted SaveImage.
UI_WORKFLOW = {
    "last_node_id": 12,
    "last_link_id": 14,
    "nodes": [
        {"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [],
         "outputs": [{"name": "MODEL", "type": "MODEL", "links": [1]}, {"name": "CLIP", "type": "CLIP", "links": [3, 5]},
                     {"name": "VAE", "type": "VAE", "links": [8]}],
         "widgets_values": ["PLACEHOLDER"]},
        {"id": 10, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}],
         "outputs": [{"name": "", "type": "MODEL", "links": [2]}], "properties": {"showOutputText": False, "horizontal": False}},
        {"id": 6, "type": "CLIPTextEncode", "title": "Positive", "mode": 0,
         "inputs": [{"name": "clip", "type": "CLIP", "link": 3}],
         "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [4]}],
         "widgets_values": ["a lake panorama"]},
        {"id": 7, "type": "CLIPTextEncode", "title": "Negative", "mode": 0,
         "inputs": [{"name": "clip", "type": "CLIP", "link": 5}],
         "outputs": [{"name": "CONDITIONING", "type": "CONDITIONING", "links": [6]}],
         "widgets_values": ["blurry"]},
        {"id": 5, "type": "EmptyLatentImage", "mode": 0, "inputs": [],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [11]}],
         "widgets_values": [512, 512, 1]},
        {"id": 11, "type": "LatentUpscaleBy", "mode": 4,
         "inputs": [{"name": "samples", "type": "LATENT", "link": 11}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [7]}],
         "widgets_values": ["nearest-exact", 1.5]},
        {"id": 12, "type": "PrimitiveNode", "mode": 0, "inputs": [],
         "outputs": [{"name": "INT", "type": "INT", "links": [13], "widget": {"name": "steps"}}],
         "widgets_values": [3, "fixed"]},
        {"id": 3, "type": "KSampler", "mode": 0,
         "inputs": [{"name": "model", "type": "MODEL", "link": 2}, {"name": "positive", "type": "CONDITIONING", "link": 4},
                    {"name": "negative", "type": "CONDITIONING", "link": 6}, {"name": "latent_image", "type": "LATENT", "link": 7},
                    {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 13}],
         "outputs": [{"name": "LATENT", "type": "LATENT", "links": [9]}],
         "widgets_values": [156680208700286, "randomize", 20, 8, "euler", "normal", 1]},
        {"id": 8, "type": "VAEDecode", "mode": 0,
         "inputs": [{"name": "samples", "type": "LATENT", "link": 9}, {"name": "vae", "type": "VAE", "link": 8}],
         "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [10]}]},
        {"id": 9, "type": "SaveImage", "mode": 2, "inputs": [{"name": "images", "type": "IMAGE", "link": 10}],
         "outputs": [], "widgets_values": ["ComfyUI"]},
        {"id": 20, "type": "Note", "mode": 0, "inputs": [], "outputs": [], "widgets_values": ["Tiny smoke workflow."]},
    ],
    "links": [
        [1, 4, 0, 10, 0, "*"], [2, 10, 0, 3, 0, "MODEL"], [3, 4, 1, 6, 0, "CLIP"], [4, 6, 0, 3, 1, "CONDITIONING"],
        [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"], [7, 11, 0, 3, 3, "LATENT"], [8, 4, 2, 8, 1, "VAE"],
        [9, 3, 0, 8, 0, "LATENT"], [10, 8, 0, 9, 0, "IMAGE"], [11, 5, 0, 11, 0, "LATENT"], [13, 12, 0, 3, 4, "INT"],
    ],
    "groups": [],
    "config": {},
    "extra": {},
    "version": 0.4,
}


def test_ui_to_api_conversion(comfy, tiny_checkpoints):
    ckpt = tiny_checkpoints["sd15"]
    api = harness.ui_to_api(
        UI_WORKFLOW,
        overrides={4: {"ckpt_name": ckpt}, "EmptyLatentImage": {"width": 64, "height": 64}, "Positive": {"text": "a lake"}},
    )
    inputs = {k: v["inputs"] for k, v in api.items()}
    assert set(api) == {"4", "6", "7", "5", "3", "8"}  # Note, Reroute, Primitive, bypassed and muted nodes are gone
    assert api["3"]["class_type"] == "KSampler"
    assert inputs["3"] == {
        "seed": 156680208700286,  # the "randomize" control value is not an input
        "steps": 3,  # from the PrimitiveNode
        "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
        "model": ["4", 0],  # through the Reroute
        "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["5", 0],  # bypassed LatentUpscaleBy passes its LATENT input through
    }
    assert inputs["4"] == {"ckpt_name": ckpt}
    assert inputs["5"] == {"width": 64, "height": 64, "batch_size": 1}
    assert inputs["6"] == {"text": "a lake", "clip": ["4", 1]}
    assert inputs["8"] == {"samples": ["3", 0], "vae": ["4", 2]}
    assert api["6"]["_meta"]["title"] == "Positive"

    # The converted prompt is accepted and runs (1 step to keep it quick).
    api["3"]["inputs"]["steps"] = 1
    result = harness.run_prompt(api, outputs=["8"])
    assert result.output("8").shape == (1, 64, 64, 3)


def _shipped_templates_dir() -> Path:
    """The folder of the UI-format templates ComfyUI's template package ships
    (the templates the frontend offers), or pytest.skip saying why there is
    none.  Up to 0.1.x (ComfyUI 0.3.64 pins 0.1.94) the package keeps them in
    comfyui_workflow_templates/templates; from 0.3 it is a meta-package over
    bundles, and the JSON files are in the sub-package
    comfyui_workflow_templates_json (templates/)."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("comfyui_workflow_templates")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"comfyui_workflow_templates (ComfyUI's template package) is not installed in {sys.executable}")
    for package in ("comfyui_workflow_templates_json", "comfyui_workflow_templates"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "templates"
            if any(path.glob("*.json")):
                return path
    pytest.skip(f"comfyui_workflow_templates {version} is installed, but neither it nor "
                f"comfyui_workflow_templates_json holds a templates/ folder of workflows")


def _shipped_txt2img(templates: Path):
    """The shipped checkpoint txt2img template this host's package has: the
    frontend's default graph (default.json) up to 0.1.x; the 0.3+ packages
    ship none (the frontend draws its default graph itself), and their plain
    checkpoint txt2img is SDXL's base + refiner example."""
    for name in ("default.json", "sdxl_simple_example.json"):
        if (templates / name).is_file():
            return templates / name
    pytest.skip(f"{templates} holds neither default.json nor sdxl_simple_example.json")


def test_shipped_default_template_runs(comfy, tiny_checkpoints):
    """The shipped txt2img template converts and executes as the frontend
    would run it: default.json (its SaveImage has no widgets_values: defaults
    apply, as in the UI) or sdxl_simple_example.json (PrimitiveNodes feeding
    widgets, two KSamplerAdvanced stages, a second checkpoint loader)."""
    import json

    path = _shipped_txt2img(_shipped_templates_dir())
    workflow = json.loads(path.read_text())
    types = {node["type"] for node in workflow["nodes"]}
    overrides = {kind: values for kind, values in {
        "CheckpointLoaderSimple": {"ckpt_name": tiny_checkpoints["sdxl" if "sdxl" in path.name else "sd15"]},
        "EmptyLatentImage": {"width": 64, "height": 64},
        "KSampler": {"steps": 1},
        "KSamplerAdvanced": {"steps": 2},
    }.items() if kind in types}
    # Base and refiner one step each: the stage that adds noise ends where the other starts.
    for node in workflow["nodes"]:
        if node["type"] == "KSamplerAdvanced":
            overrides[node["id"]] = {"end_at_step": 1} if node["widgets_values"][0] == "enable" else {"start_at_step": 1}
    api = harness.ui_to_api(workflow, overrides=overrides)
    assert {v["class_type"] for v in api.values()} >= {"SaveImage", "CheckpointLoaderSimple", "VAEDecode"}
    assert {v["class_type"] for v in api.values()} & {"KSampler", "KSamplerAdvanced"}
    save_id = next(k for k, v in api.items() if v["class_type"] == "SaveImage")
    assert api[save_id]["inputs"]["filename_prefix"] == "ComfyUI"
    result = harness.run_prompt(api)  # every output node (SaveImage) runs
    images = result.ui[save_id]["images"]
    assert len(images) == 1
    import folder_paths

    saved = Path(folder_paths.get_output_directory()) / images[0]["subfolder"] / images[0]["filename"]
    assert saved.is_file() and saved.resolve().is_relative_to(comfy.base_dir.resolve())


def _required_inputs(class_def, inputs: dict) -> set:
    """The inputs a node needs given the ones it has: a V3 node's dynamic
    inputs (Autogrow, DynamicCombo) are sent as the inputs they grew into
    ("values.a" for "values"), which ComfyUI expands with the live inputs
    (comfy_api's get_finalized_class_inputs, where the host has it)."""
    spec = class_def.INPUT_TYPES()
    try:
        from comfy_api.internal import _ComfyNodeInternal
        from comfy_api.latest._io import get_finalized_class_inputs
    except ImportError:  # ComfyUI before dynamic inputs
        return set(spec.get("required") or {})
    if issubclass(class_def, _ComfyNodeInternal):  # as ComfyUI's execution.get_input_data does
        spec = get_finalized_class_inputs(spec, inputs)[0]
    return set(spec.get("required") or {})


def test_ui_to_api_on_shipped_templates(comfy):
    """Every shipped template whose node types are all registered converts
    (frontend leniency) to a prompt with each node's required inputs set."""
    import json

    import nodes

    templates = _shipped_templates_dir()
    converted, failures = 0, []
    for path in sorted(templates.glob("*.json")):
        workflow = json.loads(path.read_text())
        if not isinstance(workflow, dict) or "nodes" not in workflow:
            continue  # index files
        types = {n.get("type") for n in workflow["nodes"]} - harness.UI_ONLY_TYPES
        if (workflow.get("definitions") or {}).get("subgraphs") or not types <= set(nodes.NODE_CLASS_MAPPINGS):
            continue  # subgraphs, API nodes, models this ComfyUI lacks
        api = harness.ui_to_api(workflow, strict=False)
        for node_id, entry in api.items():
            missing = _required_inputs(nodes.NODE_CLASS_MAPPINGS[entry["class_type"]], entry["inputs"]) \
                - set(entry["inputs"])
            if missing:
                failures.append(f"{path.name}: node {node_id} ({entry['class_type']}) lacks {sorted(missing)}")
        converted += 1
    assert not failures, failures
    assert converted >= 10


def test_ui_to_api_errors_name_the_node(comfy):
    bad = {"nodes": [{"id": 1, "type": "KSampler", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [1, 2]}], "links": []}
    with pytest.raises(harness.WorkflowConversionError, match=r"node 1 \(KSampler"):
        harness.ui_to_api(bad)
    # Frontend leniency on request: missing values take the widget defaults.
    lenient = harness.ui_to_api(bad, strict=False)["1"]["inputs"]
    assert lenient["seed"] == 1 and lenient["steps"] == 20 and lenient["sampler_name"] == "euler"
    unknown = {"nodes": [{"id": 2, "type": "NoSuchNode", "mode": 0, "title": "x"}], "links": []}
    with pytest.raises(harness.WorkflowConversionError, match=r"node 2 \(NoSuchNode, 'x'\).*unknown node type"):
        harness.ui_to_api(unknown)


@pytest.mark.xfail(
    not PACK_INIT.exists(),
    reason=f"{PACK_INIT} does not exist yet: the pack cannot load",
    strict=False,
)
def test_pack_loads(comfy):
    import nodes

    assert comfy.pack_loaded, f"load_custom_node({comfy.pack_link}) failed:\n{comfy.pack_error}"
    assert comfy.pack_nodes, f"the pack registered no nodes:\n{comfy.pack_error}"
    for name in comfy.pack_nodes:
        assert nodes.NODE_CLASS_MAPPINGS[name].RELATIVE_PYTHON_MODULE == f"custom_nodes.{harness.PACK_DIRNAME}"
    # Loading the pack must not have replaced ComfyUI's `nodes` with its subpackage.
    assert Path(sys.modules["nodes"].__file__).resolve() == comfy.comfyui_path / "nodes.py"
