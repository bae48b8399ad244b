#!/usr/bin/env bash
# Benchmark the "nothing to do" decision of `chartreuse migrate --dry-run` against
# `alembic current` (SPEC §4: 0.24 s at 500 revisions with a bare env.py), on linear Alembic
# histories of 50, 500 and 2,000 revisions (tests/alembic_projects.py big_linear).
#
#   bash scripts/bench-migrate.sh        (or: make bench-migrate)
#
# It starts a throwaway PostgreSQL (scripts/pg-local.sh), and for each size writes the
# project, creates a database and brings it to head once with `chartreuse migrate`, so that
# both tools then look at the same database and the same scripts at head. It reports the
# median wall time of each, the ratio, and the targets: >= 30x faster than `alembic current`
# at 500 revisions; cost grows at most linearly with the history (time(2000) <= 4 x
# time(500), and the marginal cost per revision from 500 to 2,000 no more than 1.5x the one
# from 50 to 500, by callgrind's instruction counts, which the machine's noise does not
# move). It prints PASS/MISS and exits 0 either way: it is a report, not a test.
#
# Wall times: hyperfine (-N, no shell) if installed, otherwise a warm-up run and then
# repeated runs timed with $EPOCHREALTIME. The whole run takes about 1 minute on 2 cores.
#
# Environment knobs: CHARTREUSE_BIN, ALEMBIC (default /usr/bin/alembic), BENCH_RUNS
# (chartreuse, default 20), BENCH_SLOW_RUNS (alembic current, default 7),
# BENCH_NO_HYPERFINE=1 (use the built-in loop even if hyperfine is installed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CHARTREUSE_BIN:-$repo/bin/chartreuse}
ALEMBIC=${ALEMBIC:-/usr/bin/alembic}
PYTHON=/usr/bin/python3
RUNS=${BENCH_RUNS:-20}
SLOW_RUNS=${BENCH_SLOW_RUNS:-7}
SIZES=(50 500 2000)

