//! # {{name}}
//!
//! The sliced Wasserstein distance between real and generated images, in pixel space: both
//! sets are projected on `directions` fixed random unit vectors, and the 1-D Wasserstein
//! distance of each projection (the mean gap between matching quantiles) is averaged. 0 for
//! identical distributions; lower is better. (ProGAN, Karras et al. 2018, computes it on
//! Laplacian-pyramid patches; this is the plain-pixel version, a starting point.)
//!
//! The directions come from a fixed xorshift sequence, not from libtorch's generator: a metric
//! runs in the middle of training and must not consume the run's random stream.
use lab_plugin_api::config::check;
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{BuildEnv, DataSpec, Error, MetricPlugin, Result, Value};
use serde::{Deserialize, Serialize};

/// This metric's `[eval.config.{{name}}]`: unknown keys are refused, missing ones take these defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Random projections averaged over.
    pub directions: i64,
    /// Quantiles compared per projection.
    pub quantiles: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self { directions: 128, quantiles: 64 }
    }
}

#[derive(Debug)]
pub struct SlicedWasserstein {
    /// `[pixels, directions]` unit columns.
    directions: Tensor,
    quantiles: i64,
    /// Projections of every image seen, per side.
    real: Vec<Tensor>,
    fake: Vec<Tensor>,
}

/// `k` unit vectors of length `pixels` as the columns of a `[pixels, k]` matrix, from a fixed
/// xorshift64* sequence (uniform in [-1, 1) per coordinate, then normalised).
pub fn directions(pixels: i64, k: i64) -> Tensor {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let values: Vec<f32> = (0..pixels * k)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            (r >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let d = Tensor::from_slice(&values).view([pixels, k]);
    &d / d.norm_scalaropt_dim(2, [0i64].as_slice(), true)
}

impl MetricPlugin for SlicedWasserstein {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "{{description}}";
    type Config = Config;

    fn create(config: Config, env: BuildEnv) -> Result<Self> {
        check::positive("directions", config.directions)?;
        check::at_least("quantiles", config.quantiles, 2)?;
        let DataSpec { channels, height, width, .. } = env.data;
        let directions = directions(channels * height * width, config.directions).to_device(env.device());
        Ok(Self { directions, quantiles: config.quantiles, real: Vec::new(), fake: Vec::new() })
    }

    fn reset(&mut self) -> Result<()> {
        self.real.clear();
        self.fake.clear();
        Ok(())
    }

    /// Images arrive in batches, `[N, C, H, W]` in [-1, 1]; only their projections are kept.
    fn update(&mut self, images: &Tensor, fake: bool) -> Result<()> {
        let projected = images.flatten(1, -1).to_kind(Kind::Float).matmul(&self.directions);
        if fake { &mut self.fake } else { &mut self.real }.push(projected);
        Ok(())
    }

    fn compute(&mut self) -> Result<Vec<Value>> {
        if self.real.is_empty() || self.fake.is_empty() {
            return Err(Error::new("sliced Wasserstein needs real and generated images; got none of one side"));
        }
        let q = Tensor::linspace(0.0, 1.0, self.quantiles, (Kind::Float, self.directions.device()));
        let quantiles = |parts: &[Tensor]| Tensor::cat(parts, 0).quantile(&q, 0, false, "linear");
        let gap = (quantiles(&self.real) - quantiles(&self.fake)).abs().mean(Kind::Float);
        let value = gap.to_device(Device::Cpu).double_value(&[]);
        Ok(vec![Value { name: "swd".into(), value, higher_is_better: false }])
    }
}

lab_plugin_api::export_plugins! { metric: SlicedWasserstein }

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_testkit::{images, metric, rng_lock, FASHION_MNIST};

    fn swd(real: &Tensor, fake: &Tensor) -> f64 {
        let mut m = metric::create::<SlicedWasserstein>("", FASHION_MNIST).unwrap();
        metric::value(&metric::evaluate(&mut m, &[real.shallow_clone()], &[fake.shallow_clone()]).unwrap(), "swd")
    }

    #[test]
    fn is_zero_for_identical_sets_and_the_shift_for_a_shifted_one() {
        let _rng = rng_lock();
        let x = images(32, FASHION_MNIST);
        assert!(swd(&x, &x).abs() < 1e-6);
        // Adding c to every pixel moves projection k by c·Σᵢ dᵢₖ, every quantile alike.
        let sums = directions(784, 128).sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
        let expected = 0.1 * sums.abs().mean(Kind::Float).double_value(&[]);
        assert!((swd(&x, &(&x + 0.1)) - expected).abs() < 1e-4);
    }

    #[test]
    fn directions_are_unit_vectors() {
        let norms = directions(10, 4).norm_scalaropt_dim(2, [0i64].as_slice(), false);
        assert!(norms.allclose(&Tensor::ones([4], (Kind::Float, Device::Cpu)), 1e-6, 1e-6, false));
    }
}
