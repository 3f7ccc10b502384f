#!/usr/bin/env bash
# Benchmark: tools/pack against ../shared/peers/pil_pack.py (Pillow, one process per core) on the
# same photos, in the same run, back to back, ROUNDS times (alternating), medians reported.
#
#   benches/pack_vs_pillow.sh [SRC_DIR]        (default: ../shared/data/dogs-vs-cats/train)
#   ROUNDS=5 benches/pack_vs_pillow.sh
#
# Ours is timed from outside, wall clock, process start to exit: listing, decoding, resizing,
# the stratified split (--test 500) and writing + fsyncing both blobs with checksums. Pillow is
# credited with the rate it prints itself, which leaves out interpreter start-up and imports
# (its wall-clock rate is printed too). So the ratio is conservative. The CPU seconds (user + sys,
# children included: Pillow's worker processes) of each are reported too: on a shared machine
# where other jobs steal cores, that comparison is the steadier one.
# Needs: pip install pillow numpy; /usr/bin/time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$root/../shared/data/dogs-vs-cats/train}
peer=$root/../shared/peers/pil_pack.py
rounds=${ROUNDS:-3}
cores=$(nproc)
[ -d "$src" ] || { echo "no photos at $src" >&2; exit 1; }
[ -f "$peer" ] || { echo "no peer script at $peer" >&2; exit 1; }
python3 -c 'import PIL, numpy' 2>/dev/null || { echo "needs: pip install pillow numpy" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p packer)
pack="${CARGO_TARGET_DIR:-$root/target}/release/pack"
n=$(find "$src" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | wc -l)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$src"/* > /dev/null # same warm page cache for both
now() { date +%s.%N; }
ours=() pil=() pilwall=() ourscpu=() pilcpu=()
cpu() { awk '{ printf "%.2f", $2 + $3 }' "$1"; }
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $n images from $src"
for r in $(seq "$rounds"); do
    t0=$(now)
    /usr/bin/time -f "%e %U %S" -o "$tmp/ours.time" \
        "$pack" "$src" -o "$tmp/ours" --test 500 -q -j "$cores" > "$tmp/ours.log"
    t1=$(now)
    ourscpu+=("$(cpu "$tmp/ours.time")")
    ours+=("$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')")
    t0=$(now)
    (cd "$tmp" && /usr/bin/time -f "%e %U %S" -o "$tmp/pil.time" \
        python3 "$peer" "$src" "$tmp/pil" "$cores") > "$tmp/pil.log"
    t1=$(now)
    pilcpu+=("$(cpu "$tmp/pil.time")")
    pil+=("$(tail -1 "$tmp/pil.log" | awk '{ print $1 }')")
    pilwall+=("$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')")
    echo "round $r: tools/pack ${ours[-1]} images/s (wall clock), ${ourscpu[-1]} CPU s |" \
        "pillow ${pil[-1]} images/s (self-timed), ${pilwall[-1]} (wall clock), ${pilcpu[-1]} CPU s"
    rm -rf "$tmp/ours" "$tmp/pil"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mo=$(median "${ours[@]}") mp=$(median "${pil[@]}") mw=$(median "${pilwall[@]}")
echo "median: tools/pack $mo images/s, pillow $mp images/s self-timed ($mw wall clock)"
oc=$(median "${ourscpu[@]}") pc=$(median "${pilcpu[@]}")
echo "median CPU seconds (user+sys): tools/pack $oc, pillow $pc"
awk -v a="$mo" -v b="$mp" -v c="$mw" -v oc="$oc" -v pc="$pc" 'BEGIN {
    printf "ratio: %.2fx (vs Pillow self-timed), %.2fx (wall clock vs wall clock), %.2fx (CPU time)\n",
        a / b, a / c, pc / oc }'
