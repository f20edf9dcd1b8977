#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the console's browser
# tests, installing Debian's chromium package first when there is none.
# Installing needs root (CI runs as root); otherwise it says what to do and
# prints nothing, and the browser tests skip (or fail under
# ZDM_REQUIRE_INTEGRATION).
set -euo pipefail
if [ -n "${ZDM_CHROMIUM:-}" ]; then echo "$ZDM_CHROMIUM"; exit 0; fi
find_it() { command -v chromium || command -v chromium-browser || command -v google-chrome || true; }
path=$(find_it)
if [ -z "$path" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "chromium: installing Debian's chromium for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >&2
    path=$(find_it)
  else
    echo "chromium: not found; install it (apt-get install chromium) or set ZDM_CHROMIUM" >&2
  fi
fi
echo "$path"
