"""StyleGAN2's networks in PyTorch at training speed, for `scripts/bench_cifar_torch.py --arch stylegan2`.

The plugin's float64 cross-check reference (`plugins/stylegan2/reference/stylegan2.py`) computes
every operation the slow, obvious way on purpose (per-sample grouped convolutions, zero insertion,
a Python loop over minibatch-stddev groups), so timing it against the plugin would measure those
choices, not the runtime. `patch(module)` swaps those functions for the forms stylegan2-ada-pytorch
uses in training on a CPU, the forms the plugin uses too, so both sides run the same kernels:

- modulation scales the activations, one convolution with the shared weight, then the output is
  scaled by the demodulation coefficients (stylegan2-ada's non-fused path in training);
- doubling the resolution is a stride-2 transposed convolution and the [1, 3, 3, 1] filter,
  halving it the filter and a stride-2 convolution; up/downsampling of images by zero insertion
  through a reshape, or filtering then dropping every other pixel;
- minibatch standard deviation in one reshape over all groups;
- random noise inputs in the synthesis layers (noise_mode "random", the training default).

`check()` builds a small float64 configuration that exercises every patched path (an `up`
convolution, D's halving convolutions, a residual D, minibatch stddev, a class-conditional
mapping) with constant noise, runs G and D with the reference's own functions and then with the
patched ones on the same weights and inputs, and returns the largest relative difference; the
benchmark refuses to time a twin that differs by more than 1e-10.
"""
import importlib
import math
import pathlib
import sys

import torch
import torch.nn.functional as F

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "plugins" / "stylegan2" / "reference"


def reference():
    sys.path.insert(0, str(REFERENCE))
    return importlib.import_module("stylegan2")


def fir(m, x, pad, gain):
    """Pad by [left, right, top, bottom], then the low-pass filter (x gain) on every channel."""
    c = x.shape[1]
    f = m.lowpass(x, gain)[None, None].expand(c, 1, 4, 4)
    return F.conv2d(F.pad(x, pad), f, groups=c)


def patch(m):
    """Replaces the reference module `m`'s slow functions with the training-time forms."""

    def upsample(x):
        n, c, h, w = x.shape
        spread = F.pad(x.reshape(n, c, h, 1, w, 1), [0, 1, 0, 0, 0, 1]).reshape(n, c, 2 * h, 2 * w)
        return fir(m, spread, [2, 1, 2, 1], 4.0)

    def downsample(x):
        return fir(m, x, [1, 1, 1, 1], 1.0)[:, :, ::2, ::2]

    def resample_conv(x, w, up, down):
        k = w.shape[2]
        if up:
            return fir(m, F.conv_transpose2d(x, w.transpose(0, 1), stride=2), [1, 1, 1, 1], 4.0)
        if down and k == 3:
            return F.conv2d(fir(m, x, [2, 2, 2, 2], 1.0), w, stride=2)
        if down:
            return F.conv2d(downsample(x), w)
        return F.conv2d(x, w, padding=k // 2)

    def modulated_conv(x, weight, styles, demodulate, up):
        x = resample_conv(x * styles[:, :, None, None], weight, up, False)
        if demodulate:
            coefficients = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
            x = x * coefficients[:, :, None, None]
        return x

    def minibatch_stddev(x, group_size, num_channels):
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
        y = x.reshape(g, -1, num_channels, c // num_channels, h, w)
        y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, num_channels, 1, 1)
        return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)

    def synthesis_layer(self, x, w):
        x = modulated_conv(x, self.weight, self.affine(w), True, self.up)
        if self.noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], dtype=x.dtype) * self.noise_strength
        elif self.noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        return m.bias_act(x, self.bias, True, m.SQRT2, self.clamp)

    def conv(self, x, gain=1.0):
        x = resample_conv(x, self.weight / math.sqrt(self.weight[0].numel()), False, self.down)
        clamp = self.clamp * gain if self.clamp else None
        return m.bias_act(x, self.bias, self.lrelu, (m.SQRT2 if self.lrelu else 1.0) * gain, clamp)

    m.upsample, m.downsample, m.modulated_conv, m.minibatch_stddev = upsample, downsample, modulated_conv, minibatch_stddev
    m.SynthesisLayer.forward = synthesis_layer
    m.Conv.forward = conv


def check():
    """The largest relative difference between the reference's and the patched networks' outputs."""
    m = reference()
    torch.manual_seed(0)
    cfg = dict(m.CIFAR, resolution=16, z_dim=8, w_dim=16, channel_base=128, channel_max=16, classes=3,
               d_architecture="resnet", mbstd_group_size=4, mbstd_channels=2, noise_mode="const", conv_clamp=0.5)
    g, d = m.Generator(cfg).double().eval(), m.Discriminator(cfg).double().eval()
    z, y = torch.randn(8, 8, dtype=torch.float64), torch.tensor([0, 2, 1, 1, 0, 2, 2, 1])
    real = torch.randn(8, 3, 16, 16, dtype=torch.float64)

    def passes():
        with torch.no_grad():
            img = g(z, y)
            return [img, *d(img, y), *d(real, y)]

    slow = passes()
    patch(m)
    fast = passes()
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item() for a, b in zip(fast, slow))


if __name__ == "__main__":
    print(f"largest relative difference, fast vs reference: {check():.3g}")
