"""Python smp timings on the same LibTorch, for side-by-side comparison with bench/smp_bench.

Needs Debian's python3-torch and the timm + segmentation_models_pytorch sources on PYTHONPATH.
Usage: python_reference.py THREADS REPEATS forward|train. Prints one line:
"python <name> median_ms=<ms>" (forward: batch 1 at 512x512; train: one step on 8 images at 256x256,
the work of BM_UnetResnet18TrainStep256).
"""
import statistics
import sys
import time

import torch


def median_ms(run, repeats):
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    mode = sys.argv[3] if len(sys.argv) > 3 else "forward"
    torch.set_num_threads(threads)
    import segmentation_models_pytorch as smp

    if mode == "forward":
        model = smp.Unet(encoder_name="tu-resnet18", encoder_weights=None).eval()
        x = torch.randn(1, 3, 512, 512)
        with torch.inference_mode():
            ms = median_ms(lambda: model(x), repeats)
        print("python Unet_tu-resnet18_512 median_ms=%.2f" % ms)
        return

    model = smp.Unet(encoder_name="tu-resnet18", encoder_weights=None, classes=4).train()
    dice = smp.losses.DiceLoss("multiclass")
    cross_entropy = smp.losses.SoftCrossEntropyLoss(smooth_factor=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(8, 3, 256, 256)
    y = torch.randint(0, 4, (8, 256, 256))

    def step():
        optimizer.zero_grad()
        logits = model(x)
        (dice(logits, y) + cross_entropy(logits, y)).backward()
        optimizer.step()

    print("python Unet_tu-resnet18_train256_b8 median_ms=%.2f" % median_ms(step, repeats))


if __name__ == "__main__":
    main()
