//! # lab-plugin-bigan
//!
//! BiGAN (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning"; ALI, Dumoulin et
//! al. 2017, is the same game) on permutation-invariant 28×28 images, after the official
//! MNIST networks (jeffdonahue/bigan `train_mnist.sh`, `net.py`):
//! - `bigan` ([`model`]): a generator z → x, an encoder x → z, and a joint discriminator on
//!   (x, z) that the run's image augmentation never touches. Its grid shows x over G(E(x)); it
//!   measures the encoder: 1-NN accuracy of E(x) on the evaluation split (beside the same probe
//!   on a freshly initialised encoder) and the reconstruction error against random pairs.
//! - `bigan` ([`loss`]): D separates (x, E(x)) from (G(z), z); E and G share the opposite,
//!   label-swapped loss, stepped together.
pub mod loss;
pub mod model;
pub mod probe;

pub use loss::BiganLoss;
pub use model::{Bigan, BiganConfig};

lab_plugin_api::export_plugins! {
    architecture: Bigan,
    loss: BiganLoss,
}

#[cfg(test)]
mod tests;
