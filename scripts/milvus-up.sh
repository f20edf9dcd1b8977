#!/usr/bin/env bash
# Starts the two Milvus servers of the test bed (source and target) on
# 127.0.0.1 and writes their endpoints to .cache/milvus/endpoints.env.
# Ports: ZDM_MILVUS_SOURCE_PORT (19530) and ZDM_MILVUS_TARGET_PORT (19560);
# each server uses 12 ports from there (see scripts/milvus_server.py).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=$("$top/scripts/milvus-env.sh")
root="${ZDM_MILVUS_ROOT:-$top/.cache/milvus}"
src_port="${ZDM_MILVUS_SOURCE_PORT:-19530}"
dst_port="${ZDM_MILVUS_TARGET_PORT:-19560}"
mkdir -p "$root"
began=$(date +%s)
"$py" "$top/scripts/milvus_server.py" start source --base-port "$src_port" --root "$root" > "$root/source.endpoint" &
a=$!
"$py" "$top/scripts/milvus_server.py" start target --base-port "$dst_port" --root "$root" > "$root/target.endpoint" &
b=$!
rc=0
wait $a || rc=1
wait $b || rc=1
if [ $rc -ne 0 ]; then
  "$py" "$top/scripts/milvus_server.py" stop-all --root "$root"
  echo "milvus-up: a server did not start; logs are under $root/servers/*/logs" >&2
  exit 1
fi
cat > "$root/endpoints.env" <<ENV
ZDM_MILVUS_SOURCE=$(cat "$root/source.endpoint")
ZDM_MILVUS_TARGET=$(cat "$root/target.endpoint")
ZDM_MILVUS_PYTHON=$py
ENV
echo "milvus-up: source $(cat "$root/source.endpoint"), target $(cat "$root/target.endpoint") in $(( $(date +%s) - began ))s"
