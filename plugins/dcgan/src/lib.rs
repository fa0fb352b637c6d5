//! # lab-plugin-dcgan
//!
//! The `dcgan` architecture (Radford, Metz & Chintala, 2016) for 28×28, 32×32 and 64×64 images,
//! optionally class-conditional (label embedding in G, projection in D) and with batch,
//! spectral or no normalisation in the discriminator. Its `[model.config]` is [`DcganConfig`].
//!
//! Every weight comes from libtorch's global RNG, which the core seeds before building, so two
//! builds under the same seed are identical.
use lab_nn::gan::{self, Shapes};
use lab_plugin_api::tch::Device;
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Network, Spec};

pub mod config;
pub mod discriminator;
pub mod generator;
mod geometry;
pub mod layers;
pub mod spectral_norm;

pub use config::{DcganConfig, Settings};
pub use discriminator::Discriminator;
pub use generator::Generator;

lab_plugin_api::export_plugins! { architecture: Dcgan }

/// The `dcgan` architecture: a validated config and where to put the weights.
#[derive(Debug)]
pub struct Dcgan {
    settings: Settings,
    device: Device,
}

impl Dcgan {
    /// The config after validation and resolution against the data.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl ArchitecturePlugin for Dcgan {
    const NAME: &'static str = "dcgan";
    const DESCRIPTION: &'static str =
        "DCGAN (Radford et al., 2016) at 28, 32 or 64 pixels; optional class conditioning and spectral norm";
    type Config = DcganConfig;

    fn create(config: DcganConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
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
