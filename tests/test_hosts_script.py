"""scripts/hosts.sh: which ComfyUI checkouts the host tier runs against."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fake_comfyui(path: Path, version: str) -> Path:
    (path / "custom_nodes").mkdir(parents=True)
    (path / "nodes.py").write_text("")
    (path / "comfyui_version.py").write_text(f'__version__ = "{version}"\n')
    return path


def hosts(home: Path, pack: Path = ROOT, **env) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "PANORAMA_HOSTS")}
    environ.update(HOME=str(home), **env)
    out = subprocess.run(["bash", str(pack / "scripts" / "hosts.sh")], env=environ, capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def test_default_hosts_newest_first(tmp_path):
    old = fake_comfyui(tmp_path / "ComfyUI", "0.3.64")
    new = fake_comfyui(tmp_path / "ComfyUI-0.33", "0.33.0")
    assert hosts(tmp_path) == [str(new), str(old)]


def test_the_comfyui_the_pack_sits_in_comes_first(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    fake_comfyui(home / "ComfyUI", "0.3.64")
    host = fake_comfyui(tmp_path / "Comfy", "0.30.1")
    pack = host / "custom_nodes" / "panorama"
    shutil.copytree(ROOT / "scripts", pack / "scripts")
    assert hosts(home, pack) == [str(host), str(home / "ComfyUI")]


def test_explicit_hosts_win_and_missing_ones_are_left_out(tmp_path):
    fake_comfyui(tmp_path / "ComfyUI", "0.3.64")
    chosen = fake_comfyui(tmp_path / "elsewhere", "0.20.0")
    assert hosts(tmp_path, COMFYUI_PATH=str(chosen)) == [str(chosen)]
    assert hosts(tmp_path, PANORAMA_HOSTS=f"{tmp_path}/nothing:{chosen}") == [str(chosen)]
    assert hosts(tmp_path / "nowhere") == []
