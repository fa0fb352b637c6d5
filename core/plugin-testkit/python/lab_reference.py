"""What the plugins' PyTorch reference scripts share (`plugins/*/reference/*.py`).

A plugin's Rust test records, in one folder per configuration, its networks' tensors before and
after a few float64 passes (`g_before.npz`, `d_before.npz`, `g_after.npz`, `d_after.npz`), the
passes' inputs and outputs (`io.npz`) and the parameter gradients (`grads.npz`). The script
rebuilds the same networks from its own code, loads the "before" tensors with `strict=True` (so
both sides have exactly the same tensors and shapes), replays the passes and reports each
quantity's largest difference relative to the largest value it should have. This module holds
the parts that do not depend on the architecture: loading, the relative difference, the checks
of buffers and gradients per network, the evaluation-mode pass and the command line.
"""
import json
import sys

import numpy as np
import torch


def trainable(module):
    """Trainable parameters of `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def load(path):
    """The tensors of an `.npz` file, by name."""
    with np.load(path) as npz:
        return {k: torch.from_numpy(npz[k].copy()) for k in npz.files}


def max_rel_diff(ours, theirs):
    """The largest absolute difference, relative to the largest magnitude in `theirs`."""
    scale = max(theirs.abs().max().item(), 1e-300)
    return (ours.double() - theirs.double()).abs().max().item() / scale


def load_networks(directory, g, d):
    """Moves `g` and `d` to float64, loads the recorded "before" tensors, returns the inputs and
    outputs (`io.npz`) with floating tensors in float64.

    Everything runs in float64 on both sides: in float32 a ReLU input within rounding of 0 can
    flip and move a gradient far more than a real bug would.
    """
    g.double(), d.double()
    g.load_state_dict(load(f"{directory}/g_before.npz"), strict=True)
    d.load_state_dict(load(f"{directory}/d_before.npz"), strict=True)
    return {k: t.double() if t.is_floating_point() else t for k, t in load(f"{directory}/io.npz").items()}


def own_gradients(*nets):
    """A copy of each network's parameter gradients, by name (before later passes add to them)."""
    return [{k: p.grad.clone() for k, p in net.named_parameters()} for net in nets]


def network_diffs(directory, named, diffs, worst):
    """For each `(network, prefix, its gradients)`: the recorded tensors after the passes against
    the network's buffers now (spectral-norm vectors, batch-norm statistics), and the recorded
    gradients against `gradients`, each per tensor; the worst of each goes into `diffs` with its
    tensor's name in `worst`.

    Gradients are relative to the network's largest one: a bias feeding a batch norm has an exact
    gradient of 0, so its own scale is rounding noise.
    """
    grads = load(f"{directory}/grads.npz")
    for net, prefix, own in named:
        after = load(f"{directory}/{prefix}_after.npz")
        per_buffer = {k: max_rel_diff(after[k], b) for k, b in net.named_buffers()}
        scale = max(t.abs().max().item() for t in own.values())
        per_grad = {k: (grads[f"{prefix}.{k}"].double() - t).abs().max().item() / scale for k, t in own.items()}
        for what, per_tensor in [("buffers_after", per_buffer), ("grads", per_grad)]:
            if not per_tensor:  # e.g. a critic without spectral norm has no buffers
                continue
            key = max(per_tensor, key=per_tensor.get)
            diffs[f"{prefix}.{what}"], worst[f"{prefix}.{what}"] = per_tensor[key], key


def eval_diffs(g, d, io, y, diffs):
    """Evaluation mode (stored statistics, spectral-norm vectors not updated): G on the recorded
    z, D on the recorded real images."""
    g.eval(), d.eval()
    with torch.no_grad():
        diffs["eval.fake"] = max_rel_diff(io["eval_fake"], g(io["z"], y))
        eval_logits, eval_features = d(io["real"], y)
        diffs["eval.logits"] = max_rel_diff(io["eval_logits"], eval_logits)
        diffs["eval.features"] = max_rel_diff(io["eval_features"], eval_features)


def compare_gan_passes(directory, g, d, classes):
    """Replays what `record_gan_passes` (the Rust testkit) recorded for a G/D pair built by the
    script: a G step's training-mode forward D(G(z, y), y) with loss = mean logit and z's
    gradient; a training-mode D pass on the recorded real images with their gradient (for
    spectral norm, a second power step); then the per-network and evaluation-mode checks."""
    io = load_networks(directory, g, d)
    y = io["y"] if classes else None
    diffs, worst = {}, {}

    g.train(), d.train()
    z = io["z"].clone().requires_grad_(True)
    fake = g(z, y)
    logits, features = d(fake, y)
    logits.mean().backward()
    diffs["train.fake"] = max_rel_diff(io["fake"], fake.detach())
    diffs["train.logits"] = max_rel_diff(io["logits"], logits.detach())
    diffs["train.features"] = max_rel_diff(io["features"], features.detach())
    diffs["train.z_grad"] = max_rel_diff(io["z_grad"], z.grad)
    g_grads, d_grads = own_gradients(g, d)

    real = io["real"].clone().requires_grad_(True)
    real_logits, _ = d(real, y)
    real_logits.sum().backward()
    diffs["train.real_logits"] = max_rel_diff(io["real_logits"], real_logits.detach())
    diffs["train.real_grad"] = max_rel_diff(io["real_grad"], real.grad)

    network_diffs(directory, [(g, "g", g_grads), (d, "d", d_grads)], diffs, worst)
    eval_diffs(g, d, io, y, diffs)
    return {"params": {"G": trainable(g), "D": trainable(d)}, "max_rel_diff": diffs, "worst_tensor": worst}


def main(doc, count, compare):
    """`SCRIPT count` prints `count()`; `SCRIPT compare DIR...` prints the reference counts and
    `compare(DIR)` for each folder, as JSON; anything else prints `doc` and fails."""
    torch.manual_seed(0)
    argv = sys.argv
    if argv[1:2] == ["count"]:
        print(json.dumps(count()))
    elif argv[1:2] == ["compare"] and len(argv) > 2:
        print(json.dumps({"reference_counts": count(), "runs": [compare(d) for d in argv[2:]]}))
    else:
        sys.exit(doc)
