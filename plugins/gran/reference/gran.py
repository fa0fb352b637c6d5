"""An independent PyTorch re-implementation of GRAN's 28x28 networks, used only by the plugin's tests.

Written from the paper (Im et al. 2016, Section 3: a recurrent generator whose step t maps a fresh
noise vector z_t and an encoding of the previous canvas to a new canvas, the image being the
sigmoid of the canvases' sum) and from the layer list of the authors' 28x28 model:

- G, one step: h_z = tanh(BN(Linear(z_t))); h = ReLU(BN(Linear([h_z, h_c]))) viewed as
  G x 7 x 7; canvas = deconv(ReLU(deconv(h))), both deconvolutions 5x5, stride 2, padding 2,
  output padding 1, with a bias, to G/2 channels then the image's. The code for the next step:
  h_c = tanh(BN(Linear(flatten(ReLU(BN(conv(ReLU(BN(conv(canvas)))))))))) with bias-free 5x5
  stride-2 padding-2 convolutions to G/2 then G channels. h_c starts at zero; the last step's
  code is not computed. z is [N, T * z_dim], step t reading columns t*z_dim .. (t+1)*z_dim.
  Output: 2 * sigmoid(sum of canvases) - 1; the per-step images use the partial sums.
- D: ReLU(BN(conv 5x5/2 to D)), ReLU(BN(conv 5x5/2 to D/2)), tanh(Linear to hidden with bias)
  (the features), Linear to 1 without bias (the logit).
- Batch norm: training mode normalises with the batch's biased variance, eps 1e-5, and moves
  running statistics (unbiased variance) by 0.1; evaluation uses the running statistics.

Module and buffer names are chosen so that `state_dict()` keys equal the Rust plugin's variable
names; `load_state_dict(strict=True)` therefore also checks that both sides have exactly the same
tensors with the same shapes.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    gran.py count                 parameter counts of the official 28x28 widths, as JSON
    gran.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON

The recorded files and the report are those of core/plugin-testkit/python/lab_reference.py.
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import eval_diffs, load_networks, main, max_rel_diff, network_diffs, own_gradients, trainable  # noqa: E402

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
SIDE = 28
BASE = SIDE // 4


class Norm(nn.Module):
    """Batch norm over dim 1 with a gain and a shift."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, BN_MOMENTUM, BN_EPS)


def add_dense(owner, name, n_in, n_out):
    """`<name>_fc` (linear with bias) and `<name>_bn` on `owner`."""
    setattr(owner, f"{name}_fc", nn.Linear(n_in, n_out))
    setattr(owner, f"{name}_bn", Norm(n_out))


def add_conv(owner, name, c_in, c_out):
    """`<name>_conv` (5x5, stride 2, padding 2, no bias) and `<name>_bn` on `owner`."""
    setattr(owner, f"{name}_conv", nn.Conv2d(c_in, c_out, 5, stride=2, padding=2, bias=False))
    setattr(owner, f"{name}_bn", Norm(c_out))


def dense(owner, name, x):
    return getattr(owner, f"{name}_bn")(getattr(owner, f"{name}_fc")(x))


def conv(owner, name, x):
    return getattr(owner, f"{name}_bn")(getattr(owner, f"{name}_conv")(x))


