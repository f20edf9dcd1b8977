#!/usr/bin/env bash
# Runs the data-plane benchmark part by part, each on a test bed started
# afresh: Milvus keeps the files and the write-ahead log of what a part
# wrote and dropped for minutes, and a bed that carries them reads slower,
# so a part run after others would not read as it does alone. Extra
# arguments go to every part.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
go=${GO:-go}
trap 'scripts/milvus-down.sh >/dev/null 2>&1 || true' EXIT
for part in many copy segcopy ratelimit sync "segcopy -rows 1000000" s3copy; do
  scripts/milvus-down.sh >/dev/null 2>&1 || true
  scripts/milvus-up.sh
  echo "== bench/dataplane -only $part (on a bed started afresh)"
  # shellcheck disable=SC2086
  "$go" run ./bench/dataplane -only $part "$@"
done
