#!/usr/bin/env bash
# fuzz/smoke.sh SOURCE_DIR FUZZ_BUILD_DIR [SECONDS] — build the libFuzzer targets with clang
# and run each briefly (the ctest test fuzz_smoke; see fuzz/CMakeLists.txt).
#
# FUZZ_BUILD_DIR is a clang build of only common/, vmm/ and fuzz/ (-DFRAKTI_FUZZ_ONLY=ON),
# configured on the first run and reused (incrementally, by ninja) afterwards. Each target runs
# SECONDS (default 20, or $FRAKTI_FUZZ_SECONDS) on its corpus FUZZ_BUILD_DIR/corpus/<target>,
# which later runs continue from. Exits non-zero when a target crashes, leaks, exceeds the
# per-input time or memory limit, or when clang++ or libFuzzer's runtime is missing.
# $FRAKTI_FUZZ_CXX picks another clang++ (default: clang++ from PATH).
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 SOURCE_DIR FUZZ_BUILD_DIR [SECONDS]" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
build=$2
seconds=${3:-${FRAKTI_FUZZ_SECONDS:-20}}
targets=(queue_blk_fuzz vsock_fuzz)
cxx=${FRAKTI_FUZZ_CXX:-clang++}

fail() {
  echo "fuzz_smoke: FAILED: $*" >&2
  exit 1
}

# A missing toolchain is a broken setup, not a reason to skip: tools/setup installs both.
command -v "$cxx" >/dev/null ||
  fail "$cxx not found; install Debian's clang package (tools/setup does)"
mkdir -p "$build"
probe=$build/probe
mkdir -p "$probe"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
  >"$probe/probe.cpp"
if ! "$cxx" -fsanitize=fuzzer,address "$probe/probe.cpp" -o "$probe/probe" 2>"$probe/err"; then
  cat "$probe/err" >&2
  fail "$cxx cannot link -fsanitize=fuzzer,address (libFuzzer's runtime is missing);" \
    "install Debian's libclang-rt-14-dev (tools/setup does)"
fi

# As OSS-Fuzz builds: quick to compile, line numbers in stack traces, and asserts stay on.
cxxflags="-O1 -gline-tables-only"
# Configuring an existing build directory again takes a second and picks up changed options.
echo "fuzz_smoke: configuring a clang build of the fuzz targets in $build"
cmake -S "$src" -B "$build" -G Ninja -DFRAKTI_FUZZ_ONLY=ON -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="$cxxflags" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; fail "configuring $build (log above)"; }
# Only the fuzz targets: the FRAKTI_FUZZ_ONLY tree also defines the vmm libraries and frakti-vmm.
ninja -C "$build" "${targets[@]}" || fail "building the fuzz targets in $build"

status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  artifacts=$build/artifacts/$t
  log=$build/$t.log
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz_smoke: $t for ${seconds}s on $corpus ($(find "$corpus" -type f | wc -l) inputs)"
  # -timeout: one input taking longer is a hang; -rss_limit_mb: a memory blow-up.
  # Leaks are reported by LeakSanitizer (libFuzzer's -detect_leaks=1, the default).
  set +e
  "$build/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [[ $rc -ne 0 ]]; then
    tail -n 80 "$log" >&2
    echo "fuzz_smoke: $t FAILED (exit $rc); the input is in $artifacts, full log $log" >&2
    status=1
  elif [[ -z $runs || $runs -eq 0 ]]; then
    tail -n 40 "$log" >&2
    echo "fuzz_smoke: $t ran no inputs (full log $log)" >&2
    status=1
  else
    grep -E '^Done [0-9]+ runs' "$log" || true
    echo "fuzz_smoke: $t ok: $runs executions, corpus now $(find "$corpus" -type f | wc -l) inputs"
  fi
done
exit $status
