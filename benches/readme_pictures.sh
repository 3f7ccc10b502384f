#!/usr/bin/env bash
# Remakes the pictures and numbers in README.md's "Accuracy" section.
#   benches/readme_pictures.sh            (needs ../shared/data; about 25 minutes on 2 cores)
# 1. Both recipes, 20 epochs, on a 4,000 / 1,000 split of the 5,000 shared Kaggle photos:
#    training curves (PNG) and per-epoch metrics (CSV) into data/readme/.
# 2. A contact sheet of misclassified images made from *generated* images: a sheet of the
#    shared photos cannot be committed (nothing derived from them may enter the repository), so
#    make that one yourself with the last command below, and look at it locally.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./build.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=data/readme
mkdir -p "$out"
tools/pack ../shared/data/dogs-vs-cats/train --test 1000 -o "$work" -q
for recipe in faithful improved; do
  ./model train --train "$work/train.bin" --test "$work/test.bin" --epochs 20 --recipe "$recipe" \
    --log-every 0 --checkpoint "$work/$recipe.ckpt" --metrics "$out/metrics-$recipe.csv" \
    --plot "$out/curves-$recipe.png"
done
# Generated images (gradients), packed, a quick model, its worst mistakes.
mkdir -p "$work/img"
for i in $(seq 0 47); do
  c=$([ $((i % 2)) = 0 ] && echo cat || echo dog)
  echo "png pattern 64 64 $((i * 7)) $work/img/$c.$i.png"
done | target/release/pack-testgen
tools/pack "$work/img" --test 24 --size 32 -o "$work/synth" -q
./model train --train "$work/synth/train.bin" --test "$work/synth/test.bin" --epochs 2 --batch-size 8 \
  --log-every 0 --no-checkpoint --save "$work/synth.raw"
./model eval --params "$work/synth.raw" --data "$work/synth/test.bin" --errors "$out/errors-synthetic.png" --errors-count 12
echo "for a sheet of real photos (not to be committed):"
echo "  ./model eval --params $work/improved.ckpt --data $work/test.bin --errors /tmp/errors.png"
