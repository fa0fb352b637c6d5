"""An independent PyTorch re-implementation of LAPGAN's networks, used only by the plugin's tests.

Written from the paper (Denton et al. 2015, Section 3: the Laplacian pyramid, sampling
I_k = u(I_{k+1}) + G_k(z_k, u(I_{k+1})) from the coarsest level up) and from eyescream's layer list
(shared/ZOO.md section 3): the coarsest generator two fully connected ReLU layers and a tanh
image; each finer generator a 7x7, 7x7, 5x5 "same" convolution stack on [upsampled coarser image,
noise plane] giving the band-pass image; each finer discriminator a 5x5 convolution, a 5x5
stride-2 convolution (ReLU after both), dropout and a linear logit. Upsampling is bilinear
(align_corners=False), downsampling the 2x2 mean.

Module names are chosen so that `state_dict()` keys equal the Rust plugin's variable names.

Usage (the Rust test `matches_the_pytorch_reference` drives it):
    lapgan.py count                 parameter counts of the Fashion-MNIST and CIFAR-10 pyramids
    lapgan.py compare DIR [DIR...]  replay what the Rust networks did in each DIR, as JSON
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "core" / "plugin-testkit" / "python"))
from lab_reference import compare_gan_passes, main, trainable  # noqa: E402


class Coarsest(nn.Module):
    def __init__(self, z_dim, hidden, channels, side):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(z_dim, hidden), nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, channels * side * side)
        self.shape = (channels, side, side)

    def forward(self, z):
        return torch.tanh(self.fc3(F.relu(self.fc2(F.relu(self.fc1(z)))))).reshape(-1, *self.shape)


class Finer(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.conv1 = nn.Conv2d(channels + 1, hidden, 7, padding=3)
        self.conv2 = nn.Conv2d(hidden, hidden, 7, padding=3)
        self.conv3 = nn.Conv2d(hidden, channels, 5, padding=2)

    def forward(self, coarse, plane):
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(torch.cat([coarse, plane], dim=1))))))


class Generator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.sides, self.z_dim = cfg["sides"], cfg["z_dim"]
        self.level0 = Coarsest(cfg["z_dim"], cfg["g0_hidden"], cfg["channels"], self.sides[0])
        for k in range(1, len(self.sides)):
            setattr(self, f"level{k}", Finer(cfg["channels"], cfg["g_channels"]))

    def forward(self, latent, y=None):
        n = latent.shape[0]
        image = self.level0(latent[:, :self.z_dim])
        start = self.z_dim
        for k, side in enumerate(self.sides[1:], start=1):
            plane = latent[:, start:start + side * side].reshape(n, 1, side, side)
            start += side * side
            coarse = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
            image = coarse + getattr(self, f"level{k}")(coarse, plane)
        return image


class FinerDiscriminator(nn.Module):
    def __init__(self, channels, hidden, side):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 5, padding=2)
        self.conv2 = nn.Conv2d(hidden, hidden, 5, stride=2, padding=2)
        half = (side + 1) // 2
        self.fc = nn.Linear(hidden * half * half, 1)

    def forward(self, x, y=None):
        features = F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1)  # dropout: 0 in the test
        return self.fc(features)[:, 0], features


def build(cfg):
    return Generator(cfg), FinerDiscriminator(cfg["channels"], cfg["d_channels"], cfg["sides"][-1])


def count():
    """Trainable parameters: the generator (all levels) and each level's discriminator."""
    out = {}
    for name, channels, sides in [("fashion_mnist", 1, [7, 14, 28]), ("cifar10", 3, [8, 16, 32])]:
        cfg = dict(sides=sides, z_dim=100, g0_hidden=1200, d0_hidden=600, g_channels=64, d_channels=64,
                   channels=channels)
        out[f"G_{name}"] = trainable(Generator(cfg))
        side0 = sides[0] * sides[0] * channels
        d0 = nn.Sequential(nn.Linear(side0, 600), nn.Linear(600, 600), nn.Linear(600, 1))
        out[f"D0_{name}"] = trainable(d0)
        for k, side in enumerate(sides[1:], start=1):
            out[f"D{k}_{name}"] = trainable(FinerDiscriminator(channels, 64, side))
    return out


def compare(directory):
    cfg = json.load(open(f"{directory}/config.json"))
    g, d = build(cfg)
    return compare_gan_passes(directory, g, d, 0)


if __name__ == "__main__":
    main(__doc__, count, compare)
