#!/usr/bin/env bash
# bench/vmm/memory.sh — memory overhead of frakti-vmm (its RSS and PSS minus the guest RAM the
# guest touched) for 128 MiB and 1 GiB guests idling after boot, against QEMU `-M microvm`
# booting the same kernel and initrd in the same run. Firecracker's bar: under 5 MiB of
# overhead per VMM.
#
#   bench/vmm/memory.sh [N]                    (needs /dev/kvm; N runs per row, default 3)
#   tools/kvmbox -- bench/vmm/memory.sh [N]    (on a host without /dev/kvm)
#
# How guest memory is told apart from VMM memory: each VMM maps guest RAM as one anonymous
# mapping of exactly the guest's size (frakti-vmm: mmap per RAM region, below 3 GiB there is
# one; QEMU: its RAM block). From /proc/PID/smaps the script takes that mapping's Rss and Pss
# (= the guest pages the guest touched), and subtracts them from the totals in
# /proc/PID/smaps_rollup. What remains is the VMM's own memory: code, heap, stacks, device
# buffers, the kvm_run pages. Memory KVM keeps in the kernel (page tables, vCPU state) is in
# neither figure.
#
# The guest is the minimal initrd (<build>/guest/initrd.img) without frakti.poweroff: its
# /init prints "frakti-guest: ready" and then idles serving the console. The script waits for
# that line, lets the guest idle 2 s, reads smaps, then stops the VMM with SIGTERM (QEMU: SIGKILL).
#
# Reading the table (MiB): "overhead RSS/PSS" is the VMM's own memory, "guest touched" the
# guest RAM the guest has written to by then. PSS divides each shared page (libc and other
# shared libraries, the binary's code when several VMMs run) among the processes mapping it,
# so it is the fairer per-VM figure; RSS counts every resident page in full. Only touched
# pages count, so the binary's size on disk (debug info included) does not matter.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$top/bench/lib.sh"
build=${FRAKTI_BUILD_DIR:-$top/build}
n=${1:-${N:-3}}
vmm=$build/bin/frakti-vmm
vmlinux=$build/guest/vmlinux
bzimage=$build/guest/bzImage
initrd=$build/guest/initrd.img
for f in "$vmm" "$vmlinux" "$bzimage" "$initrd"; do
  [[ -r $f ]] || { echo "bench: $f is missing (build first)" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "bench: qemu-system-x86_64 is missing" >&2; exit 1; }
[[ -c /dev/kvm ]] || { echo "bench: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

work=$(mktemp -d /tmp/frakti-bench-mem.XXXXXX)
vm_pid=
cleanup() {
  if [[ -n $vm_pid ]]; then
    kill -KILL "$vm_pid" 2>/dev/null || true
    wait "$vm_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

base="console=ttyS0 reboot=k panic=1 pci=off nomodules quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check"

# measure NAME MIB: boots one VM of MIB MiB, waits for ready, appends kB figures to
# $work/NAME-MIB.{rss,pss,grss}: total RSS and PSS minus guest RAM, and guest RAM touched.
measure() {
  local name=$1 mib=$2 console=$work/console t
  : >"$console"
  case $name in
    frakti)
      "$vmm" --kernel "$vmlinux" --initrd "$initrd" --cpus 1 --memory "$mib" --cmdline "$base" \
        --console "file:$console" </dev/null >/dev/null 2>"$work/err" &
      ;;
    qemu)
      qemu-system-x86_64 -M microvm,x-option-roms=off,isa-serial=on,rtc=off -enable-kvm \
        -cpu host -smp 1 -m "$mib" -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$console" -kernel "$bzimage" -initrd "$initrd" \
        -append "${base/reboot=k/reboot=t}" </dev/null >/dev/null 2>"$work/err" &
      ;;
  esac
  vm_pid=$!
  for ((t = 0; t < 1200; t++)); do
    grep -q "frakti-guest: ready" "$console" && break
    kill -0 "$vm_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "frakti-guest: ready" "$console"; then
    echo "bench: $name $mib MiB: no ready line; console:" >&2
    tail -c 2000 "$console" >&2
    tail -20 "$work/err" >&2
    exit 1
  fi
  sleep 2
  # The guest RAM mapping(s): anonymous, exactly MIB MiB (QEMU may add up to 2 MiB of
  # alignment to its RAM block).
  local guest total
  guest=$(awk -v want=$((mib * 1024)) '
    /^[0-9a-f]+-[0-9a-f]+ / { anon = (NF < 6); size = 0; pick = 0; next }
    /^Size:/ { size = $2; pick = anon && size >= want && size <= want + 2048 }
    pick && /^Rss:/ { rss += $2 }
    pick && /^Pss:/ { pss += $2; found++ }
    END { printf "%d %d %d\n", rss, pss, found }' "/proc/$vm_pid/smaps")
  total=$(awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { printf "%d %d\n", r, p }' \
    "/proc/$vm_pid/smaps_rollup")
  local g_rss g_pss found t_rss t_pss
  read -r g_rss g_pss found <<<"$guest"
  read -r t_rss t_pss <<<"$total"
  if [[ $found != 1 ]]; then
    echo "bench: $name $mib MiB: expected one guest RAM mapping, found $found" >&2
    exit 1
  fi
  echo $((t_rss - g_rss)) >>"$work/$name-$mib.rss"
  echo $((t_pss - g_pss)) >>"$work/$name-$mib.pss"
  echo "$g_rss" >>"$work/$name-$mib.grss"
  echo "bench: $name $mib MiB: total RSS $t_rss kB PSS $t_pss kB, guest RSS $g_rss kB" >&2
  if [[ $name == frakti ]]; then kill -TERM "$vm_pid"; else kill -KILL "$vm_pid"; fi
  wait "$vm_pid" 2>/dev/null || true
  vm_pid=
}

sizes=(128 1024)
for _ in $(seq 1 "$n"); do
  for mib in "${sizes[@]}"; do
    measure frakti "$mib"
    measure qemu "$mib"
  done
done

where
echo "MiB; guest idle 2 s after its ready line; 1 vCPU; same kernel build and initrd"
header
for mib in "${sizes[@]}"; do
  row "frakti-vmm ${mib} MiB guest: overhead RSS" "$work/frakti-$mib.rss" 1024 MiB
  row "frakti-vmm ${mib} MiB guest: overhead PSS" "$work/frakti-$mib.pss" 1024 MiB
  row "frakti-vmm ${mib} MiB guest: guest touched" "$work/frakti-$mib.grss" 1024 MiB
  row "qemu microvm ${mib} MiB guest: overhead RSS" "$work/qemu-$mib.rss" 1024 MiB
  row "qemu microvm ${mib} MiB guest: overhead PSS" "$work/qemu-$mib.pss" 1024 MiB
  row "qemu microvm ${mib} MiB guest: guest touched" "$work/qemu-$mib.grss" 1024 MiB
done
for mib in "${sizes[@]}"; do
  echo "frakti / qemu overhead RSS, ${mib} MiB (medians): $(ratio "$work/frakti-$mib.rss" "$work/qemu-$mib.rss")"
done
echo "Firecracker's bar: 5 MiB overhead"
