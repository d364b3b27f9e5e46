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


def fetch(home: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "PANORAMA_HOSTS")}
    environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", **env)
    return subprocess.run(["bash", str(ROOT / "scripts" / "hosts.sh"), "--fetch"], env=environ,
                          capture_output=True, text=True)


def git(*args, cwd=None) -> str:
    environ = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          check=True).stdout.strip()


def release_repo(path: Path, version: str) -> str:
    """A repository like ComfyUI's: a tag v<version> on a commit holding a
    ComfyUI of that version and a tokenizer file over 4 MiB.  Its commit."""
    work = path / "work"
    fake_comfyui(work, version)
    tokenizer = work / "comfy" / "text_encoders" / "llama_tokenizer" / "tokenizer.json"
    tokenizer.parent.mkdir(parents=True)
    tokenizer.write_bytes(os.urandom(5 << 20))
    git("init", "-q", str(work))
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "release", cwd=work)
    git("tag", f"v{version}", cwd=work)
    git("config", "uploadpack.allowFilter", "true", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def test_fetch_clones_the_pinned_releases_sparsely(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    commit = release_repo(tmp_path, "0.33.0")
    env = dict(PANORAMA_COMFYUI_REPO=f"file://{tmp_path / 'work'}",
               PANORAMA_COMFYUI_RELEASES=f"v0.33.0 {commit[:8]} {home / 'ComfyUI-0.33'}")
    result = fetch(home, **env)
    assert result.returncode == 0, result.stderr
    host = home / "ComfyUI-0.33"
    assert result.stdout.split() == [str(host)]
    assert (host / "nodes.py").is_file() and git("rev-parse", "HEAD", cwd=host) == commit
    # The tokenizer over 4 MiB is neither checked out nor downloaded.
    tokenizer = "comfy/text_encoders/llama_tokenizer/tokenizer.json"
    assert not (host / tokenizer).exists()
    blob = git("rev-parse", f"HEAD:{tokenizer}", cwd=tmp_path / "work")
    missing = subprocess.run(["git", "cat-file", "-e", blob], cwd=host, capture_output=True,
                             env={**os.environ, "GIT_NO_LAZY_FETCH": "1"})
    assert missing.returncode != 0, "the big blob was downloaded"
    # A second run finds it there and leaves it.
    again = fetch(home, **env)
    assert again.returncode == 0 and "already holds ComfyUI 0.33.0" in again.stderr


def test_fetch_says_why_it_did_not(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # No network (or no such repository): says so, and what to do instead.
    result = fetch(home, PANORAMA_COMFYUI_REPO=f"file://{tmp_path / 'nowhere'}")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("cannot fetch ComfyUI") == 2 and "COMFYUI_PATH" in result.stderr, result.stderr
    assert not list(home.iterdir())
    # A tag on another commit than the pinned one is not used.
    release_repo(tmp_path, "0.33.0")
    result = fetch(home, PANORAMA_COMFYUI_REPO=f"file://{tmp_path / 'work'}",
                   PANORAMA_COMFYUI_RELEASES=f"v0.33.0 0123abcd {home / 'ComfyUI-0.33'}")
    assert result.returncode == 1 and "not the pinned 0123abcd" in result.stderr, result.stderr
    assert not list(home.iterdir())
    # A folder in the way (a user's own ComfyUI of another version) is left alone.
    own = fake_comfyui(home / "ComfyUI-0.33", "0.30.0")
    result = fetch(home, PANORAMA_COMFYUI_REPO=f"file://{tmp_path / 'work'}",
                   PANORAMA_COMFYUI_RELEASES=f"v0.33.0 0123abcd {own}")
    assert result.returncode == 1 and "holds ComfyUI 0.30.0; left as it is" in result.stderr, result.stderr
    assert result.stdout.split() == [str(own)]
