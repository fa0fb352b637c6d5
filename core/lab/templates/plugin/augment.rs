//! # {{name}}
//!
//! A random brightness shift, as DiffAugment's `brightness` op (Zhao et al., 2020): every image
//! moves by its own offset, drawn uniformly from [−strength/2, strength/2). The op is
//! differentiable, so G's loss flows through it when D sees augmented fakes.
//!
//! Randomness: `apply(x, seed)` reseeds libtorch's generator from `seed`, so the output is a
//! function of `(x, seed)` alone; the core hands a fresh seed per call and reruns are bit-exact.
use lab_plugin_api::config::check;
use lab_plugin_api::tch::{self, Kind, Tensor};
use lab_plugin_api::{AugmentPlugin, BuildEnv, Result};
use serde::{Deserialize, Serialize};

/// `[augment.config]`: unknown keys are refused, missing ones take these defaults.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Width of the offset's range, in units of the [-1, 1] pixel scale.
    pub strength: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self { strength: 1.0 }
    }
}

#[derive(Debug)]
pub struct Brightness {
    strength: f64,
}

impl AugmentPlugin for Brightness {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "{{description}}";
    type Config = Config;

    fn create(config: Config, _env: BuildEnv) -> Result<Self> {
        check::non_negative("strength", config.strength, "0 leaves images unchanged")?;
        Ok(Self { strength: config.strength })
    }

    fn apply(&mut self, x: &Tensor, seed: u64) -> Result<Tensor> {
        tch::manual_seed(seed as i64);
        let offset = (Tensor::rand([x.size()[0], 1, 1, 1], (Kind::Float, x.device())) - 0.5) * self.strength;
        Ok(x + offset.to_kind(x.kind()))
    }
}

lab_plugin_api::export_plugins! { augment: Brightness }

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_testkit::{augment, images, rng_lock, FASHION_MNIST};

    #[test]
    fn keeps_shape_is_seeded_and_differentiable() {
        let _rng = rng_lock();
        let x = images(8, FASHION_MNIST);
        augment::check(&mut augment::create::<Brightness>("", FASHION_MNIST).unwrap(), &x);
    }

    #[test]
    fn shifts_each_image_by_at_most_half_the_strength() {
        let _rng = rng_lock();
        let x = images(64, FASHION_MNIST);
        let mut aug = augment::create::<Brightness>("strength = 0.5", FASHION_MNIST).unwrap();
        let shift = (aug.apply(&x, 3).unwrap() - &x).amax([1i64, 2, 3].as_slice(), false);
        assert!(shift.abs().max().double_value(&[]) <= 0.25);
        assert!(shift.std(true).double_value(&[]) > 0.05, "offsets differ between images");
    }
}
