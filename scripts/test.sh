#!/usr/bin/env bash
# make test: every test, in three groups at once (or the groups named:
# scripts/test.sh unit).
#
#   unit    every package that needs no Milvus, in parallel
#   milvus  $BED_PKGS, one package at a time on the test bed
#   e2e     $E2E_BED_PKGS (./e2e/... and the short Milvus packages), one
#           package at a time on a second bed of its own
#
# The Milvus tests spend most of their time waiting on the servers (time
# ticks, loads, NATS elections, lease takeovers), not computing: run one
# after another they left the two cores idle most of the time. Each group
# writes to testout/make-test/GROUP.log, printed whole once it ends.
# Both beds are started first and stopped after, whatever the outcome.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
GO=${GO:-go}
out="$top/testout/make-test"
rm -rf "$out"
mkdir -p "$out"

# The second bed: its own data root and ports (12 from each base) clear
# of the first bed's (19530, 19560) and of the servers tests start on
# their own (19700, 19730, 19800, 19830, 19860, 19890).
e2e_bed=(ZDM_MILVUS_ROOT="$top/.cache/milvus-e2e" ZDM_MILVUS_SOURCE_PORT=19630 ZDM_MILVUS_TARGET_PORT=19660)
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(unit milvus e2e)
for group in "${groups[@]}"; do
  case $group in
    unit|milvus|e2e) ;;
    *) echo "scripts/test.sh: unknown group $group (unit, milvus or e2e)" >&2; exit 2 ;;
  esac
done
runs() { [[ " ${groups[*]} " == *" $1 "* ]]; }
down() {
  if runs milvus; then scripts/milvus-down.sh; fi
  if runs e2e; then env "${e2e_bed[@]}" scripts/milvus-down.sh; fi
}
trap down EXIT

# What each group needs is made ready side by side, and each group starts
# once its own is: the venv and both beds (pip, then the servers) in the
# background, Debian's packages and the Node.js SDK meanwhile (apt one at
# a time). The unit tests need no bed and so run while the beds come up.
read -r -a bed_pkgs <<< "${BED_PKGS:?BED_PKGS lists the packages that use the first test bed}"
read -r -a e2e_pkgs <<< "${E2E_BED_PKGS:?E2E_BED_PKGS lists the packages that use the second test bed}"
unit_pkgs=$($GO list ./... | grep -v -x -F "$($GO list "${bed_pkgs[@]}" "${e2e_pkgs[@]}")")
flags=(-race -count=1)
read -r -a extra <<< "${GOTESTFLAGS:-}"
flags+=("${extra[@]}")

beds() {
  runs milvus || runs e2e || return 0
  scripts/milvus-env.sh > /dev/null || return 1
  local a=0 b=0 rc=0
  if runs milvus; then scripts/milvus-up.sh & a=$!; fi
  if runs e2e; then env "${e2e_bed[@]}" scripts/milvus-up.sh & b=$!; fi
  [ $a -eq 0 ] || wait $a || rc=1
  [ $b -eq 0 ] || wait $b || rc=1
  return $rc
}
beds &
beds_up=$!

began=$(date +%s)
ZDM_CHROMIUM=$(scripts/chromium.sh) || exit 1
ZDM_HAPROXY=$(scripts/haproxy.sh) || exit 1
# The API fuzzer, for the API's test against its document.
fuzzer=$(ZDM_MILVUS_IMPL=milvus ZDM_VENV="$top/.cache/venv-schemathesis" \
  ZDM_VENV_REQUIREMENTS="$top/scripts/requirements-schemathesis.txt" scripts/milvus-env.sh) || exit 1
ZDM_SCHEMATHESIS=$(dirname "$fuzzer")/st
export ZDM_CHROMIUM ZDM_HAPROXY ZDM_SCHEMATHESIS
if runs unit; then
  # shellcheck disable=SC2086
  $GO test "${flags[@]}" -timeout 20m $unit_pkgs > "$out/unit.log" 2>&1 &
  unit=$!
fi
# The Node.js and Java SDKs and the newest pymilvus serve one end-to-end
# test only. The venv is made while the SDKs install; those two go one
# after the other, since each may call apt-get, which takes one lock.
if runs e2e; then
  sdks=$(mktemp -d)
  { scripts/node-sdk.sh > "$sdks/node" && scripts/java-sdk.sh > "$sdks/java"; } & sdk=$!
  ZDM_MILVUS_IMPL=milvus ZDM_VENV="$top/.cache/venv-pymilvus" ZDM_VENV_REQUIREMENTS="$top/e2e/testdata/pymilvus/requirements.txt" \
    scripts/milvus-env.sh > "$sdks/pymilvus" & venv=$!
  wait $sdk || exit 1
  wait $venv || exit 1
  ZDM_NODE_MODULES=$(cat "$sdks/node") ZDM_JAVA_CLASSPATH=$(cat "$sdks/java") ZDM_NEW_PYMILVUS=$(cat "$sdks/pymilvus")
  export ZDM_NODE_MODULES ZDM_JAVA_CLASSPATH ZDM_NEW_PYMILVUS
  rm -rf "$sdks"
fi
started=()
runs unit && started+=(unit)
bedless=
if ! wait $beds_up; then
  echo "scripts/test.sh: a test bed did not start; logs are under .cache/milvus*/servers/*/logs" >&2
  bedless=1
fi
if [ -z "$bedless" ] && runs milvus; then
  started+=(milvus)
  $GO test "${flags[@]}" -p 1 -timeout 30m "${bed_pkgs[@]}" > "$out/milvus.log" 2>&1 &
  milvus=$!
fi
if [ -z "$bedless" ] && runs e2e; then
  started+=(e2e)
  (
    set -a
    # shellcheck disable=SC1091
    . "$top/.cache/milvus-e2e/endpoints.env"
    set +a
    export ZDM_MILVUS_ROOT="$top/.cache/milvus-e2e"
    exec $GO test "${flags[@]}" -p 1 -timeout 30m "${e2e_pkgs[@]}"
  ) > "$out/e2e.log" 2>&1 &
  e2e=$!
fi

# A bed server that died mid-run fails every test after it with
# "connection refused"; its own log says why, and CI keeps no file.
obituary() {
  local root=$1 name pidf pid log
  for name in source target; do
    pidf="$root/servers/$name/milvus.pid"
    [ -f "$pidf" ] || continue
    # A dead server nobody reaps stays a zombie, which kill -0 still finds.
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$pid/status"; then continue; fi
    log="$root/servers/$name/logs/milvus-stderr.log"
    echo "=== the $name server of the bed under $root died during the run; the end of $log:"
    tail -n 60 "$log" 2>/dev/null | cut -c1-400
  done
}

status=${bedless:-0}
for group in "${started[@]}"; do
  wait "${!group}"
  rc=$?
  [ $rc -eq 0 ] || status=1
  echo "=== $group tests (exit $rc, $(( $(date +%s) - began ))s after the start)"
  cat "$out/$group.log"
  case $group in
    milvus) obituary "${ZDM_MILVUS_ROOT:-$top/.cache/milvus}" ;;
    e2e) obituary "$top/.cache/milvus-e2e" ;;
  esac
done
exit $status
