//! # lab-plugin-augment
//!
//! The `augment` augmentation: a pipeline of classic augmentations (flips, quarter turns,
//! rotations, scaling, crops, integer and sub-pixel translations, colour, noise, cutout), each
//! applied to every sample independently with its own probability `p`. Every operation is
//! differentiable with respect to the image, so it can sit between G and D. Its
//! `[augment.config]` is [`AugmentConfig`]; the operations are in [`ops`].
//!
//! Randomness: `apply(x, seed)` reseeds libtorch's default generator from `seed`
//! ([`ops::random::seed`]) and draws every parameter on the batch's device, so the output is a
//! pure function of `(x, seed)`.
pub mod config;

/// The operations, the pipeline and its TOML format (the `lab-augment-ops` library, shared with
/// the `diffaugment` and `ada` plugins).
pub use lab_augment_ops as ops;

pub use config::AugmentConfig;

use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{AugmentPlugin, BuildEnv};
use ops::Pipeline;

lab_plugin_api::export_plugins! { augment: Augment }

/// The `augment` plugin: a validated pipeline.
#[derive(Debug)]
pub struct Augment {
    pipeline: Pipeline,
}

impl Augment {
    /// The pipeline this plugin applies.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl AugmentPlugin for Augment {
    const NAME: &'static str = "augment";
    const DESCRIPTION: &'static str = "a pipeline of classic differentiable augmentations (flip, rotate, scale, crop, \
         translate, colour, noise, cutout), each applied per sample with probability p";
    type Config = AugmentConfig;

    fn create(config: AugmentConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        let pipeline = config.pipeline()?;
        pipeline.check_data(&env.data)?;
        Ok(Self { pipeline })
    }

    fn apply(&mut self, x: &Tensor, seed: u64) -> lab_plugin_api::Result<Tensor> {
        ops::random::seed(seed);
        self.pipeline.apply(x, 1.0)
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global generator.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
