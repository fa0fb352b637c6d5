//! # lab-plugin-sagan
//!
//! The `sagan` architecture (Zhang, Goodfellow, Metaxas & Odena, "Self-Attention Generative
//! Adversarial Networks", ICML 2019) for 32×32 images, as StudioGAN runs it on CIFAR-10
//! (POSTECH-CVLab/PyTorch-StudioGAN, `src/configs/CIFAR10/SAGAN.yaml`: `g_cond_mtd: cBN`,
//! `d_cond_mtd: PD`, `apply_g_sn`, `apply_d_sn`, `apply_attn` with `attn_g_loc: [2]` and
//! `attn_d_loc: [1]`, on the defaults of `src/config.py` and the ResNet of
//! `src/models/resnet.py`). The paper has no CIFAR-10 model; StudioGAN's row (IS 8.64, FID
//! 10.35; shared/ZOO.md §13, §19) is the target. Its `[model.config]` is [`SaganConfig`].
//!
//! What was chosen, and why:
//! - **Widths and z.** StudioGAN's `g_conv_dim = d_conv_dim = 64` give G blocks of 256
//!   channels and D blocks of 128 (its ResNet's `"32"` entries), with z of 128. At those widths
//!   the networks have 4,386,308 and 1,075,586 trainable parameters, exactly the counts of
//!   StudioGAN's SAGAN training logs; the tests check both against a PyTorch re-implementation.
//! - **The networks** are SNGAN's CIFAR ResNet (Miyato et al., Table 4) as StudioGAN builds it:
//!   three up-blocks in G, an optimized block, a down-block and two plain blocks in D, global
//!   sum pooling, a projection D. Unlike the official SNGAN code, StudioGAN's final D layer has a
//!   bias, and so does this one.
//! - **Attention** (`lab_nn::attention`) after G's second block and D's first, both at 16×16,
//!   in the official code's form: queries and keys at C/8, values at C/2, keys and values
//!   max-pooled 2×2, all four 1×1 convolutions bias-free and spectrally normalised, γ from 0.
//!   `g_attention_after` / `d_attention_after` move or remove them.
//! - **Spectral norm in both networks** (the paper's point against SNGAN's D-only norm): every
//!   convolution, linear layer and embedding of G and D, the class-conditional batch norm's
//!   gain and bias tables included (StudioGAN's `sn_embedding`), with PyTorch's rule
//!   (`x / max(‖x‖, 1e-6)`, one step per training pass; [`layers::SN`]).
//! - **Class-conditional**: batch norm in G's blocks takes `1 + gain[y]` and `bias[y]`
//!   (ε = 1e-4, no affine of its own); the output norm is plain. `conditional = false` gives
//!   plain norms and no projection.
//! - **Initialisation**: StudioGAN's `ortho` (orthogonal weights and tables, zero biases), not
//!   the chainer Glorot of the `sngan` plugin.
//!
//! A crate of its own rather than an option of `sngan`: it shares the ResNet's shape, but every
//! detail that changes the numbers differs (spectral norm's rule and its reach into G and the
//! class tables, the initialisation, batch norm's ε, the bias of D's logit), so an option
//! would have turned each of `sngan`'s layers into a branch on the framework it copies.
//!
//! `reference/sagan_cifar.py` is an independent PyTorch re-implementation; a test feeds it this
//! crate's weights and compares outputs, gradients, buffers and parameter counts in float64.
use lab_nn::gan::{Gan, GanModel, Shapes};
use lab_plugin_api::tch::nn;
use lab_plugin_api::DataSpec;

pub mod config;
pub mod layers;
pub mod resnet;

pub use config::{SaganConfig, Settings};
pub use resnet::{Discriminator, Generator};

lab_plugin_api::export_plugins! { architecture: Sagan }

/// The `sagan` architecture: lab-nn's G/D adapter around this crate's settings and networks.
pub type Sagan = Gan<Settings>;

impl GanModel for Settings {
    const NAME: &'static str = "sagan";
    const DESCRIPTION: &'static str = "SAGAN (Zhang et al., 2019), CIFAR 32x32 as StudioGAN runs it: the SNGAN ResNet \
         with self-attention in G and D, spectral norm in both, conditional BN and projection";
    type Config = SaganConfig;
    type G = Generator;
    type D = Discriminator;

    fn resolve(config: SaganConfig, data: &DataSpec) -> lab_plugin_api::Result<Self> {
        config.resolve(data)
    }

    fn shapes(&self) -> Shapes {
        Shapes::square(self.z_dim, self.image_channels, self.resolution, self.classes)
    }

    fn num_classes(&self) -> i64 {
        self.classes.unwrap_or(0)
    }

    fn generator(&self, p: nn::Path) -> Generator {
        Generator::new(p, self)
    }

    fn discriminator(&self, p: nn::Path) -> Discriminator {
        Discriminator::new(p, self)
    }
}

#[cfg(test)]
mod tests;

// The lock the tests take around seeding and drawing from libtorch's global RNG.
#[cfg(test)]
use lab_plugin_testkit::rng_lock;
