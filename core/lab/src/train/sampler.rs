//! Which real images each discriminator step sees.
//!
//! The data stream is the concatenation of seeded permutations of the dataset, one per epoch;
//! batch `b` is elements `[b·B, (b+1)·B)` of that stream. It is a pure function of `b`, so a
//! resumed run draws exactly the batches the uninterrupted run would have.
use crate::seeds::{key, SplitMix64, Stream};

pub struct Sampler {
    n: usize,
    batch: usize,
    seed: u64,
    epoch: Option<(u64, Vec<i64>)>,
}

impl Sampler {
    pub fn new(n: usize, batch: usize, seed: u64) -> Self {
        Self { n, batch, seed, epoch: None }
    }

    fn permutation(&mut self, epoch: u64) -> &[i64] {
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let perm = SplitMix64::new(key(self.seed, Stream::Epoch, &[epoch])).permutation(self.n);
            self.epoch = Some((epoch, perm));
        }
        &self.epoch.as_ref().expect("just set").1
    }

    /// The dataset indices of batch `b`.
    pub fn batch(&mut self, b: u64) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.batch);
        let mut pos = b as u128 * self.batch as u128;
        while out.len() < self.batch {
            let epoch = (pos / self.n as u128) as u64;
            let offset = (pos % self.n as u128) as usize;
            let take = (self.batch - out.len()).min(self.n - offset);
            out.extend_from_slice(&self.permutation(epoch)[offset..offset + take]);
            pos += take as u128;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_visits_every_index_once() {
        let mut s = Sampler::new(10, 4, 3);
        let mut seen: Vec<i64> = (0..5).flat_map(|b| s.batch(b)).collect();
        let (first, second) = seen.split_at_mut(10);
        first.sort_unstable();
        assert_eq!(first, (0..10).collect::<Vec<_>>().as_slice());
        assert_eq!(second.len(), 10);
    }

    #[test]
    fn batches_are_a_pure_function_of_their_index() {
        let mut a = Sampler::new(37, 8, 9);
        let mut b = Sampler::new(37, 8, 9);
        let late = a.batch(17);
        for i in 0..17 {
            b.batch(i);
        }
        assert_eq!(late, b.batch(17));
    }
}
