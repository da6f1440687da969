#!/usr/bin/env bash
# vmctl end to end: every container below runs in its own real micro-VM (frakti-vmm, the
# guest kernel, frakti-agent as PID 1). Label kvm: inside tools/kvmbox on hosts without
# /dev/kvm. Uses a private --root and --state; the busybox image comes from the layout
# tools/setup bundles (or is built here with tools/make-busybox-image).
set -u
build=${FRAKTI_BUILD_DIR:?FRAKTI_BUILD_DIR must point at the build directory}
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
work=$(mktemp -d /tmp/vmctl-test.XXXXXX)
root=$work/root
state=$work/state
failures=0
checks=0
# Only stdio is ours: the daemons started below (tmux, detached containers) must not hold
# other descriptors of whoever runs this test (ctest waits for its pipes to close).
for fd in $(ls /proc/$$/fd); do
  ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
done

# `vmctl` below is the real binary with this test's root and state, also for sh -c and timeout.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec "%s" --root "%s" --state "%s" "$@"\n' "$build/bin/vmctl" "$root" "$state" >"$work/bin/vmctl"
chmod +x "$work/bin/vmctl"
export PATH=$work/bin:$PATH
cleanup() {
  pkill -KILL -f "vmctl --root $root" 2>/dev/null
  pkill -KILL -f "$work/bin/vmctl" 2>/dev/null
  pkill -KILL -f "$state/containers" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
# expect NAME WANT_RC WANT_STDOUT -- CMD...: runs CMD, compares exit code and stdout.
expect() {
  local name=$1 want_rc=$2 want_out=$3
  shift 4
  local out rc
  echo "...  $name" >&2
  out=$(timeout -k 5 240 "$@" 2>"$work/stderr")
  rc=$?
  if [[ $rc == "$want_rc" && $out == "$want_out" ]]; then
    pass "$name"
  else
    fail "$name: exit $rc (want $want_rc), stdout [$out] (want [$want_out]), stderr: $(tail -c 2000 "$work/stderr")"
  fi
}
# stderr_has NAME TEXT: the last expect's stderr contains TEXT.
stderr_has() {
  if grep -qF -- "$2" "$work/stderr"; then pass "$1"; else fail "$1: stderr lacks [$2]: $(tail -c 1500 "$work/stderr")"; fi
}
# How many frakti-vmm processes of this test still run (by name and by their socket path).
cat >"$work/bin/vmm-count" <<EOS
#!/bin/sh
for p in \$(pgrep -x frakti-vmm); do grep -qF "$state/" /proc/\$p/cmdline 2>/dev/null && echo \$p; done | wc -l
EOS
chmod +x "$work/bin/vmm-count"
vmm_count=(vmm-count)

# --- the image
layout=/var/lib/frakti/bundled/busybox
if [[ ! -f $layout/index.json ]]; then
  layout=$work/busybox-layout
  "$top/tools/make-busybox-image" "$layout" >/dev/null 2>&1 || { echo "FAIL cannot build the busybox image"; exit 1; }
fi
vmctl load --name busybox "$layout" >/dev/null || { echo "FAIL vmctl load"; exit 1; }

# --- exit codes and output
expect "echo hello" 0 "hello" -- vmctl run --rm busybox echo hello
expect "exit 7" 7 "" -- vmctl run --rm busybox sh -c 'exit 7'
expect "kill -9 is 137" 137 "" -- vmctl run --rm busybox sh -c 'kill -9 $$'
expect "stdin with -i" 0 "abc" -- sh -c "echo abc | vmctl run --rm -i busybox cat"
expect "no -i: stdin is empty" 0 "0" -- sh -c "echo abc | vmctl run --rm busybox wc -c"
expect "stderr kept apart" 0 "out" -- vmctl run --rm busybox sh -c 'echo out; echo err >&2'
stderr_has "stderr reaches stderr" "err"
expect "command not found is 127" 127 "" -- vmctl run --rm busybox /no/such/command
stderr_has "not-found message names the command" "/no/such/command"

# --- the container's configuration
expect "env from -e over the image" 0 "bar /usr/sbin:/usr/bin:/sbin:/bin" -- \
  vmctl run --rm -e FOO=bar busybox sh -c 'echo $FOO $PATH'
expect "user by uid" 0 "65534" -- vmctl run --rm -u 65534 busybox id -u
expect "user by name from /etc/passwd" 0 "65534 65534" -- vmctl run --rm -u nobody busybox sh -c 'echo $(id -u) $(id -g)'
expect "working dir" 0 "/tmp" -- vmctl run --rm -w /tmp busybox pwd
expect "hostname" 0 "box1" -- vmctl run --rm --hostname box1 busybox hostname
expect "read-only rootfs refuses writes" 1 "" -- vmctl run --rm --read-only busybox touch /x
stderr_has "read-only message" "Read-only file system"
expect "writable rootfs by default" 0 "x" -- vmctl run --rm busybox sh -c 'echo x > /x && cat /x'
expect "default capabilities (Docker's set)" 0 "CapEff:	00000000a80425fb" -- vmctl run --rm busybox grep CapEff /proc/self/status
expect "--cap-drop ALL" 0 "CapEff:	0000000000000000" -- vmctl run --rm --cap-drop ALL busybox grep CapEff /proc/self/status
expect "--cap-add NET_ADMIN" 0 "CapEff:	00000000a80435fb" -- vmctl run --rm --cap-add NET_ADMIN busybox grep CapEff /proc/self/status
expect "memory limit: OOM kill is 137" 137 "" -- vmctl run --rm --memory 32m busybox sh -c 'tail /dev/zero'
stderr_has "OOM reported" "OOMKilled"
expect "--cpus 1.5: a VM with 2 vCPUs" 0 "2" -- vmctl run --rm --cpus 1.5 busybox grep -c ^processor /proc/cpuinfo

# --- a terminal: typed input echoes, stty size follows a resize (under tmux)
if command -v tmux >/dev/null; then
  sock=$work/tmux.sock
  TERM=xterm tmux -S "$sock" new-session -d -x 100 -y 30 \
    "vmctl run --rm -it busybox sh; echo vmctl-exit-\$? > $work/tty-rc; sleep 30"
  # Waits up to 90 s for a line matching $1 on the screen.
  seen() {
    local end=$((SECONDS + 90))
    while ((SECONDS < end)); do
      tmux -S "$sock" capture-pane -p 2>&1 | grep -q -- "$1" && return 0
      sleep 0.3
    done
    return 1
  }
  if seen '/ #'; then
    tmux -S "$sock" send-keys 'echo typed-$((6*7))' Enter
    if seen 'typed-42'; then pass "tty: typed input runs"; else fail "tty: typed input: $(tmux -S "$sock" capture-pane -p)"; fi
    tmux -S "$sock" send-keys 'stty size' Enter
    size=$(tmux -S "$sock" display -p '#{pane_height} #{pane_width}')
    if seen "^$size\$"; then pass "tty: initial size ($size)"; else fail "tty: size $size: $(tmux -S "$sock" capture-pane -p)"; fi
    tmux -S "$sock" resize-window -x 120 -y 40 2>/dev/null || tmux -S "$sock" resize-pane -x 120 -y 40
    sleep 1
    tmux -S "$sock" send-keys 'clear; stty size' Enter
    size2=$(tmux -S "$sock" display -p '#{pane_height} #{pane_width}')
    if [[ $size2 != "$size" ]] && seen "^$size2\$"; then
      pass "tty: size follows a resize ($size2)"
    else
      fail "tty: resize to $size2: $(tmux -S "$sock" capture-pane -p)"
    fi
    tmux -S "$sock" send-keys 'exit 3' Enter
    for _ in $(seq 1 300); do [[ -s $work/tty-rc ]] && break; sleep 0.1; done
    if [[ $(cat "$work/tty-rc" 2>/dev/null) == vmctl-exit-3 ]]; then pass "tty: exit code"; else fail "tty: exit: $(cat "$work/tty-rc" 2>/dev/null)"; fi
  else
    fail "tty: no shell prompt: $(tmux -S "$sock" capture-pane -p)"
  fi
  tmux -S "$sock" kill-server 2>/dev/null
else
  echo "skip tty checks: tmux is not installed (tools/setup installs it)"
fi

# --- detached: run -d, exec, logs, ps, stop, rm, nothing left behind
expect "run -d prints an ID" 0 "" -- sh -c "vmctl run -d --name web busybox sh -c 'echo started; httpd -f -p 8080' | grep -Eq '^[0-9a-f]{64}$'"
expect "name conflict" 1 "" -- vmctl run -d --name web busybox true
stderr_has "conflict message" "already in use"
expect "exec writes a page" 0 "" -- vmctl exec web sh -c 'echo served-by-vm > /index.html'
expect "exec wget from httpd" 0 "served-by-vm" -- vmctl exec web wget -qO- 127.0.0.1:8080/index.html
expect "exec exit code" 5 "" -- vmctl exec web sh -c 'exit 5'
expect "exec -i" 0 "xyz" -- sh -c "echo xyz | vmctl exec -i web cat"
expect "ps lists web" 0 "web" -- sh -c "vmctl ps | awk 'NR>1 {print \$2}'"
expect "logs" 0 "started" -- vmctl logs web
expect "stop" 0 "web" -- vmctl stop -t 2 web
expect "ps -a shows it exited" 0 "1" -- sh -c "vmctl ps -a | grep -c 'web .*Exited'"
expect "exec on a stopped container fails" 1 "" -- vmctl exec web true
expect "rm" 0 "web" -- vmctl rm web
expect "nothing left: records" 0 "0" -- sh -c "ls '$state/containers' | wc -l"
expect "nothing left: VMMs" 0 "0" -- "${vmm_count[@]}"

# --- a killed vmctl: its VM dies with it, the next vmctl collects the record
vmctl run --name doomed busybox sleep 300 >/dev/null 2>&1 &
runner=$!
for _ in $(seq 1 600); do vmctl ps 2>/dev/null | grep -q doomed && break; sleep 0.1; done
kill -9 "$runner"
wait "$runner" 2>/dev/null
for _ in $(seq 1 100); do [[ $("${vmm_count[@]}") == 0 ]] && break; sleep 0.1; done
expect "VMM died with vmctl" 0 "0" -- "${vmm_count[@]}"
expect "leftover marked exited" 0 "1" -- sh -c "vmctl ps -a | grep -c 'doomed .*Exited'"
expect "rm the leftover" 0 "doomed" -- vmctl rm doomed

# --- SIGTERM to vmctl reaches the container
vmctl run --rm --name trapper busybox sh -c 'trap "exit 3" TERM; echo ready; while :; do sleep 1; done' >"$work/trap.out" 2>&1 &
runner=$!
for _ in $(seq 1 600); do grep -q ready "$work/trap.out" && break; sleep 0.1; done
kill -TERM "$runner"
for _ in $(seq 1 600); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$runner" 2>/dev/null
wait "$runner"
rc=$?
if [[ $rc == 3 ]]; then pass "SIGTERM forwarded"; else fail "SIGTERM forwarded: exit $rc: $(cat "$work/trap.out")"; fi

# --- Ctrl-C (SIGINT to vmctl) stops a plain `sleep`: the container init passes it on
vmctl run --rm busybox sh -c 'echo ready; exec sleep 300' >"$work/int.out" 2>&1 &
runner=$!
for _ in $(seq 1 600); do grep -q ready "$work/int.out" && break; sleep 0.1; done
kill -INT "$runner"
for _ in $(seq 1 600); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$runner" 2>/dev/null
wait "$runner"
rc=$?
if [[ $rc == 130 ]]; then pass "Ctrl-C stops sleep (130)"; else fail "Ctrl-C: exit $rc: $(cat "$work/int.out")"; fi

# --- Ctrl-C while the VM is still booting: the start is given up, nothing is left
vmctl run --rm --name early busybox sleep 300 >"$work/early.out" 2>&1 &
runner=$!
for _ in $(seq 1 600); do [[ $("${vmm_count[@]}") == 1 ]] && break; sleep 0.01; done
kill -INT "$runner"
for _ in $(seq 1 600); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$runner" 2>/dev/null
wait "$runner"
rc=$?
if [[ $rc == 130 ]]; then
  # The VM boots in seconds, so the signal lands before the start; a very fast machine may
  # already run `sleep`, which the forwarded signal stops with the same code.
  pass "Ctrl-C during boot (130): $(grep -c "interrupted by SIGINT" "$work/early.out") start(s) given up"
else
  fail "Ctrl-C during boot: exit $rc: $(cat "$work/early.out")"
fi
for _ in $(seq 1 100); do [[ $("${vmm_count[@]}") == 0 ]] && break; sleep 0.1; done
expect "Ctrl-C during boot: no VMM left" 0 "0" -- "${vmm_count[@]}"
expect "Ctrl-C during boot: no record left" 0 "0" -- sh -c "ls '$state/containers' | wc -l"

# --- bad input
expect "unknown option" 2 "" -- vmctl run --no-such-flag busybox true
expect "bad memory size" 2 "" -- vmctl run --memory lots busybox true
expect "unknown capability" 2 "" -- vmctl run --cap-add NOT_A_CAP busybox true
expect "no such container" 1 "" -- vmctl exec nothere true
expect "nothing left after the failures" 0 "0" -- sh -c "ls '$state/containers' | wc -l"

echo "vmctl: $((checks - failures)) of $checks checks passed"
((failures == 0))
