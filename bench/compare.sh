#!/usr/bin/env bash
# smp-cpp side by side with Python smp (eager, same Debian LibTorch) and ONNX Runtime (the same model
# exported from Python smp) in one interleaved run: forward latency at batch 1, and the training step.
#
#   bench/compare.sh [BUILD_DIR]
#
# Needs: PYTHONPATH with timm, segmentation_models_pytorch and ../shared/reference/stubs (see
# ../shared/reference/README.md); node + npm (onnxruntime-node is installed into $SMP_ORT_DIR).
# Environment: SMP_NUM_THREADS (2), SMP_BENCH_SIZE (512), SMP_BENCH_ROUNDS (3), SMP_BENCH_REPEAT (10),
# SMP_BENCH_MODELS ("Arch:encoder ..." to override the list), SMP_BENCH_TRAIN (1: training rows too).
# Each cell is the median over rounds of each round's median; within a round the four runs of one
# model follow each other, so every ratio compares runs seconds apart.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(cd "$(dirname "$0")" && pwd)
reference=$(realpath "${SMP_REFERENCE:-$here/../../shared/reference}")
threads=${SMP_NUM_THREADS:-2}
size=${SMP_BENCH_SIZE:-512}
rounds=${SMP_BENCH_ROUNDS:-3}
repeat=${SMP_BENCH_REPEAT:-10}
ort_dir=${SMP_ORT_DIR:-/tmp/smp-ort}
models=${SMP_BENCH_MODELS:-"Unet:tu-resnet18 UnetPlusPlus:tu-resnet18 FPN:tu-resnet18 PSPNet:tu-resnet18 \
DeepLabV3:tu-resnet18 DeepLabV3Plus:tu-resnet18 Linknet:tu-resnet18 MAnet:tu-resnet18 PAN:tu-resnet18 \
UPerNet:tu-resnet18 Segformer:tu-resnet18 Segformer:mit_b0 Unet:tu-convnext_atto Unet:resnet34 \
Unet:tu-efficientnet_b0"}

if [ ! -d "$ort_dir/node_modules/onnxruntime-node" ]; then
  mkdir -p "$ort_dir"
  (cd "$ort_dir" && npm init -y >/dev/null && npm install --ignore-scripts onnxruntime-node@1.30.0 >/dev/null)
fi
bf16=0
if "$build/smp" bench Unet encoder_name=tu-resnet18 encoder_depth=3 decoder_channels=[8,8,8] --size 32 --repeat 1 \
    --warmup 0 --dtype bfloat16 >/dev/null 2>&1; then bf16=1; fi

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -1; }
median() { tr ' ' '\n' | sort -g | awk 'NF {a[++n]=$1} END {if (n) print (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b}'; }

echo "| model | smp-cpp float32 ms | smp-cpp bfloat16 ms | Python smp ms | ONNX Runtime ms | float32 / ORT | bfloat16 / ORT | float32 / Python | peak RSS MB (smp-cpp / Python) |"
echo "|---|---|---|---|---|---|---|---|---|"
for model in $models; do
  arch=${model%%:*} encoder=${model#*:}
  onnx="$ort_dir/${arch}_${encoder}_${size}.onnx"
  if [ ! -f "$onnx" ]; then  # some models cannot be exported (PSPNet, UPerNet): no ONNX Runtime column
    /usr/bin/python3 "$reference/onnxruntime/export_onnx.py" "$arch" "$encoder" "$size" "$onnx" >/dev/null 2>&1 ||
      rm -f "$onnx"
  fi
  f32="" b16="" py="" ort="" rss="" pyrss=""
  for _ in $(seq "$rounds"); do
    if [ -f "$onnx" ]; then
      out=$(cd "$ort_dir" && NODE_PATH="$ort_dir/node_modules" node "$reference/onnxruntime/ort_bench.js" "$onnx" "$size" "$threads" "$repeat" 2>/dev/null || true)
      ort="$ort $(echo "$out" | field median_ms)"
    fi
    out=$("$build/smp" bench "$arch" "encoder_name=$encoder" --size "$size" --threads "$threads" --repeat "$repeat")
    f32="$f32 $(echo "$out" | field median_ms)"; rss=$(echo "$out" | field peak_rss_mb)
    out=$(/usr/bin/python3 "$here/python_reference.py" forward "$arch" "$encoder" "$size" "$threads" "$repeat" 2>/dev/null)
    py="$py $(echo "$out" | field median_ms)"; pyrss=$(echo "$out" | field peak_rss_mb)
    if [ "$bf16" = 1 ]; then
      out=$("$build/smp" bench "$arch" "encoder_name=$encoder" --size "$size" --threads "$threads" --repeat "$repeat" --dtype bfloat16)
      b16="$b16 $(echo "$out" | field median_ms)"
    fi
  done
  f32=$(echo "$f32" | median) py=$(echo "$py" | median) ort=$(echo "$ort" | median)
  b16=$([ "$bf16" = 1 ] && echo "$b16" | median || echo "")
  echo "| $arch $encoder | $f32 | ${b16:--} | $py | ${ort:--} | $(ratio "$f32" "$ort") | $(ratio "$b16" "$ort") | $(ratio "$f32" "$py") | $rss / $pyrss |"
done

if [ "${SMP_BENCH_TRAIN:-1}" = 1 ]; then
  echo
  echo "| training step, Unet tu-resnet18, 8x3x256x256 | ms | Python smp ms | Python / smp-cpp |"
  echo "|---|---|---|---|"
  py=$(/usr/bin/python3 "$here/python_reference.py" train "$threads" 5 | field median_ms)
  for row in "float32:BM_UnetResnet18TrainStep256/" "float32 channels_last:BM_UnetResnet18TrainStep256ChannelsLast/" \
             "bfloat16 channels_last:BM_UnetResnet18TrainStep256Bf16/"; do
    label=${row%%:*} filter=${row#*:}
    [ "$label" != "${label#bfloat16}" ] && [ "$bf16" = 0 ] && continue
    cpp=$("$build/bench/smp_bench" --benchmark_filter="$filter" --benchmark_format=csv 2>/dev/null |
          awk -F, '/_median/ {print $3}')
    echo "| smp-cpp $label | $cpp | $py | $(ratio "$py" "$cpp") |"
  done
fi
