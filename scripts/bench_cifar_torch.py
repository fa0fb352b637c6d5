"""The PyTorch twin of a CIFAR-scale `lab run`, for `scripts/bench_cifar_vs_pytorch.sh`: the same
networks, loss, optimizers, batch, D steps, EMA and thread count, so the two training steps can
be timed side by side. The networks are the plugins' own float64 cross-check references
(`plugins/<name>/reference/`, the same networks tensor for tensor as the Rust plugins, checked by
their tests), at the experiment files' widths:

  biggan        `experiments/diffaugment_cifar10_20pct.toml` without DiffAugment: G_ch = D_ch = 64
                (256 channels), class-conditional, spectral norm in G and D; 4 D steps of 50, then
                a G step of 50, Adam 2e-4 (0, 0.999) and an EMA copy of G after every step
  sngan_resnet  `experiments/zoo/sngan_resnet_cifar10.toml`: G 256, D 128 channels, unconditional,
                spectral norm in D; Adam 2e-4 (0, 0.9)
  sngan_cnn     `experiments/zoo/sngan_cnn_cifar10.toml`: the standard CNN at 512; Adam 2e-4 (0.5, 0.999)
  sagan         `experiments/zoo/sagan_cifar10.toml`: G 256, D 128, class-conditional, attention after
                G's second block and D's first, spectral norm in both; Adam (0, 0.9), D 4e-4, G 1e-4
  stylegan2     `experiments/zoo/stylegan2_cifar10.toml`: stylegan2-ada's cifar config, class-conditional
                (G 20.2M, D 23.1M parameters), the reference networks with their slow forms replaced
                by the training-time ones (`scripts/stylegan2_fast_torch.py`, checked against the
                reference to 1e-10 before timing); the non-saturating logistic loss, G's phase then
                D's (the official order; lazy R1 runs on step 0 only, which is not timed), Adam
                0.0025 (0, 0.99), the EMA of G after every step

The CIFAR-scale zoo is timed on one D step then one G step at 64 (StyleGAN2: G then D) (`--d-steps 1`, lab's
`train.phases=[{name="D"},{name="G"}]`), BigGAN on its own step. Hinge loss throughout; G's step
sends gradients into G only (D frozen), fakes for D's step are drawn under `no_grad`. Real images
come from a uint8 tensor in memory, as lab keeps its data set. `--channels-last` keeps weights and
real batches in NHWC order, as lab's `train.channels_last` does. Prints steps/s over the timed
steps.
"""
import argparse
import importlib
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

PLUGINS = pathlib.Path(__file__).resolve().parents[1] / "plugins"
Z_DIM, CLASSES = 128, 10


def reference(plugin, module):
    sys.path.insert(0, str(PLUGINS / plugin / "reference"))
    return importlib.import_module(module)


def networks(arch):
    """(G, D, conditional, D's Adam settings, G's Adam settings) at the experiment's widths."""
    if arch == "biggan":
        m = reference("biggan", "biggan_cifar")
        g, d = m.Generator(64, Z_DIM, CLASSES, True, 1e-5), m.Discriminator(64, CLASSES, True)
        adam = dict(lr=2e-4, betas=(0.0, 0.999))
        return g, d, True, adam, adam
    if arch in ("sngan_resnet", "sngan_cnn"):
        m = reference("sngan", "sngan_cifar")
        common = dict(z_dim=Z_DIM, bn_eps=2e-5, image_channels=3, d_sn=True, leaky_slope=0.1, pooling="sum", classes=0)
        if arch == "sngan_resnet":
            g, d = m.build(dict(common, kind="resnet", g_channels=256, d_channels=128))
            adam = dict(lr=2e-4, betas=(0.0, 0.9))
        else:
            g, d = m.build(dict(common, kind="cnn", g_channels=512, d_channels=512))
            adam = dict(lr=2e-4, betas=(0.5, 0.999))
        return g, d, False, adam, adam
    if arch == "sagan":
        m = reference("sagan", "sagan_cifar")
        cfg = dict(g_channels=256, d_channels=128, z_dim=Z_DIM, image_channels=3, classes=CLASSES,
                   g_attention_after=2, d_attention_after=1)
        g, d = m.build(cfg)
        return g, d, True, dict(lr=4e-4, betas=(0.0, 0.9)), dict(lr=1e-4, betas=(0.0, 0.9))
    raise SystemExit(f"unknown --arch {arch}: biggan, sngan_resnet, sngan_cnn, sagan or stylegan2")


