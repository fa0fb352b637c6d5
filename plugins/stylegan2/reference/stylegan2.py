"""An independent PyTorch re-implementation of StyleGAN2's networks, used only by the plugin's tests.

Written from the paper (Karras et al. 2020: Section 2.2 and eq. 1-3 for modulation and
demodulation, Appendix B for equalised learning rate, the skip generator and the discriminators,
minibatch standard deviation from Karras et al. 2018) and from the configuration of
stylegan2-ada-pytorch's `--cfg=cifar` as shared/ZOO.md describes it. It computes every
operation the straightforward way, so that agreeing with the plugin checks the plugin's faster
forms:

- Resampling is zero insertion followed by the [1, 3, 3, 1] x [1, 3, 3, 1] / 64 low-pass filter
  (x4 when going up), or filtering followed by dropping every other pixel; the 3x3 convolution
  that doubles the resolution is "insert zeros, pad, filter, convolve with the kernel flipped
  (a true convolution)", and the one that halves it "pad, convolve, filter, subsample" (the
  plugin uses a transposed convolution and a strided one instead).
- The modulated convolution builds each sample's own weight w'_oik = s_i w_oik, demodulates it
  by 1 / sqrt(sum_ik w'^2 + 1e-8) and runs a grouped convolution (the plugin scales activations
  instead, by linearity).
- Minibatch standard deviation is computed group by group in a Python loop.
- Equalised learning rate: weights stored N(0, 1/m^2) and used x m / sqrt(fan_in), biases used x m;
  leaky ReLU 0.2 times sqrt(2); activations clamped to +-conv_clamp when set.

Module and buffer names are chosen so that `state_dict()` keys equal the Rust plugin's variable
names; `load_state_dict(strict=True)` therefore also checks that both sides have exactly the same
tensors with the same shapes.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    stylegan2.py count                 parameter counts of the full-size configurations, as JSON
    stylegan2.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON
"""
import json
import math
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import compare_gan_passes, main, trainable  # noqa: E402

SQRT2 = math.sqrt(2.0)


def lowpass(like, gain):
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=like.dtype)
    return torch.outer(taps, taps) / 64.0 * gain


def filter_each_channel(x, gain):
    """A true 2-D convolution of every channel with the low-pass filter (valid positions only)."""
    c = x.shape[1]
    f = lowpass(x, gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, f, groups=c)


def insert_zeros(x):
    n, c, h, w = x.shape
    out = x.new_zeros([n, c, 2 * h, 2 * w])
    out[:, :, ::2, ::2] = x
    return out


def upsample(x):
    """Zero insertion, pad (2 before, 1 after), filter x4."""
    return filter_each_channel(F.pad(insert_zeros(x), [2, 1, 2, 1]), 4.0)


def downsample(x):
    return filter_each_channel(F.pad(x, [1, 1, 1, 1]), 1.0)[:, :, ::2, ::2]


def bias_act(x, b, lrelu, gain, clamp):
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    x = x * gain
    return x.clamp(-clamp, clamp) if clamp else x


class FC(nn.Module):
    def __init__(self, n_in, n_out, lrelu, lr_mul=1.0, bias_init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / lr_mul)
        self.bias = nn.Parameter(torch.full([n_out], float(bias_init)))
        self.lrelu, self.lr_mul, self.fan_in = lrelu, lr_mul, n_in

    def forward(self, x):
        w = self.weight * (self.lr_mul / math.sqrt(self.fan_in))
        return bias_act(x @ w.t(), self.bias * self.lr_mul, self.lrelu, SQRT2 if self.lrelu else 1.0, None)


def second_moment_normalised(x):
    return x / torch.sqrt((x * x).mean(dim=1, keepdim=True) + 1e-8)


class Mapping(nn.Module):
    def __init__(self, z_dim, classes, w_dim, layers, lr_mul, w_avg_beta):
        super().__init__()
        self.classes = classes
        if classes:
            self.embed = FC(classes, w_dim, False)
        n_in = z_dim + (w_dim if classes else 0)
        for i in range(layers):
            setattr(self, f"fc{i}", FC(n_in if i == 0 else w_dim, w_dim, True, lr_mul))
        self.layers = layers
        self.w_avg_beta = w_avg_beta
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, y):
        parts = []
        if z is not None:
            parts.append(second_moment_normalised(z))
        if self.classes:
            parts.append(second_moment_normalised(self.embed(F.one_hot(y, self.classes).to(self.embed.weight.dtype))))
        x = torch.cat(parts, dim=1)
        for i in range(self.layers):
            x = getattr(self, f"fc{i}")(x)
        if self.w_avg_beta is not None and self.training:
            with torch.no_grad():
                self.w_avg.copy_(self.w_avg_beta * self.w_avg + (1 - self.w_avg_beta) * x.mean(dim=0))
        return x


