//! Seeded randomness. Seeds are keyed by what they are for. Every random draw in a run derives from
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
    Eval = 7,
    /// Phases other than `D` and `G`.
    Phase = 8,
    /// `lab sample`'s batches.
    Sample = 9,
    /// Random crops of training images (`data.load_size`).
    Crop = 10,
    /// `lab battle`'s samples and discriminator passes.
    Battle = 11,
    /// The prior batches that re-estimate batch-norm statistics before an evaluation.
    StandingStats = 12,
}

/// SplitMix64's output function: scrambles a state into well-mixed bits.
fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A well-mixed hash of one 64-bit word (one SplitMix64 step from state `z`).
pub fn mix(z: u64) -> u64 {
    finalize(z.wrapping_add(GAMMA))
}

/// The seed for `stream` at the given coordinates.
pub fn key(seed: u64, stream: Stream, parts: &[u64]) -> u64 {
    parts.iter().fold(mix(seed ^ mix(stream as u64)), |h, &p| mix(h ^ p))
}

/// Reseeds libtorch's default generators (CPU and every CUDA device).
pub fn seed_torch(seed: u64) {
    tch::manual_seed((seed >> 1) as i64);
}

/// SplitMix64: a 64-bit state advanced by a fixed odd increment, then scrambled. Fast, tiny,
/// and good enough for sampling indices and drawing toy images (not for cryptography).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent stream for item `index` of the stream family `seed`: every item gets its
    /// own generator, so item `i` does not depend on how many items come before it.
    pub fn for_item(seed: u64, index: u64) -> Self {
        let mut base = Self::new(seed);
        let mixed = base.next_u64() ^ index.wrapping_mul(GAMMA);
        let mut item = Self::new(mixed);
        Self::new(item.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        finalize(self.state)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias: the widening multiply
    /// maps 64 random bits onto `0..n`, and the few draws that would favour low values are
    /// rejected and redrawn.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no values to draw from");
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(n);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
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

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let a: Vec<u64> = (0..8).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..8).scan(SplitMix64::new(7), |r, _| Some(r.next_u64())).collect();
        let c: Vec<u64> = (0..8).scan(SplitMix64::new(8), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(1);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            let v = rng.below(5) as usize;
            seen[v] += 1;
        }
        // Each of 5 values expects 1000 draws; 800 is > 6 standard deviations away.
        assert!(seen.iter().all(|&k| k > 800), "{seen:?}");
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn unit_is_in_the_half_open_interval() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
