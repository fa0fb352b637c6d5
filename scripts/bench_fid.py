"""The PyTorch + scipy twin of `lab eval --metrics fid` for `scripts/bench_fid.sh`.

Samples N images from a DCGAN generator of the quickstart's shape (28x28, 32 channels, random
weights: the cost is what matters), extracts features of those and of the first N Fashion-MNIST
test images with the same TorchScript feature network lab uses, and computes FID with numpy
moments and scipy.linalg.sqrtm, the way pytorch-fid does. Prints seconds.
"""
import argparse
import gzip
import sys
import time

import numpy as np
import scipy.linalg
import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_dcgan import generator  # noqa: E402


def test_images(n, path="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
    with gzip.open(path, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    return torch.from_numpy(data.copy()).view(-1, 1, 28, 28)[:n]


def features(net, images, batch):
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch):
            out.append(net(images[i:i + batch], True).double().numpy())
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    start = time.perf_counter()
    net = torch.jit.load(a.features).eval()
    g = generator(100, 32).eval()
    fakes = []
    with torch.no_grad():
        for i in range(0, a.n, a.batch):
            x = g(torch.randn(min(a.batch, a.n - i), 100))
            fakes.append(((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
    fake = torch.cat(fakes)
    f1, f2 = features(net, test_images(a.n), a.batch), features(net, fake, a.batch)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real)
    print(f"{time.perf_counter() - start:.2f} {fid:.4f}")


if __name__ == "__main__":
    main()
