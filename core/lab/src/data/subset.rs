//! `data.fraction` and `data.count`: which images of a split a run trains on.
//!
//! The rule, for a split of `N` images:
//!
//! - keep `n = data.count` images when it is set, else `n = round(fraction * N)` (rounding half
//!   away from zero), at least 1 and at most `N`;
//! - `subset = "first"` keeps indices `0..n`, the first `n` in the source's order (what
//!   DiffAugment's StyleGAN2 code does);
//! - `subset = "random"` keeps a uniformly random set of `n` distinct indices, drawn by a partial
//!   Fisher–Yates shuffle of `0..N` driven by SplitMix64 seeded with `subset_seed` (for
//!   `i` in `0..n`, swap position `i` with a uniform position in `i..N`; unbiased bounded draws),
//!   then sorted ascending so the kept images stay in source order (a seeded random choice, as
//!   DiffAugment's BigGAN code does). The same seed and `N` always give the same indices.
//!
//! With `fraction = 1` both rules keep everything, in order. The kept indices are recorded in
//! [`Dataset::indices`] so a run folder says exactly which images were used.

use super::Dataset;
use crate::seeds::SplitMix64;

/// The rules `[data] subset` accepts.
pub const RULES: &[&str] = &["random", "first"];

/// How many images `fraction` keeps of `total` (see the module docs).
pub fn subset_size(total: usize, fraction: f64) -> usize {
    if total == 0 {
        return 0;
    }
    ((fraction * total as f64).round() as usize).clamp(1, total)
}

/// The ascending source indices kept of `total` images under `rule`, one of [`RULES`]
/// ([`DataConfig::validate`](super::DataConfig::validate) checks it; any other rule panics).
pub fn choose(total: usize, fraction: f64, rule: &str, seed: u64) -> Vec<i64> {
    choose_count(total, subset_size(total, fraction), rule, seed)
}

/// The ascending source indices of `n <= total` images kept under `rule` (see [`choose`]).
pub fn choose_count(total: usize, n: usize, rule: &str, seed: u64) -> Vec<i64> {
    assert!(n <= total, "a subset of {n} images of {total}");
    if n == total || rule == "first" {
        return (0..n as i64).collect();
    }
    assert_eq!(rule, "random", "subset rule {rule:?} passed validation");
    let mut rng = SplitMix64::new(seed);
    let mut order: Vec<i64> = (0..total as i64).collect();
    for i in 0..n {
        let j = i + rng.below((total - i) as u64) as usize;
        order.swap(i, j);
    }
    order.truncate(n);
    order.sort_unstable();
    order
}

/// Keeps the rows of `ds` at `indices` (ascending positions into `ds`), and records which
/// source indices they were.
pub(crate) fn apply(ds: Dataset, indices: Vec<i64>) -> Dataset {
    if indices.len() as i64 == ds.len() {
        return ds;
    }
    let select = tch::Tensor::from_slice(&indices);
    let source: Vec<i64> = indices.iter().map(|&i| ds.indices[i as usize]).collect();
    // A paired second domain is subset alike; an unpaired one is kept whole.
    let domain_b = ds.domain_b.map(|b| match b.paired {
        true => super::DomainB { images: b.images.index_select(0, &select), paired: true },
        false => b,
    });
    Dataset {
        name: ds.name,
        images: ds.images.index_select(0, &select),
        labels: ds.labels.map(|l| l.index_select(0, &select)),
        num_classes: ds.num_classes,
        indices: source,
        domain_b,
        crop: ds.crop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rounds_and_keeps_at_least_one() {
        assert_eq!(subset_size(60000, 0.1), 6000);
        assert_eq!(subset_size(10, 0.25), 3); // 2.5 rounds away from zero
        assert_eq!(subset_size(10, 0.24), 2);
        assert_eq!(subset_size(1000, 1e-9), 1);
        assert_eq!(subset_size(7, 1.0), 7);
        assert_eq!(subset_size(0, 0.5), 0);
    }

    #[test]
    fn first_keeps_the_first_n() {
        assert_eq!(choose(10, 0.3, "first", 99), vec![0, 1, 2]);
        assert_eq!(choose(4, 1.0, "random", 1), vec![0, 1, 2, 3]);
    }

    #[test]
    fn random_is_deterministic_sorted_distinct_and_seed_dependent() {
        let a = choose(1000, 0.1, "random", 42);
        assert_eq!(a, choose(1000, 0.1, "random", 42));
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "ascending and distinct");
        assert!(a.iter().all(|&i| (0..1000).contains(&i)));
        assert_ne!(a, choose(1000, 0.1, "random", 43));
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        // Pinned, so that a change to the rule (which would silently change runs) fails here.
        assert_eq!(choose(10, 0.5, "random", 0), PINNED_SEED0);
    }

    const PINNED_SEED0: [i64; 5] = [1, 2, 4, 8, 9];

    #[test]
    fn random_is_uniform_over_indices() {
        // Each index of 10 is kept with probability 3/10; over 2000 seeds that is 600 ± 20.5.
        let mut counts = [0usize; 10];
        for seed in 0..2000 {
            for i in choose(10, 0.3, "random", seed) {
                counts[i as usize] += 1;
            }
        }
        assert!(counts.iter().all(|&c| (500..700).contains(&c)), "{counts:?}");
    }

    #[test]
    fn apply_composes_source_indices() {
        let images = tch::Tensor::arange(6, (tch::Kind::Uint8, tch::Device::Cpu)).view([6, 1, 1, 1]);
        let ds = Dataset {
            name: "t".into(),
            images,
            labels: None,
            num_classes: 0,
            indices: vec![10, 11, 12, 13, 14, 15],
            domain_b: None,
            crop: None,
        };
        let sub = apply(ds, vec![1, 4]);
        assert_eq!(sub.indices, vec![11, 14]);
        assert_eq!(Vec::<u8>::try_from(sub.images.flatten(0, -1)).unwrap(), vec![1, 4]);
    }
}
