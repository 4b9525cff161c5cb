#!/usr/bin/env bash
# C++ and Python smp side by side in one run (same machine, same LibTorch, 2 threads): forward latency
# and one training step. Usage: bench/compare.sh BUILD_DIR   with PYTHONPATH holding timm and
# segmentation_models_pytorch.
set -euo pipefail
build=${1:-build}
threads=${SMP_NUM_THREADS:-2}
here=$(dirname "$0")

cpp_median_ms() {
  "$build/bench/smp_bench" --benchmark_filter="$1" --benchmark_format=csv 2>/dev/null | awk -F, '/_median/ {print $3}'
}
py_median_ms() { /usr/bin/python3 "$here/python_reference.py" "$threads" "$1" "$2" | sed 's/.*median_ms=//'; }
report() {
  echo "$1, $threads threads: C++ $2 ms, Python $3 ms, ratio python/c++ = $(awk -v a="$3" -v b="$2" 'BEGIN {printf "%.2f", a / b}')"
}

report "Unet(tu-resnet18) forward 512x512 batch 1" "$(cpp_median_ms BM_UnetResnet18Forward512)" "$(py_median_ms 10 forward)"
cpp=$(cpp_median_ms BM_UnetResnet18TrainStep256)
report "Unet(tu-resnet18) training step 256x256 batch 8" "$cpp" "$(py_median_ms 5 train)"
echo "C++ training throughput: $(awk -v ms="$cpp" 'BEGIN {printf "%.1f", 8000 / ms}') images/s"
