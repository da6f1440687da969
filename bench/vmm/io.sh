#!/usr/bin/env bash
# bench/vmm/io.sh — I/O throughput seen from inside the guest:
#   1. virtio-blk sequential read and write: a busybox initrd made here runs `dd` against the
#      guest's /dev/vda (a raw file of SIZE MiB on the host, default 64) and times it with the
#      guest's own clock (/proc/uptime, 10 ms ticks). Peer: QEMU `-M microvm` with a
#      virtio-blk-device (virtio-mmio, like frakti-vmm's) on the same file, same kernel and
#      initrd, in the same run. Reads use iflag=direct (no guest page cache), writes
#      oflag=direct plus conv=fsync (so the flush reaches the host file). Both VMMs do
#      buffered I/O on the host file (frakti-vmm preadv/pwritev + fdatasync on flush; QEMU
#      cache=writeback, aio=threads).
#   2. stdio over vsock: `vmctl exec -i C wc -c` with SIZE MiB piped into its stdin, and
#      `vmctl exec C head -c SIZE_BYTES /dev/zero` piped into `wc -c` on the host, in one running
#      container: frakti-agent streams a process's stdio over virtio-vsock, so this is the
#      vsock path plus the agent's and vmctl's copying. The fixed cost of an exec is
#      measured with `vmctl exec C true` and subtracted. Peer: `runc run` of the same image
#      with the same commands (pipes, no VM), its fixed cost (`runc run … true`) subtracted
#      the same way. Runs whose time is within the base's noise give no figure (n shows it).
# Each figure is N runs (default 5), interleaved with its peer.
#
#   bench/vmm/io.sh [N] [SIZE_MIB]                  (needs /dev/kvm and root)
#   tools/kvmbox -- bench/vmm/io.sh [N] [SIZE_MIB]  (on a host without /dev/kvm)
#
# Reading the table: MiB/s, higher is better; the "frakti / peer" lines are ratios of
# medians. The guest clock ticks every 10 ms, so a transfer that takes under ~0.2 s (QEMU's
# reads and writes of 64 MiB in the box) is only known to about ±25%: raise SIZE_MIB for a
# finer figure. The drive file lives in /tmp (tmpfs inside the KVM test box), so host storage is
# not what is measured. In the box every VM exit is emulated, so absolute figures are far
# below real hardware; compare ratios. Not measured: raw vsock throughput without the agent
# (the guest has no vsock benchmarking tool), random I/O, and more than one queue.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=bench/lib.sh
source "$top/bench/lib.sh"
build=${FRAKTI_BUILD_DIR:-$top/build}
n=${1:-${N:-5}}
size=${2:-64}
vmm=$build/bin/frakti-vmm
vmctl=$build/bin/vmctl
vmlinux=$build/guest/vmlinux
bzimage=$build/guest/bzImage
for f in "$vmm" "$vmctl" "$vmlinux" "$bzimage"; do
  [[ -r $f ]] || { echo "bench: $f is missing (build first)" >&2; exit 1; }
done
for tool in qemu-system-x86_64 runc umoci; do
  command -v $tool >/dev/null || { echo "bench: $tool is missing (run tools/setup)" >&2; exit 1; }
