#!/usr/bin/env bash
# The main job on its built-in default: set-up, then terrain panoramas from
# a trained model (adaptive-terrain-diffusion, installed by setup.sh) under
# MultiDiffusion, TwinDiffusion, Cross Sampling and Multi-Scale Diffusion ->
# out/demo.png and a table.  Extra arguments go to `python -m demo` (see
# --help; `bash scripts/demo.sh reference` is the built-in reference model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PANORAMA_VENV:-$HOME/.cache/comfy-panorama/venv}/bin/python" -m demo "$@"
