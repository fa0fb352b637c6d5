"""Domain FID of a conv VAE-GAN (or its VAE baseline) under three batch-norm regimes at sampling.

The lab samples every system with its batch norms on running statistics. For the `vaegan`
decoder those statistics mix the two paths it is trained on (reconstructions of encoded images
and prior samples); the official code (`model/aegan.py`) draws samples through `decoder`, whose
statistics only the reconstruction path updates. This script rebuilds the decoder (and encoder)
in PyTorch from `checkpoints/last.safetensors`, draws 2,000 prior samples and scores them against
the first 2,000 Fashion-MNIST test images with the domain feature network, three ways:
- running: the checkpoint's running statistics (the lab's protocol; close to its `eval/fid`,
  with other latents);
- batch: each batch of 64 normalised with its own statistics;
- reconstruction path: running statistics re-estimated as the code keeps them, from 200 batches
  of 64 training images through the encoder and decoder (batch statistics, momentum 0.1).

    .venv/bin/python scripts/vaegan_bn_statistics.py \
        ~/.cache/lab/features/fashion-mnist.pt runs/zoo/vaegan_conv_*fashion_mnist/*
"""
import gzip
import sys

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from ring_coverage import read_safetensors  # the float32 tensors of a checkpoint, by name

FASHION = "/usr/share/datasets/fashion-mnist"
OUTPUT_PADDING = (0, 1, 1)  # the backward convolutions 4 → 7 → 14 → 28


def idx_images(name, count):
    raw = gzip.open(f"{FASHION}/{name}-images-idx3-ubyte.gz").read()[16:]
    images = np.frombuffer(raw, np.uint8).reshape(-1, 1, 28, 28)[:count].copy()
    return torch.from_numpy(images).float() / 127.5 - 1


def network(weights, name):
    prefix = f"net.{name}."
    return {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}


def norm(x, p, name, eps, train, stats=None):
    """Batch norm with γ, β from `p`; running statistics from `stats` (updated in place when
    training with them), or none at all when training without."""
    mean, var = (stats[f"{name}.running_mean"], stats[f"{name}.running_var"]) if stats else (None, None)
    return F.batch_norm(x, mean, var, p[f"{name}.weight"], p[f"{name}.bias"], train, 0.1, eps)


def decode(g, z, train, stats):
    h = norm(z @ g["fc.weight"].T, g, "fc_bn", 1e-5, train, stats).relu()
    h = h.view(-1, g["backconv0.weight"].shape[0], 4, 4)
    for i, padding in enumerate(OUTPUT_PADDING):
        h = F.conv_transpose2d(h, g[f"backconv{i}.weight"], stride=2, padding=2, output_padding=padding)
        h = norm(h, g, f"bn{i}", 1e-6, train, stats).relu()
    return torch.tanh(F.conv2d(h, g["out.weight"], g["out.bias"], padding=2))


def encode(e, x):
    """The encoder as in training: batch statistics; returns μ and log σ²."""
    h = x
    for i in range(3):
        h = norm(F.conv2d(h, e[f"conv{i}.weight"], stride=2, padding=2), e, f"bn{i}", 1e-6, True).relu()
    h = norm(h.flatten(1) @ e["fc.weight"].T, e, "fc_bn", 1e-5, True).relu()
    return h @ e["z_mu.weight"].T + e["z_mu.bias"], h @ e["z_logvar.weight"].T + e["z_logvar.bias"]


def fid(a, b):
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def main():
    torch.set_num_threads(1)
    features_net = torch.jit.load(sys.argv[1]).eval()

    def features(x):
        images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return torch.cat([features_net(c, True).flatten(1).double() for c in images.split(250)]).numpy()

    with torch.no_grad():
        real = features(idx_images("t10k", 2000))
        train = idx_images("train", 200 * 64)
        for run in sys.argv[2:]:
            raw = read_safetensors(f"{run}/checkpoints/last.safetensors")
            weights = {k: torch.from_numpy(v.copy()) for k, v in raw.items()}
            g, e = network(weights, "generator"), network(weights, "encoder")
            torch.manual_seed(0)
            z = torch.randn(2000, g["fc.weight"].shape[1])
            running = {k: v for k, v in g.items() if "running" in k}
            scores = {
                "running": fid(features(torch.cat([decode(g, c, False, running) for c in z.split(250)])), real),
                "batch": fid(features(torch.cat([decode(g, c, True, None) for c in z.split(64)])), real),
            }
            path = {k: v.clone() for k, v in running.items()}
            for x in train.split(64):
                mu, logvar = encode(e, x)
                decode(g, mu + (0.5 * logvar).exp() * torch.randn_like(mu), True, path)
            samples = torch.cat([decode(g, c, False, path) for c in z.split(250)])
            scores["reconstruction path"] = fid(features(samples), real)
            print(run, "  ".join(f"{k}: {v:.1f}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
