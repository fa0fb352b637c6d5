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
use lab_nn::gan::{Gan, GanModel, Shapes};
use lab_plugin_api::tch::nn;
use lab_plugin_api::DataSpec;

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

/// The `biggan` architecture: lab-nn's G/D adapter around this crate's settings and networks.
pub type BigGan = Gan<Settings>;

impl GanModel for Settings {
    const NAME: &'static str = "biggan";
    const DESCRIPTION: &'static str =
        "BigGAN (Brock et al., 2019), the CIFAR 32x32 variant of the DiffAugment scripts: \
         residual G with class-conditional BN, projection D, spectral norm";
    type Config = BigGanConfig;
    type G = Generator;
    type D = Discriminator;

    fn resolve(config: BigGanConfig, data: &DataSpec) -> lab_plugin_api::Result<Self> {
        config.resolve(data)
    }

    fn shapes(&self) -> Shapes {
        Shapes::square(self.z_dim, self.image_channels, self.resolution, self.classes)
    }

    fn num_classes(&self) -> i64 {
        self.classes.unwrap_or(0)
    }

    fn generator(&self, p: nn::Path) -> Generator {
        Generator::new(p, self)
    }

    fn discriminator(&self, p: nn::Path) -> Discriminator {
        Discriminator::new(p, self)
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
