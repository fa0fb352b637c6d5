"""The PyTorch twin of `lab run experiments/diffaugment_cifar10_20pct.toml` without DiffAugment,
for `scripts/bench_biggan.sh`: BigGAN-CIFAR at the paper's width (G_ch = D_ch = 64, i.e. 256
channels, dim_z 128, class-conditional, spectral norm in G and D) from the plugin's own
cross-check reference (`plugins/biggan/reference/biggan_cifar.py`, the same network tensor for
tensor), the hinge loss, 4 D steps of 50 real images then a G step of 50, Adam 2e-4 with
β = (0, 0.999) on both, and an EMA copy of G updated after every step (before `ema.start` the
EMA is a copy, as in lab). Real images come from a uint8 tensor in memory, as lab keeps its
data set. Prints steps/s over the timed steps.
"""
import argparse
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "plugins" / "biggan" / "reference"))
from biggan_cifar import Discriminator, Generator  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--d-steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ch", type=int, default=64, help="G_ch = D_ch (64: the paper's 256 channels)")
    ap.add_argument("--channels-last", action="store_true", help="weights and batches in NHWC order")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    classes, z_dim = 10, 128
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, classes, (1000,))
    g = Generator(a.ch, z_dim, classes, True, 1e-5)
    d = Discriminator(a.ch, classes, True)
    ema = Generator(a.ch, z_dim, classes, True, 1e-5)
    ema.load_state_dict(g.state_dict())
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    for net in (g, d, ema):
        net.to(memory_format=layout)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.999))
    n = images.shape[0]
    for step in range(a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        for _ in range(a.d_steps):
            idx = torch.randint(n, (a.batch,))
            real = (images.index_select(0, idx).float() / 127.5 - 1.0).contiguous(memory_format=layout)
            y_real = labels.index_select(0, idx)
            y_fake = torch.randint(classes, (a.batch,))
            with torch.no_grad():
                fake = g(torch.randn(a.batch, z_dim), y_fake)
            loss_d = F.relu(1.0 - d(real, y_real)[0]).mean() + F.relu(1.0 + d(fake, y_fake)[0]).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        # G's step: gradients into G only, as BigGAN-PyTorch's toggle_grad does.
        for p in d.parameters():
            p.requires_grad_(False)
        y_fake = torch.randint(classes, (a.batch,))
        loss_g = -d(g(torch.randn(a.batch, z_dim), y_fake), y_fake)[0].mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        with torch.no_grad():
            for e, t in zip(ema.state_dict().values(), g.state_dict().values()):
                e.copy_(t)
    elapsed = time.perf_counter() - start
    print(f"{(a.steps - a.warmup) / elapsed:.4f}")


if __name__ == "__main__":
    main()
