"""Trains a small classifier on a dataset and saves it as a TorchScript feature network that
lab's metric plugins accept (`lab features train --dataset fashion-mnist`).

The saved module has the call signature of the TF-Inception port used by stylegan2-ada-pytorch:
`forward(uint8 NCHW images, return_features=False, use_fp16=False, no_output_bias=False)`:
- `return_features=True`: 128-d penultimate features (for FID, KID, precision/recall);
- otherwise class probabilities (for the Inception Score), without the output bias when
  `no_output_bias=True`.
Images of any size are resized to 28x28 (bilinear); RGB is averaged to grey.
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def find(dataset, root):
    folders = [os.path.join(root, dataset)]
    if dataset == "fashion-mnist":
        folders.append("/usr/share/datasets/fashion-mnist")
    for folder in folders:
        for ext in (".gz", ""):
            p = os.path.join(folder, "train-images-idx3-ubyte" + ext)
            if os.path.exists(p):
                return p, os.path.join(folder, "train-labels-idx1-ubyte" + ext)
    raise SystemExit(f"{dataset}: no IDX files in {' or '.join(folders)}; run `lab data fetch {dataset}`")


class FeatureNet(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, 3, padding=1)
        self.fc = nn.Linear(128 * 3 * 3, 128)
        self.out = nn.Linear(128, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        return F.relu(self.fc(x.flatten(1)))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1.0
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        if x.shape[2] != 28 or x.shape[3] != 28:
            x = F.interpolate(x, size=[28, 28], mode="bilinear", align_corners=False)
        return x

    def forward(self, images: torch.Tensor, return_features: bool = False, use_fp16: bool = False,
                no_output_bias: bool = False) -> torch.Tensor:
        f = self.features(self.prepare(images))
        if return_features:
            return f
        logits = F.linear(f, self.out.weight) if no_output_bias else self.out(f)
        return F.softmax(logits, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--root", default=os.environ.get("LAB_DATA", os.path.expanduser("~/.cache/lab/datasets")))
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    images_path, labels_path = find(a.dataset, a.root)
    x = torch.from_numpy(idx(images_path).copy()).unsqueeze(1)
    y = torch.from_numpy(idx(labels_path).astype(np.int64))
    net = FeatureNet(int(y.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    n, batch, start = x.shape[0], 128, time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(n)
        correct = 0
        for i in range(0, n, batch):
            idx_b = perm[i:i + batch]
            probs = net(x[idx_b])
            loss = F.nll_loss(torch.log(probs + 1e-12), y[idx_b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct += int((probs.argmax(1) == y[idx_b]).sum())
        print(f"epoch {epoch + 1}/{a.epochs}: train accuracy {correct / n:.4f} ({time.time() - start:.0f}s)", flush=True)
    net.eval()
    scripted = torch.jit.script(net)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    tmp = a.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, a.out)
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
