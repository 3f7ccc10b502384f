#!/usr/bin/env bash
# Benchmark: `model bench` against optimizing CPU engines running the same network
# (benches/peers/engines.py): torch.compile (train and infer), ONNX Runtime and OpenVINO (infer
# only), fp32, synthetic 128x128 images, train batch 16, engines' inference batch 64. For each
# thread count, ROUNDS rounds alternate ours and every engine back to back; the best figure of
# each is kept. Prints each run's line, then a Markdown table with the ratios:
# train = ours / torch.compile, inference = ours / the better of ONNX Runtime and OpenVINO.
# Needs: pip install torch numpy onnx onnxruntime openvino (see engines.py's docstring).
#
#   benches/vs_engines.sh
#   THREADS="1 2" ROUNDS=2 BATCHES=40 ENGINES="torch-compile onnxruntime openvino" \
#       MIN_SECONDS=3 benches/vs_engines.sh
#
# BATCHES: our timed training batches (`model bench --batches`), and the engines' minimum
# batches per figure; MIN_SECONDS: every figure's minimum seconds, ours (`model bench
# --min-seconds`: training repeats its batches, inference its pass) and the engines'. Compilation and
# warm-up are never timed. A full run (2 thread counts, 2 rounds) takes about 10 minutes,
# mostly torch.compile compiling.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peer=$root/benches/peers/engines.py
threads=${THREADS:-1 2}
rounds=${ROUNDS:-2}
batches=${BATCHES:-40}
engines=${ENGINES:-torch-compile onnxruntime openvino}
pipline="pip install torch numpy onnx onnxruntime openvino"
[ -f "$peer" ] || { echo "vs_engines.sh: no peer script at $peer" >&2; exit 1; }
command -v python3 > /dev/null || { echo "vs_engines.sh: needs python3, then: $pipline" >&2; exit 1; }
missing=()
for e in $engines; do
    case $e in
        torch-compile | torch-eager) mods="torch numpy" ;;
        onnxruntime) mods="numpy onnx onnxruntime" ;;
        openvino) mods="numpy onnx openvino" ;;
        *) echo "vs_engines.sh: unknown engine '$e' (torch-compile, onnxruntime, openvino, torch-eager)" >&2
           exit 2 ;;
    esac
    for m in $mods; do
        case " ${missing[*]} " in *" $m "*) continue ;; esac
        python3 -c "import $m" 2> /dev/null || missing+=("$m")
    done
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "vs_engines.sh: missing Python package(s): ${missing[*]}" >&2
    echo "install them with: $pipline" >&2
    exit 1
fi
(cd "$root" && cargo build --release -q --bin model)
model="${CARGO_TARGET_DIR:-$root/target}/release/model"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A best version
keep() { # keep KEY VALUE: the larger of VALUE and best[KEY]
    [ "$2" = n/a ] && { best[$1]=n/a; return; }
    if [ -z "${best[$1]:-}" ] || awk -v a="$2" -v b="${best[$1]}" 'BEGIN { exit !(a > b) }'; then
        best[$1]=$2
    fi
}
field() { sed -nE "s/.*(^| )$1=([^ ]+).*/\\2/p"; }
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for t in $threads; do
    for r in $(seq "$rounds"); do
        out=$("$model" bench --threads "$t" --batches "$batches" --min-seconds "${MIN_SECONDS:-3}")
        tr=$(echo "$out" | awk '/^train: .* samples/ { print $2 }')
        in=$(echo "$out" | awk '/^infer:/ { print $2 }')
        [ -n "$tr" ] && [ -n "$in" ] || { echo "vs_engines.sh: unexpected model bench output: $out" >&2; exit 1; }
        echo "threads $t round $r: catdog train $tr infer $in samples/s"
        keep "catdog/$t/train" "$tr"; keep "catdog/$t/infer" "$in"
        for e in $engines; do
            if ! ENGINES_MIN_SECONDS=${MIN_SECONDS:-3} python3 "$peer" "$e" "$t" "$batches" \
                    > "$tmp/line" 2> "$tmp/log"; then
                cat "$tmp/log" >&2
                echo "vs_engines.sh: $e failed (its log is above)" >&2
                exit 1
            fi
            line=$(tail -1 "$tmp/line")
            echo "threads $t round $r: $line"
            keep "$e/$t/train" "$(echo "$line" | field train)"
            keep "$e/$t/infer" "$(echo "$line" | field infer)"
            version[$e]=$(echo "$line" | field version)
        done
    done
done
# "a / b" over the thread counts, for one system and one of train/infer
row() { local s="" t; for t in $threads; do s+="${s:+ / }${best[$1/$t/$2]:-n/a}"; done; echo "$s"; }
ratio() { # ratio train|infer: ours over the best engine of that column, per thread count
    local s="" t e v top
    for t in $threads; do
        top=""
        for e in $engines; do
            [ "$1" = train ] && [ "$e" != torch-compile ] && continue
            [ "$1" = infer ] && [ "$e" != onnxruntime ] && [ "$e" != openvino ] && continue
            v=${best[$e/$t/$1]:-n/a}
            [ "$v" = n/a ] && continue
            if [ -z "$top" ] || awk -v a="$v" -v b="$top" 'BEGIN { exit !(a > b) }'; then top=$v; fi
        done
        if [ -n "$top" ]; then
            s+="${s:+ / }$(awk -v a="${best[catdog/$t/$1]}" -v b="$top" 'BEGIN { printf "%.2fx", a / b }')"
        else
            s+="${s:+ / }n/a"
        fi
    done
    echo "$s"
}
name() {
    case $1 in
        torch-compile) echo "torch.compile (PyTorch ${version[$1]}), channels-last" ;;
        torch-eager) echo "PyTorch ${version[$1]} eager, channels-last" ;;
        onnxruntime) echo "ONNX Runtime ${version[$1]}, all graph optimizations" ;;
        openvino) echo "OpenVINO ${version[$1]}, f32" ;;
    esac
}
th=$(echo $threads | sed 's/ / \/ /g')
echo
echo "best of $rounds alternating rounds, samples/s:"
echo
echo "| system | train samples/s, $th threads | inference samples/s, $th threads |"
echo "|---|---|---|"
echo "| **catdog (this port)** | **$(row catdog train)** | **$(row catdog infer)** |"
for e in $engines; do
    echo "| $(name "$e") | $(row "$e" train) | $(row "$e" infer) |"
done
echo "| ratio: train over torch.compile, inference over the better of ONNX Runtime and OpenVINO | **$(ratio train)** | **$(ratio infer)** |"
