//! # lab-plugin-dcgan
//!
//! The `dcgan` architecture (Radford, Metz & Chintala, 2016) for 28×28, 32×32 and 64×64 images,
//! optionally class-conditional (label embedding in G, projection in D) and with batch,
//! spectral or no normalisation in the discriminator. Its `[model.config]` is [`DcganConfig`].
//!
//! Every weight comes from libtorch's global RNG, which the core seeds before building, so two
//! builds under the same seed are identical.
use lab_plugin_api::tch::{nn, Device, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Network, Spec, VarStoreNetwork, PHASE_D, PHASE_G};

pub mod config;
pub mod discriminator;
pub mod generator;
mod geometry;
mod inputs;
pub mod layers;
pub mod spectral_norm;

pub use config::{DcganConfig, Settings};
pub use discriminator::Discriminator;
pub use generator::Generator;

lab_plugin_api::export_plugins! { architecture: Dcgan }

/// The networks `dcgan` builds, in the order `lab plugins` lists them.
const NETWORKS: [&str; 2] = ["generator", "discriminator"];

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

    fn create(config: DcganConfig, env: BuildEnv) -> Result<Self, String> {
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
        vec![Spec { name: "generator".into(), phases: PHASE_G }, Spec { name: "discriminator".into(), phases: PHASE_D }]
    }

    fn build(&self, name: &str) -> Result<Box<dyn Network>, String> {
        let vs = nn::VarStore::new(self.device);
        match name {
            "generator" => {
                let g = Generator::new(vs.root(), &self.settings);
                Ok(Box::new(VarStoreNetwork { vs, forward: move |x: &[Tensor], train: bool| g.forward(x, train) }))
            }
            "discriminator" => {
                let d = Discriminator::new(vs.root(), &self.settings);
                Ok(Box::new(VarStoreNetwork { vs, forward: move |x: &[Tensor], train: bool| d.forward(x, train) }))
            }
            other => Err(format!("dcgan has no network `{other}`; valid names: {}", NETWORKS.join(", "))),
        }
    }
}

#[cfg(test)]
mod tests;

/// Serialises tests that seed or draw from libtorch's global RNG: the test harness runs tests on
/// parallel threads, and a draw from another test between `manual_seed` and a build would make
/// "same seed, same weights" flaky.
#[cfg(test)]
fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
