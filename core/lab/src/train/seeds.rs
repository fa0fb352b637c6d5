//! Seeds keyed by what they are for. Every random draw in a run derives from
//! `(run seed, stream, step, ...)` by hashing, so no generator state needs saving: resuming at
//! step k re-derives exactly the seeds the uninterrupted run would have used.
//!
//! libtorch draws (latents, labels, in-plugin randomness such as WGAN-GP's interpolation) use its
//! default generator, reseeded from these keys at the start of every phase; data order, flips and
//! subsets use [`SplitMix64`] directly.

/// What a seed is for. The discriminant is part of the key, so never renumber.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    DPhase = 1,
    GPhase = 2,
    Epoch = 3,
    FixedZ = 4,
    Flip = 5,
    Augment = 6,
}

/// A well-mixed 64-bit finaliser (splitmix64's).
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed for `stream` at the given coordinates.
pub fn key(seed: u64, stream: Stream, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed ^ mix(stream as u64)), |h, &p| mix(h ^ p))
}

/// Reseeds libtorch's default generators (CPU and every CUDA device).
pub fn seed_torch(seed: u64) {
    tch::manual_seed((seed >> 1) as i64);
}

/// A small, fast, seedable generator for host-side draws.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0.wrapping_sub(0x9e37_79b9_7f4a_7c15))
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let r = self.next_u64();
            if r < zone {
                return r % n;
            }
        }
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<i64> {
        let mut v: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_stream_and_step() {
        assert_ne!(key(0, Stream::DPhase, &[1]), key(0, Stream::GPhase, &[1]));
        assert_ne!(key(0, Stream::DPhase, &[1]), key(0, Stream::DPhase, &[2]));
        assert_eq!(key(7, Stream::Epoch, &[3]), key(7, Stream::Epoch, &[3]));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = SplitMix64::new(1).permutation(1000);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
