#!/usr/bin/env bash
# Prints the ComfyUI checkouts the host tier runs against, newest first, one
# per line: $PANORAMA_HOSTS (colon-separated) if set; else $COMFYUI_PATH if
# set; else the ComfyUI this pack sits in (ComfyUI/custom_nodes/<pack>), then
# ~/ComfyUI-0.33 (today's) and ~/ComfyUI (the oldest supported, v0.3.64).
# Paths that hold no ComfyUI are left out.
#
#   bash scripts/hosts.sh --fetch   first clones the two pinned releases into
#                                   ~/ComfyUI-0.33 and ~/ComfyUI where they are
#                                   missing (sparse: without the tokenizer files
#                                   over 4 MiB, which nothing here reads), or says
#                                   why it could not; then prints the hosts.
#
#   PANORAMA_COMFYUI_REPO      where --fetch clones from (default ComfyUI's
#                              public repository, github.com/comfyanonymous/ComfyUI)
#   PANORAMA_COMFYUI_RELEASES  what --fetch clones, "TAG COMMIT DIR" a line
#                              (default: the two pinned releases below)
set -uo pipefail
cd "$(dirname "$0")/.."

# The pinned releases: tag, commit (a prefix), where --fetch puts it.
mapfile -t RELEASES <<< "${PANORAMA_COMFYUI_RELEASES:-v0.33.0 783545f6 $HOME/ComfyUI-0.33
v0.3.64 63722199 $HOME/ComfyUI}"
# Blobs over 4 MiB (tokenizers of text encoders the pack never loads); a
# pattern for a file a release lacks is harmless.
SPARSE=('/*' '!/comfy/text_encoders/llama_tokenizer/tokenizer.json' '!/comfy/text_encoders/qwen35_tokenizer/vocab.json')

fetch() {  # fetch TAG COMMIT DIR: 0 when DIR holds that release afterwards
  local tag=$1 commit=$2 dir=$3 repo=${PANORAMA_COMFYUI_REPO:-https://github.com/comfyanonymous/ComfyUI}
  local version=${tag#v}
  if [ -e "$dir" ]; then
    local have
    have=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$dir/comfyui_version.py" 2>/dev/null)
    if [ "$have" = "$version" ]; then
      echo "hosts: $dir already holds ComfyUI $version" >&2
      return 0
    fi
    echo "hosts: not fetching ComfyUI $version: $dir exists and holds ${have:+ComfyUI }${have:-no ComfyUI};" \
      "left as it is (move it away, or set PANORAMA_HOSTS)" >&2
    return 1
  fi
  echo "hosts: fetching ComfyUI $version ($tag, $commit) from $repo into $dir" >&2
  local error
  if ! error=$(GIT_TERMINAL_PROMPT=0 timeout 60 git ls-remote --exit-code "$repo" "refs/tags/$tag" 2>&1 >/dev/null); then
    error=$(printf '%s\n' "$error" | grep -v '^$' | tail -n 1)
    echo "hosts: cannot fetch ComfyUI $version from $repo: ${error:-no tag $tag there, or no answer in 60 s}." \
      "Set it up by hand (README, Quick start) or set COMFYUI_PATH to a ComfyUI checkout." >&2
    return 1
  fi
  local partial="$dir.partial.$$"
  # Only the tag's commit, without the big blobs; the sparse checkout keeps the
  # working tree from asking for them.
  if GIT_TERMINAL_PROMPT=0 git clone -q --depth 1 --branch "$tag" --filter=blob:limit=4m --no-checkout "$repo" "$partial" >&2 \
     && git -C "$partial" sparse-checkout set --no-cone "${SPARSE[@]}" >&2 \
     && git -C "$partial" checkout -q "$tag" >&2; then
    local head
    head=$(git -C "$partial" rev-parse HEAD)
    if [ "${head#"$commit"}" = "$head" ]; then
      echo "hosts: $repo's $tag is commit $head, not the pinned $commit: not used" >&2
      rm -rf "$partial"
      return 1
    fi
    mv "$partial" "$dir"
    echo "hosts: ComfyUI $version ready in $dir; bash scripts/setup.sh $dir makes its venv (scripts/test.sh does)" >&2
    return 0
  fi
  rm -rf "$partial"
  echo "hosts: cloning $repo ($tag) failed; see git's message above" >&2
  return 1
}

status=0
if [ "${1:-}" = "--fetch" ]; then
  command -v git >/dev/null || { echo "hosts: cannot fetch ComfyUI: git is not installed" >&2; exit 1; }
  for release in "${RELEASES[@]}"; do
    read -r tag commit dir <<< "$release"
    [ -n "$tag" ] || continue
    fetch "$tag" "$commit" "$dir" || status=1
  done
fi

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
exit $status
