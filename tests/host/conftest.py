"""Fixtures for the host tier: tests that run against a real ComfyUI.

Every test here is marked ``host``; the whole tier skips, saying why, where
ComfyUI (at $COMFYUI_PATH, default ~/ComfyUI) or torch/torchvision is absent.

There is deliberately no ``__init__.py`` in tests/ or tests/host/: pytest then
puts only this directory on sys.path (for ``import harness``), never the repo
root, whose ``nodes/`` subpackage would shadow ComfyUI's top-level ``nodes``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import harness  # noqa: E402
from tiny_models import checkpoint_dir, tiny_checkpoints  # noqa: E402,F401  (re-exported fixtures)

# Move ComfyUI to the front of sys.path now, before any test module runs:
# `python -m pytest` puts the cwd (the repo root) first and tests/conftest.py
# appends it, and the repo's `nodes/` must never win over ComfyUI's `nodes`.
# Only the cheap part (no model code); the real boot is the `comfy` fixture.
if harness._checkout_missing_reason() is None:
    try:
        harness.prepare_comfy_imports()
    except Exception:  # reported properly by the `comfy` fixture
        pass


def pytest_configure(config):
    # Also declared in tests/pytest.ini; repeated so the tier works under any ini.
    config.addinivalue_line("markers", "host: needs a real ComfyUI checkout ($COMFYUI_PATH, default ~/ComfyUI)")


def pytest_collection_modifyitems(config, items):
    # Only the path check here (cheap); torch/torchvision are checked by the
    # `comfy` fixture, so a unit-only run does not pay for importing them.
    missing = harness._checkout_missing_reason()
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.host)
            if missing:
                item.add_marker(pytest.mark.skip(reason=missing))


@pytest.fixture(scope="session")
def comfy(tmp_path_factory) -> "harness.BootInfo":
    """ComfyUI booted once per session (CPU, temp dirs, our pack loaded)."""
    reason = harness.comfyui_missing_reason()
    if reason:
        pytest.skip(reason)
    return harness.boot_comfyui(tmp_path_factory.mktemp("comfy_host"))


@pytest.fixture
def run_prompt(comfy):
    """harness.run_prompt, with ComfyUI booted."""
    return harness.run_prompt


@pytest.fixture
def ui_to_api(comfy):
    """harness.ui_to_api, with ComfyUI booted."""
    return harness.ui_to_api


@pytest.fixture(scope="session")
def dit_files(comfy, checkpoint_dir) -> dict:  # noqa: F811  (the fixture, re-exported above)
    """{kind: file name in a ``diffusion_models`` folder} for the tiny_dits kinds this host has,
    plus "flux_vae" and "wan_vae" (Qwen-Image's; in a ``vae`` folder) and "sd35_checkpoint" (a checkpoint
    with its VAE); test configs and the test conditioning node registered."""
    import tiny_dits

    folders = {name: checkpoint_dir / name for name in ("diffusion_models", "vae")}
    for name, directory in folders.items():
        directory.mkdir(exist_ok=True)
    names = tiny_dits.ensure_dits(folders["diffusion_models"])
    names["flux_vae"] = tiny_dits.ensure_flux_vae(folders["vae"])
    names["wan_vae"] = tiny_dits.ensure_wan_vae(folders["vae"])
    names["sd35_checkpoint"] = tiny_dits.ensure_sd35_checkpoint(checkpoint_dir)
    tiny_dits.register_test_configs()
    for name, directory in folders.items():
        harness.add_checkpoint_folder(directory, name)
    harness.add_checkpoint_folder(checkpoint_dir)
    harness.register_test_nodes(tiny_dits.TEST_NODE_CLASS_MAPPINGS)
    return names
