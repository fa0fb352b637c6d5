//! # lab-plugin-cyclegan
//!
//! CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
//! Cycle-Consistent Adversarial Networks") after the official code
//! (junyanz/pytorch-CycleGAN-and-pix2pix, its defaults for `--model cycle_gan`):
//! - `cyclegan` ([`model`]): ResNet generators G_AB (`generator`) and G_BA (`generator_ba`)
//!   ([`generator`]), 70×70 PatchGAN discriminators D_A (`discriminator_a`, judges domain A)
//!   and D_B (`discriminator_b`, judges B) from `lab_nn::patchgan`; instance norm without
//!   affine parameters, weights from N(0, 0.02). Its grid shows A → B → A over B → A → B; its
//!   measures ([`evaluation`]) are cycle L1, a domain classifier's verdict on translations
//!   ([`classifier`]) and, with a feature network, FID per direction.
//! - `cyclegan` ([`loss`]): plan G then D; LSGAN on the logit maps, cycle L1 weighted by
//!   λ_A = λ_B = 10, identity L1 weighted by 0.5·λ; each D learns from an image pool ([`pool`])
//!   of 50 generated images, which the loss state checkpoints bit-exactly.
//!
//! Two-domain data (`data.dataset = "unpaired-folders"`) give the loss `real` (A) and `real_b`
//! (B), each from its own shuffle. `reference/cyclegan.py` is an independent PyTorch
//! re-implementation; a test feeds it this crate's weights and compares both generators' and
//! discriminators' outputs and the gradients of both phases' losses in float64.
pub mod classifier;
pub mod config;
pub mod evaluation;
pub mod generator;
pub mod loss;
pub mod model;
pub mod pool;

pub use config::{CycleGanConfig, CycleGanLossConfig};
pub use loss::CycleGanLoss;
pub use model::CycleGan;
pub use pool::ImagePool;

lab_plugin_api::export_plugins! {
    architecture: CycleGan,
    loss: CycleGanLoss,
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
