#!/usr/bin/env bash
# Benchmark `chartreuse post-render` against its floor (`cat`) and against a kustomize
# post-renderer (SPEC §4), on generated Helm-rendered streams of 2,000, 5,000 and 20,000
# resources (scripts/gen-manifests.py, ~0.38 KB per resource).
#
#   bash scripts/bench-post-render.sh        (or: make bench-post-render)
#
# chartreuse runs two ways: "args", with --release and --namespace (what the wrappers pass:
# no chart document is read but those that may be a ChartreuseConfig), and "infer", without
# them (plain Helm 4, which reads every document's metadata). Reports, per size and tool,
# the median wall time and the peak RSS (GNU time %M), then the targets: "args" >= 100x
# faster than kustomize at 2,000 resources, within 5x of cat at 20,000, peak RSS <= 3 MB +
# 1.2x the input. With BENCH_BASELINE_BIN (an earlier build) the same run also times it, and
# "infer" must run no more instructions than it (callgrind: wall times on a shared machine
# vary more than the difference). It prints PASS/MISS and exits 0 either way:
# it is a report, not a test. With valgrind present it also prints callgrind's instruction
# counts at 2,000 resources, figures the machine's noise does not move.
#
# Wall times: hyperfine (shell mode, which subtracts the shell's start-up) if installed,
# otherwise a warm-up run and then repeated runs timed with $EPOCHREALTIME. kustomize is slow
# and quadratic, so it runs at 2,000 resources only (BENCH_KUSTOMIZE_SIZES adds 5000), a few
# times within a time budget. The whole run takes about 1-2 minutes on a 2-core machine.
#
# Environment knobs: CHARTREUSE_BIN, BENCH_BASELINE_BIN, KUBECTL, BENCH_RUNS (fast tools,
# default 15), BENCH_SLOW_RUNS (kustomize, default 3), BENCH_SLOW_BUDGET (seconds per
# kustomize size, default 45), BENCH_SLOW_TIMEOUT (seconds per kustomize run, default 150),
# BENCH_KUSTOMIZE_SIZES (default "2000"), BENCH_NO_HYPERFINE=1 (use the built-in loop even if
# hyperfine is installed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CHARTREUSE_BIN:-$repo/bin/chartreuse}
BASELINE=${BENCH_BASELINE_BIN:-}
KUBECTL=${KUBECTL:-$repo/.cache/helm/v3/kubectl}
PYTHON=/usr/bin/python3
GNU_TIME=${GNU_TIME:-/usr/bin/time}
RUNS=${BENCH_RUNS:-15}
SLOW_RUNS=${BENCH_SLOW_RUNS:-3}
SLOW_BUDGET=${BENCH_SLOW_BUDGET:-45}
SLOW_TIMEOUT=${BENCH_SLOW_TIMEOUT:-150}

