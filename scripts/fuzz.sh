#!/usr/bin/env bash
# Fuzzes fedtrack's decoders with libFuzzer under ASan + UBSan (tests/fuzz/).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   build build-fuzz/, run each target (default 60 s, all)
#   scripts/fuzz.sh --build-only [TARGET...]           only configure and build
#   scripts/fuzz.sh --no-build [SECONDS] [TARGET...]   only run (targets built before)
#
# Targets: wire parameters state job_config dvc_file dvc_config journal_payload compression.
# Each run starts from a copy of tests/fuzz/corpus/<target>/ in a temporary
# folder (the repository is never written to) and prints one line per target:
# executions, executions per second, corpus growth, findings. A finding (a
# crash, a sanitizer report, a leak, a timeout, an exception other than
# fedtrack::Error, a broken round trip) prints its report and the path of the
# saved input under build-fuzz/findings/<target>/; reproduce it with
#   build-fuzz/tests/fuzz/fuzz_<target> build-fuzz/findings/<target>/crash-...
# Exit status: 0 no findings, 1 findings or a failed build, 77 when clang or
# its libFuzzer runtime is not installed (ctest reports the test as skipped).
# Environment: FEDTRACK_FUZZ_BUILD (build folder), FEDTRACK_FUZZ_TIMEOUT
# (seconds one input may take, default 30), FEDTRACK_FUZZ_SEED (libFuzzer's
# -seed: the test suite's bounded runs use a fixed one, so a run explores the
# same inputs every time; unset, each campaign explores new ones).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FEDTRACK_FUZZ_BUILD:-$ROOT/build-fuzz}"
CORPUS="$ROOT/tests/fuzz/corpus"
ALL_TARGETS=(wire parameters state job_config dvc_file dvc_config journal_payload compression)
PER_INPUT_TIMEOUT="${FEDTRACK_FUZZ_TIMEOUT:-30}"
SEED_ARGS=()
[ -n "${FEDTRACK_FUZZ_SEED:-}" ] && SEED_ARGS=(-seed="$FEDTRACK_FUZZ_SEED")

say() { echo "fuzz: $*"; }

build=1 run=1
case "${1:-}" in
  --build-only) build=1 run=0; shift ;;
  --no-build) build=0 run=1; shift ;;
esac
seconds=60
if [ "$run" = 1 ] && [[ "${1:-}" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
  if [[ ! " ${ALL_TARGETS[*]} " =~ " $t " ]]; then
    say "unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done

# clang with the libFuzzer and sanitizer runtimes (Debian 12: clang, libclang-rt-14-dev).
have_libfuzzer() {
  command -v clang++ >/dev/null 2>&1 || return 1
  local probe
  probe="$(mktemp -d)"
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1
  local ok=$?
  rm -rf "$probe"
  return $ok
}
if ! have_libfuzzer; then
  say "skipped: clang++ with libFuzzer is not installed (Debian 12: apt-get install clang libclang-rt-14-dev," \
      "or bash scripts/setup.sh --tests)"
  exit 77
fi

if [ "$build" = 1 ]; then
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
  say "building ${targets[*]} in $BUILD (clang, ASan + UBSan)"
  if ! CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DFEDTRACK_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
       >"$BUILD.configure.log" 2>&1; then
    cat "$BUILD.configure.log" >&2
    say "configure failed"
    exit 1
  fi
  rm -f "$BUILD.configure.log"
fi

# Targets this tree can build (tests/fuzz/CMakeLists.txt writes the list).
if [ ! -f "$BUILD/fuzz-targets.txt" ]; then
  say "$BUILD is not configured (run scripts/fuzz.sh --build-only)"
  exit 1
fi
available=()
for t in "${targets[@]}"; do
  if grep -qx "$t" "$BUILD/fuzz-targets.txt"; then
    available+=("$t")
  else
    why=$(grep "^$t:" "$BUILD/fuzz-skipped.txt" | head -1)
    say "${why:-$t: not defined in this tree}; skipped"
  fi
done
if [ ${#available[@]} -eq 0 ]; then exit 77; fi
targets=("${available[@]}")

if [ "$build" = 1 ]; then
  if ! cmake --build "$BUILD" --target "${targets[@]/#/fuzz_}"; then
    say "build failed"
    exit 1
  fi
fi
[ "$run" = 1 ] || exit 0

findings=0
summary=()
for t in "${targets[@]}"; do
  bin="$BUILD/tests/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    say "$t: $bin is not built (run scripts/fuzz.sh --build-only)"
    exit 1
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/fedtrack-fuzz-$t.XXXXXX")"
  mkdir -p "$work/corpus"
  cp -r "$CORPUS/$t/." "$work/corpus/"
  seeds=$(find "$work/corpus" -type f | wc -l)
  findings_dir="$BUILD/findings/$t"
  mkdir -p "$findings_dir"
  say "$t: ${seconds} s from $seeds seeds"
  "$bin" -max_total_time="$seconds" -timeout="$PER_INPUT_TIMEOUT" -error_exitcode=1 -print_final_stats=1 \
         "${SEED_ARGS[@]}" -artifact_prefix="$findings_dir/" "$work/corpus" >"$work/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -1)
  corpus=$(find "$work/corpus" -type f | wc -l)
  per_second=""
  [ -n "$execs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ] && per_second=" ($((execs / secs))/s)"
  if [ "$rc" -eq 0 ]; then
    line="$t: ${execs:-?} executions in ${secs:-?} s${per_second}, corpus $seeds -> $corpus inputs, no findings"
  else
    findings=$((findings + 1))
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -1)
    cp "$work/log" "$findings_dir/log.txt"
    line="$t: FINDING after ${execs:-?} executions (exit $rc); input ${input:-not saved}; log $findings_dir/log.txt"
    echo "----- $t: report -----"
    grep -a -E -A40 'CONTRACT VIOLATION|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR|ALARM|out-of-memory|deadly signal|uncaught' \
      "$work/log" | head -60
    echo "----- end of $t report -----"
  fi
  say "$line"
  summary+=("$line")
  rm -rf "$work"
done

echo "fuzz summary (${seconds} s per target, ASan + UBSan):"
for line in "${summary[@]}"; do echo "  $line"; done
[ "$findings" -eq 0 ] || exit 1
exit 0
