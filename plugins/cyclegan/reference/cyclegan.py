"""An independent PyTorch re-implementation of CycleGAN's networks and losses, used only by the plugin's tests.

Written from the paper (Zhu et al. 2017, Section 4 and Appendix 7.2) and the facts collected in the
project's zoo notes, not from the official code:

- Generator (Johnson et al.'s network): reflection-pad 3, conv 7x7 to ngf, norm, ReLU; two conv 3x3
  stride 2 (padding 1) to 2ngf and 4ngf, each with norm and ReLU; residual blocks at 4ngf, each
  x + [reflection-pad 1, conv 3x3, norm, ReLU, reflection-pad 1, conv 3x3, norm](x); two transposed
  conv 3x3 stride 2 (padding 1, output padding 1) to 2ngf and ngf, each with norm and ReLU;
  reflection-pad 3, conv 7x7 to the image channels, tanh. Instance norm without parameters, so
  every convolution has a bias.
- Discriminator (70x70 PatchGAN): conv 4x4 stride 2 to ndf, LeakyReLU 0.2 (no norm); then
  d_layers - 1 more stride-2 convs and one stride-1 conv, widths ndf * min(2^i, 8), each with
  instance norm and LeakyReLU 0.2; then conv 4x4 stride 1 to one channel. Padding 1 everywhere.
- Losses (least-squares GAN): the generators minimise
  mean((D_B(G_AB(a)) - 1)^2) + mean((D_A(G_BA(b)) - 1)^2)
  + lambda_a |G_BA(G_AB(a)) - a| + lambda_b |G_AB(G_BA(b)) - b|
  + lambda_idt (lambda_b |G_AB(b) - b| + lambda_a |G_BA(a) - a|)   (means of absolute values);
  each discriminator minimises 0.5 (mean((D(real) - 1)^2) + mean(D(fake)^2)), with the fakes of the
  generator pass, detached (no image pool here: the Rust test turns its pool off).

Module names are chosen so that `state_dict()` keys equal the Rust plugin's variable names;
`load_state_dict(strict=True)` therefore also checks that both sides have exactly the same tensors.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    cyclegan.py count                 parameter counts of the official networks, as JSON
    cyclegan.py compare DIR [DIR...]  replay what the Rust plugin did in each DIR, as JSON
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import load, main, max_rel_diff, trainable  # noqa: E402

EPS = 1e-5


def instance_norm(x):
    """Each image's channels to mean 0, variance 1 (biased), no learned scale or shift."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + EPS)


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3)
        self.conv2 = nn.Conv2d(width, width, 3)

    def forward(self, x):
        h = F.relu(instance_norm(self.conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        return x + instance_norm(self.conv2(F.pad(h, (1, 1, 1, 1), mode="reflect")))


class Generator(nn.Module):
    def __init__(self, channels, ngf, n_blocks):
        super().__init__()
        self.stem = nn.Conv2d(channels, ngf, 7)
        self.down1 = nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList([Residual(4 * ngf) for _ in range(n_blocks)])
        self.up1 = nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, stride=2, padding=1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(2 * ngf, ngf, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv2d(ngf, channels, 7)

    def forward(self, x):
        h = F.relu(instance_norm(self.stem(F.pad(x, (3, 3, 3, 3), mode="reflect"))))
        h = F.relu(instance_norm(self.down1(h)))
        h = F.relu(instance_norm(self.down2(h)))
        for block in self.blocks:
            h = block(h)
        h = F.relu(instance_norm(self.up1(h)))
        h = F.relu(instance_norm(self.up2(h)))
        return torch.tanh(self.head(F.pad(h, (3, 3, 3, 3), mode="reflect")))


class PatchDiscriminator(nn.Module):
    def __init__(self, channels, ndf, d_layers):
        super().__init__()
        widths = [ndf * min(2 ** i, 8) for i in range(d_layers + 1)] + [1]
        self.d_layers = d_layers
        self.count = len(widths)
        previous = channels
        for i, width in enumerate(widths):
            stride = 2 if i < d_layers else 1
            setattr(self, f"conv{i}", nn.Conv2d(previous, width, 4, stride=stride, padding=1))
            previous = width

    def forward(self, x):
        h = x
        for i in range(self.count):
            h = getattr(self, f"conv{i}")(h)
            if i == self.count - 1:
                return h
            if i > 0:
                h = instance_norm(h)
            h = F.leaky_relu(h, 0.2)


def lsgan(logits, target):
    return ((logits - target) ** 2).mean()


def build(cfg):
    c = cfg["channels"]
    return {
        "g_ab": Generator(c, cfg["ngf"], cfg["n_blocks"]),
        "g_ba": Generator(c, cfg["ngf"], cfg["n_blocks"]),
        "d_a": PatchDiscriminator(c, cfg["ndf"], cfg["d_layers"]),
        "d_b": PatchDiscriminator(c, cfg["ndf"], cfg["d_layers"]),
    }


def count():
    """Trainable parameters at the official widths (ngf = ndf = 64, 9 blocks, 3 layers), for RGB
    and for grey images (the counts do not depend on the image size)."""
    out = {}
    for name, channels in [("rgb", 3), ("grey", 1)]:
        nets = build({"channels": channels, "ngf": 64, "ndf": 64, "n_blocks": 9, "d_layers": 3})
        out[f"G_{name}"], out[f"D_{name}"] = trainable(nets["g_ab"]), trainable(nets["d_a"])
    return out


def grad_diffs(nets, names, recorded, diffs, worst, label):
    """The largest gradient difference over the networks `names`, relative to their largest gradient."""
    own = {f"{n}.{k}": p.grad for n in names for k, p in nets[n].named_parameters()}
    scale = max(g.abs().max().item() for g in own.values())
    per = {k: (recorded[k].double() - g).abs().max().item() / scale for k, g in own.items()}
    key = max(per, key=per.get)
    diffs[label], worst[label] = per[key], key
    if set(recorded) != set(own):
        raise SystemExit(f"{label}: gradients of {sorted(set(recorded) ^ set(own))} on one side only")


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    nets = build(cfg)
    for name, net in nets.items():
        net.double()
        net.load_state_dict(load(f"{directory}/{name}.npz"), strict=True)
    io = {k: t.double() for k, t in load(f"{directory}/io.npz").items()}
    la, lb, li = cfg["lambda_a"], cfg["lambda_b"], cfg["lambda_identity"]
    diffs, worst = {}, {}

    # The generators' phase.
    a, b = io["real_a"], io["real_b"]
    fake_b = nets["g_ab"](a)
    rec_a = nets["g_ba"](fake_b)
    fake_a = nets["g_ba"](b)
    rec_b = nets["g_ab"](fake_a)
    terms = {
        "g_gan_ab": lsgan(nets["d_b"](fake_b), 1.0),
        "g_gan_ba": lsgan(nets["d_a"](fake_a), 1.0),
        "cycle_a": (rec_a - a).abs().mean() * la,
        "cycle_b": (rec_b - b).abs().mean() * lb,
        "identity_b": (nets["g_ab"](b) - b).abs().mean() * lb * li,
        "identity_a": (nets["g_ba"](a) - a).abs().mean() * la * li,
    }
    total = sum(terms.values())
    total.backward()
    grads = load(f"{directory}/grads_g.npz")
    grad_diffs(nets, ["g_ab", "g_ba"], grads, diffs, worst, "g_phase.grads")
    for name, t in [("fake_b", fake_b), ("rec_a", rec_a), ("fake_a", fake_a), ("rec_b", rec_b)]:
        diffs[f"g_phase.{name}"] = max_rel_diff(io[name], t.detach())
    diffs["g_phase.loss"] = max_rel_diff(io["g_loss"], total.detach())
    for name, t in terms.items():
        diffs[f"g_phase.{name}"] = max_rel_diff(io[name], t.detach())

    # The discriminators' phase: the generator phase's real batch and fakes (the official code
    # updates both from one batch); the batch the core draws for this phase goes unused.
    for net in nets.values():
        net.zero_grad(set_to_none=True)
    real_a, real_b = a, b
    d_b = 0.5 * (lsgan(nets["d_b"](real_b), 1.0) + lsgan(nets["d_b"](fake_b.detach()), 0.0))
    d_a = 0.5 * (lsgan(nets["d_a"](real_a), 1.0) + lsgan(nets["d_a"](fake_a.detach()), 0.0))
    (d_a + d_b).backward()
    grad_diffs(nets, ["d_a", "d_b"], load(f"{directory}/grads_d.npz"), diffs, worst, "d_phase.grads")
    diffs["d_phase.d_a"] = max_rel_diff(io["d_a"], d_a.detach())
    diffs["d_phase.d_b"] = max_rel_diff(io["d_b"], d_b.detach())
    with torch.no_grad():
        diffs["d_phase.logits_a"] = max_rel_diff(io["logits_a"], nets["d_a"](real_a))
        diffs["d_phase.logits_b"] = max_rel_diff(io["logits_b"], nets["d_b"](real_b))
    params = {n: trainable(net) for n, net in nets.items()}
    return {"params": params, "max_rel_diff": diffs, "worst_tensor": worst}


if __name__ == "__main__":
    main(__doc__, count, compare)
