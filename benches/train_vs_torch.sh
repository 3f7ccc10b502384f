#!/usr/bin/env bash
# Benchmark: `model bench` against benches/peers/torch_bench.py (PyTorch, same network, batch
# 16, SGD) on the same machine, in the same run, back to back, for 1 and 2 threads (or THREADS).
# Both run on synthetic images: no data needed. Prints samples/s of each and the ratio.
# Needs: pip install torch numpy (see the peer's docstring).
#   benches/train_vs_torch.sh            ROUNDS=3 THREADS="1 2" benches/train_vs_torch.sh
# The portable kernels against PyTorch held to the same instruction set (AVX2: no AVX-512 in
# ATen's kernels or oneDNN's; matrixmultiply, under ours, has no AVX-512 kernel at all):
#   KERNELS=portable TORCH_ISA=avx2 benches/train_vs_torch.sh
# Each round runs ours, then PyTorch in both layouts, alternating; the best of the rounds counts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/benches/peers/torch_bench.py
rounds=${ROUNDS:-2}
threads=${THREADS:-1 2}
kernels=${KERNELS:-fast}
min_seconds=${MIN_SECONDS:-3}
if [ -n "${TORCH_ISA:-}" ]; then
  export ATEN_CPU_CAPABILITY=$TORCH_ISA ONEDNN_MAX_CPU_ISA=${TORCH_ISA^^}
fi
[ -f "$peer" ] || { echo "no peer script at $peer" >&2; exit 1; }
python3 -c 'import torch' 2>/dev/null || { echo "needs: pip install torch numpy" >&2; exit 1; }
(cd "$root" && cargo build --release -q --bin model)
model="${CARGO_TARGET_DIR:-$root/target}/release/model"
best() { sort -g | tail -1; }
for t in $threads; do
  ours_train=(); ours_infer=(); torch_train=(); torch_infer=()
  for r in $(seq "$rounds"); do
    out=$("$model" bench --kernels "$kernels" --threads "$t" --batches 12 --min-seconds "$min_seconds")
    ours_train+=("$(echo "$out" | awk '/^train: .* samples/ {print $2}')")
    ours_infer+=("$(echo "$out" | awk '/^infer:/ {print $2}')")
    for layout in nhwc nchw; do
      line=$(python3 "$peer" "$t" "${TORCH_BATCHES:-12}" "$layout" | tail -1)
      echo "  $line" >&2
      torch_train+=("$(echo "$line" | sed -E 's/.*train ([0-9.]+).*/\1/')")
      torch_infer+=("$(echo "$line" | sed -E 's/.*infer ([0-9.]+).*/\1/')")
    done
  done
  ot=$(printf '%s\n' "${ours_train[@]}" | best); oi=$(printf '%s\n' "${ours_infer[@]}" | best)
  tt=$(printf '%s\n' "${torch_train[@]}" | best); ti=$(printf '%s\n' "${torch_infer[@]}" | best)
  printf 'threads %s, kernels %s: train ours %s vs torch %s samples/s (%.2fx); infer ours %s vs torch %s (%.2fx)\n' \
    "$t" "$kernels" "$ot" "$tt" "$(echo "$ot / $tt" | bc -l)" "$oi" "$ti" "$(echo "$oi / $ti" | bc -l)"
done
