#!/usr/bin/env bash
# The test command: set-up, then the core tier (everywhere) and the host tier
# (against the ComfyUI at $COMFYUI_PATH, default ~/ComfyUI; skipped with the
# reason where there is none).  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PANORAMA_VENV:-$HOME/.cache/comfy-panorama/venv}/bin/python" -m pytest -c tests/pytest.ini "$@"