die() { echo "bench-post-render: $*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------------------------
if ! [[ -x $GNU_TIME ]] || ! "$GNU_TIME" -f %M true >/dev/null 2>&1; then
    die "GNU time ($GNU_TIME) not found; install it with: apt-get install time"
fi
[[ -x $PYTHON ]] || die "$PYTHON not found; install it with: apt-get install python3"
[[ -x $BIN ]] || die "$BIN not found; build it with: make bin/chartreuse"
[[ -z $BASELINE || -x $BASELINE ]] || die "BENCH_BASELINE_BIN: $BASELINE is not executable"
have_kubectl=1
if [[ ! -x $KUBECTL ]]; then
    have_kubectl=0
    echo "bench-post-render: $KUBECTL not found (run: bash scripts/get-helm.sh);" \
         "the kustomize comparison is skipped" >&2
fi
# shellcheck source=scripts/bench-lib.sh
source "$repo/scripts/bench-lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chartreuse-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- helpers ---------------------------------------------------------------------------------
# peak_rss_kb <input> <cmd...>: peak RSS in KiB of one run (GNU time %M; for a wrapper
# script this is the largest process it waited for).
peak_rss_kb() {
    local in=$1; shift
    "$GNU_TIME" -f %M -o "$tmp/rss" "$@" <"$in" >/dev/null
    tail -n 1 "$tmp/rss"
}

# bench_fast <input> <cmd...>: sets R_MS (median wall ms), R_RUNS, R_RSS_KB.
bench_fast() {
    local in=$1; shift
    R_RSS_KB=$(peak_rss_kb "$in" "$@")          # also the warm-up run
    R_RUNS=$RUNS
    if ((use_hyperfine)); then
        local cmd q
        printf -v q '%q ' "$@"
        printf -v cmd '%s<%q >/dev/null' "$q" "$in"
        hyperfine --style none --shell bash --warmup 1 --runs "$RUNS" \
            --export-json "$tmp/hf.json" "$cmd" >/dev/null 2>&1 ||
            die "hyperfine failed on: $cmd"
        R_MS=$("$PYTHON" -c 'import json,sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.3f" % (r["median"] * 1000))' "$tmp/hf.json")
    else
        local i t0 t1
        : >"$tmp/times"
        for ((i = 0; i < RUNS; i++)); do
            # $EPOCHREALTIME without a subshell: nothing but the command is timed.
            t0=${EPOCHREALTIME//[!0-9]/}; "$@" <"$in" >/dev/null; t1=${EPOCHREALTIME//[!0-9]/}
            echo "$((t1 - t0))" >>"$tmp/times"
        done
        R_MS=$(awk '{ print $1 / 1000 }' "$tmp/times" | median)
    fi
}

# bench_slow <input> <cmd...>: up to SLOW_RUNS runs, each under GNU time, stopping when
# another run would overrun SLOW_BUDGET seconds; a run over SLOW_TIMEOUT is killed.
# Sets R_MS, R_RUNS, R_RSS_KB (max over runs), R_TIMEOUT (1 if a run was killed).
bench_slow() {
    local in=$1; shift
    local i t0 t1 us total=0 rss=0 r rc
    : >"$tmp/times"
    R_TIMEOUT=0
    for ((i = 0; i < SLOW_RUNS; i++)); do
        t0=${EPOCHREALTIME//[!0-9]/}
        rc=0
        "$GNU_TIME" -q -f %M -o "$tmp/rss" timeout "$SLOW_TIMEOUT" "$@" <"$in" >/dev/null \
            2>"$tmp/slow.err" || rc=$?
        if ((rc == 124)); then
            R_TIMEOUT=1
        elif ((rc != 0)); then
            die "failed (exit $rc): $* <$in: $(tail -n 3 "$tmp/slow.err")"
        fi
        t1=${EPOCHREALTIME//[!0-9]/}
        us=$((t1 - t0)); total=$((total + us))
        r=$(tail -n 1 "$tmp/rss")
        if ((r > rss)); then rss=$r; fi
        if ((R_TIMEOUT)); then echo "$us" >"$tmp/times"; i=$((i + 1)); break; fi
        echo "$us" >>"$tmp/times"
        # Mean so far predicts the next run; stop if it would overrun the budget.
        if ((total + total / (i + 1) > SLOW_BUDGET * 1000000)); then i=$((i + 1)); break; fi
    done
    R_RUNS=$i
    R_RSS_KB=$rss
    R_MS=$(awk '{ print $1 / 1000 }' "$tmp/times" | median)
}

# --- inputs ----------------------------------------------------------------------------------
SIZES=(2000 5000 20000)
KUSTOMIZE_SIZES=" ${BENCH_KUSTOMIZE_SIZES:-2000} "
declare -A IN_BYTES
for n in "${SIZES[@]}"; do
    "$PYTHON" "$repo/scripts/gen-manifests.py" "$n" >"$tmp/in-$n.yaml"
    IN_BYTES[$n]=$(stat -c %s "$tmp/in-$n.yaml")
    if ((have_kubectl)) && [[ $KUSTOMIZE_SIZES == *" $n "* ]]; then
        # kustomize rejects the ChartreuseConfig document (no metadata.name), and a real
        # kustomize post-renderer would not get one: its input is the stream without it.
        "$PYTHON" "$repo/scripts/gen-manifests.py" --no-config "$n" >"$tmp/in-$n-noconfig.yaml"
    fi
done

# Sanity: chartreuse must succeed, pass the resources through unchanged and append its Job,
# or the timings mean nothing.
ARGS=(--release=demo --namespace=demo)
"$PYTHON" "$repo/scripts/gen-manifests.py" --no-config 2000 >"$tmp/resources.yaml"
for args in "" "${ARGS[*]}"; do
    # shellcheck disable=SC2086 # $args: no argument, or the two
    "$BIN" post-render $args <"$tmp/in-2000.yaml" >"$tmp/out.yaml" 2>"$tmp/err" ||
        die "chartreuse post-render $args failed on the generated input: $(cat "$tmp/err")"
    cmp -s -n "$(stat -c %s "$tmp/resources.yaml")" "$tmp/resources.yaml" "$tmp/out.yaml" ||
        die "chartreuse output does not start with its input's resources unchanged"
    grep -q '^kind: Job$' "$tmp/out.yaml" || die "chartreuse output has no Job"
done
rm -f "$tmp/out.yaml" "$tmp/resources.yaml"

# The kustomize post-renderer: the usual wrapper script (copy stdin into a kustomize
# directory, then `kubectl kustomize` it), the directory listing all.yaml plus one Job.
if ((have_kubectl)); then
    mkdir -p "$tmp/kustomize"
    cat >"$tmp/kustomize/kustomization.yaml" <<'EOF'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - all.yaml
  - job.yaml
EOF
    cat >"$tmp/kustomize/job.yaml" <<'EOF'
apiVersion: batch/v1
kind: Job
metadata:
  name: demo-migrate
  namespace: demo
  labels:
    app.kubernetes.io/instance: demo
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: registry.example.com/app:1.0
          command: ["alembic", "upgrade", "head"]
EOF
    cat >"$tmp/kustomize-post-renderer.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
cat > "$tmp/kustomize/all.yaml"
exec "$KUBECTL" kustomize "$tmp/kustomize"
EOF
    chmod +x "$tmp/kustomize-post-renderer.sh"
    "$KUBECTL" version --client >/dev/null 2>&1 || true   # warm the binary into page cache
fi

# --- header ----------------------------------------------------------------------------------
echo "chartreuse post-render benchmark"
echo "  host:       $(uname -sr), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  chartreuse: $BIN ($("$BIN" version 2>/dev/null | head -n 1))"
echo "              args: post-render ${ARGS[*]}; infer: post-render"
if [[ -n $BASELINE ]]; then
    echo "  baseline:   $BASELINE ($("$BASELINE" version 2>/dev/null | head -n 1)), as base-args/base-infer"
fi
if ((have_kubectl)); then
    echo "  kustomize:  $KUBECTL kustomize ($("$KUBECTL" version --client 2>/dev/null |
        tr '\n' ' ' | sed 's/ *$//'))"
fi
slow=
if ((have_kubectl)); then
    slow=" (kustomize: up to $SLOW_RUNS runs within ${SLOW_BUDGET}s per size)"
fi
if ((use_hyperfine)); then
    echo "  timing:     hyperfine $(hyperfine --version | cut -d' ' -f2), median of $RUNS runs$slow"
else
    echo "  timing:     \$EPOCHREALTIME, median of $RUNS runs after a warm-up$slow"
fi
echo "  RSS:        GNU time %M; MB = 10^6 bytes"
echo

# --- measurements ----------------------------------------------------------------------------
declare -A MS RSS NRUNS NOTE
TOOLS=(args infer)
[[ -z $BASELINE ]] || TOOLS+=(base-args base-infer)
TOOLS+=(cat kustomize)
# tool_cmd <tool>: sets CMD to the command line of a fast tool.
tool_cmd() {
    case $1 in
        args) CMD=("$BIN" post-render "${ARGS[@]}") ;;
        infer) CMD=("$BIN" post-render) ;;
        base-args) CMD=("$BASELINE" post-render "${ARGS[@]}") ;;
        base-infer) CMD=("$BASELINE" post-render) ;;
        cat) CMD=(cat) ;;
    esac
}
for n in "${SIZES[@]}"; do
    in="$tmp/in-$n.yaml"
    for tool in "${TOOLS[@]}"; do
        [[ $tool != kustomize ]] || continue
        tool_cmd "$tool"
        bench_fast "$in" "${CMD[@]}"
        MS[$tool,$n]=$R_MS RSS[$tool,$n]=$R_RSS_KB NRUNS[$tool,$n]=$R_RUNS
    done
    if ((have_kubectl)) && [[ $KUSTOMIZE_SIZES == *" $n "* ]]; then
        bench_slow "$tmp/in-$n-noconfig.yaml" bash "$tmp/kustomize-post-renderer.sh"
        MS[kustomize,$n]=$R_MS RSS[kustomize,$n]=$R_RSS_KB NRUNS[kustomize,$n]=$R_RUNS
        if ((R_TIMEOUT)); then NOTE[kustomize,$n]="killed after ${SLOW_TIMEOUT}s"; fi
    fi
