//! # lab-plugin-infogan
//!
//! InfoGAN (Chen et al. 2016) as the official MNIST code builds it (openai/InfoGAN,
//! `run_mnist_exp.py`):
//! - `infogan` ([`model`]): a latent of 62 uniform noise values, a 10-way categorical code and
//!   two uniform continuous codes ([`latent`]); a DCGAN-style generator; a discriminator whose
//!   trunk also feeds `q_head`, which predicts the codes. Its grid is the paper's traversals,
//!   and it measures itself: the MI lower bound on fresh samples, and the categorical code used
//!   as a classifier on the test split beside k-means on the same pixels ([`cluster`]).
//! - `infogan` ([`loss`]): the non-saturating GAN loss minus λ·L_I, the variational lower bound
//!   on the mutual information between the codes and G's output, in both phases.
pub mod cluster;
pub mod latent;
pub mod loss;
pub mod model;

pub use latent::Codes;
pub use loss::{InfoGanLoss, InfoGanLossConfig, MutualInformation};
pub use model::{InfoGan, InfoGanConfig};

lab_plugin_api::export_plugins! {
    architecture: InfoGan,
    loss: InfoGanLoss,
}

#[cfg(test)]
mod tests;
