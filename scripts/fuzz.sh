#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz (built by `make fuzz-build` into build/fuzz).
#
#   scripts/fuzz.sh run SECONDS [TARGET...]   fuzz each target for SECONDS, starting from its
#                                             seed corpus and regressions; new inputs go to
#                                             build/fuzz/corpus/<target>, a crash to
#                                             build/fuzz/artifacts/<target>/
#   scripts/fuzz.sh regress [TARGET...]       run each target once over every file of
#                                             tests/fuzz/corpus/<target> and
#                                             tests/fuzz/regressions/<target>, no fuzzing
#
# A crash, a sanitizer report, a leak (ASan's leak detection is on), a timeout (10 s for one
# input) or more than 2 GB of memory fails the target. Each target counts as one test in
# `run` mode and each input file in `regress` mode; the last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
shift || true
if [ "$mode" = run ]; then
  seconds=${1:?usage: fuzz.sh run SECONDS [TARGET...]}
  shift
elif [ "$mode" != regress ]; then
  echo "usage: fuzz.sh run SECONDS [TARGET...] | fuzz.sh regress [TARGET...]" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=${f#tests/fuzz/fuzz_}; targets+=("${t%.c}"); done
fi

asan_options=${ASAN_OPTIONS:-detect_leaks=1}
# Function names in reports, and for tests/fuzz/lsan.supp to match (llvm-14, setup.sh).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
FUZZ_TMPDIR=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo /tmp )/chartreuse-fuzz.XXXXXX")
export FUZZ_TMPDIR
logs=$(mktemp -d)
trap 'rm -rf "$FUZZ_TMPDIR" "$logs"' EXIT
common=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
passed=0 failed=0 total_execs=0

for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "fuzz: $t: $bin is missing (make fuzz-build)"; failed=$((failed + 1)); continue
  fi
  seeds=tests/fuzz/corpus/$t regressions=tests/fuzz/regressions/$t
  log=$logs/$t.log
  # The targets that parse YAML with libfyaml: its one known leak (tests/fuzz/lsan.supp) is
  # recognised by a function deeper than the fast unwinder sees in Debian's build.
  case $t in
    post_render|config|kubeconfig)
      export ASAN_OPTIONS="$asan_options:fast_unwind_on_malloc=0:malloc_context_size=6"
      export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0" ;;
    *) export ASAN_OPTIONS="$asan_options"; unset LSAN_OPTIONS ;;
  esac
  if [ "$mode" = run ]; then
    work=build/fuzz/corpus/$t artifacts=build/fuzz/artifacts/$t
    mkdir -p "$work" "$artifacts"
    dirs=("$work" "$seeds")
    [ -d "$regressions" ] && dirs+=("$regressions")
    "$bin" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
      "${dirs[@]}" >"$log" 2>&1
    rc=$?
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" | tail -n 1)
    total_execs=$((total_execs + ${execs:-0}))
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
      echo "fuzz: $t: ${execs:-?} execs in ${seconds}s (${speed:-?} exec/s), $cov"
    else
      failed=$((failed + 1))
      echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} execs; the input is in $artifacts/:"
      grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written|.*runtime error)' "$log" | head -n 20
      tail -n 40 "$log" | sed 's/^/  | /'
    fi
  else
    files=()
    for d in "$seeds" "$regressions"; do
      [ -d "$d" ] && while IFS= read -r -d '' f; do files+=("$f"); done \
        < <(find "$d" -type f ! -name '.*' ! -name 'README*' -print0 | sort -z)
    done
    if [ ${#files[@]} -eq 0 ]; then
      echo "fuzz-regress: $t: no inputs"; failed=$((failed + 1)); continue
    fi
    if "$bin" "${common[@]}" "${files[@]}" >"$log" 2>&1; then
      passed=$((passed + ${#files[@]}))
      echo "fuzz-regress: $t: ${#files[@]} inputs ok"
    else
      # Once more, one input at a time, to name (and count) each failing one.
      for f in "${files[@]}"; do
        if "$bin" "${common[@]}" "$f" >"$log.one" 2>&1; then
          passed=$((passed + 1))
        else
          failed=$((failed + 1))
          echo "fuzz-regress: $t: FAILED on $f:"
          grep -E '^(==[0-9]+==ERROR|SUMMARY)|runtime error' "$log.one" | head -n 5 | sed 's/^/  | /'
        fi
      done
    fi
  fi
done

echo
[ "$mode" = run ] && echo "fuzz: $total_execs executions in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