done
# Fixed cost: chartreuse on a minimal stream (one ConfigMap plus the config document).
"$PYTHON" "$repo/scripts/gen-manifests.py" 1 >"$tmp/in-1.yaml"
base_rss_kb=$(peak_rss_kb "$tmp/in-1.yaml" "$BIN" post-render "${ARGS[@]}")

mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }
kb_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }

printf '%-9s %9s  %-11s %4s %11s %13s\n' "input MB" resources tool runs "wall ms" "peak RSS MB"
printf '%-9s %9s  %-11s %4s %11s %13s\n' "--------" --------- ----------- ---- ------- -----------
for n in "${SIZES[@]}"; do
    for tool in "${TOOLS[@]}"; do
        [[ -n ${MS[$tool,$n]:-} ]] || continue
        printf '%-9s %9s  %-11s %4s %11.1f %13s%s\n' "$(mb "${IN_BYTES[$n]}")" "$n" "$tool" \
            "${NRUNS[$tool,$n]}" "${MS[$tool,$n]}" "$(kb_mb "${RSS[$tool,$n]}")" \
            "${NOTE[$tool,$n]:+  (${NOTE[$tool,$n]})}"
    done
done
if ((have_kubectl)); then
    echo "(kustomize's input is the same stream without the ChartreuseConfig document," \
         "which it rejects for lacking metadata.name)"
