#!/usr/bin/env bash
# Prints the path of HAProxy for the HA tests and make demo-ha, installing
# Debian's haproxy package first when there is none. Installing needs root
# (CI runs as root); otherwise it says what to do and prints nothing, and
# the HA tests skip (or fail under ZDM_REQUIRE_INTEGRATION).
set -euo pipefail
if [ -n "${ZDM_HAPROXY:-}" ]; then echo "$ZDM_HAPROXY"; exit 0; fi
find_it() { command -v haproxy || { [ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy; } || true; }
path=$(find_it)
if [ -z "$path" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "haproxy: installing Debian's haproxy for the HA tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -qq --no-install-recommends haproxy || { apt-get update -qq && apt-get install -y -qq --no-install-recommends haproxy; }; } >&2
    path=$(find_it)
  else
    echo "haproxy: not found; install it (apt-get install haproxy) or set ZDM_HAPROXY" >&2
  fi
fi
echo "$path"