die() { echo "bench-migrate: $*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------------------------
[[ -x $PYTHON ]] || die "$PYTHON not found; install it with: apt-get install python3"
[[ -x $BIN ]] || die "$BIN not found; build it with: make bin/chartreuse"
[[ -x $ALEMBIC ]] || die "$ALEMBIC not found; install it with: apt-get install alembic"
"$PYTHON" -c 'import psycopg2' 2>/dev/null ||
    die "psycopg2 missing for $PYTHON; install it with: apt-get install python3-psycopg2"
command -v psql >/dev/null 2>&1 || die "psql not found; install it with: apt-get install postgresql"
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"

# --- temp dir and PostgreSQL, cleaned up on any exit ----------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chartreuse-bench-migrate.XXXXXX")
chmod 755 "$tmp"            # pg-local's data directory lives inside; postgres must traverse it
pg_started=0
cleanup() {
    if ((pg_started)); then bash "$repo/scripts/pg-local.sh" stop "$tmp/pg" || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_started=1                # stop is harmless if start failed half-way
port=$(bash "$repo/scripts/pg-local.sh" start "$tmp/pg") || die "could not start PostgreSQL"
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }

# --- helpers ---------------------------------------------------------------------------------
# bench <runs> <cmd...>: sets R_MS, the median wall time in ms (output discarded).
bench() {
    local runs=$1; shift
    if ((use_hyperfine)); then
        local cmd
        printf -v cmd '%q ' "$@"
        hyperfine -N --style none --warmup 1 --runs "$runs" \
            --export-json "$tmp/hf.json" "$cmd" >/dev/null 2>&1 ||
            die "hyperfine failed on: $cmd"
        R_MS=$("$PYTHON" -c 'import json,sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.3f" % (r["median"] * 1000))' "$tmp/hf.json")
    else
        local i t0 t1
        "$@" >/dev/null 2>&1 || true                # warm-up
        : >"$tmp/times"
        for ((i = 0; i < runs; i++)); do
            t0=${EPOCHREALTIME//[!0-9]/}; "$@" >/dev/null 2>&1; t1=${EPOCHREALTIME//[!0-9]/}
            echo "$((t1 - t0))" >>"$tmp/times"
        done
        R_MS=$(awk '{ print $1 / 1000 }' "$tmp/times" | median)
    fi
}

# callgrind_ir <cmd...>: prints the instruction count (Ir) of one run, empty on failure.
callgrind_ir() {
    if valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" >/dev/null 2>"$tmp/cg.err"
    then
        sed -n 's/.*Collected : *\([0-9][0-9]*\).*/\1/p' "$tmp/cg.err" | tail -n 1
    fi
}

commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }

# --- setup per size: project, database at head -----------------------------------------------
for n in "${SIZES[@]}"; do
    proj=$tmp/project-$n
    db=bench_$n
    url=postgresql://postgres@127.0.0.1:$port/$db
    "$PYTHON" - "$repo/tests" "$proj" "$n" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from alembic_projects import big_linear
big_linear(sys.argv[2], int(sys.argv[3]))
EOF
    # The project is generated: point its own ini at the database for `alembic current`
    # (chartreuse hands Alembic the URL itself and does not need this).
    sed -i "s|^sqlalchemy\.url = .*|sqlalchemy.url = $url|" "$proj/alembic.ini"
    psql_ -c "CREATE DATABASE $db"
    cat >"$tmp/cfg-$n.yaml" <<EOF
release: bench
stopPods: false
databases:
  - name: main
    url: $url
    alembicDirectory: $proj
EOF
    "$BIN" migrate --config "$tmp/cfg-$n.yaml" >"$tmp/migrate.out" 2>&1 ||
        die "chartreuse migrate failed on $n revisions: $(tail -n 5 "$tmp/migrate.out")"
    # Sanity: both tools must see the database at head, or the timings mean nothing.
    out=$("$BIN" migrate --config "$tmp/cfg-$n.yaml" --dry-run 2>/dev/null) ||
        die "chartreuse migrate --dry-run failed on $n revisions"
    [[ $out == "main: up to date, nothing to do" ]] ||
        die "expected 'nothing to do' at $n revisions, got: $out"
    head=$(printf '%012x' "$n")
    out=$("$ALEMBIC" -c "$proj/alembic.ini" current 2>/dev/null) ||
        die "alembic current failed on $n revisions"
    [[ $out == "$head (head)" ]] || die "alembic current at $n revisions says: $out"
done

# --- header ----------------------------------------------------------------------------------
echo "chartreuse migrate benchmark: the \"nothing to do\" decision, database at head"
echo "  host:       $(uname -sr), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  chartreuse: $BIN ($("$BIN" version 2>/dev/null | head -n 1)) migrate --config CFG --dry-run"
echo "  alembic:    $ALEMBIC ($("$ALEMBIC" --version 2>/dev/null)) -c PROJECT/alembic.ini current," \
     "bare env.py"
echo "  postgresql: $(psql_ -Atc 'SHOW server_version') on 127.0.0.1:$port (local, trust auth)"
if ((use_hyperfine)); then
    echo "  timing:     hyperfine $(hyperfine --version | cut -d' ' -f2) -N, median of" \
         "$RUNS runs (chartreuse) / $SLOW_RUNS runs (alembic) after a warm-up"
else
    echo "  timing:     \$EPOCHREALTIME, median of $RUNS runs (chartreuse) / $SLOW_RUNS runs" \
         "(alembic) after a warm-up"
fi
echo

# --- measurements ----------------------------------------------------------------------------
declare -A CR AL IR
for n in "${SIZES[@]}"; do
    bench "$RUNS" "$BIN" migrate --config "$tmp/cfg-$n.yaml" --dry-run
    CR[$n]=$R_MS
    bench "$SLOW_RUNS" "$ALEMBIC" -c "$tmp/project-$n/alembic.ini" current
    AL[$n]=$R_MS
done

printf '%9s %15s %19s %9s %18s\n' revisions "chartreuse ms" "alembic current ms" ratio \
    "chartreuse us/rev"
printf '%9s %15s %19s %9s %18s\n' --------- ------------- ------------------ ----- \
    -----------------
for n in "${SIZES[@]}"; do
    printf '%9s %15.2f %19.1f %8.1fx %18.2f\n' "$n" "${CR[$n]}" "${AL[$n]}" \
        "$(awk -v a="${AL[$n]}" -v c="${CR[$n]}" 'BEGIN { print a / c }')" \
        "$(awk -v c="${CR[$n]}" -v n="$n" 'BEGIN { print c * 1000 / n }')"
done
echo

# --- callgrind -------------------------------------------------------------------------------
have_ir=0
if command -v valgrind >/dev/null 2>&1; then
    have_ir=1
    for n in "${SIZES[@]}"; do
        IR[$n]=$(callgrind_ir "$BIN" migrate --config "$tmp/cfg-$n.yaml" --dry-run)
        if [[ -z ${IR[$n]} ]]; then
            have_ir=0
            echo "callgrind: run failed at $n revisions: $(tail -n 3 "$tmp/cg.err")"
        fi
    done
    if ((have_ir)); then
        echo "callgrind: chartreuse migrate --dry-run, instructions (Ir)"
        for n in "${SIZES[@]}"; do
            printf '  %5s revisions: %15s  (%s per revision)\n' "$n" "$(commas "${IR[$n]}")" \
                "$(commas "$((IR[$n] / n))")"
        done
    fi
else
    echo "callgrind: valgrind not installed (apt-get install valgrind); skipped"
fi
echo

# --- targets ---------------------------------------------------------------------------------
verdict() { # verdict <value> <op> <limit> -> PASS/MISS
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "PASS" : "MISS" }'
}
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }

