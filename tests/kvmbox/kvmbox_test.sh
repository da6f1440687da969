#!/usr/bin/env bash
# Checks tools/kvmbox end to end: a real QEMU TCG box with nested KVM.
set -uo pipefail
box=$(readlink -f "$1")
export KVMBOX_FORCE=1
fails=0
expect() {  # $1 = description, $2 = condition result (0 = ok)
  if [[ $2 -eq 0 ]]; then echo "ok   - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi
}

work=$(mktemp -d "$FRAKTI_BUILD_DIR/kvmbox-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# A host whose /dev/kvm is PVM's (module kvm_pvm) gets the box too; /dev/null stands in for a
# /dev/kvm that the tests below must not use.
mkdir -p "$work/sys-pvm/module/kvm_pvm" "$work/sys-plain/module/kvm"
KVMBOX_FORCE= KVMBOX_DEV_KVM=/dev/null KVMBOX_SYSFS=$work/sys-plain "$box" -- sh -c 'echo here' \
  >"$work/out0" 2>"$work/err0"
expect "a host with a usable /dev/kvm runs the command itself" \
  $(grep -qx here "$work/out0" && grep -q 'running on this host' "$work/err0"; echo $?)

export KVMBOX_TEST_VALUE="a b'c"
KVMBOX_FORCE= KVMBOX_DEV_KVM=/dev/null KVMBOX_SYSFS=$work/sys-pvm "$box" -- sh -c '
  test -c /dev/kvm && echo "kvm: yes" || echo "kvm: no"
  echo "cwd: $(pwd)"
  echo "env: $KVMBOX_TEST_VALUE"
  echo "to stderr" >&2
  echo written-inside > marker
  exit 7' >"$work/out" 2>"$work/err"
rc=$?
expect "exit code of the command comes back (got $rc)" $([[ $rc -eq 7 ]]; echo $?)
expect "/dev/kvm exists inside the box" $(grep -qx 'kvm: yes' "$work/out"; echo $?)
expect "working directory is preserved" $(grep -qx "cwd: $work" "$work/out"; echo $?)
expect "environment is passed through" $(grep -qxF "env: $KVMBOX_TEST_VALUE" "$work/out"; echo $?)
expect "stderr is kept apart from stdout" \
  $(grep -qx 'to stderr' "$work/err" && ! grep -q 'to stderr' "$work/out"; echo $?)
expect "the box says where the command ran" $(grep -q 'kvmbox: running in the KVM test box' "$work/err"; echo $?)
expect "the box says why the host's PVM /dev/kvm was not used" \
  $(grep -q "not using this host's /dev/kvm: .*kvm_pvm" "$work/err"; echo $?)
expect "the build directory is writable inside" $(grep -qx written-inside "$work/marker"; echo $?)

KVMBOX_TIMEOUT=45 "$box" -- sh -c 'sleep 600' >/dev/null 2>"$work/err2"
rc=$?
expect "a hung command is killed at KVMBOX_TIMEOUT with exit 124 (got $rc)" $([[ $rc -eq 124 ]]; echo $?)
expect "the timeout is explained" $(grep -q 'timed out' "$work/err2"; echo $?)

"$box" -- sh -c 'echo c >/proc/sysrq-trigger; sleep 30' >/dev/null 2>"$work/err3"
rc=$?
expect "a crash of the box kernel ends in exit 125 (got $rc)" $([[ $rc -eq 125 ]]; echo $?)
expect "the crash is named as a box kernel panic" \
  $(grep -q "^kvmbox: error: the box's kernel panicked" "$work/err3"; echo $?)

# A stuck box kernel runs nothing, its heartbeat included; killing the heartbeat plays one.
KVMBOX_STALL=30 KVMBOX_TIMEOUT=300 "$box" -- sh -c 'echo one line; kill -9 $(cat /run/kvmbox-heartbeat.pid); sleep 600' \
  >/dev/null 2>"$work/err4"
rc=$?
expect "a box without heartbeat or output past KVMBOX_STALL is stopped with exit 125 (got $rc)" \
  $([[ $rc -eq 125 ]]; echo $?)
expect "the stall is named" $(grep -q "^kvmbox: error: the box stalled" "$work/err4"; echo $?)

# A quiet command in a live box is not a stall: the heartbeat keeps it going.
KVMBOX_STALL=30 KVMBOX_TIMEOUT=300 "$box" -- sh -c 'sleep 50; echo done' >"$work/out5" 2>"$work/err5"
rc=$?
expect "a command quiet for longer than KVMBOX_STALL in a live box runs to its end (got $rc)" \
  $([[ $rc -eq 0 ]] && grep -qx done "$work/out5"; echo $?)

echo "kvmbox: $((16 - fails)) passed, $fails failed"
[[ $fails -eq 0 ]]
