#!/usr/bin/env bash
# The test command: set-up, then the core tier (pure torch, everywhere) and
# the host tier against every ComfyUI host found (scripts/hosts.sh: today's
# v0.33 at ~/ComfyUI-0.33 and the oldest supported v0.3.64 at ~/ComfyUI, or
# $COMFYUI_PATH / $PANORAMA_HOSTS), each in its own venv with that host's
# requirements.  Without a host the host tier is skipped, saying why.
# Extra arguments go to every pytest run; the last line sums them up.
#
#   PANORAMA_HOST_TIER_ARGS  pytest arguments for the hosts after the first
#                            (default: the whole host tier there too)
set -uo pipefail
cd "$(dirname "$0")/.."
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0

run() {  # run NAME PYTHON [pytest args...]
  local name=$1 python=$2; shift 2
  echo "=== $name ==="
  "$python" -m pytest -c tests/pytest.ini --junitxml="$reports/$name.xml" "$@"
  local rc=$?
  # 5: nothing collected (a -k that selects nothing on this host) is no failure
  [ $rc -eq 0 ] || [ $rc -eq 5 ] || status=1
}

# Paths are always given: without one, pytest 9 collects from the repo root,
# whose __init__.py (the pack's, relative imports) it would import as a test
# package.  The caller's own paths replace the defaults.
given=0
for arg in "$@"; do [ -e "${arg%%::*}" ] && given=1; done
core_paths=(tests)
host_paths=(tests/host)
[ $given = 1 ] && core_paths=() && host_paths=()

mapfile -t hosts < <(bash scripts/hosts.sh)
not_run=""
if [ ${#hosts[@]} -eq 0 ]; then
  python=$(bash scripts/setup.sh | tail -n 1) || exit 1
  run core "$python" "${core_paths[@]}" "$@"
  not_run="host tier not run: no ComfyUI found (bash scripts/hosts.sh --fetch clones the two pinned releases; or set COMFYUI_PATH)"
else
  first=1
  for host in "${hosts[@]}"; do
    version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$host/comfyui_version.py")
    python=$(bash scripts/setup.sh "$host" | tail -n 1) || {
      echo "setup failed for $host"; status=1; not_run="${not_run:+$not_run; }setup failed for $host"; continue; }
    if [ $first = 1 ]; then
      COMFYUI_PATH="$host" run "comfyui-$version" "$python" "${core_paths[@]}" "$@"  # core tier and host tier
      first=0
    else
      # shellcheck disable=SC2086
      COMFYUI_PATH="$host" run "comfyui-$version" "$python" "${host_paths[@]}" ${PANORAMA_HOST_TIER_ARGS:-} "$@"
    fi
  done
fi

"${python:-python3}" - "$reports" "$not_run" <<'EOF'
import re, sys, pathlib, xml.etree.ElementTree as ET
totals = dict(passed=0, failed=0, skipped=0)
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        totals["passed"] += tests - skipped - failed
        totals["failed"] += failed
        totals["skipped"] += skipped
        print(f"{path.stem}: {tests - skipped - failed} passed, {failed} failed, {skipped} skipped", file=sys.stderr)
    # The browser tier per frontend (its test ids name the frontend: [frontend-1.58.1]).
    frontends = {}
    for case in root.iter("testcase"):
        match = re.search(r"frontend-(\d+(?:\.\d+)+)", case.get("name", ""))
        if match:
            count = frontends.setdefault(match.group(1), dict(ran=0, passed=0, failed=0, skipped=0))
            outcome = ("skipped" if case.find("skipped") is not None else
                       "failed" if case.find("failure") is not None or case.find("error") is not None else "passed")
            count[outcome] += 1
            count["ran"] += outcome != "skipped"
    for version, count in sorted(frontends.items()):
        print(f"{path.stem}, frontend {version}: {count['ran']} ran, {count['passed']} passed, "
              f"{count['failed']} failed, {count['skipped']} skipped", file=sys.stderr)
line = f"total: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped"
print(f"{line}; {sys.argv[2]}" if sys.argv[2] else line)
EOF
exit $status
