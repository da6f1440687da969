# bench/lib.sh — helpers shared by the bench scripts (sourced, not run).
#
# Timing uses bash's $EPOCHREALTIME (microseconds, no fork), so the clock itself costs nothing
# measurable next to the things timed here.

# now_us: the wall clock in microseconds.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }

# stats FILE: "median min max n" of the numbers in FILE, one per line (median of an even count
# is the mean of the two middle values).
stats() {
  sort -g "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- - - 0"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%s %s %s %d\n", m, v[1], v[NR], NR }'
}

# row WHAT FILE SCALE UNIT: one table row; SCALE divides the raw numbers (1000 for µs -> ms).
row() {
  local what=$1 file=$2 scale=$3 unit=$4 m lo hi n s
  # No process substitution: the KVM test box has no /dev/fd.
  s=$(stats "$file")
  read -r m lo hi n <<<"$s"
  if [[ $n == 0 ]]; then
    printf '%-44s %10s %10s %10s %4s\n' "$what" - - - 0
    return
  fi
  awk -v w="$what" -v m="$m" -v lo="$lo" -v hi="$hi" -v n="$n" -v s="$scale" -v u="$unit" \
    'BEGIN { printf "%-44s %10.1f %10.1f %10.1f %4d  %s\n", w, m / s, lo / s, hi / s, n, u }'
}

# header: the table's column names.
header() { printf '%-44s %10s %10s %10s %4s\n' what median min max n; }

# ratio A_FILE B_FILE: median(A) / median(B), two decimals.
ratio() {
  local a b
  a=$(stats "$1" | cut -d' ' -f1)
  b=$(stats "$2" | cut -d' ' -f1)
  awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# where: one line saying where the figures were taken (host or the KVM test box under TCG).
where() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  if grep -q 'kvmbox.run=' /proc/cmdline 2>/dev/null; then
    echo "machine: KVM test box (QEMU TCG, nested KVM), $(nproc) CPUs, $cpu"
  else
    echo "machine: $(uname -n), $(nproc) CPUs, $cpu"
  fi
}
