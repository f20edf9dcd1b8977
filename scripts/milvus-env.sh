#!/usr/bin/env bash
# Creates the Python venv with the pinned Milvus server and client, once.
# Prints the venv's python. The venv lives under .cache (git-ignored).
# ZDM_VENV and ZDM_VENV_REQUIREMENTS make another venv from another pinned
# list (the clients test's newest pymilvus).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "${ZDM_MILVUS_IMPL:-milvus}" = lite ]; then
  venv="$top/.cache/venv-lite"
  req="$top/scripts/requirements-lite.txt"
else
  venv="${ZDM_VENV:-$top/.cache/venv}"
  req="${ZDM_VENV_REQUIREMENTS:-$top/scripts/requirements-milvus.txt}"
fi
stamp="$venv/.installed-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "milvus-env: installing what ${req#"$top"/} pins into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip<25" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
echo "$venv/bin/python"
