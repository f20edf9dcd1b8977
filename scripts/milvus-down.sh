#!/usr/bin/env bash
# Stops every Milvus server the project started (the test bed and any
# started by the local provisioner under the same root).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
root="${ZDM_MILVUS_ROOT:-$top/.cache/milvus}"
[ -d "$root/servers" ] || exit 0
py="${ZDM_VENV:-$top/.cache/venv}/bin/python"
"$py" "$top/scripts/milvus_server.py" stop-all --root "$root"
rm -f "$root/endpoints.env"
echo "milvus-down: stopped"
