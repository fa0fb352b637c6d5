"""Writes a tiny TorchScript feature network for the metric tests, with the call convention of
stylegan2-ada-pytorch's inception-2015-12-05.pt: forward(uint8 NCHW images, return_features)
gives [N, DIM] features when return_features, else softmax probabilities over CLASSES. Like the
real network it takes only 3-channel images, so the tests see the gray-to-RGB repeat at work.

Usage: tiny_net.py OUT.pt [DIM] [CLASSES]
"""
import sys

import torch
from torch import Tensor, nn


class Tiny(nn.Module):
    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.proj = nn.Linear(64, dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor:
        if x.shape[1] != 3:
            raise ValueError("expected 3-channel images")
        h = x.to(torch.float32) / 127.5 - 1.0
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        f = self.proj(torch.cat([h.mean(dim=[2, 3]), h.amax(dim=[2, 3])], dim=1))
        if return_features:
            return f
        return torch.softmax(self.head(f), dim=1)


def main(out: str, dim: int = 64, classes: int = 10) -> None:
    torch.manual_seed(0)
    net = Tiny(dim, classes)
    # Features that spread (unit-scale projection, centred on flat random-colour images) and
    # confident, image-dependent predictions, so FID, precision/recall and the Inception score
    # all land far from their degenerate values on the tests' images.
    nn.init.normal_(net.proj.weight, std=1.0)
    with torch.no_grad():
        colours = torch.rand(256, 3, 1, 1) * 255
        net.proj.bias -= net(colours.expand(256, 3, 16, 16).to(torch.uint8), True).mean(0)
    nn.init.normal_(net.head.weight, std=2.0)
    torch.jit.script(net.eval()).save(out)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
