#!/usr/bin/env bash
# Stops every Milvus server the project started (the test bed and any
# started by the local provisioner under the same root) and deletes their
# data: every test and the demo start from empty servers, and Milvus keeps
# dropped collections on disk for a day, so a test bed that is never
# emptied grows by gigabytes a run. Their logs are kept.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root="${ZDM_MILVUS_ROOT:-$top/.cache/milvus}"
for pidf in "$root"/lite/*.pid; do
  [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
  rm -f "$pidf"
done
[ -d "$root/servers" ] || { rm -f "$root/endpoints.env"; exit 0; }
py="${ZDM_VENV:-$top/.cache/venv}/bin/python"
"$py" "$top/scripts/milvus_server.py" stop-all --root "$root" --drop-data
rm -f "$root/endpoints.env"
echo "milvus-down: stopped"
