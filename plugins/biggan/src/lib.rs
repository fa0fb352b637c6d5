//! # lab-plugin-biggan
//!
//! The `biggan` architecture (Brock, Donahue & Simonyan, 2019) as the DiffAugment BigGAN-CIFAR
//! scripts run it: BigGAN-PyTorch's `arch[32]` with `G_ch = D_ch = 64` (256 channels in every
//! block), 3 residual up-blocks in G, 4 residual down-blocks in D, spectral norm in both,
//! class-conditional batch norm in G (one gain and one bias embedding per norm, no shared
//! embedding, no hierarchical z), a projection discriminator, z of 128, N(0, 0.02) weights and
//! no attention. Its `[model.config]` is [`BigGanConfig`].
//!
//! Every weight comes from libtorch's global RNG, which the core seeds before building, so two
//! builds under the same seed are identical.
//!
//! `reference/biggan_cifar.py` is an independent PyTorch re-implementation of the same
//! architecture; a test feeds it this crate's weights and compares outputs and parameter counts.
use lab_nn::gan::{self, Shapes};
use lab_plugin_api::tch::Device;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Network, Spec};

pub mod config;
pub mod discriminator;
pub mod generator;
pub mod layers;
pub mod plan;
pub mod spectral_norm;

pub use config::{BigGanConfig, Settings};
pub use discriminator::Discriminator;
pub use generator::Generator;

lab_plugin_api::export_plugins! { architecture: BigGan }

/// The `biggan` architecture: a validated config and where to put the weights.
#[derive(Debug)]
pub struct BigGan {
    settings: Settings,
    device: Device,
}

impl BigGan {
    /// The config after validation and resolution against the data.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl ArchitecturePlugin for BigGan {
    const NAME: &'static str = "biggan";
    const DESCRIPTION: &'static str =
        "BigGAN (Brock et al., 2019), the CIFAR 32x32 variant of the DiffAugment scripts: \
         residual G with class-conditional BN, projection D, spectral norm";
    type Config = BigGanConfig;

    fn create(config: BigGanConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        Ok(Self { settings: config.resolve(&env.data)?, device: env.device() })
    }

    fn z_dim(&self) -> i64 {
        self.settings.z_dim
    }

    /// The core passes labels (`[z, y]`, `[x, y]`) exactly when this is non-zero.
    fn num_classes(&self) -> i64 {
        self.settings.classes.unwrap_or(0)
    }

    fn networks(&self) -> Vec<Spec> {
        gan::networks()
    }

    fn build(&self, name: &str) -> lab_plugin_api::Result<Box<dyn Network>> {
        let s = &self.settings;
        let shapes = Shapes::square(s.z_dim, s.image_channels, s.resolution, s.classes);
        gan::build(Self::NAME, name, self.device, shapes, |p| Generator::new(p, s), |p| Discriminator::new(p, s))
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_nn::testing::rng_lock;
