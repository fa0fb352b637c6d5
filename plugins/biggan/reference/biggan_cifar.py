"""An independent PyTorch re-implementation of BigGAN-CIFAR, used only by the plugin's tests.

It follows BigGAN-PyTorch's `arch[32]` as the DiffAugment BigGAN-CIFAR scripts configure it
(G_ch = D_ch = 64, dim_z = 128, no shared embedding, no hierarchical z, no attention, spectral
norm in G and D with one power iteration written in BigGAN-PyTorch's row-vector form, `ccbn` with
per-class gain/bias embeddings and gain = 1 + embedding, a plain `bn` with eps 1e-5 before the
output conv, projection D). Module and buffer names are chosen so that `state_dict()` keys equal
the Rust plugin's variable names; `load_state_dict(strict=True)` therefore also checks that both
sides have exactly the same tensors with the same shapes.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    biggan_cifar.py count                 parameter counts at the default width, as JSON
    biggan_cifar.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON

Each DIR holds `config.json`, `g_before.npz`, `d_before.npz` (all tensors before anything ran),
`io.npz` (inputs, outputs of the Rust run), `g_after.npz`, `d_after.npz` (tensors after one
training step's forward passes) and `grads.npz` (gradients of every trainable tensor). The replay
runs in float64, as the Rust run did, and reports for each quantity its largest difference
relative to the largest value (for gradients: to the network's largest gradient), plus the
tensor where it occurred.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import eval_diffs, load_networks, main, max_rel_diff, network_diffs, own_gradients, trainable  # noqa: E402

SN_EPS = 1e-8  # utils.py's SN_eps default, used by the DiffAugment scripts
OUTPUT_BN_EPS = 1e-5  # layers.bn is built without BN_eps


def spectral_weight(module, train):
    """W / sigma(W) after one power-iteration step from the stored u (rows of W as outputs)."""
    w = module.weight
    w_mat = w.reshape(w.size(0), -1)
    with torch.no_grad():
        u = module.weight_u.view(1, -1)
        v = F.normalize(torch.matmul(u, w_mat), eps=SN_EPS)
        u = F.normalize(torch.matmul(v, w_mat.t()), eps=SN_EPS)
        if train:
            module.weight_u.copy_(u.view(-1))
    sigma = torch.squeeze(torch.matmul(torch.matmul(v, w_mat.t()), u.t()))
    return w / sigma


class Conv(nn.Conv2d):
    def __init__(self, c_in, c_out, kernel, sn):
        super().__init__(c_in, c_out, kernel, padding=kernel // 2)
        self.sn = sn
        if sn:
            self.register_buffer("weight_u", torch.randn(c_out))

    def forward(self, x):
        w = spectral_weight(self, self.training) if self.sn else self.weight
        return F.conv2d(x, w, self.bias, padding=self.padding)


class Linear(nn.Linear):
    def __init__(self, n_in, n_out, sn):
        super().__init__(n_in, n_out)
        self.sn = sn
        if sn:
            self.register_buffer("weight_u", torch.randn(n_out))

    def forward(self, x):
        w = spectral_weight(self, self.training) if self.sn else self.weight
        return F.linear(x, w, self.bias)


class Embedding(nn.Embedding):
    def __init__(self, classes, dim, sn):
        super().__init__(classes, dim)
        self.sn = sn
        if sn:
            self.register_buffer("weight_u", torch.randn(classes))

    def forward(self, y):
        w = spectral_weight(self, self.training) if self.sn else self.weight
        return F.embedding(y, w)


class BN(nn.Module):
    """`layers.bn` (learned gain/bias) or, with `classes`, `layers.ccbn` over nn.Embedding."""

    def __init__(self, channels, eps, classes=None):
        super().__init__()
        self.eps, self.conditional = eps, classes is not None
        if self.conditional:
            self.gain = nn.Embedding(classes, channels)
            self.bias = nn.Embedding(classes, channels)
        else:
            self.gain = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x, y=None):
        if not self.conditional:
            return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias,
                                self.training, 0.1, self.eps)
        gain = (1 + self.gain(y)).view(y.size(0), -1, 1, 1)
        bias = self.bias(y).view(y.size(0), -1, 1, 1)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        return out * gain + bias


class GBlock(nn.Module):
    def __init__(self, c_in, c_out, sn, eps, classes):
        super().__init__()
        self.bn1 = BN(c_in, eps, classes)
        self.conv1 = Conv(c_in, c_out, 3, sn)
        self.bn2 = BN(c_out, eps, classes)
        self.conv2 = Conv(c_out, c_out, 3, sn)
        self.conv_sc = Conv(c_in, c_out, 1, sn)  # upsampling blocks always learn their shortcut

    def forward(self, x, y):
        h = F.relu(self.bn1(x, y))
        h = F.interpolate(h, scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h, y)))
        return h + self.conv_sc(x)


class OutputLayer(nn.Module):
    def __init__(self, c_in, c_out, sn):
        super().__init__()
        self.bn = BN(c_in, OUTPUT_BN_EPS)
        self.conv = Conv(c_in, c_out, 3, sn)

    def forward(self, x):
        return self.conv(F.relu(self.bn(x)))


class Generator(nn.Module):
    def __init__(self, ch, z_dim, classes, sn, eps, image_channels=3):
        super().__init__()
        self.c = 4 * ch
        self.linear = Linear(z_dim, self.c * 4 * 4, sn)
        self.blocks = nn.ModuleList([GBlock(self.c, self.c, sn, eps, classes) for _ in range(3)])
        self.output_layer = OutputLayer(self.c, image_channels, sn)

    def forward(self, z, y=None):
        h = self.linear(z).view(z.size(0), self.c, 4, 4)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.output_layer(h))


class DBlock(nn.Module):
    def __init__(self, c_in, c_out, sn, preactivation, downsample):
        super().__init__()
        self.preactivation, self.downsample = preactivation, downsample
        self.conv1 = Conv(c_in, c_out, 3, sn)
        self.conv2 = Conv(c_out, c_out, 3, sn)
        self.learnable_sc = c_in != c_out or downsample
        if self.learnable_sc:
            self.conv_sc = Conv(c_in, c_out, 1, sn)

    def shortcut(self, x):
        if self.preactivation:
            x = self.conv_sc(x) if self.learnable_sc else x
            return F.avg_pool2d(x, 2) if self.downsample else x
        x = F.avg_pool2d(x, 2) if self.downsample else x
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x):
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class Discriminator(nn.Module):
    def __init__(self, ch, classes, sn, image_channels=3):
        super().__init__()
        c = 4 * ch
        ins, downs = [image_channels, c, c, c], [True, True, False, False]
        self.blocks = nn.ModuleList([DBlock(ins[i], c, sn, i > 0, downs[i]) for i in range(4)])
        self.linear = Linear(c, 1, sn)
        self.embed = Embedding(classes, c, sn) if classes else None

    def forward(self, x, y=None):
        h = x
        for block in self.blocks:
            h = block(h)
        h = torch.sum(F.relu(h), [2, 3])
        out = self.linear(h)
        if self.embed is not None:
            out = out + torch.sum(self.embed(y) * h, 1, keepdim=True)
        return out.view(-1), h


def count(ch=64, z_dim=128, classes=10):
    out = {}
    for name, k in [("conditional", classes), ("unconditional", None)]:
        out["G_" + name] = trainable(Generator(ch, z_dim, k, True, 1e-5))
        out["D_" + name] = trainable(Discriminator(ch, k, True))
    return out


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    classes = cfg["classes"] or None
    g = Generator(cfg["g_ch"], cfg["z_dim"], classes, cfg["g_sn"], cfg["bn_eps"], cfg["image_channels"])
    d = Discriminator(cfg["d_ch"], classes, cfg["d_sn"], cfg["image_channels"])
    io = load_networks(directory, g, d)
    y = io["y"] if classes else None
    diffs, worst = {}, {}

    # One training-mode pass, as in a G step: D(G(z, y), y), loss = mean logit.
    g.train(), d.train()
    fake = g(io["z"], y)
    logits, features = d(fake, y)
    logits.mean().backward()
    diffs["train.fake"] = max_rel_diff(io["fake"], fake.detach())
    diffs["train.logits"] = max_rel_diff(io["logits"], logits.detach())
    diffs["train.features"] = max_rel_diff(io["features"], features.detach())
    g_grads, d_grads = own_gradients(g, d)
    network_diffs(directory, [(g, "g", g_grads), (d, "d", d_grads)], diffs, worst)
    eval_diffs(g, d, io, y, diffs)
    return {"params": {"G": trainable(g), "D": trainable(d)}, "max_rel_diff": diffs, "worst_tensor": worst}


if __name__ == "__main__":
    main(__doc__, count, compare)