def modulated_conv(x, weight, styles, demodulate, up):
    """Each sample convolved with its own modulated (and demodulated) weight."""
    n, c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    per_sample = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        per_sample = per_sample / torch.sqrt((per_sample ** 2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)
    grouped = per_sample.reshape(n * c_out, c_in, k, k)
    x = x.reshape(1, n * c_in, h, w)
    if up:
        # Zero insertion, pad (3 before, 2 after: the filter's 4 taps and the kernel's 3),
        # filter x4, then a true convolution with the kernel.
        x = filter_each_channel(F.pad(insert_zeros(x), [3, 2, 3, 2]), 4.0)
        out = F.conv2d(x, grouped.flip([2, 3]), groups=n)
    else:
        out = F.conv2d(x, grouped, padding=k // 2, groups=n)
    return out.reshape(n, c_out, out.shape[2], out.shape[3])


class SynthesisLayer(nn.Module):
    def __init__(self, c_in, c_out, w_dim, res, up, clamp, noise_mode):
        super().__init__()
        self.affine = FC(w_dim, c_in, False, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(c_out, c_in, 3, 3))
        self.register_buffer("noise_const", torch.randn(res, res))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.up, self.clamp, self.noise_mode = up, clamp, noise_mode

    def forward(self, x, w):
        x = modulated_conv(x, self.weight, self.affine(w), True, self.up)
        if self.noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return bias_act(x, self.bias, True, SQRT2, self.clamp)


class ToRGB(nn.Module):
    def __init__(self, c_in, channels, w_dim, clamp):
        super().__init__()
        self.affine = FC(w_dim, c_in, False, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, c_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.clamp, self.c_in = clamp, c_in

    def forward(self, x, w):
        styles = self.affine(w) / math.sqrt(self.c_in)
        return bias_act(modulated_conv(x, self.weight, styles, False, False), self.bias, False, 1.0, self.clamp)


def channels(cfg, res):
    return min(cfg["channel_base"] // res, cfg["channel_max"])


class SynthesisBlock(nn.Module):
    def __init__(self, cfg, res):
        super().__init__()
        c = channels(cfg, res)
        args = dict(w_dim=cfg["w_dim"], res=res, clamp=cfg["conv_clamp"], noise_mode=cfg["noise_mode"])
        if res == 4:
            self.const = nn.Parameter(torch.randn(c, 4, 4))
        else:
            self.conv0 = SynthesisLayer(channels(cfg, res // 2), c, up=True, **args)
        self.conv1 = SynthesisLayer(c, c, up=False, **args)
        self.torgb = ToRGB(c, cfg["image_channels"], cfg["w_dim"], cfg["conv_clamp"])
        self.res = res


class Synthesis(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.resolutions = [2 ** i for i in range(2, int(math.log2(cfg["resolution"])) + 1)]
        for res in self.resolutions:
            setattr(self, f"b{res}", SynthesisBlock(cfg, res))

    def forward(self, ws):
        """ws: [N, num_ws, w_dim]; the convolutions read one w each in order, every toRGB reads the
        w after its block's last convolution."""
        k = 0
        img = None
        x = None
        for res in self.resolutions:
            block = getattr(self, f"b{res}")
            if res == 4:
                x = block.conv1(block.const[None].repeat(ws.shape[0], 1, 1, 1), ws[:, k])
                k += 1
            else:
                x = block.conv0(x, ws[:, k])
                x = block.conv1(x, ws[:, k + 1])
                k += 2
            rgb = block.torgb(x, ws[:, k])
            img = rgb if img is None else upsample(img) + rgb
        return img


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.synthesis = Synthesis(cfg)
        self.num_ws = 2 * len(self.synthesis.resolutions)
        self.mapping = Mapping(cfg["z_dim"], cfg["classes"], cfg["w_dim"], cfg["mapping_layers"],
                               cfg["mapping_lr_multiplier"], cfg["w_avg_beta"])
        self.psi = cfg["truncation_psi"]

    def forward(self, z, y=None):
        w = self.mapping(z, y)
        if not self.training and self.psi != 1:
            w = self.mapping.w_avg + self.psi * (w - self.mapping.w_avg)
        ws = w[:, None, :].expand(-1, self.num_ws, -1) if w.ndim == 2 else w
        return self.synthesis(ws)


class Conv(nn.Module):
    """D's equalised-lr convolution: "same" padding, or halving with pad-convolve-filter-subsample."""

    def __init__(self, c_in, c_out, k, bias, lrelu, down, clamp):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.k, self.lrelu, self.down, self.clamp = k, lrelu, down, clamp

    def forward(self, x, gain=1.0):
        w = self.weight / math.sqrt(self.weight[0].numel())
        if self.down:
            pad = (self.k - 1) // 2 + 1  # the kernel's own padding plus the filter's
            x = filter_each_channel(F.conv2d(F.pad(x, [pad] * 4), w), 1.0)[:, :, ::2, ::2]
        else:
            x = F.conv2d(x, w, padding=self.k // 2)
        clamp = self.clamp * gain if self.clamp else None
        return bias_act(x, self.bias, self.lrelu, (SQRT2 if self.lrelu else 1.0) * gain, clamp)


class DBlock(nn.Module):
    def __init__(self, cfg, res):
        super().__init__()
        tmp, out = channels(cfg, res), channels(cfg, res // 2)
        clamp = cfg["conv_clamp"]
        if res == cfg["resolution"]:
            self.fromrgb = Conv(cfg["image_channels"], tmp, 1, True, True, False, clamp)
        self.conv0 = Conv(tmp, tmp, 3, True, True, False, clamp)
        self.conv1 = Conv(tmp, out, 3, True, True, True, clamp)
        self.resnet = cfg["d_architecture"] == "resnet"
        if self.resnet:
            self.skip = Conv(tmp, out, 1, False, False, True, None)

    def forward(self, x, img):
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(img)
        if self.resnet:
            half = math.sqrt(0.5)
            return self.skip(x, half) + self.conv1(self.conv0(x), half)
        return self.conv1(self.conv0(x))


def minibatch_stddev(x, group_size, num_channels):
    n, c, h, w = x.shape
    g = min(group_size, n)
    groups = n // g
    stats = []
    for j in range(groups):
        members = x[j::groups]  # image i belongs to group i mod (N / G)
        var = ((members - members.mean(dim=0)) ** 2).mean(dim=0)  # [C, H, W]
        std = torch.sqrt(var + 1e-8).reshape(num_channels, c // num_channels, h, w)
        stats.append(std.mean(dim=[1, 2, 3]))  # [F]
    per_image = torch.stack([stats[i % groups] for i in range(n)])  # [N, F]
    return torch.cat([x, per_image[:, :, None, None].expand(-1, -1, h, w)], dim=1)


class Epilogue(nn.Module):
    def __init__(self, cfg, cmap_dim):
        super().__init__()
        c = channels(cfg, 4)
        self.conv = Conv(c + cfg["mbstd_channels"], c, 3, True, True, False, cfg["conv_clamp"])
        self.fc = FC(c * 16, c, True)
        self.out = FC(c, cmap_dim or 1, False)


class Discriminator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.resolutions = [2 ** i for i in range(int(math.log2(cfg["resolution"])), 2, -1)]
        for res in self.resolutions:
            setattr(self, f"b{res}", DBlock(cfg, res))
        self.cmap_dim = channels(cfg, 4) if cfg["classes"] else 0
        if cfg["classes"]:
            self.mapping = Mapping(0, cfg["classes"], self.cmap_dim, cfg["d_mapping_layers"],
                                   cfg["mapping_lr_multiplier"], None)
        self.b4 = Epilogue(cfg, self.cmap_dim)
        self.mbstd = (cfg["mbstd_group_size"], cfg["mbstd_channels"])

    def forward(self, img, y=None):
        x = None
        for res in self.resolutions:
            x = getattr(self, f"b{res}")(x, img)
        if self.mbstd[1] > 0:
            x = minibatch_stddev(x, *self.mbstd)
        features = self.b4.fc(self.b4.conv(x).flatten(1))
        out = self.b4.out(features)
        if self.cmap_dim:
            cmap = self.mapping(None, y)
            return (out * cmap).sum(dim=1) / math.sqrt(self.cmap_dim), features
        return out[:, 0], features


CIFAR = dict(resolution=32, image_channels=3, z_dim=512, w_dim=512, mapping_layers=2, d_mapping_layers=8,
             mapping_lr_multiplier=0.01, channel_base=32768, channel_max=512, d_architecture="orig",
             mbstd_group_size=32, mbstd_channels=1, conv_clamp=256.0, w_avg_beta=0.995, truncation_psi=1.0,
             noise_mode="random", classes=0)


def count():
    """Trainable parameters: stylegan2-ada's cifar config, conditional (10 classes) and not, and
    DiffAugment's StyleGAN2 for CIFAR-10 (channels 512/512/256/128, 8 mapping layers, resnet D)."""
    setups = {
        "cifar_conditional": dict(CIFAR, classes=10),
        "cifar": CIFAR,
        "diffaugment_cifar": dict(CIFAR, channel_base=4096, mapping_layers=8, d_architecture="resnet"),
    }
    out = {}
    for name, cfg in setups.items():
        out["G_" + name], out["D_" + name] = trainable(Generator(cfg)), trainable(Discriminator(cfg))
    return out


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    return compare_gan_passes(directory, Generator(cfg), Discriminator(cfg), cfg["classes"])


if __name__ == "__main__":
    main(__doc__, count, compare)
