"""The PyTorch twin of `experiments/quickstart.toml`, for `scripts/bench.sh`.

Same DCGAN as the `dcgan` plugin at 28x28 (layer for layer, same widths, batch norm placement
and biases), same non-saturating loss, Adam settings, EMA of G, batch size and data (the
Fashion-MNIST training set held in memory as uint8). Prints steps/s over the timed steps.
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def fashion_mnist(path="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"):
    with gzip.open(path, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    return torch.from_numpy(data.copy()).view(-1, 1, 28, 28)


def generator(z_dim, c):
    return nn.Sequential(
        nn.Linear(z_dim, 4 * c * 7 * 7, bias=False),
        nn.Unflatten(1, (4 * c, 7, 7)),
        nn.BatchNorm2d(4 * c), nn.ReLU(),
        nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.ConvTranspose2d(2 * c, 1, 4, 2, 1), nn.Tanh(),
    )


class Discriminator(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.b1 = nn.Conv2d(1, 2 * c, 4, 2, 1)
        self.b2 = nn.Conv2d(2 * c, 4 * c, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * c)
        self.out = nn.Conv2d(4 * c, 1, 7, 1, 0)

    def forward(self, x):
        h = F.leaky_relu(self.b1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.b2(h)), 0.2)
        # The plugin also returns the pooled features; compute them for an equal workload.
        _ = h.sum(dim=(2, 3))
        return self.out(h).flatten()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    images = fashion_mnist()
    g, d = generator(100, a.channels), Discriminator(a.channels)
    ema = generator(100, a.channels)
    ema.load_state_dict(g.state_dict())
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    n = images.shape[0]
    for step in range(a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        idx = torch.randint(n, (a.batch,))
        real = images.index_select(0, idx).float() / 127.5 - 1.0
        with torch.no_grad():
            fake = g(torch.randn(a.batch, 100))
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        float(loss_d.detach())  # lab checks every loss for NaN: the same host sync
        fake = g(torch.randn(a.batch, 100))
        loss_g = F.softplus(-d(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        float(loss_g.detach())
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), g.parameters()):
                pe.lerp_(p, 1 - 0.999)
            for be, b in zip(ema.buffers(), g.buffers()):
                be.copy_(b)
    elapsed = time.perf_counter() - start
    print(f"{(a.steps - a.warmup) / elapsed:.3f}")


if __name__ == "__main__":
    main()
