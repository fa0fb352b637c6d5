"""An independent PyTorch re-implementation of pix2pix's networks and objective, used only by the plugin's tests.

Written from the paper (Isola et al. 2017, Sections 3 and 6.1) and the facts of the official
defaults:

- G, a U-Net of `depth` = log2(size) levels. Level k (0 = outermost) has width
  ngf * min(2**k, 8). Going down, level k applies LeakyReLU(0.2) to what it receives (not at
  level 0, which receives the image), a 4x4 stride-2 padding-1 convolution, then a norm except
  at the outermost and innermost levels. Going up, level k applies ReLU, a 4x4 stride-2
  padding-1 transposed convolution back to the width of what it received, then a norm (not at
  level 0, which applies tanh instead) and, at levels 4 .. depth-2, dropout; every level but
  the outermost returns what it received concatenated with that (the skip connection).
- D, the PatchGAN: 4x4 convolutions with padding 1, stride 2 for the first `d_layers` ones,
  widths ndf * min(2**i, 8), LeakyReLU(0.2) after each, a norm after each but the first, then a
  4x4 stride-1 convolution to one channel (the logit map).
- Biases: on convolutions followed by a norm only when the norm is instance norm; the first and
  last convolutions of D and G's outermost transposed convolution always have one.
- Norms: batch norm (affine, eps 1e-5, running statistics moved by 0.1 with the unbiased
  variance) or instance norm without affine or running statistics.
- Objective: D minimises (BCE(D(A,B), 1) + BCE(D(A,G(A)), 0)) / 2 with G(A) detached; G minimises
  gan_weight * BCE(D(A,G(A)), 1) + lambda_l1 * mean|B - G(A)|; BCE on logits averaged over the
  whole patch map.
- Test protocol with noise: dropout on and batch norm on the batch's own statistics, the stored
  ones untouched.

Module and buffer names are chosen so that `state_dict()` keys equal the Rust plugin's variable
names; `load_state_dict(strict=True)` also checks that both sides hold the same tensors.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    pix2pix.py count                 parameter counts (256x256 RGB and 32x32 grey defaults), as JSON
    pix2pix.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import load, main, max_rel_diff, trainable  # noqa: E402

EPS = 1e-5
MOMENTUM = 0.1


class BatchNorm(nn.Module):
    """Batch norm over channels with a gain, a shift and stored statistics."""

    def __init__(self, n):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer("stored_mean", torch.zeros(n))
        self.register_buffer("stored_var", torch.ones(n))

    def forward(self, x, mode):
        if mode == "test_noise":
            return F.batch_norm(x, None, None, self.gain, self.bias, True, MOMENTUM, EPS)
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, mode == "train", MOMENTUM, EPS)


class InstanceNorm(nn.Module):
    """Each image's channels normalised by their own statistics; nothing learned."""

    def forward(self, x, mode):
        return F.instance_norm(x, eps=EPS)


def make_norm(kind, n):
    return BatchNorm(n) if kind == "batch" else InstanceNorm()


def width(base, k):
    return base * min(2 ** k, 8)


class UNet(nn.Module):
    def __init__(self, channels, size, ngf, norm, dropout):
        super().__init__()
        self.depth = int(math.log2(size))
        self.dropout = dropout
        bias = norm == "instance"
        for k in range(self.depth):
            outer = channels if k == 0 else width(ngf, k - 1)
            inner = width(ngf, k)
            innermost = k == self.depth - 1
            setattr(self, f"down{k}", nn.Conv2d(outer, inner, 4, 2, 1, bias=bias))
            if 0 < k < self.depth - 1:
                setattr(self, f"down_norm{k}", make_norm(norm, inner))
            up_in = inner if innermost else 2 * inner
            setattr(self, f"up{k}", nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias or k == 0))
            if k > 0:
                setattr(self, f"up_norm{k}", make_norm(norm, outer))

    def has_dropout(self, k):
        return self.dropout > 0 and 4 <= k <= self.depth - 2

    def level(self, k, x, mode):
        """What level k returns for what it receives, x."""
        h = x if k == 0 else F.leaky_relu(x, 0.2)
        h = getattr(self, f"down{k}")(h)
        if hasattr(self, f"down_norm{k}"):
            h = getattr(self, f"down_norm{k}")(h, mode)
        if k < self.depth - 1:
            h = self.level(k + 1, h, mode)
        u = getattr(self, f"up{k}")(F.relu(h))
        if k == 0:
            return torch.tanh(u)
        u = getattr(self, f"up_norm{k}")(u, mode)
        if self.has_dropout(k) and mode != "eval":
            u = F.dropout(u, self.dropout, True)
        return torch.cat([x, u], 1)

    def forward(self, a, mode):
        return self.level(0, a, mode)


