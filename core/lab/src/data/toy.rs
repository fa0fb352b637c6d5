//! 2-D toy mixtures of Gaussians: `ring` (modes on a circle, LSGAN's stability test: 8 modes of
//! std 0.01 on a circle of radius 1) and `grid` (modes on a square lattice, as in PacGAN and
//! VEEGAN), with the mode-coverage measure those papers report. Points are stored as float
//! "images" of shape `[N, 2, 1, 1]`, so networks see `[N, 2, 1, 1]` batches unscaled.
use tch::{Kind, Tensor};

use super::Dataset;
use crate::seeds::SplitMix64;

/// A seed stream for the test split, so its points differ from the training points.
const TEST_STREAM: u64 = 0x2D70_2D70_2D70_2D70;

/// A mixture of isotropic Gaussians: `components` equal-weight draws, each naming its mode in
/// `centres` (the identity, except where components coincide and their mode weighs more).
#[derive(Clone, Debug, PartialEq)]
pub struct Mixture {
    /// The distinct modes.
    pub centres: Vec<[f64; 2]>,
    /// The mode of each equally likely component.
    pub components: Vec<usize>,
    pub std: f64,
}

/// How well a set of points covers a mixture's modes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coverage {
    /// Modes that received at least the minimum share of the points within 3σ.
    pub modes: usize,
    /// The share of points within 3σ of their nearest mode ("high quality" samples).
    pub high_quality: f64,
}

impl Mixture {
    /// Equal-weight modes at `centres`.
    fn equal(centres: Vec<[f64; 2]>, std: f64) -> Self {
        Self { components: (0..centres.len()).collect(), centres, std }
    }

