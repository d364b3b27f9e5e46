"""pyproject.toml as the Comfy Registry reads it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_registry_fields():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project, comfy = data["project"], data["tool"]["comfy"]
    # The Registry's rules for a node id, and its advice: no "ComfyUI" in it.
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]{0,98}", project["name"])
    assert not re.search(r"[._-]{2}", project["name"]) and "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])
    assert (ROOT / project["license"]["file"]).is_file()
    assert {"Repository", "Documentation"} <= set(project["urls"])
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"].endswith("docs/icon.png") and (ROOT / "docs" / "icon.png").is_file()
    assert comfy["requires-comfyui"] == ">=0.3.64"
    assert project["dependencies"] == []  # the runtime needs nothing beyond ComfyUI
    assert (ROOT / ".github" / "workflows" / "publish.yml").is_file()
