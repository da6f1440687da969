#!/usr/bin/env bash
# bench/vmctl/run.sh — wall time of a whole container run in a micro-VM,
# `vmctl run --rm busybox true` (start frakti-vmm, boot the guest kernel, frakti-agent, create
# and start the container, wait for it, tear the VM down, remove the record), against
# `runc run` of the same busybox image in the same run (the peer: a plain namespaced container,
# no VM). Both run N times (default 20), interleaved one of each, after one untimed warm-up of
# each, so drift of a shared machine hits both alike.
#
#   bench/vmctl/run.sh [N]                     (needs /dev/kvm and root)
#   tools/kvmbox -- bench/vmctl/run.sh [N]     (on a host without /dev/kvm)
#
# Reading the table: times are milliseconds of wall clock per run, from just before the
# command starts to its exit (bash $EPOCHREALTIME, no fork). "vmctl / runc" is the ratio of
# the medians: what the VM costs on top of a container. Inside the KVM test box every VM exit
# is emulated (tens of µs each), so absolute VM times there are pessimistic; compare the ratio.
# Needs: $FRAKTI_BUILD_DIR/bin/vmctl (and frakti-vmm, the guest kernel and agent initrd it
# uses), runc, umoci.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$top/bench/lib.sh"
build=${FRAKTI_BUILD_DIR:-$top/build}
n=${1:-${N:-20}}
vmctl=$build/bin/vmctl
[[ -x $vmctl ]] || { echo "bench: $vmctl is missing (build first)" >&2; exit 1; }
for tool in runc umoci; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (run tools/setup)" >&2; exit 1; }
done
[[ -c /dev/kvm ]] || { echo "bench: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

work=$(mktemp -d /tmp/frakti-bench-vmctl.XXXXXX)
cleanup() {
  # runc containers are run in the foreground and deleted by --rm (see below); a leftover
  # from an interrupted run is removed by its own ID.
  for id in $(runc list -q 2>/dev/null | grep "^fbench-$$-" || true); do
    runc delete -f "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- the image: the layout tools/setup bundles, or one built here.
layout=/var/lib/frakti/bundled/busybox
if [[ ! -f $layout/index.json ]]; then
  layout=$work/busybox-layout
  "$top/tools/make-busybox-image" "$layout" >/dev/null 2>&1
fi
tag=$(grep -o '"org.opencontainers.image.ref.name":"[^"]*"' "$layout/index.json" | head -1 | cut -d'"' -f4)
tag=${tag:-latest}

v=("$vmctl" --root "$work/root" --state "$work/state")
"${v[@]}" load --name busybox "$layout" >/dev/null

# The runc bundle: the same image unpacked by umoci, with runc's default spec running `true`.
umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
rm -f "$work/bundle/config.json"
(cd "$work/bundle" && runc spec)
sed -i -e 's/"terminal": true/"terminal": false/' -e 's/^\([[:space:]]*\)"sh"$/\1"true"/' \
  "$work/bundle/config.json"
grep -q '"terminal": false' "$work/bundle/config.json" && grep -q '^[[:space:]]*"true"$' "$work/bundle/config.json" ||
  { echo "bench: runc spec's layout changed; cannot set terminal/args" >&2; exit 1; }

# A run that hangs fails the benchmark after $limit s instead of stalling it.
limit=${BENCH_RUN_TIMEOUT:-300}
run_vmctl() { timeout -k 5 "$limit" "${v[@]}" run --rm busybox true </dev/null >/dev/null 2>"$work/vmctl.err"; }
run_runc() { timeout -k 5 "$limit" runc run --bundle "$work/bundle" "fbench-$$-$1" </dev/null >/dev/null 2>"$work/runc.err"; }
# timed FILE CMD...: appends CMD's wall time in µs to FILE; a failure ends the benchmark.
timed() {
  local file=$1 t0 t1
  shift
  t0=$(now_us)
  local rc=0
  "$@" || rc=$?
  if [[ $rc != 0 ]]; then
    echo "bench: '$*' failed with status $rc (124: timed out after $limit s):" >&2
    tail -c 3000 "$work"/*.err >&2
    ps -eo pid,ppid,stat,etime,args >&2
    exit 1
  fi
  t1=$(now_us)
  echo $((t1 - t0)) >>"$file"
  echo "bench: $1 $(((t1 - t0) / 1000)) ms" >&2
}

echo "bench: warm-up, then $n runs of each (interleaved)" >&2
timed "$work/warm" run_vmctl
timed "$work/warm" run_runc warm
: >"$work/vmctl.us"
: >"$work/runc.us"
for i in $(seq 1 "$n"); do
  timed "$work/vmctl.us" run_vmctl
  timed "$work/runc.us" run_runc "$i"
done

where
echo "times in ms (wall clock per run, from start to exit)"
header
row "vmctl run --rm busybox true" "$work/vmctl.us" 1000 ms
row "runc run (same image, peer)" "$work/runc.us" 1000 ms
echo "vmctl / runc (medians): $(ratio "$work/vmctl.us" "$work/runc.us")"
