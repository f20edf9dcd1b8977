#!/usr/bin/env bash
# Stops every Milvus server the project started (the test bed and any
# started by the local provisioner under the same root).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root="${ZDM_MILVUS_ROOT:-$top/.cache/milvus}"
for pidf in "$root"/lite/*.pid; do
  [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
  rm -f "$pidf"
done
[ -d "$root/servers" ] || { rm -f "$root/endpoints.env"; exit 0; }
py="${ZDM_VENV:-$top/.cache/venv}/bin/python"
"$py" "$top/scripts/milvus_server.py" stop-all --root "$root"
rm -f "$root/endpoints.env"
echo "milvus-down: stopped"