class Generator(nn.Module):
    def __init__(self, steps, z_dim, width, channels):
        super().__init__()
        self.steps, self.z_dim, self.width = steps, z_dim, width
        add_dense(self, "noise", z_dim, z_dim)
        add_dense(self, "hidden", 2 * z_dim, width * BASE * BASE)
        self.deconv1 = nn.ConvTranspose2d(width, width // 2, 5, stride=2, padding=2, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(width // 2, channels, 5, stride=2, padding=2, output_padding=1)
        add_conv(self, "encode1", channels, width // 2)
        add_conv(self, "encode2", width // 2, width)
        add_dense(self, "code", width * BASE * BASE, z_dim)

    def canvases(self, z):
        n = z.shape[0]
        code = z.new_zeros(n, self.z_dim)
        out = []
        for t in range(self.steps):
            z_t = z[:, t * self.z_dim:(t + 1) * self.z_dim]
            h_z = torch.tanh(dense(self, "noise", z_t))
            h = F.relu(dense(self, "hidden", torch.cat([h_z, code], dim=1)))
            canvas = self.deconv2(F.relu(self.deconv1(h.view(n, self.width, BASE, BASE))))
            if t + 1 < self.steps:
                e = F.relu(conv(self, "encode2", F.relu(conv(self, "encode1", canvas))))
                code = torch.tanh(dense(self, "code", e.flatten(1)))
            out.append(canvas)
        return out

    def steps_images(self, z):
        """[N, T, C, H, W]: 2 * sigmoid(C_1 + ... + C_tau) - 1 for tau = 1..T."""
        images, total = [], 0
        for canvas in self.canvases(z):
            total = total + canvas
            images.append(2 * torch.sigmoid(total) - 1)
        return torch.stack(images, dim=1)

    def forward(self, z, y=None):
        return 2 * torch.sigmoid(sum(self.canvases(z))) - 1


class Discriminator(nn.Module):
    def __init__(self, width, hidden, channels):
        super().__init__()
        add_conv(self, "conv1", channels, width)
        add_conv(self, "conv2", width, width // 2)
        self.hidden = nn.Linear(width // 2 * BASE * BASE, hidden)
        self.out = nn.Linear(hidden, 1, bias=False)

    def forward(self, x, y=None):
        h = F.relu(conv(self, "conv2", F.relu(conv(self, "conv1", x))))
        features = torch.tanh(self.hidden(h.flatten(1)))
        return self.out(features).view(-1), features


def build(cfg):
    g = Generator(cfg["time_steps"], cfg["z_dim"], cfg["g_channels"], cfg["image_channels"])
    d = Discriminator(cfg["d_channels"], cfg["d_hidden"], cfg["image_channels"])
    return g, d


def count():
    """Trainable parameters at the official 28x28 widths (1 channel), and with 3 channels."""
    base = {"time_steps": 5, "z_dim": 100, "g_channels": 256, "d_channels": 80, "d_hidden": 100}
    out = {}
    for name, channels in [("gran28", 1), ("gran28_rgb", 3)]:
        g, d = build(dict(base, image_channels=channels))
        out["G_" + name], out["D_" + name] = trainable(g), trainable(d)
    return out


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    g, d = build(cfg)
    io = load_networks(directory, g, d)
    diffs, worst = {}, {}

    # A G step's forward in training mode, D(G(z)), loss = mean logit, with z's gradient.
    g.train(), d.train()
    z = io["z"].clone().requires_grad_(True)
    fake = g(z)
    logits, features = d(fake)
    logits.mean().backward()
    diffs["train.fake"] = max_rel_diff(io["fake"], fake.detach())
    diffs["train.logits"] = max_rel_diff(io["logits"], logits.detach())
    diffs["train.features"] = max_rel_diff(io["features"], features.detach())
    diffs["train.z_grad"] = max_rel_diff(io["z_grad"], z.grad)
    g_grads, d_grads = own_gradients(g, d)

    # A D pass on real images in training mode, with the images' gradient.
    real = io["real"].clone().requires_grad_(True)
    real_logits, _ = d(real)
    real_logits.sum().backward()
    diffs["train.real_logits"] = max_rel_diff(io["real_logits"], real_logits.detach())
    diffs["train.real_grad"] = max_rel_diff(io["real_grad"], real.grad)

    network_diffs(directory, [(g, "g", g_grads), (d, "d", d_grads)], diffs, worst)
    eval_diffs(g, d, io, None, diffs)
    with torch.no_grad():
        diffs["eval.steps"] = max_rel_diff(io["eval_steps"], g.steps_images(io["z"]))
    return {"params": {"G": trainable(g), "D": trainable(d)}, "max_rel_diff": diffs, "worst_tensor": worst}


if __name__ == "__main__":
    main(__doc__, count, compare)