done
busybox=$(command -v busybox || echo /bin/busybox)
[[ -x $busybox ]] || { echo "bench: busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
[[ -c /dev/kvm ]] || { echo "bench: no /dev/kvm (run under tools/kvmbox)" >&2; exit 1; }

# A VM or transfer that hangs fails the benchmark after $limit s instead of stalling it.
limit=${BENCH_RUN_TIMEOUT:-300}
work=$(mktemp -d /tmp/frakti-bench-io.XXXXXX)
runc_id=fbench-io-$$
container=
cleanup() {
  runc delete -f "$runc_id" >/dev/null 2>&1 || true
  if [[ -n $container ]]; then
    "${v[@]}" rm -f "$container" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# mibps BYTES MICROSECONDS
# (nothing when the time is not positive: a transfer lost in the noise of the subtracted base)
mibps() { awk -v b="$1" -v us="$2" 'BEGIN { if (us > 0) printf "%.1f\n", b / 1048576 / (us / 1e6) }'; }

# --- 1. virtio-blk ------------------------------------------------------------------------
cat >"$work/init" <<EOF
#!/bin/busybox sh
# PID 1 of the benchmark initrd: times dd on /dev/vda with the guest clock, then resets.
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
up() { /bin/busybox cut -d' ' -f1 /proc/uptime; }
t0=\$(up)
/bin/busybox dd if=/dev/vda of=/dev/null bs=1M count=$size iflag=direct 2>/dev/null
t1=\$(up)
/bin/busybox dd if=/dev/zero of=/dev/vda bs=1M count=$size oflag=direct conv=fsync 2>/dev/null
t2=\$(up)
echo "bench-io: read \$t0 \$t1 write \$t1 \$t2"
/bin/busybox reboot -f
EOF
# Packed with busybox cpio rather than initrd/build.sh, which needs /dev/fd (the box has none).
mkdir -p "$work/initrd/bin" "$work/initrd/dev" "$work/initrd/proc"
cp "$busybox" "$work/initrd/bin/busybox"
install -m 0755 "$work/init" "$work/initrd/init"
(cd "$work/initrd" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1 >"$work/io-initrd.img")
truncate -s "${size}M" "$work/disk.img"

base="console=ttyS0 reboot=k panic=1 pci=off nomodules quiet i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd tsc=reliable no_timer_check"
# blk NAME: one VM; appends guest-clock read and write times (µs) to $work/NAME.{read,write}.
blk() {
  local name=$1 line rc=0
  case $name in
    frakti)
      timeout -k 5 "$limit" "$vmm" --kernel "$vmlinux" --initrd "$work/io-initrd.img" --cpus 1 --memory 256 \
        --cmdline "$base" --drive "path=$work/disk.img" </dev/null >"$work/console" \
        2>"$work/err" || rc=$?
      [[ $rc == 2 ]] || { echo "bench: frakti-vmm exit $rc (want 2, the guest's reset)" >&2; cat "$work/err" >&2; exit 1; }
      ;;
    qemu)
      timeout -k 5 "$limit" qemu-system-x86_64 -M microvm,x-option-roms=off,isa-serial=on,rtc=off \
        -enable-kvm -cpu host -smp 1 -m 256 -nodefaults -no-user-config -display none -no-reboot \
        -serial stdio -kernel "$bzimage" -initrd "$work/io-initrd.img" \
        -drive "id=d0,file=$work/disk.img,format=raw,if=none,cache=writeback,aio=threads" \
        -device virtio-blk-device,drive=d0 \
        -append "${base/reboot=k/reboot=t}" </dev/null >"$work/console" 2>"$work/err" || rc=$?
      [[ $rc == 0 ]] || { echo "bench: qemu exit $rc" >&2; cat "$work/err" >&2; exit 1; }
      ;;
  esac
  line=$(grep -a "bench-io: read" "$work/console" | tr -d '\r' | tail -1)
  [[ -n $line ]] || { echo "bench: $name: no result line; console:" >&2; tail -c 2000 "$work/console" >&2; exit 1; }
  # "bench-io: read T0 T1 write T1 T2" (seconds)
  set -- $line
  awk -v a="$3" -v b="$4" 'BEGIN { printf "%d\n", (b - a) * 1e6 }' >>"$work/$name.read"
  awk -v a="$6" -v b="$7" 'BEGIN { printf "%d\n", (b - a) * 1e6 }' >>"$work/$name.write"
  echo "bench: $name blk: $line" >&2
}

echo "bench: virtio-blk, $n runs of each, $size MiB" >&2
for _ in $(seq 1 "$n"); do
  blk frakti
  blk qemu
done
for name in frakti qemu; do
  for op in read write; do
    while read -r us; do mibps $((size * 1048576)) "$us"; done <"$work/$name.$op" >"$work/$name.$op.mibps"
  done
done

# --- 2. stdio over vsock (vmctl exec) against runc run ------------------------------------
layout=/var/lib/frakti/bundled/busybox
if [[ ! -f $layout/index.json ]]; then
  layout=$work/busybox-layout
  "$top/tools/make-busybox-image" "$layout" >/dev/null 2>&1
fi
tag=$(grep -o '"org.opencontainers.image.ref.name":"[^"]*"' "$layout/index.json" | head -1 | cut -d'"' -f4)
v=("$vmctl" --root "$work/root" --state "$work/state")
"${v[@]}" load --name busybox "$layout" >/dev/null
container=$("${v[@]}" run -d busybox sleep 1000000 </dev/null)
umoci unpack --image "$layout:${tag:-latest}" "$work/bundle" >/dev/null
bytes=$((size * 1048576))
# The runc peer: one bundle per command, all on the same unpacked root. (`runc exec` is not
# used: inside the KVM test box it ran the process outside the container's root file system.)
rm -f "$work/bundle/config.json"
(cd "$work/bundle" && runc spec)
for dir in base in out; do
  case $dir in
    base) args='"true"' ;;
    in) args='"wc", "-c"' ;;
    out) args="\"head\", \"-c\", \"$bytes\", \"/dev/zero\"" ;;
  esac
  mkdir -p "$work/rb-$dir"
  sed -e 's/"terminal": true/"terminal": false/' -e "s|^\([[:space:]]*\)\"sh\"\$|\1$args|" \
    -e "s|\"path\": \"rootfs\"|\"path\": \"$work/bundle/rootfs\"|" \
    "$work/bundle/config.json" >"$work/rb-$dir/config.json"
