"""Mode coverage of the ring experiments, recomputed in numpy from the runs' checkpoints.

An independent check of `toy/modes` and `toy/high_quality` (which the trainer logs with every
scatter), and the same measure at wider radii, to tell a generator that misses the modes by a
little (broad or rotated clusters) from one that collapsed. It rebuilds the `mlp` generator
(two tanh layers and a linear output) from `checkpoints/last.safetensors`, draws 2,000 points
from its own N(0, I) latents and counts, per radius, the modes holding at least 20% of their
fair share of the points and the share of points that lie within the radius of a mode. A fair
share follows the mode's weight: with `data.toy_endpoint` (LSGAN's 9 components on 8 modes) the
mode at angle 0 holds 2/9 of the data and each other 1/9.

    .venv/bin/python scripts/ring_coverage.py runs/zoo/lsgan_ring__seed=*/* runs/zoo/gan_ring__seed=*/*
"""
import json
import struct
import sys
import tomllib

import numpy as np

RADII = (0.03, 0.1, 0.2)  # 3σ of the modes' std 0.01, then wider
MODES = np.array([[np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)] for k in range(8)])


def read_safetensors(path):
    """The float32 tensors of a safetensors file, by name (the format's header is JSON)."""
    raw = open(path, "rb").read()
    size = struct.unpack("<Q", raw[:8])[0]
    header, base, out = json.loads(raw[8 : 8 + size]), 8 + size, {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, end = entry["data_offsets"]
        out[name] = np.frombuffer(raw[base + start : base + end], dtype=np.float32).reshape(entry["shape"])
    return out


def generate(tensors, count=2000, seed=0):
    """`count` points from the checkpoint's generator, in float64."""
    layer = lambda n: (tensors[f"net.generator.{n}.weight"].astype(np.float64), tensors[f"net.generator.{n}.bias"].astype(np.float64))
    z = np.random.default_rng(seed).standard_normal((count, layer("fc1")[0].shape[1]))
    (w1, b1), (w2, b2), (w3, b3) = layer("fc1"), layer("fc2"), layer("out")
    return np.tanh(np.tanh(z @ w1.T + b1) @ w2.T + b2) @ w3.T + b3


def mode_weights(run):
    """Each mode's share of the data, from the run's resolved config."""
    data = tomllib.load(open(f"{run}/config.toml", "rb"))["data"]
    if data.get("toy_endpoint", False):
        components = [k % (data["toy_modes"] - 1) for k in range(data["toy_modes"])]
        return np.bincount(components, minlength=len(MODES)) / len(components)
    return np.full(len(MODES), 1 / len(MODES))


def coverage(points, radius, weights, min_share=0.2):
    """(modes covered, share of points within `radius` of their nearest mode)."""
    distance = np.linalg.norm(points[:, None, :] - MODES[None], axis=2)
    nearest, closest = distance.argmin(1), distance.min(1)
    hits = np.bincount(nearest[closest <= radius], minlength=len(MODES))
    covered = int(((hits > 0) & (hits >= min_share * len(points) * weights)).sum())
    return covered, float((closest <= radius).mean())


def main(runs):
    if not runs:
        sys.exit(__doc__)
    for run in runs:
        points = generate(read_safetensors(f"{run}/checkpoints/last.safetensors"))
        cells = [coverage(points, r, mode_weights(run)) for r in RADII]
        modes = " / ".join(str(m) for m, _ in cells)
        shares = " / ".join(f"{s:.3f}" for _, s in cells)
        print(f"{run}: modes within {' / '.join(map(str, RADII))}: {modes}; share: {shares}")


if __name__ == "__main__":
    main(sys.argv[1:])
