#!/usr/bin/env bash
# A against B: two builds of `model` benched alternately, N pairs, in one run, and the ratio of
# each pair. On a shared, noisy machine a single run of each moves by 10-20% with the
# neighbours' load; a pair run back to back sees nearly the same load, so the median of the
# pairs' ratios B/A is the figure to judge a change by (and its range says how far to trust it).
#
#   cp target/release/model /tmp/model_before     # build A, then change the code and rebuild
#   benches/ab.sh /tmp/model_before target/release/model
#   N=10 THREADS=2 benches/ab.sh A B -- --conv winograd2     # extra bench flags after --
#
# Each run is `MODEL bench --threads THREADS --batches BATCHES --min-seconds MIN_SECONDS`
# (defaults 1, 8, 1.5) plus the extra flags; both of its last two lines are used (training and
# inference samples/s). Prints every pair, then per figure the medians of A and B, the median of
# B/A and the range of B/A.
set -euo pipefail
usage="usage: benches/ab.sh MODEL_A MODEL_B [-- EXTRA BENCH FLAGS]  (env: N, THREADS, BATCHES, MIN_SECONDS)"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
a=$1 b=$2
shift 2
if [ $# -gt 0 ]; then
    [ "$1" = "--" ] || { echo "$usage" >&2; exit 2; }
    shift
fi
for m in "$a" "$b"; do
    [ -x "$m" ] || { echo "ab.sh: $m is not an executable model binary" >&2; exit 2; }
done
n=${N:-6} threads=${THREADS:-1} batches=${BATCHES:-8} seconds=${MIN_SECONDS:-1.5}
rates() { # model -> "train infer"
    "$1" bench --threads "$threads" --batches "$batches" --min-seconds "$seconds" "${@:2}" |
        awk '/^train: .* samples\/s/ {t=$2} /^infer: .* samples\/s/ {i=$2} END {print t, i}'
}
pairs=""
for i in $(seq "$n"); do
    ra=$(rates "$a" "$@")
    rb=$(rates "$b" "$@")
    echo "pair $i: A train $(echo "$ra" | cut -d' ' -f1) infer $(echo "$ra" | cut -d' ' -f2) | B train $(echo "$rb" | cut -d' ' -f1) infer $(echo "$rb" | cut -d' ' -f2)"
    pairs+="$ra $rb"$'\n'
done
echo "$pairs" | awk '
    function median(v, k,   i, j, t) {
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
    }
    NF == 4 { k++; ta[k] = $1; ia[k] = $2; tb[k] = $3; ib[k] = $4; tr[k] = $3 / $1; ir[k] = $4 / $2 }
    END {
        tlo = thi = tr[1]; ilo = ihi = ir[1]
        for (i = 2; i <= k; i++) {
            if (tr[i] < tlo) tlo = tr[i]; if (tr[i] > thi) thi = tr[i]
            if (ir[i] < ilo) ilo = ir[i]; if (ir[i] > ihi) ihi = ir[i]
        }
        printf "train samples/s: A median %.1f, B median %.1f, B/A median %.3f (pairs %.3f to %.3f)\n", median(ta, k), median(tb, k), median(tr, k), tlo, thi
        printf "infer samples/s: A median %.1f, B median %.1f, B/A median %.3f (pairs %.3f to %.3f)\n", median(ia, k), median(ib, k), median(ir, k), ilo, ihi
    }'
