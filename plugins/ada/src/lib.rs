//! # lab-plugin-ada
//!
//! The `ada` augmentation: adaptive discriminator augmentation (Karras et al., NeurIPS 2020). A
//! pipeline of augmentations is applied to everything D sees, each operation to each sample
//! with probability p; p itself follows D's overfitting: it rises while D is too sure about the
//! real images (r_t = E[sign D(x_real)] above `target`) and falls otherwise ([`controller`]).
//! Its `[augment.config]` is [`AdaConfig`]; the default policy is a reduced `bgc` set
//! ([`config::default_policy`]), built from the operations of the `augment` plugin.
//!
//! The core logs `augment/p` and `augment/rt` ([`AugmentPlugin::scalars`]) and checkpoints the
//! controller's state, so a resumed run continues with the same p.
//!
//! Randomness: `apply(x, seed)` reseeds libtorch's default generator from `seed` and draws every
//! parameter on the batch's device, so the output is a pure function of `(x, seed, p)`. At
//! p = 0 it returns the batch untouched and draws nothing.
pub mod config;
pub mod controller;

pub use config::AdaConfig;
pub use controller::{Controller, State};

use lab_augment_ops::{random, Pipeline};
use lab_plugin_api::tch::Tensor;
use lab_plugin_api::{AugmentPlugin, BuildEnv};

lab_plugin_api::export_plugins! { augment: Ada }

/// The `ada` plugin: the policy and the controller that sets its strength.
#[derive(Debug)]
pub struct Ada {
    pipeline: Pipeline,
    controller: Controller,
}

impl Ada {
    /// The policy applied with probability p.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The current augmentation probability.
    pub fn p(&self) -> f64 {
        self.controller.p()
    }
}

impl AugmentPlugin for Ada {
    const NAME: &'static str = "ada";
    const DESCRIPTION: &'static str =
        "adaptive discriminator augmentation (Karras et al., 2020): a reduced bgc pipeline \
         applied with a probability p that tracks E[sign D(real)] towards a target";
    type Config = AdaConfig;

    fn create(config: AdaConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        config.validate()?;
        let pipeline = config.pipeline()?;
        pipeline.check_data(&env.data)?;
        Ok(Self { pipeline, controller: Controller::new(&config) })
    }

    fn apply(&mut self, x: &Tensor, seed: u64) -> lab_plugin_api::Result<Tensor> {
        let p = self.controller.p();
        if p <= 0.0 {
            lab_augment_ops::check_batch(x)?;
            return Ok(x.shallow_clone());
        }
        random::seed(seed);
        self.pipeline.apply(x, p)
    }

    fn feedback(&mut self, d_real: &Tensor) -> lab_plugin_api::Result<()> {
        self.controller.feedback(d_real)
    }

    fn state(&self) -> String {
        serde_json::to_string(&self.controller.state()).expect("plain numbers serialise")
    }

    /// Restores [`Ada::state`]'s JSON. An empty object (what augmentations without state save)
    /// keeps the current state, so a run can switch to `ada` on resume.
    fn load_state(&mut self, json: &str) -> lab_plugin_api::Result<()> {
        if json.trim() == "{}" {
            return Ok(());
        }
        let state: State = serde_json::from_str(json).map_err(|e| format!("invalid ada state {json:?}: {e}"))?;
        self.controller.load(state).map_err(|e| e.context("invalid ada state"))
    }

    /// `p` always; `rt` once it has been measured (after the first `interval` D steps).
    fn scalars(&self) -> Vec<(String, f64)> {
        let mut scalars = vec![("p".to_string(), self.controller.p())];
        scalars.extend(self.controller.rt().map(|rt| ("rt".to_string(), rt)));
        scalars
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global generator.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
