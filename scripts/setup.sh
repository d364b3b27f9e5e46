#!/usr/bin/env bash
# Sets up the Python environment for the tests, the demo and the benchmarks
# on a fresh machine.  Idempotent: a second run only checks.
#
#   PANORAMA_VENV  where the venv lives (default ~/.cache/comfy-panorama/venv)
#   COMFYUI_PATH   a ComfyUI checkout for the host tests (default ~/ComfyUI);
#                  its requirements are installed when it is present
set -euo pipefail

VENV="${PANORAMA_VENV:-$HOME/.cache/comfy-panorama/venv}"
COMFYUI="${COMFYUI_PATH:-$HOME/ComfyUI}"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | grep -v "is ignored" || true; }

# ComfyUI imports torchvision; PyPI's torchvision only imports beside the torch
# it was built for, so the two are pinned together (a bare `torch` would pull a
# multi-GB build from the index).
pip_install "torch==2.14.1" "torchvision==0.29.1"
pip_install pytest numpy pillow matplotlib "scikit-image==0.26.0"

if [ -f "$COMFYUI/requirements.txt" ]; then
  echo "setup: installing ComfyUI's requirements from $COMFYUI"
  grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$COMFYUI/requirements.txt" > "$VENV/comfyui-requirements.txt"
  pip_install -r "$VENV/comfyui-requirements.txt" requests
else
  echo "setup: no ComfyUI at $COMFYUI: the host tests will be skipped (clone ComfyUI there or set COMFYUI_PATH)"
fi
"$VENV/bin/python" -c "import torch; print('setup: torch', torch.__version__, 'ready in $VENV')"
