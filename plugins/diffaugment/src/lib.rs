//! # lab-plugin-diffaugment
//!
//! The `diffaugment` augmentation: Differentiable Augmentation (Zhao et al., NeurIPS 2020). The
//! same policy transforms real and generated images before D, in both the D and the G step,
//! with fresh random parameters for every sample and call; every operation is differentiable,
//! so G is trained through it. Its `[augment.config]` is [`DiffAugmentConfig`].
//!
//! The operations, as in the paper's code (images in [-1, 1]):
//! - `color`: brightness `x + U(−0.5, 0.5)`, then saturation `(x − m)·U(0, 2) + m` with `m`
//!   each pixel's channel mean, then contrast `(x − m)·U(0.5, 1.5) + m` with `m` the image mean;
//! - `translation`: an integer shift in ±⌊ratio·size + 0.5⌋ per axis (±4 px at 32 px),
//!   independently for rows and columns, uncovered pixels zero;
//! - `cutout`: a ⌊ratio·size + 0.5⌋ square (16 px at 32 px) set to zero, its centre uniform in
//!   `0..size + (1 − side mod 2)` per axis, clipped at the border.
//!
//! The kernels (shared with the `augment` and `ada` plugins through `lab-augment-ops`) take
//! their parameters as explicit tensors and are re-exported here: [`brightness`],
//! [`saturation`], [`contrast`], [`translate`], [`cutout`].
//!
//! Randomness: `apply(x, seed)` reseeds libtorch's default generator from `seed` and draws every
//! parameter on the batch's device, so the output is a pure function of `(x, seed)`.
pub mod config;

pub use config::{DiffAugmentConfig, PolicyOp};
pub use lab_augment_ops::color::{brightness, contrast, saturation};
pub use lab_augment_ops::erase::cutout;

use lab_augment_ops::{pixel, random, Padding, Pipeline, Step};
use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{AugmentPlugin, BuildEnv};

lab_plugin_api::export_plugins! { augment: DiffAugment }

/// DiffAugment's translation: moves sample `i`'s content right by `shift_x[i]` and down by
/// `shift_y[i]` whole pixels (`[N]` integers), filling uncovered pixels with zeros.
pub fn translate(x: &Tensor, shift_x: &Tensor, shift_y: &Tensor) -> Tensor {
    pixel::translate(x, shift_x, shift_y, Padding::Zeros)
}

/// The `diffaugment` plugin: the policy as a pipeline of certain (p = 1) steps.
#[derive(Debug)]
pub struct DiffAugment {
    pipeline: Pipeline,
}

impl DiffAugment {
    /// The policy's steps, in the order they are applied.
    pub fn steps(&self) -> &[Step] {
        self.pipeline.steps()
    }
}

impl AugmentPlugin for DiffAugment {
    const NAME: &'static str = "diffaugment";
    const DESCRIPTION: &'static str = "DiffAugment (Zhao et al., 2020): differentiable color, translation and cutout \
         with fresh parameters per sample, applied to reals and fakes alike";
    type Config = DiffAugmentConfig;

    fn create(config: DiffAugmentConfig, _env: BuildEnv) -> lab_plugin_api::Result<Self> {
        Ok(Self { pipeline: Pipeline::new("policy", config.steps()?) })
    }

    fn apply(&mut self, x: &Tensor, seed: u64) -> lab_plugin_api::Result<Tensor> {
        random::seed(seed);
        self.pipeline.apply(x, 1.0)
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global generator.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
