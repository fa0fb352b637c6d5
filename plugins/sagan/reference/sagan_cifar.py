"""An independent PyTorch re-implementation of SAGAN's CIFAR-10 networks, used only by the plugin's tests.

Written from the paper (Zhang et al., ICML 2019, Section 3 and its Figure 2) and from the layer
list of StudioGAN's CIFAR-10 SAGAN (its SNGAN ResNet with self-attention after G's second block
and D's first; class-conditional batch norm in G, a projection discriminator):

- Spectral norm on every weight of both networks (convolutions, linear layers, the projection
  embedding and the conditional norm's gain and bias tables): W / sigma, with one power-iteration
  step from the stored u in training (v = n(W^T u), u = n(W v), sigma = u . W v, the new u
  stored), n(x) = x / max(||x||, 1e-6) as torch.nn.functional.normalize; evaluation takes no
  step: v = n(W^T u) from the stored u, sigma = u . W v.
- Self-attention over a C-channel map x of H x W: f = 1x1 conv to C/8 (queries), g = 1x1 conv to
  C/8 then 2x2 max pool (keys), h = 1x1 conv to C/2 then 2x2 max pool (values), all without bias;
  beta[i, j] = softmax over j of f_i . g_j; o_i = sum_j beta[i, j] h_j; out = x + gamma * v(o)
  with v a 1x1 conv from C/2 to C without bias and gamma a learned scalar.
- G: linear z -> ch x 4 x 4 (with bias); three up-blocks (BN, ReLU, nearest 2x, conv3x3, BN,
  ReLU, conv3x3; shortcut: nearest 2x then conv1x1); attention after block g_attention_after;
  BN, ReLU, conv3x3 to the image, tanh. Block norms: eps 1e-4, momentum 0.1, conditional ones
  without affine, scaled by 1 + gain[y] and shifted by bias[y]; the output norm plain.
- D: optimized block (conv3x3, ReLU, conv3x3, avgpool2; shortcut avgpool2 then conv1x1), a
  pre-activation down-block (shortcut conv1x1 then avgpool2), two pre-activation blocks with
  identity shortcuts; attention after block d_attention_after; ReLU; sum over space; linear to
  1 with a bias; plus the projection <embed(y), features>.

Module and buffer names are chosen so that `state_dict()` keys equal the Rust plugin's variable
names; `load_state_dict(strict=True)` therefore also checks that both sides have exactly the same
tensors with the same shapes.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    sagan_cifar.py count                 parameter counts at StudioGAN's widths, as JSON
    sagan_cifar.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON

The recorded files and the report are those of core/plugin-testkit/python/lab_reference.py.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import compare_gan_passes, main, trainable  # noqa: E402

SN_EPS = 1e-6
BN_EPS = 1e-4
BN_MOMENTUM = 0.1


class Spectral(nn.Module):
    """Holds `weight` (any shape, rows first) and its left singular-vector estimate `weight_u`."""

    def __init__(self, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(*shape))
        self.register_buffer("weight_u", F.normalize(torch.randn(shape[0]), dim=0))

    def normalized_weight(self):
        w = self.weight.flatten(1)
        with torch.no_grad():
            v = F.normalize(w.t() @ self.weight_u, dim=0, eps=SN_EPS)
            if self.training:
                u = F.normalize(w @ v, dim=0, eps=SN_EPS)
                self.weight_u.copy_(u)
            else:
                u = self.weight_u.clone()
        sigma = torch.dot(u, w @ v)
        return self.weight / sigma


class SNConv(Spectral):
    def __init__(self, c_in, c_out, kernel, bias=True):
        super().__init__((c_out, c_in, kernel, kernel))
        self.padding = kernel // 2
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class SNLinear(Spectral):
    def __init__(self, n_in, n_out):
        super().__init__((n_out, n_in))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbed(Spectral):
    def __init__(self, classes, dim):
        super().__init__((classes, dim))

    def forward(self, y):
        return self.normalized_weight()[y]


class BN(nn.Module):
    """Batch norm with a learned gain and bias, or (with `classes`) spectrally normalised
    per-class tables read as 1 + gain[y] and bias[y]."""

    def __init__(self, channels, classes=None):
        super().__init__()
        self.conditional = classes is not None
        if self.conditional:
            self.gain = SNEmbed(classes, channels)
            self.bias = SNEmbed(classes, channels)
        else:
            self.gain = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))

    def forward(self, x, y=None):
        if not self.conditional:
            return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias,
                                self.training, BN_MOMENTUM, BN_EPS)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, BN_MOMENTUM, BN_EPS)
        return out * (1 + self.gain(y))[:, :, None, None] + self.bias(y)[:, :, None, None]


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.query = SNConv(c, c // 8, 1, bias=False)
        self.key = SNConv(c, c // 8, 1, bias=False)
        self.value = SNConv(c, c // 2, 1, bias=False)
        self.output = SNConv(c // 2, c, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        n, _, height, width = x.shape
        f = self.query(x).flatten(2)
        g = F.max_pool2d(self.key(x), 2).flatten(2)
        h = F.max_pool2d(self.value(x), 2).flatten(2)
        beta = torch.softmax(torch.einsum("nci,ncj->nij", f, g), dim=-1)
        o = torch.einsum("ncj,nij->nci", h, beta).reshape(n, -1, height, width)
        return x + self.gamma * self.output(o)


def up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def down(x):
    return F.avg_pool2d(x, 2)


class GBlock(nn.Module):
    def __init__(self, ch, classes):
        super().__init__()
        self.bn1 = BN(ch, classes)
        self.conv1 = SNConv(ch, ch, 3)
        self.bn2 = BN(ch, classes)
        self.conv2 = SNConv(ch, ch, 3)
        self.conv_sc = SNConv(ch, ch, 1)

    def forward(self, x, y):
        h = self.conv1(up(F.relu(self.bn1(x, y))))
        h = self.conv2(F.relu(self.bn2(h, y)))
        return h + self.conv_sc(up(x))


class OutputLayer(nn.Module):
    def __init__(self, ch, image_channels):
        super().__init__()
        self.bn = BN(ch)
        self.conv = SNConv(ch, image_channels, 3)

    def forward(self, x):
        return torch.tanh(self.conv(F.relu(self.bn(x))))


class Generator(nn.Module):
    def __init__(self, ch, z_dim, classes, image_channels, attention_after):
        super().__init__()
        self.ch, self.attention_after = ch, attention_after
        self.linear = SNLinear(z_dim, 4 * 4 * ch)
        self.blocks = nn.ModuleList([GBlock(ch, classes) for _ in range(3)])
        if attention_after:
            self.attention = Attention(ch)
        self.output_layer = OutputLayer(ch, image_channels)

    def forward(self, z, y=None):
        h = self.linear(z).view(-1, self.ch, 4, 4)
        for number, block in enumerate(self.blocks, start=1):
            h = block(h, y)
            if number == self.attention_after:
                h = self.attention(h)
        return self.output_layer(h)


class OptimizedDBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = SNConv(c_in, c_out, 3)
        self.conv2 = SNConv(c_out, c_out, 3)
        self.conv_sc = SNConv(c_in, c_out, 1)

    def forward(self, x):
        return down(self.conv2(F.relu(self.conv1(x)))) + self.conv_sc(down(x))


class DBlock(nn.Module):
    def __init__(self, ch, downsample):
        super().__init__()
        self.downsample = downsample
        self.conv1 = SNConv(ch, ch, 3)
        self.conv2 = SNConv(ch, ch, 3)
        if downsample:
            self.conv_sc = SNConv(ch, ch, 1)

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        if self.downsample:
            return down(h) + down(self.conv_sc(x))
        return h + x


class Discriminator(nn.Module):
    def __init__(self, ch, classes, image_channels, attention_after):
        super().__init__()
        self.attention_after = attention_after
        self.blocks = nn.ModuleList([
            OptimizedDBlock(image_channels, ch), DBlock(ch, True), DBlock(ch, False), DBlock(ch, False),
        ])
        if attention_after:
            self.attention = Attention(ch)
        self.linear = SNLinear(ch, 1)
        self.embed = SNEmbed(classes, ch) if classes else None

    def forward(self, x, y=None):
        h = x
        for number, block in enumerate(self.blocks, start=1):
            h = block(h)
            if number == self.attention_after:
                h = self.attention(h)
        features = F.relu(h).sum(dim=(2, 3))
        out = self.linear(features).view(-1)
        if self.embed is not None:
            out = out + (self.embed(y) * features).sum(dim=1)
        return out, features


def build(cfg):
    classes = cfg["classes"] or None
    g = Generator(cfg["g_channels"], cfg["z_dim"], classes, cfg["image_channels"], cfg["g_attention_after"])
    d = Discriminator(cfg["d_channels"], classes, cfg["image_channels"], cfg["d_attention_after"])
    return g, d


def count():
    """Trainable parameters at StudioGAN's CIFAR-10 widths (3 channels, 10 classes, z 128)."""
    base = {"g_channels": 256, "d_channels": 128, "z_dim": 128, "image_channels": 3}
    setups = {
        "sagan": dict(base, classes=10, g_attention_after=2, d_attention_after=1),
        "sagan_unconditional": dict(base, classes=0, g_attention_after=2, d_attention_after=1),
        "no_attention": dict(base, classes=10, g_attention_after=0, d_attention_after=0),
    }
    out = {}
    for name, cfg in setups.items():
        g, d = build(cfg)
        out["G_" + name], out["D_" + name] = trainable(g), trainable(d)
    return out


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    g, d = build(cfg)
    return compare_gan_passes(directory, g, d, cfg["classes"])

if __name__ == "__main__":
    main(__doc__, count, compare)
