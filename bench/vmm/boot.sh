#!/usr/bin/env bash
# bench/vmm/boot.sh — boot time of frakti-vmm against QEMU `-M microvm` in the same run, with
# the same guest kernel and the minimal initrd (<build>/guest/initrd.img: its /init prints
# "frakti-guest: ready uptime=<s>" on the console, then powers off for frakti.poweroff=1).
# Both VMs get 1 vCPU and 256 MiB; they run N times (default 20) interleaved, after one
# untimed warm-up of each.
#
#   bench/vmm/boot.sh [N]                      (needs /dev/kvm)
#   tools/kvmbox -- bench/vmm/boot.sh [N]      (on a host without /dev/kvm)
#
# Reading the table (milliseconds):
#   "exec -> ready line": wall time from starting the VMM process to the readiness line
#       appearing on its console (read by this script through a pipe);
#   "exec -> VMM exit": wall time until the VMM process has exited (guest powered off);
#   "guest uptime at ready": the guest kernel's own clock when /init printed the line
#       (/proc/uptime), i.e. the part of the boot the guest kernel sees;
#   "boot timer (VMM)": frakti-vmm's boot-timer device (the log line "guest boot time: X ms",
#       from the VMM's start to /init's write to port 0x440); QEMU has no such device.
# The "frakti / qemu" lines are ratios of medians; inside the KVM test box every VM exit is
# emulated, so compare ratios, not absolute figures.
#
# The two VMMs boot differently, as each is meant to: frakti-vmm loads vmlinux (ELF) and
# enters it in 64-bit mode; QEMU microvm loads bzImage through its qboot firmware (this
# kernel has no PVH entry point, so QEMU cannot load the vmlinux directly). Command lines are
# identical except the reboot= method: frakti's default has reboot=k; QEMU microvm has no
# i8042, so its guest gets reboot=t (triple fault) and -no-reboot turns that reset into QEMU's
# exit (the kernel has no ACPI, so the initrd's power-off is a reset on QEMU).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$top/bench/lib.sh"
build=${FRAKTI_BUILD_DIR:-$top/build}
n=${1:-${N:-20}}
vmm=$build/bin/frakti-vmm
vmlinux=$build/guest/vmlinux
bzimage=$build/guest/bzImage
initrd=$build/guest/initrd.img
for f in "$vmm" "$vmlinux" "$bzimage" "$initrd"; do
  [[ -r $f ]] || { echo "bench: $f is missing (build first)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "bench: qemu-system-x86_64 is missing" >&2; exit 1; }
[[ -c /dev/kvm ]] || { echo "bench: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

work=$(mktemp -d /tmp/frakti-bench-boot.XXXXXX)
trap 'rm -rf "$work"' EXIT

mem=256
# A boot that hangs fails the benchmark after $limit s instead of stalling it.
limit=${BENCH_RUN_TIMEOUT:-120}
base="console=ttyS0 reboot=k panic=1 pci=off nomodules quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check frakti.poweroff=1"
frakti_cmd=("$vmm" --kernel "$vmlinux" --initrd "$initrd" --cpus 1 --memory "$mem"
  --cmdline "$base")
qemu_cmd=(qemu-system-x86_64 -M microvm,x-option-roms=off,isa-serial=on,rtc=off
  -enable-kvm -cpu host -smp 1 -m "$mem" -nodefaults -no-user-config -nographic -no-reboot
  -serial stdio -kernel "$bzimage" -initrd "$initrd" -append "${base/reboot=k/reboot=t}")

# boot NAME CMD...: runs one VM; appends exec->ready and exec->exit (µs) and the guest's
# uptime at ready (µs) to $work/NAME.{ready,exit,uptime}. The console is read line by line
# from a pipe; the moment the readiness line arrives is taken right after it is read.
boot() {
  local name=$1 t0 t_ready= t_exit line uptime= rc
  shift
  t0=$(now_us)
  coproc VM { exec timeout -k 5 "$limit" "$@" </dev/null 2>"$work/$name.err"; }
  local pid=$VM_PID fd
  # Bash drops VM[] once the coprocess is reaped, possibly before its output is read: keep
  # a descriptor of our own.
  exec {fd}<&"${VM[0]}"
  while IFS= read -r -u "$fd" line; do
    if [[ -z $t_ready && $line == *"frakti-guest: ready"* ]]; then
      t_ready=$(now_us)
      uptime=${line##*uptime=}
      uptime=${uptime%%[!0-9.]*}
    fi
  done
  exec {fd}<&-
  rc=0
  wait "$pid" || rc=$?
  t_exit=$(now_us)
  if [[ -z $t_ready || $rc != 0 ]]; then
    echo "bench: $name: exit status $rc, ready line seen: ${t_ready:+yes}${t_ready:-no}" >&2
    tail -20 "$work/$name.err" >&2
    exit 1
  fi
  echo $((t_ready - t0)) >>"$work/$name.ready"
  echo $((t_exit - t0)) >>"$work/$name.exit"
  awk -v u="$uptime" 'BEGIN { printf "%d\n", u * 1000000 }' >>"$work/$name.uptime"
  if [[ $name == frakti ]]; then
    # "guest boot time: 123.456 ms" -> µs
    sed -n 's/.*guest boot time: \([0-9]*\)\.\([0-9]*\) ms.*/\1\2/p' "$work/$name.err" |
      head -1 >>"$work/$name.timer"
  fi
  echo "bench: $name ready $(((t_ready - t0) / 1000)) ms, exit $(((t_exit - t0) / 1000)) ms" >&2
}

echo "bench: warm-up, then $n boots of each (interleaved)" >&2
boot warm-frakti "${frakti_cmd[@]}"
boot warm-qemu "${qemu_cmd[@]}"
for f in frakti qemu; do : >"$work/$f.ready"; : >"$work/$f.exit"; : >"$work/$f.uptime"; done
: >"$work/frakti.timer"
for _ in $(seq 1 "$n"); do
  boot frakti "${frakti_cmd[@]}"
  boot qemu "${qemu_cmd[@]}"
done

where
echo "times in ms; 1 vCPU, $mem MiB, same kernel build and initrd"
header
row "frakti-vmm: exec -> ready line" "$work/frakti.ready" 1000 ms
row "qemu microvm: exec -> ready line" "$work/qemu.ready" 1000 ms
row "frakti-vmm: exec -> VMM exit" "$work/frakti.exit" 1000 ms
row "qemu microvm: exec -> VMM exit" "$work/qemu.exit" 1000 ms
row "frakti-vmm: guest uptime at ready" "$work/frakti.uptime" 1000 ms
row "qemu microvm: guest uptime at ready" "$work/qemu.uptime" 1000 ms
row "frakti-vmm: boot timer (VMM log)" "$work/frakti.timer" 1000 ms
echo "frakti / qemu (medians): ready $(ratio "$work/frakti.ready" "$work/qemu.ready")," \
  "exit $(ratio "$work/frakti.exit" "$work/qemu.exit")," \
  "guest uptime $(ratio "$work/frakti.uptime" "$work/qemu.uptime")"
