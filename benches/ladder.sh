#!/usr/bin/env bash
# The ladder, llm.c-style: the same network trained and run by each rung of the project, one
# thread, side by side in one run, alternating, best of ROUNDS (default 2):
#   reference  --kernels reference: the scalar plain-Rust reference
#   portable   --kernels portable: plain Rust and an implicit GEMM (CPUs without AVX-512)
#   original   --kernels original: the assembly original's routines, bit for bit
#   direct     --kernels fast --conv direct: register-blocked direct convolutions, fc over the batch
#   winograd2  --conv winograd2: conv2, conv3 as Winograd F(2x2, 3x3)
#   fast       the default: conv2, conv3 as Winograd F(4x4, 3x3)
# Prints samples/s of each and each rung's speed-up over the one below.
#   benches/ladder.sh            ROUNDS=3 benches/ladder.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-2}
(cd "$root" && cargo build --release -q --bin model)
model="${CARGO_TARGET_DIR:-$root/target}/release/model"
best() { sort -g | tail -1; }
declare -A train infer
run() { # name, args...
  local name=$1; shift
  local out
  out=$(env -u CATDOG_KERNELS "$model" bench "$@")
  train[$name]+="$(echo "$out" | awk '/^train: .* samples/ {print $2}') "
  infer[$name]+="$(echo "$out" | awk '/^infer:/ {print $2}') "
}
for r in $(seq "$rounds"); do
  run reference --kernels reference --threads 1 --batches 1
  run portable --kernels portable --threads 1 --batches 4
  run original --kernels original --threads 1 --batches 2
  run direct --kernels fast --conv direct --threads 1 --batches 12
  run winograd2 --kernels fast --conv winograd2 --threads 1 --batches 12
  run fast --kernels fast --threads 1 --batches 12
done
prev=""
for name in reference portable original direct winograd2 fast; do
  t=$(printf '%s\n' ${train[$name]} | best); i=$(printf '%s\n' ${infer[$name]} | best)
  if [ -n "$prev" ]; then
    printf '%-10s train %8s samples/s (%5.1fx)   infer %8s samples/s (%5.1fx)\n' "$name" "$t" \
      "$(echo "$t / $pt" | bc -l)" "$i" "$(echo "$i / $pi" | bc -l)"
  else
    printf '%-10s train %8s samples/s           infer %8s samples/s\n' "$name" "$t" "$i"
  fi
  prev=$name; pt=$t; pi=$i
done
