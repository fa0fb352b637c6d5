"""Independent reference implementations of lab's metrics, used by the tests of plugins/metrics.

Written from the papers' formulas with numpy/scipy (and torch only to run a TorchScript feature
network), deliberately not the way the Rust side computes them:
- FID: mean and numpy.cov (unbiased) of float64 features, then scipy.linalg.sqrtm(S1 @ S2)
  (a Schur-decomposition square root of a non-symmetric product, where lab uses two symmetric
  eigendecompositions).
- KID: unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, written as explicit off-diagonal means,
  on the subsets whose indices the test passes in (the draw itself is lab's RNG, tested there).
- IS: exp of the mean KL(p(y|x) || p(y)) per consecutive split, scipy.special.rel_entr.
- Precision/recall: exact pairwise distances (scipy.spatial.distance.cdist), k-NN radii from
  sorted rows, ball membership.

Usage (each prints one JSON object):
  metrics_reference.py features NET IMAGES.npy OUT.npy [--args true,false] [--batch 64]
  metrics_reference.py fid REAL.npy FAKE.npy          # features, [N, D]
  metrics_reference.py fid-stats MU1.npy S1.npy MU2.npy S2.npy
  metrics_reference.py kid REAL.npy FAKE.npy REAL_IDX.npy FAKE_IDX.npy   # idx: [subsets, m]
  metrics_reference.py is PROBS.npy [--splits 10]
  metrics_reference.py pr REAL.npy FAKE.npy [--k 3]
"""
import argparse
import json
import sys

import numpy as np
import scipy.linalg
import scipy.spatial.distance
import scipy.special


def frechet(mu1, s1, mu2, s2):
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2))."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        # Rounding can leave tiny imaginary parts on a matrix whose square root is real.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-6):
            raise ValueError("sqrtm(S1 S2) has a large imaginary part")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def cmd_features(a):
    import torch

    net = torch.jit.load(a.net, map_location="cpu").eval()
    images = torch.from_numpy(np.load(a.images))
    flags = [s.strip() == "true" for s in a.args.split(",") if s.strip()]
    outs = []
    with torch.no_grad():
        for chunk in torch.split(images, a.batch):
            outs.append(net(chunk, *flags).reshape(chunk.shape[0], -1).float())
    np.save(a.out, torch.cat(outs).numpy())
    return {"rows": int(images.shape[0])}


def cmd_fid(a):
    real = np.load(a.real).astype(np.float64)
    fake = np.load(a.fake).astype(np.float64)
    fid = frechet(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))
    return {"fid": fid}


def cmd_fid_stats(a):
    mu1, s1, mu2, s2 = (np.load(p).astype(np.float64) for p in (a.mu1, a.s1, a.mu2, a.s2))
    return {"fid": frechet(mu1, s1, mu2, s2)}


def mmd2_unbiased(x, y):
    m, d = x.shape
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    off = ~np.eye(m, dtype=bool)
    return kxx[off].mean() + kyy[off].mean() - 2.0 * kxy.mean()


def cmd_kid(a):
    real = np.load(a.real).astype(np.float64)
    fake = np.load(a.fake).astype(np.float64)
    ridx, fidx = np.load(a.real_idx), np.load(a.fake_idx)
    values = np.array([mmd2_unbiased(real[r], fake[f]) for r, f in zip(ridx, fidx)])
    return {"kid": float(values.mean()), "kid_std": float(values.std())}


def cmd_is(a):
    probs = np.load(a.probs).astype(np.float64)
    n = probs.shape[0]
    scores = []
    for i in range(a.splits):
        part = probs[i * n // a.splits : (i + 1) * n // a.splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = scipy.special.rel_entr(part, np.broadcast_to(marginal, part.shape)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return {"is": float(np.mean(scores)), "is_std": float(np.std(scores))}


def cmd_pr(a):
    real = np.load(a.real).astype(np.float64)
    fake = np.load(a.fake).astype(np.float64)

    def radii(x):
        # Column 0 of each sorted row is the point itself.
        return np.sort(scipy.spatial.distance.cdist(x, x), axis=1)[:, a.k]

    def inside(query, centres):
        dist = scipy.spatial.distance.cdist(query, centres)
        return float((dist <= radii(centres)[None, :]).any(axis=1).mean())

    return {"precision": inside(fake, real), "recall": inside(real, fake)}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("features")
    s.add_argument("net")
    s.add_argument("images")
    s.add_argument("out")
    s.add_argument("--args", default="true")
    s.add_argument("--batch", type=int, default=64)
    s.set_defaults(run=cmd_features)
    s = sub.add_parser("fid")
    s.add_argument("real")
    s.add_argument("fake")
    s.set_defaults(run=cmd_fid)
    s = sub.add_parser("fid-stats")
    for name in ("mu1", "s1", "mu2", "s2"):
        s.add_argument(name)
    s.set_defaults(run=cmd_fid_stats)
    s = sub.add_parser("kid")
    for name in ("real", "fake", "real_idx", "fake_idx"):
        s.add_argument(name)
    s.set_defaults(run=cmd_kid)
    s = sub.add_parser("is")
    s.add_argument("probs")
    s.add_argument("--splits", type=int, default=10)
    s.set_defaults(run=cmd_is)
    s = sub.add_parser("pr")
    s.add_argument("real")
    s.add_argument("fake")
    s.add_argument("--k", type=int, default=3)
    s.set_defaults(run=cmd_pr)
    a = p.parse_args(argv)
    print(json.dumps(a.run(a)))


if __name__ == "__main__":
    main(sys.argv[1:])
