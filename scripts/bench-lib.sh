# Shared by the shell benchmarks (source it): the median of a list of numbers, and whether
# hyperfine is used for wall times (installed, and BENCH_NO_HYPERFINE is not 1).

median() { # median of the numbers on stdin
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

use_hyperfine=0
if [[ ${BENCH_NO_HYPERFINE:-0} != 1 ]] && command -v hyperfine >/dev/null 2>&1; then
    use_hyperfine=1
fi
