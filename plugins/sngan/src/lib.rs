//! # lab-plugin-sngan
//!
//! The `sngan` architecture (Miyato, Kataoka, Koyama & Yoshida, "Spectral Normalization for
//! Generative Adversarial Networks", ICLR 2018) for 32×32 images, in its two CIFAR-10 forms:
//! - `kind = "resnet"` (the default): the ResNet of Table 4 as the official code runs it
//!   (pfnet-research/sngan_projection, `configs/sn_cifar10_unconditional.yml`: G 256 channels,
//!   D 128, global sum pooling, a logit without bias);
//! - `kind = "cnn"`: the standard CNN of Table 3 (G of transposed convolutions with BN, D of
//!   seven convolutions with LeakyReLU 0.1 and a dense logit), with chainer-gan-lib's layers.
//!
//! Spectral norm is on every D weight, with one power iteration per forward pass from a `u`
//! kept as a buffer (checkpointed; only training passes store a new one). z is 128-dimensional
//! N(0, I). `conditional = true` gives the ResNet with class-conditional BN in G and a
//! projection D (StudioGAN's SNGAN), `d_sn = false` the same networks without spectral norm
//! (with `pooling = "mean"`, WGAN-GP's ResNet critic). Its `[model.config]` is [`SnganConfig`].
//!
//! `reference/sngan_cifar.py` is an independent PyTorch re-implementation of both kinds from the
//! paper's tables and the official code's layer list; a test feeds it this crate's weights and
//! compares outputs, gradients and parameter counts.
use lab_nn::gan::{self, Gan, GanModel, Shapes};
use lab_plugin_api::tch::{nn, Tensor};
use lab_plugin_api::DataSpec;

pub mod cnn;
pub mod config;
pub mod layers;
pub mod resnet;

pub use config::{Kind, Settings, SnganConfig};

lab_plugin_api::export_plugins! { architecture: Sngan }

/// The `sngan` architecture: lab-nn's G/D adapter around this crate's settings and networks.
pub type Sngan = Gan<Settings>;

/// SNGAN's generator, of either kind.
#[derive(Debug)]
pub enum Generator {
    ResNet(resnet::Generator),
    Cnn(cnn::Generator),
}

impl gan::Generator for Generator {
    fn generate(&self, z: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        match self {
            Generator::ResNet(g) => g.generate(z, labels, train),
            Generator::Cnn(g) => g.generate(z, labels, train),
        }
    }
}

/// SNGAN's discriminator, of either kind.
#[derive(Debug)]
pub enum Discriminator {
    ResNet(resnet::Discriminator),
    Cnn(cnn::Discriminator),
}

impl gan::Discriminator for Discriminator {
    fn discriminate(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        match self {
            Discriminator::ResNet(d) => d.discriminate(x, labels, train),
            Discriminator::Cnn(d) => d.discriminate(x, labels, train),
        }
    }
}

impl GanModel for Settings {
    const NAME: &'static str = "sngan";
    const DESCRIPTION: &'static str = "SNGAN (Miyato et al., 2018), CIFAR 32x32: the ResNet (Table 4) or the standard \
         CNN (Table 3), spectral norm on every D weight";
    type Config = SnganConfig;
    type G = Generator;
    type D = Discriminator;

    fn resolve(config: SnganConfig, data: &DataSpec) -> lab_plugin_api::Result<Self> {
        config.resolve(data)
    }

    fn shapes(&self) -> Shapes {
        Shapes::square(self.z_dim, self.image_channels, self.resolution, self.classes)
    }

    fn num_classes(&self) -> i64 {
        self.classes.unwrap_or(0)
    }

    fn generator(&self, p: nn::Path) -> Generator {
        match self.kind {
            Kind::ResNet => Generator::ResNet(resnet::Generator::new(p, self)),
            Kind::Cnn => Generator::Cnn(cnn::Generator::new(p, self)),
        }
    }

    fn discriminator(&self, p: nn::Path) -> Discriminator {
        match self.kind {
            Kind::ResNet => Discriminator::ResNet(resnet::Discriminator::new(p, self)),
            Kind::Cnn => Discriminator::Cnn(cnn::Discriminator::new(p, self)),
        }
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
