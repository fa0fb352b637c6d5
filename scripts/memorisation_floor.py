"""The FID a generator would score by reproducing its training subset exactly.

In the low-shot study (experiments/fashion_mnist_lowshot.toml) G trains on `count` images and is
scored against the test split. A G that has memorised its images and draws them uniformly has
the subset's own feature statistics, so the subset's FID against the same test images is what
pure memorisation scores; a G that generalises can go below it. For contrast the script also
scores `samples` other training images (a G that draws new images of the data's distribution).

The subset is chosen by lab's rule (core/lab/src/data/subset.rs: partial Fisher-Yates driven by
SplitMix64, sorted), written out again here so that the check does not run lab's own code; the
FID is numpy's, from the Fréchet distance's definition, on the domain feature network's
`forward(images, return_features=True)`.

    .venv/bin/python scripts/memorisation_floor.py --count 100 --subset-seed 0
"""

import argparse
import gzip
from pathlib import Path

import numpy as np
import torch

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next_u64(self) -> int:
        self.state = (self.state + GAMMA) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """Uniform in 0..n by the widening multiply, rejecting the biased low draws."""
        threshold = ((-n) & MASK) % n
        while True:
            product = self.next_u64() * n
            if (product & MASK) >= threshold:
                return product >> 64


def subset(total: int, count: int, seed: int) -> np.ndarray:
    rng = SplitMix64(seed)
    order = list(range(total))
    for i in range(count):
        j = i + rng.below(total - i)
        order[i], order[j] = order[j], order[i]
    return np.sort(np.array(order[:count]))


def idx_images(path: Path) -> np.ndarray:
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    n, h, w = (int.from_bytes(data[4 * k : 4 * k + 4], "big") for k in (1, 2, 3))
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, h, w)


def features(net, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = [net(torch.from_numpy(images[i : i + 500].copy()), True) for i in range(0, len(images), 500)]
    return torch.cat(out).flatten(1).double().numpy()


def fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = tr sqrt(A^1/2 B A^1/2), a symmetric PSD matrix: stable when A is singular
    # (100 images give a covariance of rank 99 at most).
    values, vectors = np.linalg.eigh(cov_a)
    half = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    inner = np.linalg.eigvalsh(half @ cov_b @ half).clip(min=0)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.sqrt(inner).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2000, help="generated samples per evaluation")
    parser.add_argument("--reference-count", type=int, default=2000, help="the first N test images")
    parser.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--features", type=Path, default=Path.home() / ".cache/lab/features/fashion-mnist.pt")
    args = parser.parse_args()

    train = idx_images(args.data / "train-images-idx3-ubyte.gz")
    test = idx_images(args.data / "t10k-images-idx3-ubyte.gz")[: args.reference_count]
    net = torch.jit.load(str(args.features)).eval()
    chosen = subset(len(train), args.count, args.subset_seed)
    reference = features(net, test)
    # Drawing the subset uniformly: `samples` draws have (in the limit) the subset's statistics;
    # tiling it is that limit without sampling noise.
    tiled = np.resize(chosen, args.samples)
    memorised = fid(features(net, train[tiled]), reference)
    others = np.setdiff1d(np.arange(len(train)), chosen)[: args.samples]
    fresh = fid(features(net, train[others]), reference)
    print(f"subset of {args.count} (seed {args.subset_seed}): first indices {chosen[:5].tolist()}")
    print(f"memorised ({args.count} images drawn uniformly, as {args.samples} samples): FID {memorised:.2f}")
    print(f"{args.samples} other training images:                        FID {fresh:.2f}")


if __name__ == "__main__":
    main()
