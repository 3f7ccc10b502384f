"""PyTorch peer of `model bench`, for benches/train_vs_torch.sh.

The same network as catdog (128x128x3 -> three blocks of 3x3 conv + ReLU + 2x2 max-pool with
32, 64, 128 filters -> fc 32768->128 + ReLU -> fc 128->1 -> sigmoid), trained with plain SGD
(lr 0.01) on binary cross-entropy, batch 16, on random images, on the CPU. After a warm-up it
times BATCHES training steps, then inference over as many samples in batches of 64.

Install:  pip install torch numpy     (the CPU wheel is enough:
          pip install torch --index-url https://download.pytorch.org/whl/cpu)
Usage:    python3 torch_bench.py [THREADS] [BATCHES] [nchw|nhwc]
Output:   the last line is "... train T samples/s, infer I samples/s".
"""
import sys
import time

import torch
from torch import nn


def network():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(3, 32), *block(32, 64), *block(64, 128),
        nn.Flatten(), nn.Linear(128 * 16 * 16, 128), nn.ReLU(), nn.Linear(128, 1),
    )


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    layout = sys.argv[3] if len(sys.argv) > 3 else "nchw"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    net = network().to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.BCEWithLogitsLoss()  # sigmoid + cross-entropy, as the original
    batch = 16
    x = torch.rand(batch, 3, 128, 128).to(memory_format=fmt)
    y = torch.randint(0, 2, (batch, 1)).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    train = batches * batch / (time.perf_counter() - start)

    xi = torch.rand(64, 3, 128, 128).to(memory_format=fmt)
    n = max(batches * batch // 64, 1)
    with torch.no_grad():
        torch.sigmoid(net(xi))  # warm-up
        start = time.perf_counter()
        for _ in range(n):
            torch.sigmoid(net(xi))
        infer = n * 64 / (time.perf_counter() - start)
    isa = torch.backends.cpu.get_cpu_capability()  # what ATEN_CPU_CAPABILITY left it
    print(f"torch {torch.__version__} isa={isa} threads={threads} layout={layout}: "
          f"train {train:.1f} samples/s, infer {infer:.1f} samples/s")


if __name__ == "__main__":
    main()
