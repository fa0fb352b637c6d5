//! # lab-plugin-pix2pix
//!
//! pix2pix (Isola, Zhu, Zhou & Efros, "Image-to-Image Translation with Conditional Adversarial
//! Networks", CVPR 2017): paired translation from domain A to domain B, after the official
//! networks and defaults (junyanz/pytorch-CycleGAN-and-pix2pix: `unet_256`, the `basic` 70×70
//! PatchGAN, batch norm, vanilla GAN loss, λ_L1 = 100).
//! - `pix2pix` architecture ([`model`]): a U-Net `generator` A → B ([`unet`]) and a PatchGAN
//!   `discriminator` on A and B stacked on channels (`lab_nn::patchgan`), configured by
//!   [`config`]. Its grid shows rows of inputs, outputs and targets; it measures the
//!   translation of the reference split against its aligned B images ([`measure`]): L1, PSNR,
//!   SSIM, and the PSNR of the input itself (what an identity translation scores).
//! - `pix2pix` loss ([`loss`]): the conditional GAN's binary cross-entropy on the patch map plus
//!   λ·L1 to the target; D then G, one translation per step.
//!
//! Choices where the official code leaves room, or where this lab's data differs:
//! - **Depth from the image size.** The U-Net halves the image down to 1×1: log2(size)
//!   downsamplings (8 at 256 px, `unet_256`; 7 at 128, `unet_128`; 5 at the stand-in data's
//!   32). Widths follow ngf·min(2^k, 8).
//! - **Dropout** sits where the official recursion puts it: in the 8·ngf decoder blocks between
//!   the first 8·ngf block and the innermost, depth − 5 of them (three at 256 px, two at 128,
//!   one at 64, none at 32 or below). At 32×32 the generator therefore has no dropout, so its
//!   only test-time noise is batch norm on the test batch's statistics.
//! - **Test protocol** (`noise_at_test`, on by default): evaluation passes run G as in training,
//!   dropout on and batch norm on the batch's own statistics (the paper, §6.1.1 and the official
//!   test script without `--eval`), without moving the stored statistics.
//! - **Initialisation**: N(0, 0.02) weights, N(1, 0.02) batch-norm gains, zero biases (the
//!   official `init_weights('normal')`); biases only where the official code has them.
//!
//! `reference/pix2pix.py` is an independent PyTorch re-implementation; a test feeds it this
//! crate's weights and compares G's and D's outputs, both losses, every gradient and the
//! batch-norm statistics in float64, and the PSNR/SSIM functions are checked against a numpy
//! implementation of their definitions.
pub mod config;
pub mod loss;
pub mod measure;
pub mod model;
pub mod unet;

pub use config::{Pix2pixConfig, Settings};
pub use loss::{Pix2pixLoss, Pix2pixLossConfig};
pub use model::Pix2pix;

lab_plugin_api::export_plugins! {
    architecture: Pix2pix,
    loss: Pix2pixLoss,
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