def stylegan2(a, layout):
    """StyleGAN2's training step: G's phase (D frozen), D's phase on fakes drawn under no_grad,
    then the EMA of G (a lerp of the parameters towards G, buffers copied)."""
    import stylegan2_fast_torch as fast

    difference = fast.check()
    if difference > 1e-10:
        raise SystemExit(f"the fast StyleGAN2 twin differs from the reference by {difference:.3g}; not timing it")
    torch.manual_seed(0)
    m = fast.reference()
    fast.patch(m)
    cfg = dict(m.CIFAR, classes=CLASSES)
    g, d, ema = m.Generator(cfg), m.Discriminator(cfg), m.Generator(cfg)
    ema.load_state_dict(g.state_dict())
    for net in (g, d, ema):
        net.to(memory_format=layout)
    z_dim, batch = cfg["z_dim"], a.batch or 64
    adam = dict(lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    opt_g, opt_d = torch.optim.Adam(g.parameters(), **adam), torch.optim.Adam(d.parameters(), **adam)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (1000,))
    for step in range(a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        for p in d.parameters():
            p.requires_grad_(False)
        y = torch.randint(CLASSES, (batch,))
        loss_g = F.softplus(-d(g(torch.randn(batch, z_dim), y), y)[0]).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        idx = torch.randint(images.shape[0], (batch,))
        real = (images.index_select(0, idx).float() / 127.5 - 1.0).contiguous(memory_format=layout)
        y_fake = torch.randint(CLASSES, (batch,))
        with torch.no_grad():
            fake = g(torch.randn(batch, z_dim), y_fake)
        loss_d = F.softplus(d(fake, y_fake)[0]).mean() + F.softplus(-d(real, labels.index_select(0, idx))[0]).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.no_grad():
            # The ramp-up's half-life at this image count: 0.05 x images seen.
            beta = 0.5 ** (batch / max((step + 1) * batch * 0.05, 1e-8))
            for e, p in zip(ema.parameters(), g.parameters()):
                e.copy_(p.lerp(e, beta))
            for e, b in zip(ema.buffers(), g.buffers()):
                e.copy_(b)
    return (a.steps - a.warmup) / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="biggan")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None, help="default: 50 for biggan, 64 otherwise")
    ap.add_argument("--d-steps", type=int, default=None, help="default: 4 for biggan, 1 otherwise")
    ap.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None, help="default: on for biggan")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true", help="weights and batches in NHWC order")
    a = ap.parse_args()
    biggan = a.arch == "biggan"
    batch = a.batch or (50 if biggan else 64)
    d_steps = a.d_steps or (4 if biggan else 1)
    use_ema = biggan if a.ema is None else a.ema
    torch.set_num_threads(a.threads)
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    if a.arch == "stylegan2":
        print(f"{stylegan2(a, layout):.4f}")
        return
    torch.manual_seed(0)
    g, d, conditional, adam_d, adam_g = networks(a.arch)
    ema = None
    if use_ema:
        ema, _, _, _, _ = networks(a.arch)
        ema.load_state_dict(g.state_dict())
    for net in (g, d, ema):
        if net is not None:
            net.to(memory_format=layout)
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (1000,))
    opt_g = torch.optim.Adam(g.parameters(), **adam_g)
    opt_d = torch.optim.Adam(d.parameters(), **adam_d)
    label = (lambda y: y) if conditional else (lambda y: None)
    n = images.shape[0]
    for step in range(a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        for _ in range(d_steps):
            idx = torch.randint(n, (batch,))
            real = (images.index_select(0, idx).float() / 127.5 - 1.0).contiguous(memory_format=layout)
            y_real = labels.index_select(0, idx)
            y_fake = torch.randint(CLASSES, (batch,))
            with torch.no_grad():
                fake = g(torch.randn(batch, Z_DIM), label(y_fake))
            loss_d = (F.relu(1.0 - d(real, label(y_real))[0]).mean()
                      + F.relu(1.0 + d(fake, label(y_fake))[0]).mean())
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        # G's step: gradients into G only, as BigGAN-PyTorch's toggle_grad does.
        for p in d.parameters():
            p.requires_grad_(False)
        y_fake = torch.randint(CLASSES, (batch,))
        loss_g = -d(g(torch.randn(batch, Z_DIM), label(y_fake)), label(y_fake))[0].mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        if ema is not None:
            # Before lab's `ema.start` the EMA is a copy of G, as here.
            with torch.no_grad():
                for e, t in zip(ema.state_dict().values(), g.state_dict().values()):
                    e.copy_(t)
    elapsed = time.perf_counter() - start
    print(f"{(a.steps - a.warmup) / elapsed:.4f}")


if __name__ == "__main__":
    main()
