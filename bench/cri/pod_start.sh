#!/usr/bin/env bash
# bench/cri/pod_start.sh — pod start through the CRI socket, as kubelet does it:
# RunPodSandbox -> CreateContainer -> StartContainer -> the container's process has written
# its first line, for an ordinary pod (a frakti-vmm micro-VM) against the same pod marked
# privileged (which frakti runs with runc), N times each (default 20), against one frakti
# daemon of this script's own. Pods are removed between runs, untimed.
#
#   bench/cri/pod_start.sh [N]                     (needs /dev/kvm and root)
#   tools/kvmbox -- bench/cri/pod_start.sh [N]     (on a host without /dev/kvm)
#
# Reading the table: milliseconds of wall clock per pod; "vm / runc" is the ratio of the
# medians. In the KVM test box every VM exit is emulated, so compare the ratio only.
# Needs: $FRAKTI_BUILD_DIR/bin/{frakti,frakti-shim,frakti-vmm,vmctl,frakti-bench-pod-start},
# the guest kernel and agent initrd, runc and conmon (for the runc pods).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$top/bench/lib.sh"
build=${FRAKTI_BUILD_DIR:-$top/build}
n=${1:-${N:-20}}
for p in frakti frakti-shim vmctl frakti-bench-pod-start; do
  [[ -x $build/bin/$p ]] || { echo "bench: $build/bin/$p is missing (build first)" >&2; exit 1; }
done
[[ -c /dev/kvm ]] || { echo "bench: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

work=$(mktemp -d /tmp/frakti-bench-cri.XXXXXX)
state=$(mktemp -d /tmp/fb-XXXXXX)  # short: VM socket paths live under it
daemon=
cleanup() {
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  pkill -9 -f "frakti-shim $state" 2>/dev/null || true
  rm -rf "$work" "$state"
}
trap cleanup EXIT

layout=/var/lib/frakti/bundled/busybox
if [[ ! -f $layout/index.json ]]; then
  layout=$work/busybox-layout
  "$top/tools/make-busybox-image" "$layout" >/dev/null 2>&1
fi
"$build/bin/vmctl" --root "$work/root" load --name busybox "$layout" >/dev/null

"$build/bin/frakti" --listen "$work/frakti.sock" --root-directory "$work/root" \
  --state-directory "$state" --boot-timeout 300 >"$work/frakti.log" 2>&1 &
daemon=$!
for _ in $(seq 300); do [[ -S $work/frakti.sock ]] && break; sleep 0.1; done
[[ -S $work/frakti.sock ]] || { echo "bench: frakti did not start:" >&2; cat "$work/frakti.log" >&2; exit 1; }

bench=$build/bin/frakti-bench-pod-start
# One untimed warm-up of each, then interleaved runs so drift hits both alike.
"$bench" "$work/frakti.sock" busybox vm 1 >/dev/null
runc_ok=1
"$bench" "$work/frakti.sock" busybox runc 1 >/dev/null 2>"$work/runc.err" || runc_ok=0
: >"$work/vm.ms"
: >"$work/runc.ms"
for _ in $(seq "$n"); do
  "$bench" "$work/frakti.sock" busybox vm 1 >>"$work/vm.ms"
  if ((runc_ok)); then "$bench" "$work/frakti.sock" busybox runc 1 >>"$work/runc.ms"; fi
done

header
row "vm pod: run + create + start -> running" "$work/vm.ms" 1 ms
if ((runc_ok)); then
  row "runc pod: run + create + start -> running" "$work/runc.ms" 1 ms
  echo "vm / runc: $(ratio "$work/vm.ms" "$work/runc.ms")"
else
  echo "runc pods failed, no peer figures: $(cat "$work/runc.err")"
fi
