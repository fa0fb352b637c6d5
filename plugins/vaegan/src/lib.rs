//! # lab-plugin-vaegan
//!
//! VAE-GAN (Larsen, Sønderby, Larochelle & Winther 2016, "Autoencoding beyond pixels using a
//! learned similarity metric"), as the official code trains it (andersbll/
//! autoencoding_beyond_pixels `model/aegan.py`) with the authors' own MNIST networks
//! (`architectures.mnist`) or their CIFAR networks (`architectures.img32x32`, [`conv`]):
//! - `vaegan` ([`model`]): an encoder, a decoder (the run's `generator`) and a discriminator
//!   whose second output is the learned similarity's features (its first `recon_depth` layers).
//! - `vaegan` ([`loss`]): one phase stepping the three networks, each on its own loss, with the
//!   official equilibrium gating of the decoder's and the discriminator's steps.
pub mod conv;
pub mod filler;
pub mod loss;
pub mod model;

pub use loss::{Gate, VaeGanLoss, VaeGanLossConfig};
pub use model::{VaeGan, VaeGanConfig};

lab_plugin_api::export_plugins! {
    architecture: VaeGan,
    loss: VaeGanLoss,
}

#[cfg(test)]
mod tests;
