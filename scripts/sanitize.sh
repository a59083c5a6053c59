#!/usr/bin/env bash
# Builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer in
# build-asan/ and runs them; any report fails the run.
#
#   scripts/sanitize.sh                      all unit tests (test_core and test_connectors build LibTorch code:
#                                            slow, ~15-25 min on 2 cores the first time)
#   scripts/sanitize.sh --torch-free         test_core_base test_tracking test_versioning (a few minutes)
#   scripts/sanitize.sh TEST_BINARY...       those binaries, e.g. test_core_base test_core
#
# Flags: -fsanitize=address,undefined -fno-sanitize-recover=undefined, so a
# UBSan report stops the binary like an ASan one; LeakSanitizer is on. Prints
# one line per binary (tests run, passed or the first sanitizer report) and a
# summary; exit 1 if any binary failed. FEDTRACK_ASAN_BUILD overrides the
# build folder; extra GoogleTest flags go in GTEST_FILTER etc. as usual.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FEDTRACK_ASAN_BUILD:-$ROOT/build-asan}"
ALL=(test_core_base test_tracking test_versioning test_connectors test_core)
TORCH_FREE=(test_core_base test_tracking test_versioning)

say() { echo "sanitize: $*"; }

case "${1:-}" in
  "") tests=("${ALL[@]}") ;;
  --torch-free) tests=("${TORCH_FREE[@]}") ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  *) tests=("$@") ;;
esac
for t in "${tests[@]}"; do
  if [[ ! " ${ALL[*]} " =~ " $t " ]]; then
    say "unknown test binary '$t' (known: ${ALL[*]})" >&2
    exit 2
  fi
done

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
say "building ${tests[*]} in $BUILD"
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
     -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
     -DFEDTRACK_BUILD_BENCH=OFF -DFEDTRACK_BUILD_EXAMPLES=OFF \
     -DFEDTRACK_VENV="${FEDTRACK_VENV:-$ROOT/.venv}" >/dev/null; then
  say "configure failed"
  exit 1
fi
if ! cmake --build "$BUILD" --target "${tests[@]}"; then
  say "build failed"
  exit 1
fi

# halt_on_error + -fno-sanitize-recover: the first report ends the binary
# with a non-zero status; the report is in its log.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
logs="$BUILD/sanitize-logs"
mkdir -p "$logs"
failed=0
summary=()
for t in "${tests[@]}"; do
  log="$logs/$t.log"
  say "running $t (log: $log)"
  start=$(date +%s)
  (cd "$BUILD/tests" && "./$t" --gtest_brief=1) >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran.*/\1/p' "$log" | tail -1)
  report=$(grep -a -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log")
  if [ "$rc" -eq 0 ] && [ -z "$report" ]; then
    line="$t: ${ran:-?} tests passed in ${secs} s, no sanitizer reports"
  else
    failed=$((failed + 1))
    line="$t: FAILED (exit $rc) after ${secs} s: ${report:-$(grep -a -m1 'FAILED' "$log")}"
    echo "----- $t -----"
    grep -a -E -A25 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|\[  FAILED  \]' "$log" | head -60
    echo "----- end of $t -----"
  fi
  say "$line"
  summary+=("$line")
done
echo "sanitize summary (ASan + UBSan, $BUILD):"
for line in "${summary[@]}"; do echo "  $line"; done
[ "$failed" -eq 0 ]
