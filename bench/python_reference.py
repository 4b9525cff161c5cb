"""Python smp forward latency on the same LibTorch, for side-by-side comparison with bench/smp_bench.

Needs Debian's python3-torch and the timm + segmentation_models_pytorch sources on PYTHONPATH.
Prints one line: "python <name> median_ms=<ms>".
"""
import statistics
import sys
import time

import torch


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    torch.set_num_threads(threads)
    import segmentation_models_pytorch as smp

    model = smp.Unet(encoder_name="tu-resnet18", encoder_weights=None).eval()
    x = torch.randn(1, 3, 512, 512)
    times = []
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    print("python Unet_tu-resnet18_512 median_ms=%.2f" % statistics.median(times))


if __name__ == "__main__":
    main()
