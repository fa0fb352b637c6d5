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
use lab_plugin_api::tch::{nn, Device, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, Network, Spec, VarStoreNetwork, PHASE_D, PHASE_G};

pub mod config;
pub mod discriminator;
pub mod generator;
mod inputs;
pub mod layers;
pub mod plan;
pub mod spectral_norm;

pub use config::{BigGanConfig, Settings};
pub use discriminator::Discriminator;
pub use generator::Generator;

lab_plugin_api::export_plugins! { architecture: BigGan }

/// The networks `biggan` builds, in the order `lab plugins` lists them.
const NETWORKS: [&str; 2] = ["generator", "discriminator"];

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

    fn create(config: BigGanConfig, env: BuildEnv) -> Result<Self, String> {
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
            other => Err(format!("biggan has no network `{other}`; valid names: {}", NETWORKS.join(", "))),
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
