#!/usr/bin/env bash
# Benchmark: `model bench` against benches/peers/torch_bench.py (PyTorch, same network, batch
# 16, SGD) on the same machine, in the same run, back to back, for 1 and 2 threads (or THREADS).
# Both run on synthetic images: no data needed. Prints samples/s of each and the ratio.
# Needs: pip install torch numpy (see the peer's docstring).
#   benches/train_vs_torch.sh            ROUNDS=3 THREADS="1 2" benches/train_vs_torch.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/benches/peers/torch_bench.py
rounds=${ROUNDS:-2}
threads=${THREADS:-1 2}
[ -f "$peer" ] || { echo "no peer script at $peer" >&2; exit 1; }
python3 -c 'import torch' 2>/dev/null || { echo "needs: pip install torch numpy" >&2; exit 1; }
(cd "$root" && cargo build --release -q --bin model)
model="${CARGO_TARGET_DIR:-$root/target}/release/model"
best() { sort -g | tail -1; }
for t in $threads; do
  ours_train=(); ours_infer=(); torch_train=(); torch_infer=()
  for r in $(seq "$rounds"); do
    out=$("$model" bench --threads "$t" --batches 12)
    ours_train+=("$(echo "$out" | awk '/^train: .* samples/ {print $2}')")
    ours_infer+=("$(echo "$out" | awk '/^infer:/ {print $2}')")
    for layout in nhwc nchw; do
      line=$(python3 "$peer" "$t" 8 "$layout" | tail -1)
      torch_train+=("$(echo "$line" | sed -E 's/.*train ([0-9.]+).*/\1/')")
      torch_infer+=("$(echo "$line" | sed -E 's/.*infer ([0-9.]+).*/\1/')")
    done
  done
  ot=$(printf '%s\n' "${ours_train[@]}" | best); oi=$(printf '%s\n' "${ours_infer[@]}" | best)
  tt=$(printf '%s\n' "${torch_train[@]}" | best); ti=$(printf '%s\n' "${torch_infer[@]}" | best)
  printf 'threads %s: train ours %s vs torch %s samples/s (%.2fx); infer ours %s vs torch %s (%.2fx)\n' \
    "$t" "$ot" "$tt" "$(echo "$ot / $tt" | bc -l)" "$oi" "$ti" "$(echo "$oi / $ti" | bc -l)"
done
