#!/usr/bin/env bash
# Starts the two Milvus servers of the test bed (source and target) on
# 127.0.0.1 and writes their endpoints to .cache/milvus/endpoints.env.
# Ports: ZDM_MILVUS_SOURCE_PORT (19530) and ZDM_MILVUS_TARGET_PORT (19560);
# each server uses 12 ports from there (see scripts/milvus_server.py).
# ZDM_MILVUS_IMPL=lite starts two milvus-lite servers instead (one port each).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=$("$top/scripts/milvus-env.sh")
root="${ZDM_MILVUS_ROOT:-$top/.cache/milvus}"
src_port="${ZDM_MILVUS_SOURCE_PORT:-19530}"
dst_port="${ZDM_MILVUS_TARGET_PORT:-19560}"
mkdir -p "$root"
began=$(date +%s)
if [ "${ZDM_MILVUS_IMPL:-milvus}" = lite ]; then
  for pair in "source:$src_port" "target:$dst_port"; do
    name=${pair%%:*}; port=${pair##*:}
    mkdir -p "$root/lite/$name"
    setsid "$(dirname "$py")/milvus-lite" server --data-dir "$root/lite/$name" --host 127.0.0.1 --port "$port" \
      > "$root/lite/$name.log" 2>&1 < /dev/null &
    echo $! > "$root/lite/$name.pid"
    echo "127.0.0.1:$port" > "$root/$name.endpoint"
  done
  for port in "$src_port" "$dst_port"; do
    for _ in $(seq 1 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  done
  printf 'ZDM_MILVUS_SOURCE=127.0.0.1:%s\nZDM_MILVUS_TARGET=127.0.0.1:%s\nZDM_MILVUS_PYTHON=%s\nZDM_MILVUS_IMPL=lite\n' "$src_port" "$dst_port" "$py" > "$root/endpoints.env"
  echo "milvus-up: milvus-lite source 127.0.0.1:$src_port, target 127.0.0.1:$dst_port"
  exit 0
fi
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