fi
echo

# --- targets ---------------------------------------------------------------------------------
verdict() { # verdict <value> <op> <limit> -> PASS/MISS
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "PASS" : "MISS" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
line() { printf '  %-66s %9s  %s\n' "$@"; }

echo "targets"
for n in 2000 5000; do
    [[ -n ${MS[kustomize,$n]:-} ]] || continue
    r=$(ratio "${MS[kustomize,$n]}" "${MS[args,$n]}")
    if ((n == 2000)); then
        line "speed-up of args vs kustomize at $n resources (target >= 100x)" "${r}x" \
            "$(verdict "$r" ">=" 100)"
    else
        line "speed-up of args vs kustomize at $n resources" "${r}x" "(info)"
    fi
done
if ((!have_kubectl)); then
    echo "  speed-up vs kustomize: not measured (no kubectl)"
fi
for tool in args infer; do
    for n in "${SIZES[@]}"; do
        r=$(ratio "${MS[$tool,$n]}" "${MS[cat,$n]}")
        if [[ $tool == args && $n == 20000 ]]; then
            line "time of $tool vs cat at $n resources (target <= 5x)" "${r}x" \
                "$(verdict "$r" "<=" 5)"
        else
            line "time of $tool vs cat at $n resources" "${r}x" "(info)"
        fi
    done
done
for tool in args infer; do
    for n in "${SIZES[@]}"; do
        limit_kb=$(awk -v b="${IN_BYTES[$n]}" 'BEGIN { printf "%d", (3e6 + 1.2 * b) / 1024 }')
        rss=$(kb_mb "${RSS[$tool,$n]}") limit=$(kb_mb "$limit_kb")
        if [[ $tool == args ]]; then
            line "peak RSS of $tool at $n resources (target <= 3 MB + 1.2x input = $limit MB)" \
                "$rss MB" "$(verdict "${RSS[$tool,$n]}" "<=" "$limit_kb")"
        else
            line "peak RSS of $tool at $n resources (3 MB + 1.2x input = $limit MB)" \
                "$rss MB" "(info)"
        fi
    done
done
if [[ -n $BASELINE ]]; then
    for tool in args infer; do
        for n in "${SIZES[@]}"; do
            r=$(ratio "${MS[$tool,$n]}" "${MS[base-$tool,$n]}")
            line "time of $tool vs the baseline's at $n resources" "${r}x" "(info)"
        done
    done
fi
printf '  %-66s %10s\n' "(chartreuse's fixed RSS, args on a one-resource stream)" \
    "$(kb_mb "$base_rss_kb") MB"

# --- callgrind -------------------------------------------------------------------------------
echo
# callgrind_ir <cmd...>: prints the instruction count of one run on the 2,000-resource input.
callgrind_ir() {
    if valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" \
            <"$tmp/in-2000.yaml" >/dev/null 2>"$tmp/cg.err"; then
        ir=$(sed -n 's/.*Collected : *\([0-9][0-9]*\).*/\1/p' "$tmp/cg.err" | tail -n 1)
        [[ -n $ir ]] || die "no 'Collected' line in callgrind's output"
        sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$ir"
    else
        echo "run failed: $(tail -n 3 "$tmp/cg.err")"
    fi
}
if command -v valgrind >/dev/null 2>&1; then
    declare -A IR
    for tool in "${TOOLS[@]}"; do
        [[ $tool != cat && $tool != kustomize ]] || continue
        tool_cmd "$tool"
        IR[$tool]=$(callgrind_ir "${CMD[@]}")
        printf 'callgrind: %-10s at 2000 resources: %15s instructions (Ir)\n' "$tool" \
            "${IR[$tool]}"
    done
    if [[ -n $BASELINE ]]; then
        r=$(ratio "${IR[infer]//,/}" "${IR[base-infer]//,/}")
        line "instructions of infer vs the baseline's at 2000 resources (target <= 1x)" \
            "${r}x" "$(verdict "$r" "<=" 1)"
    fi
else
    echo "callgrind: valgrind not installed (apt-get install valgrind); skipped"
fi
