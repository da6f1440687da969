#!/usr/bin/env bash
# bench/image/run.sh — pull + unpack + filesystem image of a large image (built offline from
# files of installed Debian packages and pushed to a local docker-registry), against
# `skopeo copy` + `umoci unpack` of the same image in the same run; then erofs vs ext4 build
# time and size on the same tree. Needs root (file owners), docker-registry, skopeo, umoci,
# erofs-utils, e2fsprogs, and a built vmctl ($FRAKTI_BUILD_DIR/bin/vmctl).
#
#   bench/image/run.sh [DIR...]   (default DIRs: /usr/include /usr/lib/gcc /usr/share/locale)
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${FRAKTI_BUILD_DIR:-$top/build}
vmctl=$build/bin/vmctl
[[ -x $vmctl ]] || { echo "bench: $vmctl is missing (build first)" >&2; exit 1; }
dirs=("$@")
[[ ${#dirs[@]} -gt 0 ]] || dirs=(/usr/include /usr/lib/gcc /usr/share/locale)

work=$(mktemp -d /var/tmp/frakti-bench-image.XXXXXX)
reg_pid=
cleanup() {
  if [[ -n $reg_pid ]]; then
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1000000 }'; }

echo "bench: building the image from ${dirs[*]}" >&2
TAG=base "$top/tools/make-busybox-image" "$work/layout" 2>/dev/null
umoci unpack --image "$work/layout:base" "$work/b" >/dev/null
# One layer per directory, so the pull has several layers to fetch in parallel.
prev=base
i=0
for d in "${dirs[@]}"; do
  i=$((i + 1))
  mkdir -p "$work/b/rootfs$(dirname "$d")"
  cp -a "$d" "$work/b/rootfs$d"
  umoci repack --image "$work/layout:l$i" "$work/b" >/dev/null
  umoci unpack --image "$work/layout:l$i" "$work/b2" >/dev/null && rm -rf "$work/b" && mv "$work/b2" "$work/b"
  prev=l$i
done
rm -rf "$work/b"
tree_bytes=$(for d in "${dirs[@]}"; do du -sb "$d"; done | awk '{ s += $1 } END { print s }')

port=$(( 20000 + RANDOM % 20000 ))
cat > "$work/registry.yml" <<EOC
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$port
EOC
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
ref=127.0.0.1:$port/bench/big:1
skopeo copy --quiet --dest-tls-verify=false --format oci "oci:$work/layout:$prev" "docker://$ref"
blob_bytes=$(du -sb "$work/storage" | awk '{ print $1 }')
sync

echo "bench: frakti pull (+ unpack + erofs)" >&2
t0=$(now)
"$vmctl" --root "$work/frakti" --log-level info pull -q "$ref" >/dev/null 2>"$work/frakti.log"
t1=$(now)
frakti_total=$(secs "$t0" "$t1")
built=$(grep -o 'unpack [0-9]* ms ([0-9]* entries), mkfs [0-9]* ms' "$work/frakti.log" | tail -1)
f_unpack=$(echo "$built" | awk '{ print $2 }')
f_mkfs=$(echo "$built" | awk '{ print $7 }')
f_dl=$(grep -o 'downloaded in [0-9]* ms' "$work/frakti.log" | awk '{ print $3 }')
f_rm=$(grep -o 'unpack tree of [0-9a-f]* in [0-9]* ms' "$work/frakti.log" | awk '{ print $6 }')
fsimg=$(ls "$work/frakti/image/fs/"*.erofs)
erofs_via_frakti=$(stat -c %s "$fsimg")
rm -rf "$work/frakti"
sync

echo "bench: skopeo copy + umoci unpack" >&2
t0=$(now)
skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$work/sk:1"
t1=$(now)
umoci unpack --image "$work/sk:1" "$work/bundle" >/dev/null
t2=$(now)
sync
sk_copy=$(secs "$t0" "$t1")
sk_unpack=$(secs "$t1" "$t2")

echo "bench: erofs vs ext4 on the same tree" >&2
tree=$work/bundle/rootfs
t0=$(now)
mkfs.erofs --quiet -x1 "$work/img.erofs" "$tree"
t1=$(now)
inodes=$(find "$tree" | wc -l)
alloc=$(du -s --block-size=1 "$tree" | awk '{ print $1 }')
size_k=$(( (alloc + alloc / 10 + inodes * 256 + 16 * 1024 * 1024) / 1024 ))
mkfs.ext4 -q -F -O ^has_journal -m 0 -N $(( inodes + inodes / 5 )) -d "$tree" "$work/img.ext4" "${size_k}k"
t2=$(now)
erofs_s=$(secs "$t0" "$t1")
ext4_s=$(secs "$t1" "$t2")
erofs_b=$(stat -c %s "$work/img.erofs")
ext4_b=$(stat -c %s "$work/img.ext4")
ext4_used=$(du --block-size=1 "$work/img.ext4" | awk '{ print $1 }')

cat <<EOR
image: ${#dirs[@]} data layers + busybox base; tree $(mb "$tree_bytes") MB, $inodes entries; registry blobs $(mb "$blob_bytes") MB (gzip)
frakti  vmctl pull (download+verify+unpack+erofs)  total ${frakti_total} s
        download+verify ${f_dl} ms, unpack ${f_unpack} ms, mkfs.erofs ${f_mkfs} ms, remove tree ${f_rm} ms
skopeo  copy docker:// -> oci:                      ${sk_copy} s
umoci   unpack                                       ${sk_unpack} s
skopeo+umoci total (no filesystem image)             $(awk -v a="$sk_copy" -v b="$sk_unpack" 'BEGIN { printf "%.2f", a + b }') s
erofs   mkfs ${erofs_s} s, file $(mb "$erofs_b") MB (frakti's own: $(mb "$erofs_via_frakti") MB)
ext4    mkfs ${ext4_s} s, file $(mb "$ext4_b") MB apparent, $(mb "$ext4_used") MB allocated
EOR
