"""An independent PyTorch re-implementation of SNGAN's CIFAR-10 networks, used only by the plugin's tests.

Written from the paper (Miyato et al., ICLR 2018, Tables 3 and 4, Appendix A) and the layer lists
of the official chainer code (pfnet-research/sngan_projection for the ResNet; chainer-gan-lib's
`DCGANGenerator` / `SNDCGANDiscriminator` for the standard CNN):

- Spectral norm: W / sigma with sigma = u W v after one power-iteration step from the stored u,
  written in the official row-vector form (v = l2n(u W), u = l2n(v W^T), sigma = sum((u W) * v))
  with l2n(x) = x / (||x|| + 1e-12); the step is taken in evaluation too, but only training stores
  the new u.
- ResNet G: linear z -> ch x 4 x 4; three up-blocks (BN, ReLU, nearest 2x, conv3x3, BN, ReLU,
  conv3x3; shortcut: nearest 2x then conv1x1); BN, ReLU, conv3x3 to 3, tanh. Conditional: the
  block norms take a gain and a bias per class (stored here as gain - 1, as the plugin does).
- ResNet D: optimized block (conv3x3, ReLU, conv3x3, avgpool2; shortcut avgpool2 then conv1x1),
  a pre-activation down-block (shortcut conv1x1 then avgpool2), two pre-activation blocks with
  identity shortcuts; ReLU; sum (or mean) over space; linear to 1 without bias; projection term.
- CNN G: linear z -> 512 x 4 x 4; three [deconv4x4 s2 p1, BN, ReLU] halving the channels;
  conv3x3 to 3; tanh.
- CNN D: conv3x3 64, conv4x4 s2 64, conv3x3 128, conv4x4 s2 128, conv3x3 256, conv4x4 s2 256,
  conv3x3 512, each followed by LeakyReLU(0.1); linear from 512*4*4 to 1.

Module and buffer names are chosen so that `state_dict()` keys equal the Rust plugin's variable
names; `load_state_dict(strict=True)` therefore also checks that both sides have exactly the same
tensors with the same shapes.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    sngan_cifar.py count                 parameter counts at the paper's widths, as JSON
    sngan_cifar.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON

Each DIR holds `config.json`, `g_before.npz`, `d_before.npz` (all tensors before anything ran),
`io.npz` (inputs and outputs of the Rust run, input gradients included), `g_after.npz`,
`d_after.npz` (tensors after the training-mode passes) and `grads.npz` (gradients of every
trainable tensor). The replay runs in float64, as the Rust run did, and reports for each quantity
its largest difference relative to the largest value (for gradients: to the network's largest
gradient), plus the tensor where it occurred.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import compare_gan_passes, main, trainable  # noqa: E402

SN_EPS = 1e-12  # sngan_projection source/functions/max_sv.py `_l2normalize`
BN_MOMENTUM = 0.1  # chainer BatchNormalization decay 0.9


def l2n(x):
    return x / (torch.sqrt(torch.sum(x * x)) + SN_EPS)


def spectral_weight(module, train):
    w = module.weight
    w_mat = w.reshape(w.shape[0], -1)
    with torch.no_grad():
        u = module.weight_u.reshape(1, -1)
        v = l2n(u @ w_mat)
        u = l2n(v @ w_mat.t())
        if train:
            module.weight_u.copy_(u.reshape(-1))
    sigma = torch.sum((u @ w_mat) * v)
    return w / sigma


class SNMixin:
    def setup_sn(self, sn, rows):
        self.sn = sn
        if sn:
            self.register_buffer("weight_u", torch.randn(rows))

    def current_weight(self):
        return spectral_weight(self, self.training) if self.sn else self.weight


class Conv(nn.Conv2d, SNMixin):
    def __init__(self, c_in, c_out, kernel, stride=1, padding=None, sn=False):
        padding = kernel // 2 if padding is None else padding
        super().__init__(c_in, c_out, kernel, stride=stride, padding=padding)
        self.setup_sn(sn, c_out)

    def forward(self, x):
        return F.conv2d(x, self.current_weight(), self.bias, self.stride, self.padding)


class Linear(nn.Linear, SNMixin):
    def __init__(self, n_in, n_out, sn=False, bias=True):
        super().__init__(n_in, n_out, bias=bias)
        self.setup_sn(sn, n_out)

    def forward(self, x):
        return F.linear(x, self.current_weight(), self.bias)


class Embed(nn.Embedding, SNMixin):
    def __init__(self, classes, dim, sn=False):
        super().__init__(classes, dim)
        self.setup_sn(sn, classes)

    def forward(self, y):
        return F.embedding(y, self.current_weight())


class BN(nn.Module):
    """Batch norm with a learned gain and bias, or (with `classes`) one of each per class."""

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
                                self.training, BN_MOMENTUM, self.eps)
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, BN_MOMENTUM, self.eps)
        n = y.shape[0]
        return out * (1 + self.gain(y)).view(n, -1, 1, 1) + self.bias(y).view(n, -1, 1, 1)


def up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def down(x):
    return F.avg_pool2d(x, 2)


# --- ResNet (Table 4) ------------------------------------------------------------------------

class ResGBlock(nn.Module):
    def __init__(self, ch, eps, classes):
        super().__init__()
        self.bn1 = BN(ch, eps, classes)
        self.conv1 = Conv(ch, ch, 3)
        self.bn2 = BN(ch, eps, classes)
        self.conv2 = Conv(ch, ch, 3)
        self.conv_sc = Conv(ch, ch, 1)

    def forward(self, x, y):
        h = self.conv1(up(F.relu(self.bn1(x, y))))
        h = self.conv2(F.relu(self.bn2(h, y)))
        return h + self.conv_sc(up(x))


class OutputLayer(nn.Module):
    def __init__(self, ch, image_channels, eps):
        super().__init__()
        self.bn = BN(ch, eps)
        self.conv = Conv(ch, image_channels, 3)

    def forward(self, x):
        return torch.tanh(self.conv(F.relu(self.bn(x))))


class ResGenerator(nn.Module):
    def __init__(self, ch, z_dim, classes, eps, image_channels):
        super().__init__()
        self.ch = ch
        self.linear = Linear(z_dim, 4 * 4 * ch)
        self.blocks = nn.ModuleList([ResGBlock(ch, eps, classes) for _ in range(3)])
        self.output_layer = OutputLayer(ch, image_channels, eps)

    def forward(self, z, y=None):
        h = self.linear(z).view(-1, self.ch, 4, 4)
        for b in self.blocks:
            h = b(h, y)
        return self.output_layer(h)


class OptimizedDBlock(nn.Module):
    def __init__(self, c_in, c_out, sn):
        super().__init__()
        self.conv1 = Conv(c_in, c_out, 3, sn=sn)
        self.conv2 = Conv(c_out, c_out, 3, sn=sn)
        self.conv_sc = Conv(c_in, c_out, 1, sn=sn)

    def forward(self, x):
        h = down(self.conv2(F.relu(self.conv1(x))))
        return h + self.conv_sc(down(x))


class ResDBlock(nn.Module):
    def __init__(self, ch, downsample, sn):
        super().__init__()
        self.downsample = downsample
        self.conv1 = Conv(ch, ch, 3, sn=sn)
        self.conv2 = Conv(ch, ch, 3, sn=sn)
        if downsample:
            self.conv_sc = Conv(ch, ch, 1, sn=sn)

    def forward(self, x):
        h = self.conv2(F.relu(self.conv1(F.relu(x))))
        if self.downsample:
            return down(h) + down(self.conv_sc(x))
        return h + x


class ResDiscriminator(nn.Module):
    def __init__(self, ch, classes, sn, pooling, image_channels):
        super().__init__()
        self.pooling = pooling
        self.blocks = nn.ModuleList([
            OptimizedDBlock(image_channels, ch, sn),
            ResDBlock(ch, True, sn),
            ResDBlock(ch, False, sn),
            ResDBlock(ch, False, sn),
        ])
        self.linear = Linear(ch, 1, sn=sn, bias=False)
        self.embed = Embed(classes, ch, sn=sn) if classes else None

    def forward(self, x, y=None):
        h = x
        for b in self.blocks:
            h = b(h)
        h = F.relu(h)
        h = h.sum(dim=(2, 3)) if self.pooling == "sum" else h.mean(dim=(2, 3))
        out = self.linear(h).view(-1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)
        return out, h


# --- Standard CNN (Table 3) ------------------------------------------------------------------

class CnnUpBlock(nn.Module):
    def __init__(self, c_in, c_out, eps):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)
        self.bn = BN(c_out, eps)

    def forward(self, x):
        return F.relu(self.bn(self.deconv(x)))


class CnnGenerator(nn.Module):
    def __init__(self, ch, z_dim, eps, image_channels):
        super().__init__()
        self.ch = ch
        self.linear = Linear(z_dim, 4 * 4 * ch)
        self.blocks = nn.ModuleList([CnnUpBlock(ch // 2 ** i, ch // 2 ** (i + 1), eps) for i in range(3)])
        self.output_conv = Conv(ch // 8, image_channels, 3)

    def forward(self, z, y=None):
        h = self.linear(z).view(-1, self.ch, 4, 4)
        for b in self.blocks:
            h = b(h)
        return torch.tanh(self.output_conv(h))


class CnnDiscriminator(nn.Module):
    def __init__(self, ch, sn, slope, image_channels):
        super().__init__()
        self.slope = slope
        c8, c4, c2 = ch // 8, ch // 4, ch // 2
        layers = [(image_channels, c8, 3), (c8, c8, 4), (c8, c4, 3), (c4, c4, 4), (c4, c2, 3), (c2, c2, 4), (c2, ch, 3)]
        self.convs = nn.ModuleList([
            Conv(i, o, k, stride=2 if k == 4 else 1, padding=1, sn=sn) for i, o, k in layers
        ])
        self.linear = Linear(ch * 4 * 4, 1, sn=sn)

    def forward(self, x, y=None):
        h = x
        for c in self.convs:
            h = F.leaky_relu(c(h), self.slope)
        h = h.flatten(1)
        return self.linear(h).view(-1), h


# --- Building, counting, replaying -----------------------------------------------------------

def build(cfg):
    classes = cfg["classes"] or None
    if cfg["kind"] == "resnet":
        g = ResGenerator(cfg["g_channels"], cfg["z_dim"], classes, cfg["bn_eps"], cfg["image_channels"])
        d = ResDiscriminator(cfg["d_channels"], classes, cfg["d_sn"], cfg["pooling"], cfg["image_channels"])
    else:
        g = CnnGenerator(cfg["g_channels"], cfg["z_dim"], cfg["bn_eps"], cfg["image_channels"])
        d = CnnDiscriminator(cfg["d_channels"], cfg["d_sn"], cfg["leaky_slope"], cfg["image_channels"])
    return g, d


def count():
    """Trainable parameters at the paper's widths (CIFAR-10: 3 channels, 10 classes, z 128)."""
    base = {"z_dim": 128, "bn_eps": 2e-5, "image_channels": 3, "d_sn": True, "leaky_slope": 0.1, "pooling": "sum"}
    setups = {
        "resnet": dict(base, kind="resnet", g_channels=256, d_channels=128, classes=0),
        "resnet_conditional": dict(base, kind="resnet", g_channels=256, d_channels=128, classes=10),
        "cnn": dict(base, kind="cnn", g_channels=512, d_channels=512, classes=0),
        # WGAN-GP's ResNet (gan_cifar_resnet.py, DIM_G = DIM_D = 128): no SN, mean pooling.
        "wgan_gp_resnet": dict(base, kind="resnet", g_channels=128, d_channels=128, classes=0, d_sn=False,
                               pooling="mean"),
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
