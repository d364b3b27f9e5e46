"""The nodes in ComfyUI's V3 schema keep what workflows saved with the V1
nodes (pack 0.2.0) rely on: node ids, inputs in the same order with the same
types, defaults, limits and tooltips, the same outputs.  ``v1_nodes/``
holds those nodes' INPUT_TYPES as ComfyUI read them and the templates as
they were saved; test_panorama_host runs the saved templates."""

from __future__ import annotations

import json

import pytest

import harness

pytestmark = pytest.mark.host

SAVED = json.loads((harness.HERE / "v1_nodes" / "input_types.json").read_text())
KEYS = ("default", "min", "max", "step", "tooltip", "control_after_generate")
# Tooltips name other nodes by what users see: the names the V3 nodes got.
RENAMED = {"A Panorama Latent": "An Empty Panorama Latent",
           "Cross Sampling Scheduler": "Panorama Windows (Cross Sampling)",
           "Multi-Scale Guidance": "Panorama Layout Guidance (MSD)"}


def renamed(value):
    if isinstance(value, str):
        for old, new in RENAMED.items():
            value = value.replace(old, new)
    return value


def declared(cls) -> dict:
    """What a node declares, in the form v1_nodes/input_types.json holds."""
    spec = cls.INPUT_TYPES()
    entry = {}
    for section in ("required", "optional"):
        entry[section] = []
        for name, s in (spec.get(section) or {}).items():
            kind = s[0] if isinstance(s[0], str) else "COMBO"
            opts = {k: v for k, v in (s[1] if len(s) > 1 else {}).items() if k in KEYS}
            if kind == "COMBO":
                opts["options"] = list(s[0]) if not isinstance(s[0], str) else list(s[1]["options"])
            if cls.__name__ == "TwinCropFusionSampler" and name in ("sampler_name", "scheduler"):
                opts.pop("options", None)  # the host's own lists
            entry[section].append([name, kind, opts])
    return entry


@pytest.mark.parametrize("node_id", sorted(SAVED))
def test_v3_node_declares_what_the_v1_node_did(node_id, comfy):
    import nodes
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    assert hasattr(cls, "define_schema"), f"{node_id} is not a V3 node"
    saved, now = SAVED[node_id], declared(cls)
    for section in ("required", "optional"):
        # inputs added since come after the old ones, optional, so that saved widget values still fit and
        # API-format prompts without them still run
        assert [i[:2] for i in now[section]][:len(saved[section])] == [i[:2] for i in saved[section]], \
            f"{node_id} {section} inputs"
        assert section == "optional" or len(now[section]) == len(saved[section]), \
            f"{node_id}: {[i[0] for i in now[section][len(saved[section]):]]} added as required inputs"
        for (name, _, opts), (_, _, old) in zip(now[section], saved[section]):
            for key, value in old.items():
                assert opts.get(key) == renamed(value), f"{node_id}.{name}: {key} was {value!r}, is {opts.get(key)!r}"
    assert list(cls.RETURN_TYPES) == saved["outputs"][0]
    assert list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES) == saved["outputs"][1]
    assert list(getattr(cls, "OUTPUT_TOOLTIPS", None) or []) == saved["outputs"][2]
    assert bool(getattr(cls, "OUTPUT_NODE", False)) == saved["output_node"]
    assert cls.CATEGORY == saved["category"]


def test_schema_fields(comfy):
    """Display names a newcomer reads, descriptions, and search aliases where
    the host's schema has them (from v0.4; v0.3.64's search matches names
    and descriptions only)."""
    import dataclasses
    import nodes
    from comfy_api.latest import io
    has_aliases = "search_aliases" in {f.name for f in dataclasses.fields(io.Schema)}
    for node_id in SAVED:
        schema = nodes.NODE_CLASS_MAPPINGS[node_id].GET_SCHEMA()
        assert schema.display_name and schema.description
        assert nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id] == schema.display_name
        if has_aliases:
            assert "panorama" in schema.search_aliases or "360" in schema.search_aliases, node_id
    names = {node_id: nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id] for node_id in SAVED}
    assert names["TwinCropFusionSampler"] == "KSampler (Panorama)"
    assert names["PanoramaLatent"] == "Empty Panorama Latent"
