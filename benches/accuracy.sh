#!/usr/bin/env bash
# Remakes README.md's "Accuracy" table: both recipes and the improved one on a wider network,
# each keeping its best validation epoch, evaluated on a test split with and without test-time
# augmentation.
#   benches/accuracy.sh DIR [OUT]
# DIR: a flat folder of Kaggle's cat.N.jpg / dog.N.jpg. The README's figures used N 0-9999 of
# the 25,000 (20,000 photos); the project keeps N 10000-12499 out of every run as its reserved
# final test. OUT (default data/accuracy) gets the blobs, run folders, metrics and curves.
# DIR is packed at 128x128 into 90% train / 10% test (stratified, --seed 7); each recipe holds
# 10% of the train blob out for validation (--val-fraction 0.1) and keeps its best epoch
# (--save-best); the test blob is never used for a choice. The last run packs all of DIR as
# training data and trains the improved recipe on 90% of it, validating on 10%, with no test
# split (--no-test), as a user training on every labelled photo would, validating (and so
# choosing its epoch) with test-time augmentation (--val-tta). About 4 hours on 2 cores.
set -euo pipefail
dir=${1:?usage: benches/accuracy.sh DIR_OF_KAGGLE_PHOTOS [OUT]}
out=${2:-data/accuracy}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./build.sh >/dev/null
mkdir -p "$out"
tools/pack "$dir" --test-fraction 0.1 --seed 7 -o "$out" -q
# name and flags of each run: the two recipes, then the improved one on a wider network
runs=(
  "faithful|"
  "improved|--recipe improved"
  "wider|--recipe improved --widths 48,96,192 --epochs 30"
)
for run in "${runs[@]}"; do
  name=${run%%|*}
  read -ra flags <<<"${run#*|}"
  mkdir -p "$out/$name"
  start=$SECONDS
  ./model train "${flags[@]}" --train "$out/train.bin" --val-fraction 0.1 \
    --test "$out/test.bin" --save-best --checkpoint "$out/$name/checkpoint.ckpt" \
    --metrics "$out/$name/metrics.csv" --plot "$out/$name/curves.png" --log-every 0 \
    2> >(grep -E '^(run summary|  best validation)' >&2)
  echo "$name: $((SECONDS - start)) s of training"
  for tta in "" --tta; do
    echo "$name ${tta:-(no TTA)}: test $(./model eval --params "$out/$name/best.ckpt" \
      --data "$out/test.bin" $tta | grep 'Accuracy is')"
  done
done

# The improved recipe on every photo of DIR: 90% training, 10% validation with TTA, no test
# split.
mkdir -p "$out/all"
tools/pack "$dir" --seed 7 -o "$out/all/train.bin" -q
start=$SECONDS
./model train --recipe improved --train "$out/all/train.bin" --no-test --val-fraction 0.1 \
  --val-tta --save-best --checkpoint "$out/all/checkpoint.ckpt" --metrics "$out/all/metrics.csv" \
  --plot "$out/all/curves.png" --log-every 0 \
  2> >(grep -E '^(run summary|  best validation)' >&2)
echo "all photos, improved: $((SECONDS - start)) s of training"
