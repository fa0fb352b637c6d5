//! # lab-plugin-dcgan
//!
//! The `dcgan` architecture (Radford, Metz & Chintala, 2016) for 28×28, 32×32 and 64×64 images,
//! optionally class-conditional (label embedding in G, projection in D) and with batch,
//! spectral or no normalisation in the discriminator. Its `[model.config]` is [`DcganConfig`].
//!
//! Every weight comes from libtorch's global RNG, which the core seeds before building, so two
//! builds under the same seed are identical.
use lab_nn::gan::{Gan, GanModel, Shapes};
use lab_plugin_api::tch::nn;
use lab_plugin_api::DataSpec;

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

/// The `dcgan` architecture: lab-nn's G/D adapter around this crate's settings and networks.
pub type Dcgan = Gan<Settings>;

impl GanModel for Settings {
    const NAME: &'static str = "dcgan";
    const DESCRIPTION: &'static str =
        "DCGAN (Radford et al., 2016) at 28, 32 or 64 pixels; optional class conditioning and spectral norm";
    type Config = DcganConfig;
    type G = Generator;
    type D = Discriminator;

    fn resolve(config: DcganConfig, data: &DataSpec) -> lab_plugin_api::Result<Self> {
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