    /// `modes` Gaussians evenly spaced on a circle of `radius`.
    pub fn ring(modes: usize, radius: f64, std: f64) -> Self {
        let centres = (0..modes)
            .map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / modes as f64;
                [radius * a.cos(), radius * a.sin()]
            })
            .collect();
        Self::equal(centres, std)
    }

    /// `components` Gaussians at numpy's `linspace(0, 2π, components)` on a circle of `radius`,
    /// endpoint included, as LSGAN's stability code draws its ring (`sample_mog(n_mixture=9)`):
    /// the first and last angles coincide, so there are `components − 1` modes and the one at
    /// angle 0 is drawn twice as often as each other.
    pub fn ring_with_endpoint(components: usize, radius: f64, std: f64) -> Self {
        let modes = components.saturating_sub(1).max(1);
        // Angle k·2π/modes is mode k mod modes: the last angle, 2π, is the first mode again.
        Self { components: (0..components).map(|k| k % modes).collect(), ..Self::ring(modes, radius, std) }
    }

    /// `side` × `side` Gaussians `spacing` apart, centred on the origin.
    pub fn grid(side: usize, spacing: f64, std: f64) -> Self {
        let offset = (side as f64 - 1.0) / 2.0;
        let centres = (0..side * side)
            .map(|k| [((k % side) as f64 - offset) * spacing, ((k / side) as f64 - offset) * spacing])
            .collect();
        Self::equal(centres, std)
    }

    /// `count` points, each from a uniformly chosen component; point i depends only on
    /// (seed, i).
    pub fn sample(&self, count: i64, seed: u64) -> Vec<f32> {
        let mut xy = Vec::with_capacity(2 * count as usize);
        for i in 0..count as u64 {
            let mut rng = SplitMix64::for_item(seed, i);
            let c = self.centres[self.components[rng.below(self.components.len() as u64) as usize]];
            // Box–Muller: two independent normals from two uniforms.
            let (u1, u2) = (rng.uniform(f64::MIN_POSITIVE, 1.0), rng.uniform(0.0, 1.0));
            let r = (-2.0 * u1.ln()).sqrt();
            let t = 2.0 * std::f64::consts::PI * u2;
            xy.push((c[0] + self.std * r * t.cos()) as f32);
            xy.push((c[1] + self.std * r * t.sin()) as f32);
        }
        xy
    }

    /// Coverage of `points` (`[N, 2]` or `[N, 2, 1, 1]`): a mode counts as covered when at
    /// least `min_share` of its fair share (N × its weight) of the points lie within 3σ of it.
    pub fn coverage(&self, points: &Tensor, min_share: f64) -> Coverage {
        let p = points.reshape([-1, 2]).to_kind(Kind::Double).to_device(tch::Device::Cpu);
        let n = p.size()[0];
        let flat: Vec<f64> = Vec::try_from(&p.reshape([-1])).unwrap_or_default();
        let mut hits = vec![0usize; self.centres.len()];
        let mut good = 0usize;
        for q in flat.chunks_exact(2) {
            let (k, d2) = self
                .centres
                .iter()
                .enumerate()
                .map(|(k, c)| (k, (q[0] - c[0]).powi(2) + (q[1] - c[1]).powi(2)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a mixture has modes");
            if d2.sqrt() <= 3.0 * self.std {
                hits[k] += 1;
                good += 1;
            }
        }
        let weight =
            |k: usize| self.components.iter().filter(|&&c| c == k).count() as f64 / self.components.len() as f64;
        let modes =
            hits.iter().enumerate().filter(|&(k, &h)| h > 0 && h as f64 >= min_share * n as f64 * weight(k)).count();
        Coverage { modes, high_quality: if n > 0 { good as f64 / n as f64 } else { 0.0 } }
    }
}

/// The dataset of a toy mixture: `count` points of `split` as float `[N, 2, 1, 1]`, labelled
/// with nothing (the mode is not a class the model should see).
pub fn load(name: &str, mixture: &Mixture, split: &str, count: i64, seed: u64) -> Dataset {
    let stream = if split == "test" { seed ^ TEST_STREAM } else { seed };
    let xy = mixture.sample(count, stream);
    Dataset::whole(name, Tensor::from_slice(&xy).view([count, 2, 1, 1]), None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_points_sit_on_their_modes_and_cover_all_of_them() {
        let m = Mixture::ring(8, 1.0, 0.01);
        assert!((m.centres[2][0]).abs() < 1e-12 && (m.centres[2][1] - 1.0).abs() < 1e-12);
        let ds = load("ring", &m, "train", 4000, 7);
        assert_eq!(ds.images.size(), [4000, 2, 1, 1]);
        let c = m.coverage(&ds.images, 0.5);
        assert_eq!(c.modes, 8);
        // 3σ holds 98.9% of a 2-D Gaussian's mass.
        assert!(c.high_quality > 0.98 && c.high_quality < 1.0, "{c:?}");
        let again = load("ring", &m, "train", 4000, 7);
        assert!(ds.images.equal(&again.images), "the same seed gives the same points");
        assert!(!ds.images.equal(&load("ring", &m, "test", 4000, 7).images), "the test split differs");
    }

    #[test]
    fn the_lsgan_ring_has_eight_modes_and_draws_the_first_twice_as_often() {
        let m = Mixture::ring_with_endpoint(9, 1.0, 0.01);
        assert_eq!(m.centres, Mixture::ring(8, 1.0, 0.01).centres);
        assert_eq!(m.components, [0, 1, 2, 3, 4, 5, 6, 7, 0]);
        let points = load("ring", &m, "train", 9000, 3).images.reshape([-1, 2]);
        let first = points.select(1, 0).gt(0.9).sum(Kind::Int64).int64_value(&[]);
        assert!((2000 - 150..=2000 + 150).contains(&first), "2/9 of 9000 at (1, 0), got {first}");
        // Fair shares follow the weights: a generator that draws every mode equally often
        // (1/8 each) fills the first mode to 0.56 of its 2/9 share, short of a 0.6 minimum.
        let equal = load("ring", &Mixture::ring(8, 1.0, 0.01), "train", 8000, 3).images;
        assert_eq!(m.coverage(&equal, 0.5).modes, 8);
        assert_eq!(m.coverage(&equal, 0.6).modes, 7);
    }

    #[test]
    fn a_collapsed_generator_covers_one_mode() {
        let m = Mixture::grid(5, 2.0, 0.05);
        assert_eq!(m.centres.len(), 25);
        assert_eq!(m.centres[0], [-4.0, -4.0]);
        let collapsed = Tensor::from_slice(&[-4.0f32, -4.0]).repeat([100, 1]);
        assert_eq!(m.coverage(&collapsed, 0.2), Coverage { modes: 1, high_quality: 1.0 });
        let far = Tensor::from_slice(&[-5.0f32, 0.0]).repeat([10, 1]);
        assert_eq!(m.coverage(&far, 0.2), Coverage { modes: 0, high_quality: 0.0 });
    }
}
