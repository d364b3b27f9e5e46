#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/host/test_frontend_browser.py)
# when no Chromium is on PATH.  Needs root or passwordless sudo and apt-get;
# without them it says so and the browser tests skip with that reason.
set -uo pipefail
for name in chromium chromium-browser google-chrome; do
  command -v "$name" >/dev/null && { echo "browser: $(command -v "$name")"; exit 0; }
done
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "browser: no Chromium and no root to install it: the browser tests will skip"; exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "browser: no apt-get: install Chromium by hand (or set PANORAMA_BROWSER); the browser tests will skip"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null \
  && echo "browser: installed $(command -v chromium)" \
  || echo "browser: apt-get could not install chromium: the browser tests will skip"
