//! Clusters as classifiers: k-means (Lloyd's algorithm from a k-means++ start), and the
//! majority-vote mapping from clusters (or InfoGAN categories) to labels that scores them.
//! Written here rather than taken from a crate: it is twenty lines on tensors, and it must run
//! on the run's device with libtorch's seeded generator.
use lab_nn::prelude::*;

/// `k` centroids of the rows of `x` `[N, F]` after `iterations` of Lloyd's algorithm, starting
/// from k-means++ seeds (Arthur & Vassilvitskii 2007: each next seed a row drawn with
/// probability ∝ its squared distance to the nearest seed so far), drawn with libtorch's
/// generator. An emptied cluster keeps its centroid.
pub fn kmeans(x: &Tensor, k: i64, iterations: usize) -> Tensor {
    let x = x.to_kind(Kind::Float);
    let first = Tensor::randint(x.size()[0], [1], (Kind::Int64, x.device()));
    let mut centroids = x.index_select(0, &first);
    while centroids.size()[0] < k {
        let d2 = squared_distances(&x, &centroids).amin(1, false).clamp_min(0.0);
        let next =
            if d2.sum(Kind::Float).double_value(&[]) > 0.0 { d2.multinomial(1, false) } else { first.shallow_clone() };
        centroids = Tensor::cat(&[centroids, x.index_select(0, &next)], 0);
    }
    for _ in 0..iterations {
        let assign = nearest(&x, &centroids);
        let one_hot = assign.one_hot(k).to_kind(Kind::Float);
        let counts = one_hot.sum_dim_intlist(0, false, Kind::Float).unsqueeze(1);
        let sums = one_hot.tr().matmul(&x);
        let empty = counts.eq(0.0);
        centroids = (sums / counts.clamp_min(1.0)).where_self(&empty.logical_not(), &centroids);
    }
    centroids
}

/// Squared Euclidean distances `[N, K]` between the rows of `x` and the centroids.
fn squared_distances(x: &Tensor, centroids: &Tensor) -> Tensor {
    x.square().sum_dim_intlist(1, true, Kind::Float) - x.matmul(&centroids.tr()) * 2.0
        + centroids.square().sum_dim_intlist(1, false, Kind::Float).unsqueeze(0)
}

/// The index of the nearest centroid (squared Euclidean distance) of each row of `x`.
pub fn nearest(x: &Tensor, centroids: &Tensor) -> Tensor {
    squared_distances(&x.to_kind(Kind::Float), centroids).argmin(1, false)
}

/// For each of `k` clusters, the label most of its members have (`-1` for an empty cluster).
pub fn majority_mapping(assign: &Tensor, labels: &Tensor, k: i64, classes: i64) -> Vec<i64> {
    let pair = assign.to_kind(Kind::Int64) * classes + labels.to_kind(Kind::Int64).to_device(assign.device());
    let counts = pair.bincount::<Tensor>(None, k * classes).reshape([k, classes]);
    let (best, winner) = counts.max_dim(1, false);
    let best = Vec::<i64>::try_from(best.to_device(tch::Device::Cpu)).unwrap_or_default();
    let winner = Vec::<i64>::try_from(winner.to_device(tch::Device::Cpu)).unwrap_or_default();
    best.iter().zip(winner).map(|(&b, w)| if b > 0 { w } else { -1 }).collect()
}

/// The share of rows whose cluster maps to their label.
pub fn mapped_accuracy(assign: &Tensor, labels: &Tensor, mapping: &[i64]) -> f64 {
    let map = Tensor::from_slice(mapping).to_device(assign.device());
    let predicted = map.index_select(0, &assign.to_kind(Kind::Int64));
    predicted.eq_tensor(&labels.to_device(assign.device())).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}
