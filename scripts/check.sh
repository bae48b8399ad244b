#!/usr/bin/env bash
# Everything CI runs: the whole suite on the regular build, then again under
# AddressSanitizer+UndefinedBehaviorSanitizer, and under valgrind memcheck beside those two
# (a pass runs one chartreuse at a time, and valgrind's takes as long as the other two
# together: on two cores they share the machine), then the fuzz targets replayed over
# their corpora and past findings (each input one test), and with FUZZ_SECONDS set (CI sets
# 15) each fuzz target fuzzed that long (each target one test).
# Prints one closing line "N passed, N failed, N skipped" summed over the passes.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
passed=0 failed=0 skipped=0 broken=0

count() { # pass-name log-file exit-status
  local line p f s e
  line=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' "$2" | tail -n 1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || true)
  s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || true)
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' || true)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0}))
  skipped=$((skipped + ${s:-0}))
  if [ "$3" -ne 0 ] && [ "${f:-0}" -eq 0 ] && [ "${e:-0}" -eq 0 ]; then
    echo "check: the $1 pass exited $3 without a test failure"; broken=1
  fi
  echo "check: $1 pass: ${p:-0} passed, ${f:-0} failed, ${s:-0} skipped"
}

run_pass() { # name make-target
  echo "=== $1 ==="
  make --no-print-directory "$2" PYTEST_ARGS="${PYTEST_ARGS:-}" 2>&1 | tee "$log/$1"
  count "$1" "$log/$1" "${PIPESTATUS[0]}"
}

# Every build first: the passes then only run, and never build the same objects at once.
make --no-print-directory all asan helm >/dev/null || { echo "check: the build failed"; exit 1; }
make --no-print-directory valgrind PYTEST_ARGS="${PYTEST_ARGS:-}" >"$log/valgrind" 2>&1 &
valgrind_pid=$!
run_pass regular test
run_pass sanitizers test-asan
wait "$valgrind_pid"
valgrind_status=$?
echo "=== valgrind ==="
cat "$log/valgrind"
count valgrind "$log/valgrind" "$valgrind_status"
run_pass fuzz-regress fuzz-regress
if [ -n "${FUZZ_SECONDS:-}" ]; then
  run_pass fuzz fuzz
fi

echo
[ "$broken" -eq 0 ] || failed=$((failed + 1))
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
