#!/usr/bin/env bash
# C++ and Python smp forward latency side by side in one run (same machine, same LibTorch, 2 threads).
# Usage: bench/compare.sh BUILD_DIR   with PYTHONPATH holding timm and segmentation_models_pytorch.
set -euo pipefail
build=${1:-build}
threads=${SMP_NUM_THREADS:-2}
cpp_ms=$("$build/bench/smp_bench" --benchmark_filter=BM_UnetResnet18Forward512 --benchmark_format=csv 2>/dev/null |
  awk -F, '/_median/ {print $3}')
py_ms=$(/usr/bin/python3 "$(dirname "$0")/python_reference.py" "$threads" 10 | sed 's/.*median_ms=//')
echo "Unet(tu-resnet18) 512x512 batch 1, $threads threads: C++ ${cpp_ms} ms, Python ${py_ms} ms," \
  "ratio python/c++ = $(awk -v a="$py_ms" -v b="$cpp_ms" 'BEGIN {printf "%.2f", a / b}')"
