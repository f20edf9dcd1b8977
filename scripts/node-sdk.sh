#!/usr/bin/env bash
# Prints the node_modules directory that holds the Milvus Node.js SDK for
# the end-to-end tests, installing it first (npm ci, from the lock file in
# e2e/testdata/node) into .cache/node-sdk when it is missing or stale.
# Without node and npm it installs Debian's (as root); otherwise it says
# what to do and prints nothing, and the tests that need the SDK skip (or
# fail under ZDM_REQUIRE_INTEGRATION).
set -euo pipefail
if [ -n "${ZDM_NODE_MODULES:-}" ]; then echo "$ZDM_NODE_MODULES"; exit 0; fi
top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/e2e/testdata/node"
dir="$top/.cache/node-sdk"
has_node() { command -v node >/dev/null && command -v npm >/dev/null; }
if ! has_node && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "node-sdk: installing Debian's nodejs and npm for the Node.js client test" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq --no-install-recommends nodejs npm || { apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm; }; } >&2
fi
if ! has_node; then
  echo "node-sdk: node and npm not found; install them (apt-get install nodejs npm) or set ZDM_NODE_MODULES" >&2
  exit 0
fi
if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules/@zilliz/milvus2-sdk-node" ]; then
  echo "node-sdk: installing the Milvus Node.js SDK into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2
fi
echo "$dir/node_modules"
