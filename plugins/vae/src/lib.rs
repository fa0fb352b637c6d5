//! # lab-plugin-vae
//!
//! The variational auto-encoder (Kingma & Welling 2013, AEVB) as a lab system: no
//! discriminator, one phase that steps the encoder and the decoder on the negative ELBO.
//! - `vae` ([`model`]): MLP encoder x → (μ, log σ²) and decoder z → Bernoulli means, the
//!   decoder being the run's `generator` (so sampling, grids and metrics work unchanged);
//!   its own grid (real images over their reconstructions, then prior samples) and its own
//!   measure, the ELBO in nats per image on the evaluation split and on as many training images.
//! - `elbo` ([`elbo`]): the loss, with the analytic KL and the reparameterisation trick, the
//!   noise drawn from the core's seeded stream.
pub mod elbo;
pub mod model;

pub use elbo::{Elbo, ElboTerms};
pub use model::{Vae, VaeConfig};

lab_plugin_api::export_plugins! {
    architecture: Vae,
    loss: Elbo,
}

#[cfg(test)]
mod tests;
