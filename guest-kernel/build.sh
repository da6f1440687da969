#!/bin/bash
# Build (or fetch from cache) the frakti guest kernel.
#
# Usage: guest-kernel/build.sh OUTDIR
#
# Produces OUTDIR/vmlinux (uncompressed ELF, what frakti-vmm boots), OUTDIR/bzImage (for
# QEMU) and OUTDIR/config (the final kernel .config). The kernel comes from Debian's
# linux-source-6.1 package (/usr/src/linux-source-6.1.tar.xz): `make tinyconfig`, then
# guest-kernel/guest.config merged on top, then `make olddefconfig`; check-config.sh then
# checks every line of guest.config against the final .config and the build fails naming
# any option Kconfig dropped.
#
# Cache: ${FRAKTI_CACHE_DIR:-/var/cache/frakti}/guest-kernel/<key>/ holds vmlinux, bzImage,
# config and build.log. <key> = linux-source package version + sha256 of guest.config, this
# script and check-config.sh, so a kernel is rebuilt only when one of those changes. A build
# runs in a temp dir next to the cache and is renamed into place when complete, so a killed
# build never leaves a half entry; concurrent builds of the same key wait on a lock instead
# of racing. A failed build keeps its log as <cache>/guest-kernel/failed-<key>.log.
#
# Environment:
#   FRAKTI_CACHE_DIR     cache root (default /var/cache/frakti)
#   FRAKTI_KERNEL_JOBS   make -j value (default: nproc)
#   FRAKTI_KERNEL_SOURCE source tarball (default /usr/src/linux-source-6.1.tar.xz)
#
# Needs: linux-source-6.1 bc bison flex libelf-dev libssl-dev cpio xz-utils zstd gcc make.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
outdir=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/guest.config
source_tar=${FRAKTI_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
jobs=${FRAKTI_KERNEL_JOBS:-$(nproc)}
cache_root=${FRAKTI_CACHE_DIR:-/var/cache/frakti}/guest-kernel

die() { echo "guest-kernel: $*" >&2; exit 1; }

[[ -r $source_tar ]] || die "kernel source $source_tar missing: apt-get install linux-source-6.1"
pkg_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
  die "package linux-source-6.1 is not installed: apt-get install linux-source-6.1"
check_config=$here/check-config.sh
inputs_sha=$(cat "$fragment" "${BASH_SOURCE[0]}" "$check_config" | sha256sum | cut -c1-16)
key=$pkg_version-$inputs_sha
entry=$cache_root/$key

# Places vmlinux, bzImage and config from a cache entry into OUTDIR (atomically per file).
install_outputs() {
  mkdir -p "$outdir"
  local f
  for f in vmlinux bzImage config; do
    cp -f "$entry/$f" "$outdir/.$f.tmp.$$"
    mv -f "$outdir/.$f.tmp.$$" "$outdir/$f"
  done
}

build() {
  local tmp start log
  tmp=$(mktemp -d "$cache_root/.build-$key.XXXXXX")
  # Removes the temp tree however the build ends (the log is saved first on failure). The
  # trap runs after build() has returned, so it gets the path itself, not the local name.
  trap "rm -rf '$tmp'" EXIT
  trap 'exit 130' INT TERM
  log=$tmp/build.log
  start=$(date +%s)
  echo "guest-kernel: building $key with -j$jobs (log: $log)" >&2
  # A subshell outside any `if`, so errexit stays in force inside build_in.
  local rc=0
  set +e
  (set -e; build_in "$tmp") >"$log" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    cp -f "$log" "$cache_root/failed-$key.log" || true
    echo "guest-kernel: build failed; last lines of the log (full log: $cache_root/failed-$key.log):" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  local elapsed=$(($(date +%s) - start))
  echo "built in ${elapsed}s" >"$tmp/out/build-time"
  cp "$log" "$tmp/out/build.log"
  mv -T "$tmp/out" "$entry"
  echo "guest-kernel: built $key in ${elapsed}s" >&2
}

# The build proper; runs with its output going to the log.
build_in() {
  local tmp=$1 src=$1/linux
  set -x
  mkdir -p "$src" "$tmp/out"
  tar -xf "$source_tar" -C "$src" --strip-components=1
  cd "$src"
  # Reproducible build metadata (uname -v, /proc/version).
  export KBUILD_BUILD_USER=frakti KBUILD_BUILD_HOST=frakti
  export KBUILD_BUILD_TIMESTAMP="$pkg_version"
  make tinyconfig
  scripts/kconfig/merge_config.sh -m .config "$fragment"
  make olddefconfig
  "$check_config" "$fragment" .config
  make -j"$jobs" vmlinux bzImage
  strip --strip-debug -o "$tmp/out/vmlinux" vmlinux
  cp arch/x86/boot/bzImage "$tmp/out/bzImage"
  cp .config "$tmp/out/config"
}

mkdir -p "$cache_root"
if [[ -f $entry/vmlinux && -f $entry/bzImage ]]; then
  install_outputs
  echo "guest-kernel: cache hit $entry ($(cat "$entry/build-time" 2>/dev/null || echo '?')) -> $outdir" >&2
  exit 0
fi

exec 9>"$cache_root/.lock-$key"
flock 9
# Another build of the same key may have finished while this one waited for the lock.
if [[ ! -f $entry/vmlinux ]]; then
  # Holding the lock, any temp tree of this key is left over from a killed build.
  rm -rf "$cache_root/.build-$key".*
  build
else
  echo "guest-kernel: built concurrently by another run: $entry" >&2
fi
install_outputs
echo "guest-kernel: $entry -> $outdir (vmlinux, bzImage, config)" >&2
