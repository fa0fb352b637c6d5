//! # lab-nn
//!
//! The neural-network code lab's GAN architecture plugins (`biggan`, `sngan`, `sagan`, `dcgan`) have in
//! common, and what plugins written outside this repository build on (`lab new-plugin` depends
//! on it).
//! It is a plain library, not a plugin, so that any plugin can link it: a plugin crate cannot be
//! linked into another plugin's library, since both would define the same exported entry points.
//!
//! What is shared is mechanism; every choice that changes an architecture's numbers stays with
//! the architecture: how weights and biases are initialised, and the details of spectral
//! normalisation ([`SnOptions`]), which each plugin fixes as a constant.
//!
//! ## Modules
//! - [`spectral_norm`]: a weight divided by an estimate of its largest singular value.
//! - [`layers`]: convolution, linear and embedding layers whose weight may be spectrally
//!   normalised, 2× up- and downsampling, and the projection discriminator's class term.
//! - [`attention`]: SAGAN's self-attention block, and a picture of its attention map.
//! - [`norm`]: batch norm with its statistics as buffers, plain or class-conditional, and the
//!   batch-or-instance choice of image-to-image networks ([`Norm`]).
//! - [`patchgan`]: the PatchGAN discriminator of pix2pix and CycleGAN (a map of logits, one per
//!   70×70 patch by default), and its receptive field.
//! - [`ops`]: libtorch operations tch binds without an argument the plugins need
//!   (`leaky_relu` with its slope), through a small C++ shim.
//! - [`penalty`]: the regularisers on D's input gradient and on augmented pairs (R1, WGAN-GP's
//!   penalty, consistency regularisation), for loss plugins (`losses`, `stylegan2`).
//! - [`resnet`]: the residual up- and down-blocks of the SNGAN ResNet, which `sngan`, `sagan` and
//!   `biggan`'s discriminator share.
//! - [`prelude`]: one `use` for a G/D architecture plugin.
//! - [`gan`]: declaring a generator and a discriminator to the core, building them, and
//!   checking their inputs.
pub mod attention;
pub mod gan;
pub mod gaussian;
pub mod grid;
pub mod layers;
pub mod norm;
pub mod ops;
pub mod patchgan;
pub mod penalty;
pub mod prelude;
pub mod resnet;
pub mod spectral_norm;

pub use attention::SelfAttention;
pub use layers::{downsample, leaky_relu, upsample, with_projection, Conv2d, Embedding, LeakyRelu, Linear, Weight};
pub use norm::{BatchNorm2d, Norm, NormLayer};
pub use patchgan::{PatchGan, PatchGanConfig};
pub use resnet::{DownBlock, UpBlock};
pub use spectral_norm::{Eps, EvalStep, SnOptions, SpectralNorm};
