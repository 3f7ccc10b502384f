#!/usr/bin/env bash
# Benchmark: tools/pack against benches/peers/pil_pack.py (Pillow, one process per core) on the
# same photos, in the same run, back to back, ROUNDS times (alternating), medians reported.
#
#   benches/pack_vs_pillow.sh [SRC_DIR]
#   ROUNDS=5 benches/pack_vs_pillow.sh
#
# SRC_DIR: a folder of cat.N.jpg / dog.N.jpg photos. Default: the 5,000 Kaggle photos of the
# development machine's shared data folder when it is there, else 2,000 generated JPEGs (made
# once with Pillow into a temporary folder; they are not photos, so rates differ from real ones).
# Ours is timed from outside, wall clock, process start to exit: listing, decoding, resizing,
# the stratified split (--test 10%) and writing + fsyncing both blobs with checksums. Pillow is
# credited with the rate it prints itself, which leaves out interpreter start-up and imports
# (its wall-clock rate is printed too). So the ratio is conservative. The CPU seconds (user + sys,
# children included: Pillow's worker processes) of each are reported too: on a shared machine
# where other jobs steal cores, that comparison is the steadier one.
# Needs: pip install pillow numpy; /usr/bin/time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/benches/peers/pil_pack.py
rounds=${ROUNDS:-3}
cores=$(nproc)
python3 -c 'import PIL, numpy' 2>/dev/null || { echo "needs: pip install pillow numpy" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shared=$root/../shared/data/dogs-vs-cats/train
if [ -n "${1:-}" ]; then
    src=$1
elif [ -d "$shared" ]; then
    src=$shared
else
    src=$tmp/generated
    echo "no photo folder given: generating 2,000 JPEGs in $src"
    python3 - "$src" <<'PY'
import sys, os, numpy as np
from PIL import Image
out = sys.argv[1]
os.makedirs(out)
rng = np.random.default_rng(0)
for i in range(2000):
    cls = "dog" if i % 2 else "cat"
    w, h = int(rng.integers(300, 500)), int(rng.integers(250, 400))
    # smooth colour fields plus noise: compresses and decodes like a photo, more or less
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * (i % 7 + 1)) % 256, (y * 3) % 256, ((x + y) * 2) % 256], -1)
    img = (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(os.path.join(out, f"{cls}.{i // 2}.jpg"), quality=85)
PY
fi
[ -d "$src" ] || { echo "no photos at $src" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p packer)
pack="${CARGO_TARGET_DIR:-$root/target}/release/pack"
n=$(find "$src" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) | wc -l)
cat "$src"/* > /dev/null # same warm page cache for both
now() { date +%s.%N; }
ours=() pil=() pilwall=() ourscpu=() pilcpu=()
cpu() { awk '{ printf "%.2f", $2 + $3 }' "$1"; }
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $n images from $src"
for r in $(seq "$rounds"); do
    t0=$(now)
    /usr/bin/time -f "%e %U %S" -o "$tmp/ours.time" \
        "$pack" "$src" -o "$tmp/ours" --test-fraction 0.1 -q -j "$cores" > "$tmp/ours.log"
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
