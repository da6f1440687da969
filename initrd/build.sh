#!/bin/bash
# Pack a guest initrd: a reproducible, compressed newc cpio archive.
#
# Usage: initrd/build.sh --init PATH --out FILE [--add SRC:DEST[:MODE]]... [--dir DEST]...
#                        [--compress gzip|zstd|none]
#
#   --init PATH        file packed as /init (mode 0755)
#   --add SRC:DEST     (SRC and DEST cannot contain ":") a file, symlink or directory tree from the host packed at DEST (a path
#                      inside the initrd; leading "/" optional). Files keep only their owner's
#                      execute bit (0755 or 0644) unless MODE (octal) is given; directories
#                      are 0755; symlinks are stored as symlinks.
#   --dir DEST         an extra empty directory (0755)
#   --compress         gzip (default, `gzip -n -9`), zstd (`zstd -19`) or none
#
# Every archive also holds /dev, /proc, /sys (0755) and the /dev/console character device
# (5:1, 0600), so the kernel can give init a console before devtmpfs is mounted. Parent
# directories of every entry are added automatically.
#
# Reproducible: entries are sorted by path (C locale), every mtime is SOURCE_DATE_EPOCH
# (default 0), uid/gid are 0, inode numbers count up from 1 in archive order, and the
# compressor stores no name or time. The archive is written by this script itself (no cpio
# needed, no root needed for the device node). The output is replaced atomically.
#
# Needs: bash, coreutils, findutils, gzip (or zstd).
set -euo pipefail

die() { echo "initrd/build.sh: $*" >&2; exit 1; }
usage() {
  sed -n '3,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

init= out= compress=gzip
adds=() dirs=()
while (($#)); do
  case $1 in
    --init) init=${2:?--init needs a path}; shift 2 ;;
    --out) out=${2:?--out needs a path}; shift 2 ;;
    --add) adds+=("${2:?--add needs SRC:DEST}"); shift 2 ;;
    --dir) dirs+=("${2:?--dir needs a path}"); shift 2 ;;
    --compress) compress=${2:?--compress needs gzip, zstd or none}; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n $init && -n $out ]] || usage
[[ -f $init ]] || die "--init $init: no such file"
case $compress in gzip | zstd | none) ;; *) die "--compress $compress: use gzip, zstd or none" ;; esac
mtime=${SOURCE_DATE_EPOCH:-0}
[[ $mtime =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH='$mtime' is not a number of seconds"

# Entries: path -> "type|mode|source" (type: dir, file, slink, nod; for nod source is "maj:min").
declare -A entries=()

# Returns DEST without leading/trailing slashes; refuses empty, "." and ".." components.
clean_dest() {
  local dest=$1 part
  dest=${dest#"${dest%%[!/]*}"}
  dest=${dest%"${dest##*[!/]}"}
  [[ -n $dest ]] || die "empty destination path in '$2'"
  IFS=/ read -ra parts <<<"$dest"
  for part in "${parts[@]}"; do
    [[ -n $part && $part != . && $part != .. ]] || die "bad destination '$dest' in '$2' (empty, . or .. component)"
  done
  [[ $dest != *$'\n'* ]] || die "destination in '$2' contains a newline"
  printf '%s' "$dest"
}

# Records an entry and its parent directories. Only a directory may be given twice.
add_entry() {
  local path=$1 spec=$2 parent=$1
  if [[ -n ${entries[$path]+x} ]]; then
    [[ ${entries[$path]%%|*} == dir && ${spec%%|*} == dir ]] || die "'$path' is given twice"
  fi
  entries[$path]=$spec
  while [[ $parent == */* ]]; do
    parent=${parent%/*}
    [[ -z ${entries[$parent]+x} ]] && entries[$parent]="dir|755|"
    [[ ${entries[$parent]%%|*} == dir ]] || die "'$parent' is both a directory and a file"
  done
}

# The mode a host file is packed with: only the owner's execute bit carries over.
file_mode() { if [[ -x $1 ]]; then echo 755; else echo 644; fi; }

add_path() {
  local src=$1 dest=$2 mode=$3 what=$4
  if [[ -L $src ]]; then
    add_entry "$dest" "slink|777|$(readlink "$src")"
  elif [[ -d $src ]]; then
    add_entry "$dest" "dir|${mode:-755}|"
    local child
    while IFS= read -r -d '' child; do
      add_path "$child" "$dest/${child##*/}" "" "$what"
    done < <(find "$src" -mindepth 1 -maxdepth 1 -print0)
  elif [[ -f $src ]]; then
    add_entry "$dest" "file|${mode:-$(file_mode "$src")}|$src"
  else
    die "'$src' in '$what' is not a regular file, directory or symlink"
  fi
}

add_entry dev "dir|755|"
add_entry proc "dir|755|"
add_entry sys "dir|755|"
add_entry dev/console "nod|600|5:1"
add_entry init "file|755|$init"
for d in "${dirs[@]}"; do add_entry "$(clean_dest "$d" "--dir $d")" "dir|755|"; done
for a in "${adds[@]}"; do
  IFS=: read -r src dest mode extra <<<"$a"
  [[ -n $src && -n $dest && -z $extra ]] || die "--add '$a': expected SRC:DEST[:MODE]"
  [[ -z $mode || $mode =~ ^[0-7]{3,4}$ ]] || die "--add '$a': MODE must be octal like 0755"
  [[ -e $src || -L $src ]] || die "--add '$a': $src does not exist"
  add_path "$src" "$(clean_dest "$dest" "--add $a")" "$mode" "--add $a"
done

# Writes one newc header plus the name, padded to 4 bytes.
# Args: ino mode(number, type bits included) nlink size rdevmajor rdevminor name
header() {
  local namesize=$((${#7} + 1)) pad
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$1" "$2" 0 0 "$3" "$mtime" "$4" 0 0 "$5" "$6" "$namesize" 0
  printf '%s\0' "$7"
  pad=$(((4 - (110 + namesize) % 4) % 4))
  ((pad == 0)) || head -c "$pad" /dev/zero
}

# Writes DATA padding after a body of the given size.
body_pad() {
  local pad=$(((4 - $1 % 4) % 4))
  ((pad == 0)) || head -c "$pad" /dev/zero
}

write_archive() {
  local ino=0 path type mode src size
  while IFS= read -r path; do
    IFS='|' read -r type mode src <<<"${entries[$path]}"
    ino=$((ino + 1))
    case $type in
      dir) header "$ino" $((8#040000 | 8#$mode)) 2 0 0 0 "$path" ;;
      nod) header "$ino" $((8#020000 | 8#$mode)) 1 0 "${src%%:*}" "${src##*:}" "$path" ;;
      slink)
        size=$(printf '%s' "$src" | wc -c)
        header "$ino" $((8#0120000 | 8#$mode)) 1 "$size" 0 0 "$path"
        printf '%s' "$src"
        body_pad "$size"
        ;;
      file)
        size=$(stat -L -c %s "$src")
        header "$ino" $((8#0100000 | 8#$mode)) 1 "$size" 0 0 "$path"
        cat "$src"
        body_pad "$size"
        ;;
    esac
  done < <(printf '%s\n' "${!entries[@]}" | LC_ALL=C sort)
  header 0 0 1 0 0 0 'TRAILER!!!'
}

mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT
case $compress in
  gzip) write_archive | gzip -n -9 >"$tmp" ;;
  zstd) write_archive | zstd -q -19 -c >"$tmp" ;;
  none) write_archive >"$tmp" ;;
esac
chmod 644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