echo "targets"
r=$(calc "${AL[500]} / ${CR[500]}")
printf '  %-66s %8sx  %s\n' "speed-up vs alembic current at 500 revisions (target >= 30x)" \
    "$r" "$(verdict "$r" ">=" 30)"
for n in 50 2000; do
    printf '  %-66s %8sx  %s\n' "speed-up vs alembic current at $n revisions" \
        "$(calc "${AL[$n]} / ${CR[$n]}")" "(info)"
done

# Linear growth. With t(n) = fixed + n x marginal, t(2000)/t(500) <= 4 whatever the fixed
# cost; superlinear growth shows as a marginal cost per revision that rises with n.
r=$(calc "${CR[2000]} / ${CR[500]}")
printf '  %-66s %8sx  %s\n' "wall time(2000) / time(500) (linear: <= 4x)" "$r" \
    "$(verdict "$r" "<=" 4)"
m1=$(calc "(${CR[500]} - ${CR[50]}) * 1000 / 450")
m2=$(calc "(${CR[2000]} - ${CR[500]}) * 1000 / 1500")
printf '  %-56s %19s  %s\n' "wall marginal cost per revision, 50->500 / 500->2000 (us)" \
    "$m1 / $m2" "(info: noisy)"
printf '  %-66s %9s  %s\n' "wall fixed cost (t(500) - 500 x marginal 500->2000, ms)" \
    "$(calc "${CR[500]} - 500 * $m2 / 1000")" "(info)"
if ((have_ir)); then
    r=$(calc "${IR[2000]} / ${IR[500]}")
    printf '  %-66s %8sx  %s\n' "callgrind Ir(2000) / Ir(500) (linear: <= 4x)" "$r" \
        "$(verdict "$r" "<=" 4)"
    i1=$(( (IR[500] - IR[50]) / 450 ))
    i2=$(( (IR[2000] - IR[500]) / 1500 ))
    r=$(calc "$i2 / $i1")
    printf '  %-56s %19s\n' "callgrind marginal Ir per revision, 50->500 / 500->2000" \
        "$(commas "$i1") / $(commas "$i2")"
    printf '  %-66s %8sx  %s\n' "  ratio 500->2000 over 50->500 (linear: ~1, target <= 1.5x)" \
        "$r" "$(verdict "$r" "<=" 1.5)"
    printf '  %-66s %9s  %s\n' "callgrind fixed cost (Ir(500) - 500 x marginal 500->2000)" \
        "$(commas "$((IR[500] - 500 * i2))")" "(info)"
fi
