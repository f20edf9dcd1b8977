#!/usr/bin/env bash
# make demo: a real migration between two local Milvus servers while a
# client keeps writing. Starts what it needs and leaves no process behind.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
go build -o bin/zdmd ./cmd/zdmd
go build -o bin/zdm-demo ./demo
cleanup() { scripts/milvus-down.sh >/dev/null 2>&1 || true; }
trap cleanup EXIT
scripts/milvus-up.sh
py=$(scripts/milvus-env.sh)
bin/zdm-demo --python "$py" --root "$top" "$@"
