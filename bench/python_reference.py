"""Python smp on the same LibTorch, the side-by-side reference for bench/compare.sh.

Needs Debian's python3-torch and the timm + segmentation_models_pytorch sources on PYTHONPATH.

  python_reference.py forward ARCH ENCODER SIZE THREADS REPEATS
      eager forward of smp.create_model(ARCH, encoder_name=ENCODER, encoder_weights=None, classes=1),
      batch 1, inference mode; prints "median_ms=<ms> min_ms=<ms> peak_rss_mb=<MB>"
  python_reference.py train THREADS REPEATS
      one training step of Unet(tu-resnet18), 4 classes, batch 8 at 256x256 (Dice + soft cross-entropy,
      AdamW), the work of smp_bench's BM_UnetResnet18TrainStep256; prints "median_ms=<ms>"
"""
import resource
import statistics
import sys
import time

import torch


def times_ms(run, repeats, warmup=2):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def forward(arch, encoder, size, repeats):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, classes=1).eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        times = times_ms(lambda: model(x), repeats)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("median_ms=%.2f min_ms=%.2f peak_rss_mb=%.0f" % (statistics.median(times), min(times), peak_mb))


def train(repeats):
    import segmentation_models_pytorch as smp

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

    print("median_ms=%.2f" % statistics.median(times_ms(step, repeats, warmup=1)))


def main():
    mode = sys.argv[1]
    if mode == "forward":
        arch, encoder, size, threads, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        torch.set_num_threads(threads)
        forward(arch, encoder, size, repeats)
    elif mode == "train":
        torch.set_num_threads(int(sys.argv[2]))
        train(int(sys.argv[3]))
    else:
        sys.exit("usage: python_reference.py forward ARCH ENCODER SIZE THREADS REPEATS | train THREADS REPEATS")


if __name__ == "__main__":
    main()