class PatchGAN(nn.Module):
    def __init__(self, in_channels, ndf, layers, norm):
        super().__init__()
        self.count = layers + 2
        bias = norm == "instance"
        n_in = in_channels
        for i in range(self.count):
            last = i == self.count - 1
            n_out = 1 if last else width(ndf, i)
            stride = 2 if i < layers else 1
            setattr(self, f"conv{i}", nn.Conv2d(n_in, n_out, 4, stride, 1, bias=bias or i == 0 or last))
            if 0 < i < self.count - 1:
                setattr(self, f"norm{i}", make_norm(norm, n_out))
            n_in = n_out

    def forward(self, x, mode):
        for i in range(self.count):
            x = getattr(self, f"conv{i}")(x)
            if hasattr(self, f"norm{i}"):
                x = getattr(self, f"norm{i}")(x, mode)
            if i < self.count - 1:
                x = F.leaky_relu(x, 0.2)
        return x


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def networks(cfg):
    g = UNet(cfg["channels"], cfg["size"], cfg["ngf"], cfg["norm"], cfg["dropout"])
    d = PatchGAN(2 * cfg["channels"], cfg["ndf"], cfg["d_layers"], cfg["norm"])
    return g, d


def count():
    """Trainable parameters with the paper's defaults at 256x256 RGB and at 32x32 grey."""
    counts = {}
    for name, channels, size in [("rgb256", 3, 256), ("grey32", 1, 32)]:
        cfg = dict(channels=channels, size=size, ngf=64, ndf=64, norm="batch", dropout=0.5, d_layers=3)
        g, d = networks(cfg)
        counts[name] = {"G": trainable(g), "D": trainable(d)}
    return counts


def compare(directory):
    """Replays the recorded passes: G's training forward, D's loss on real and detached
    translated pairs (D's gradients), G's loss through D (G's gradients), the stored statistics
    after them, and G's evaluation passes with and without test noise."""
    with open(f"{directory}/config.json") as f:
        cfg = json.load(f)
    g, d = networks(cfg)
    g.double(), d.double()
    g.load_state_dict(load(f"{directory}/g_before.npz"), strict=True)
    d.load_state_dict(load(f"{directory}/d_before.npz"), strict=True)
    io = {k: t.double() for k, t in load(f"{directory}/io.npz").items()}
    a, b = io["a"], io["b"]
    diffs = {}

    fake = g(a, "train")
    real_logits = d(torch.cat([a, b], 1), "train")
    fake_logits = d(torch.cat([a, fake.detach()], 1), "train")
    d_loss = (bce(real_logits, 1.0) + bce(fake_logits, 0.0)) / 2
    d_loss.backward()
    d_grads = {k: p.grad.clone() for k, p in d.named_parameters()}
    d.zero_grad()

    g_logits = d(torch.cat([a, fake], 1), "train")
    l1 = (b - fake).abs().mean()
    gan = bce(g_logits, 1.0)
    g_loss = cfg["gan_weight"] * gan + cfg["lambda_l1"] * l1
    g_loss.backward()
    g_grads = {k: p.grad.clone() for k, p in g.named_parameters()}

    for key, ours in [("fake", fake), ("real_logits", real_logits), ("fake_logits", fake_logits),
                      ("g_logits", g_logits), ("d_loss", d_loss), ("g_loss", g_loss), ("l1", l1), ("gan", gan)]:
        diffs[f"train.{key}"] = max_rel_diff(io[key], ours.detach())

    grads = load(f"{directory}/grads.npz")
    worst = {}
    for prefix, own in [("g", g_grads), ("d", d_grads)]:
        scale = max(t.abs().max().item() for t in own.values())
        per = {k: (grads[f"{prefix}.{k}"].double() - t).abs().max().item() / scale for k, t in own.items()}
        key = max(per, key=per.get)
        diffs[f"{prefix}.grads"], worst[f"{prefix}.grads"] = per[key], key
        after = load(f"{directory}/{prefix}_after.npz")
        net = g if prefix == "g" else d
        per = {k: max_rel_diff(after[k], t) for k, t in net.named_buffers()}
        if per:
            key = max(per, key=per.get)
            diffs[f"{prefix}.buffers_after"], worst[f"{prefix}.buffers_after"] = per[key], key

    with torch.no_grad():
        diffs["eval.fake"] = max_rel_diff(io["eval_fake"], g(a, "eval"))
        before = {k: t.clone() for k, t in g.named_buffers()}
        diffs["test_noise.fake"] = max_rel_diff(io["test_noise_fake"], g(a, "test_noise"))
        moved = max((before[k] - t).abs().max().item() for k, t in g.named_buffers()) if before else 0.0
        diffs["test_noise.stored_statistics_moved"] = moved
        diffs["eval.logits"] = max_rel_diff(io["eval_logits"], d(torch.cat([a, b], 1), "eval"))
    return {"params": {"G": trainable(g), "D": trainable(d)}, "max_rel_diff": diffs, "worst_tensor": worst}


if __name__ == "__main__":
    main(__doc__, count, compare)