done

# xfer NAME DIR: one transfer of $bytes: `vmctl exec` in the running VM, or a `runc run` of
# the matching bundle; appends wall µs to $work/NAME.DIR. DIR: in (stdin), out (stdout) or
# base (`true`).
xfer() {
  local name=$1 dir=$2 t0 t1 got ex
  if [[ $name == vmctl ]]; then
    ex=("${v[@]}" exec)
    [[ $dir == in ]] && ex+=(-i)
    ex+=("$container")
    case $dir in base) ex+=(true) ;; in) ex+=(wc -c) ;; out) ex+=(head -c "$bytes" /dev/zero) ;; esac
  else
    ex=(runc run --bundle "$work/rb-$dir" "$runc_id")  # runc passes stdin through
  fi
  t0=$(now_us)
  case $dir in
    in) got=$(head -c "$bytes" /dev/zero | timeout -k 5 "$limit" "${ex[@]}") ;;
    out) got=$(timeout -k 5 "$limit" "${ex[@]}" </dev/null | wc -c) ;;
    base) timeout -k 5 "$limit" "${ex[@]}" </dev/null; got=$bytes ;;
  esac
  t1=$(now_us)
  got=${got//[[:space:]]/}
  if [[ $got != "$bytes" ]]; then
    echo "bench: $name $dir moved $got bytes, want $bytes; the VM's logs:" >&2
    find "$work/state" \( -name console.log -o -name vmm.log \) -exec tail -n 20 {} + >&2 || true
    exit 1
  fi
  echo $((t1 - t0)) >>"$work/$name.$dir"
  echo "bench: $name $dir $(((t1 - t0) / 1000)) ms" >&2
}

echo "bench: stdio over vsock, $n runs of each, $size MiB" >&2
for _ in $(seq 1 "$n"); do
  for name in vmctl runc; do
    for dir in base in out; do xfer $name $dir; done
  done
done
# Throughput of each run after taking away the median cost of an exec of `true`.
for name in vmctl runc; do
  b=$(stats "$work/$name.base" | cut -d' ' -f1)
  for dir in in out; do
    while read -r us; do
      mibps "$bytes" "$(awk -v u="$us" -v b="$b" 'BEGIN { printf "%d", u - b }')"
    done <"$work/$name.$dir" >"$work/$name.$dir.mibps"
  done
done

where
echo "MiB/s from inside the guest (higher is better); $size MiB per transfer"
header
row "virtio-blk seq read, frakti-vmm" "$work/frakti.read.mibps" 1 MiB/s
row "virtio-blk seq read, qemu microvm" "$work/qemu.read.mibps" 1 MiB/s
row "virtio-blk seq write+fsync, frakti-vmm" "$work/frakti.write.mibps" 1 MiB/s
row "virtio-blk seq write+fsync, qemu microvm" "$work/qemu.write.mibps" 1 MiB/s
row "stdin into container, vmctl exec (vsock)" "$work/vmctl.in.mibps" 1 MiB/s
row "stdin into container, runc run (pipe)" "$work/runc.in.mibps" 1 MiB/s
row "stdout from container, vmctl exec (vsock)" "$work/vmctl.out.mibps" 1 MiB/s
row "stdout from container, runc run (pipe)" "$work/runc.out.mibps" 1 MiB/s
row "exec of true, vmctl (subtracted above)" "$work/vmctl.base" 1000 ms
row "runc run true (subtracted above)" "$work/runc.base" 1000 ms
echo "frakti / qemu (medians): read $(ratio "$work/frakti.read.mibps" "$work/qemu.read.mibps")," \
  "write $(ratio "$work/frakti.write.mibps" "$work/qemu.write.mibps")"
echo "vmctl / runc (medians): stdin $(ratio "$work/vmctl.in.mibps" "$work/runc.in.mibps")," \
  "stdout $(ratio "$work/vmctl.out.mibps" "$work/runc.out.mibps")"
