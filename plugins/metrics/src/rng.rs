//! The metrics' own seeded generator (SplitMix64, Steele et al., 2014), so that drawing KID's
//! subsets never touches libtorch's global RNG, which belongs to the trainer.

/// A small, fast, seedable generator; its stream is fixed by the seed on every platform.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..n` (`n > 0`): the widening multiply maps 64 random bits onto
    /// `0..n`, and the few draws that would favour some values are redrawn (Lemire, 2019).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no values to draw from");
        let threshold = n.wrapping_neg() % n;
        loop {
            let product = self.next_u64() as u128 * n as u128;
            if product as u64 >= threshold {
                return (product >> 64) as u64;
            }
        }
    }

    /// `m` distinct indices from `0..n`, in draw order (a partial Fisher–Yates shuffle).
    pub fn choose(&mut self, n: usize, m: usize) -> Vec<i64> {
        assert!(m <= n, "cannot choose {m} of {n}");
        let mut pool: Vec<i64> = (0..n as i64).collect();
        for i in 0..m {
            let j = i + self.below((n - i) as u64) as usize;
            pool.swap(i, j);
        }
        pool.truncate(m);
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_splitmix64_stream() {
        // The reference implementation's first outputs for seed 1234567.
        let mut rng = SplitMix64::new(1234567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [6457827717110365317, 3203168211198807973, 9817491932198370423]);
    }

    #[test]
    fn choose_gives_distinct_indices_in_range() {
        let mut rng = SplitMix64::new(7);
        let mut picked = rng.choose(50, 20);
        assert_eq!(picked.len(), 20);
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 20);
        assert!(picked.iter().all(|&i| (0..50).contains(&i)));
        assert_eq!(SplitMix64::new(7).choose(50, 20), SplitMix64::new(7).choose(50, 20));
    }
}
