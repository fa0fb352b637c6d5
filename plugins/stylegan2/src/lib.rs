//! # lab-plugin-stylegan2
//!
//! StyleGAN2 (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, "Analyzing and Improving the
//! Image Quality of StyleGAN", CVPR 2020) as stylegan2-ada-pytorch builds it
//! (NVlabs/stylegan2-ada-pytorch, `training/networks.py`, `training/loss.py`,
//! `training/training_loop.py`), with the defaults of its `--cfg=cifar` (shared/ZOO.md §14).
//! Two plugins:
//! - the `stylegan2` architecture ([`StyleGan2Config`]): a mapping network z → w (equalised
//!   learning rate at a multiplier of 0.01, a running mean of w for truncation), the `skip`
//!   synthesis network (a learned 4×4 constant, modulated and demodulated 3×3 convolutions with
//!   per-pixel noise, a toRGB output at every resolution summed through upsampling), and the
//!   discriminator (`orig` or `resnet` blocks with filtered downsampling, a minibatch-stddev
//!   epilogue, a projection on a mapped label when conditional); style mixing in training;
//! - the `stylegan2` loss ([`StyleGan2Loss`]): the non-saturating logistic loss with R1 and
//!   path-length regularisation, each lazily (every 16 and 4 steps, with the learning rates and
//!   betas rescaled and the term scaled by the interval), the path-length mean kept as
//!   checkpointed loss state.
//!
//! The EMA of G by half-life with ramp-up is the core's (`[ema] half_life_kimg`, `rampup`).
//! What is left out, on purpose: mixed precision inside the networks (`num_fp16_res`; the core's
//! `train.amp` does that job) and the fused CUDA kernels (the same operations in libtorch).
//!
//! `reference/stylegan2.py` is an independent PyTorch re-implementation written from the paper
//! and the layer list; a test feeds it this crate's weights and compares outputs, gradients,
//! buffers and parameter counts in float64.
use lab_nn::gan::{Gan, GanModel, Shapes};
use lab_plugin_api::tch::nn;
use lab_plugin_api::DataSpec;

pub mod config;
pub mod layers;
pub mod loss;
pub mod networks;

pub use config::{Settings, StyleGan2Config};
pub use loss::{StyleGan2Loss, StyleGan2LossConfig};
pub use networks::{Discriminator, Generator};

lab_plugin_api::export_plugins! {
    architecture: StyleGan2,
    loss: StyleGan2Loss,
}

/// The `stylegan2` architecture: lab-nn's G/D adapter around this crate's settings and networks.
pub type StyleGan2 = Gan<Settings>;

impl GanModel for Settings {
    const NAME: &'static str = "stylegan2";
    const DESCRIPTION: &'static str =
        "StyleGAN2 (Karras et al., 2020) as stylegan2-ada-pytorch builds it: mapping network, \
         modulated convolutions with noise, skip G, orig/resnet D with minibatch stddev; defaults: its cifar config";
    type Config = StyleGan2Config;
    type G = Generator;
    type D = Discriminator;

    fn resolve(config: StyleGan2Config, data: &DataSpec) -> lab_plugin_api::Result<Self> {
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
