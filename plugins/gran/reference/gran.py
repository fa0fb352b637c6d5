"""An independent PyTorch re-implementation of GRAN's 28x28 and 32x32 networks, used only by the plugin's tests.

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
    gran.py count                 parameter counts at the official widths, as JSON
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


def levels(side):
    return 3 if side == 32 else 2


class Generator(nn.Module):
    def __init__(self, steps, z_dim, width, channels, side):
        super().__init__()
        self.steps, self.z_dim, self.width = steps, z_dim, width
        self.levels = levels(side)
        self.base = side >> self.levels
        widths = [width >> k for k in range(self.levels)] + [channels]
        add_dense(self, "noise", z_dim, z_dim)
        add_dense(self, "hidden", 2 * z_dim, width * self.base ** 2)
        for k in range(1, self.levels + 1):
            setattr(self, f"deconv{k}", nn.ConvTranspose2d(widths[k - 1], widths[k], 5, stride=2, padding=2,
                                                           output_padding=1))
        # The encoder walks the widths back: image -> widths[L-1] -> ... -> widths[0].
        for k in range(1, self.levels):
            add_conv(self, f"encode{k}", widths[self.levels - k + 1], widths[self.levels - k])
        top = f"encode{self.levels}"
        if self.levels == 3:
            setattr(self, f"{top}_conv", nn.Conv2d(widths[1], width, 5, stride=2, padding=2))
        else:
            add_conv(self, top, widths[1], width)
        add_dense(self, "code", width * self.base ** 2, z_dim)

    def encode(self, canvas):
        e = canvas
        for k in range(1, self.levels):
            e = F.relu(conv(self, f"encode{k}", e))
        top = f"encode{self.levels}"
        e = getattr(self, f"{top}_conv")(e) if self.levels == 3 else conv(self, top, e)
        return torch.tanh(dense(self, "code", F.relu(e).flatten(1)))

    def canvases(self, z):
        n = z.shape[0]
        code = z.new_zeros(n, self.z_dim)
        out = []
        for t in range(self.steps):
            z_t = z[:, t * self.z_dim:(t + 1) * self.z_dim]
            h_z = torch.tanh(dense(self, "noise", z_t))
            canvas = F.relu(dense(self, "hidden", torch.cat([h_z, code], dim=1))).view(n, self.width, self.base,
                                                                                       self.base)
            for k in range(1, self.levels + 1):
                canvas = getattr(self, f"deconv{k}")(canvas)
                if k < self.levels:
                    canvas = F.relu(canvas)
            if t + 1 < self.steps:
                code = self.encode(canvas)
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
    def __init__(self, width, hidden, channels, side):
        super().__init__()
        self.levels = levels(side)
        widths = [channels] + [width >> k for k in range(self.levels)]
        for k in range(1, self.levels + 1):
            add_conv(self, f"conv{k}", widths[k - 1], widths[k])
        self.hidden = nn.Linear(widths[-1] * (side >> self.levels) ** 2, hidden)
        self.out = nn.Linear(hidden, 1, bias=False)

    def forward(self, x, y=None):
        h = x
        for k in range(1, self.levels + 1):
            h = F.relu(conv(self, f"conv{k}", h))
        features = torch.tanh(self.hidden(h.flatten(1)))
        return self.out(features).view(-1), features


def build(cfg):
    side = cfg["resolution"]
    g = Generator(cfg["time_steps"], cfg["z_dim"], cfg["g_channels"], cfg["image_channels"], side)
    d = Discriminator(cfg["d_channels"], cfg["d_hidden"], cfg["image_channels"], side)
    return g, d


def count():
    """Trainable parameters at the official widths: 28x28 gray (MNIST), 32x32 RGB (CIFAR-10)."""
    base = {"time_steps": 5, "z_dim": 100, "d_hidden": 100}
    setups = {
        "gran28": dict(base, g_channels=256, d_channels=80, image_channels=1, resolution=28),
        "gran32": dict(base, g_channels=1024, d_channels=1024, image_channels=3, resolution=32),
    }
    out = {}
    for name, cfg in setups.items():
        g, d = build(cfg)
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
