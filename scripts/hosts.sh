#!/usr/bin/env bash
# Prints the ComfyUI checkouts the host tier runs against, newest first, one
# per line: $PANORAMA_HOSTS (colon-separated) if set; else $COMFYUI_PATH if
# set; else the ComfyUI this pack sits in (ComfyUI/custom_nodes/<pack>), then
# ~/ComfyUI-0.33 (today's) and ~/ComfyUI (the oldest supported, v0.3.64).
# Paths that hold no ComfyUI are left out.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PANORAMA_HOSTS:-}" ]; then
  IFS=: read -r -a candidates <<< "$PANORAMA_HOSTS"
elif [ -n "${COMFYUI_PATH:-}" ]; then
  candidates=("$COMFYUI_PATH")
else
  candidates=()
  parent=$(cd .. && pwd)
  [ "$(basename "$parent")" = custom_nodes ] && candidates+=("$(dirname "$parent")")
  candidates+=("$HOME/ComfyUI-0.33" "$HOME/ComfyUI")
fi
seen=""
for dir in "${candidates[@]}"; do
  [ -f "$dir/nodes.py" ] && [ -f "$dir/comfyui_version.py" ] || continue
  real=$(cd "$dir" && pwd -P)
  case " $seen " in *" $real "*) continue ;; esac
  seen="$seen $real"
  version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$real/comfyui_version.py")
  echo "$version $real"
done | sort -r -V -k1,1 | cut -d" " -f2-
