#!/usr/bin/env bash
# Sets up a Python environment on a fresh machine.  Idempotent: a second run
# only checks.  Prints the venv's python on its last line.
#
#   bash scripts/setup.sh              the base venv: core tests, demo, benchmarks
#   bash scripts/setup.sh COMFYUI_DIR  a venv for that ComfyUI host: the base
#                                      packages plus the host's own requirements
#
#   PANORAMA_VENV       the base venv (default ~/.cache/comfy-panorama/venv)
#   PANORAMA_VENV_ROOT  where host venvs live (default ~/.cache/comfy-panorama),
#                       one per ComfyUI version: venv-comfyui-<version>; and the
#                       newest frontend (scripts/requirements-frontend.txt) that
#                       the browser tests serve beside a recent host's own:
#                       frontend-<version>
set -euo pipefail

ROOT="${PANORAMA_VENV_ROOT:-$HOME/.cache/comfy-panorama}"
HOST="${1:-}"
if [ -n "$HOST" ]; then
  [ -f "$HOST/requirements.txt" ] || { echo "setup: $HOST is not a ComfyUI checkout (no requirements.txt)" >&2; exit 2; }
  VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$HOST/comfyui_version.py" 2>/dev/null || true)
  VENV="$ROOT/venv-comfyui-${VERSION:-unknown}"
else
  VENV="${PANORAMA_VENV:-$ROOT/venv}"
fi
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
pip_install() {
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | grep -v -E "is ignored|^$" >&2 || true
}
stamp="$VENV/.panorama-setup"
want="$(cat "$0" "$(dirname "$0")/requirements-models.txt" ${HOST:+"$HOST/requirements.txt"} | cksum)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # ComfyUI imports torchvision (and torchaudio from v0.20); PyPI's builds only
  # import beside the torch they were built for, so the three are pinned
  # together (a bare `torch` would pull a multi-GB build from the index).
  pip_install "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.1"
  pip_install pytest numpy pillow matplotlib "scikit-image==0.26.0" requests tqdm
  # trained weights (terrain model, LPIPS / DISTS) read from pinned packages; onnxruntime only checks the port
  pip_install --no-deps --require-hashes -r "$(dirname "$0")/requirements-models.txt"
  pip_install "onnxruntime==1.32.0"
  if [ -n "$HOST" ]; then
    echo "setup: installing the requirements of ComfyUI ${VERSION:-?} ($HOST) into $VENV" >&2
    grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$HOST/requirements.txt" > "$VENV/comfyui-requirements.txt"
    pip_install -r "$VENV/comfyui-requirements.txt"
  fi
  "$VENV/bin/python" -c "import torch, torchvision, torchaudio" >&2
  echo "$want" > "$stamp"
fi
if [ -n "$HOST" ]; then
  # The newest frontend, for the browser tier (scripts/requirements-frontend.txt
  # says why and from which ComfyUI on).  In a folder of its own, served with
  # --front-end-root: the host keeps its own frontend package.  Installed into a
  # temporary folder first, so that an interrupted install is never taken for one.
  frontend_req="$(dirname "$0")/requirements-frontend.txt"
  min_host=$(sed -n 's/^# min-comfyui: *//p' "$frontend_req")
  frontend=$(sed -n 's/^comfyui-frontend-package==\([^ ]*\).*/\1/p' "$frontend_req")
  if printf '%s\n' "$min_host" "${VERSION:-0}" | sort -V -C; then
    target="$ROOT/frontend-$frontend"
    if [ ! -f "$target/comfyui_frontend_package/static/index.html" ]; then
      echo "setup: installing comfyui-frontend-package $frontend into $target" >&2
      rm -rf "$target.partial"
      pip_install --no-deps --require-hashes --target "$target.partial" -r "$frontend_req"
      [ -f "$target.partial/comfyui_frontend_package/static/index.html" ] \
        || { echo "setup: comfyui-frontend-package $frontend did not install" >&2; exit 1; }
      rm -rf "$target" && mv "$target.partial" "$target"
    fi
    echo "setup: frontend $frontend ready in $target" >&2
  fi
fi
echo "setup: torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') ready in $VENV" >&2
echo "$VENV/bin/python"
