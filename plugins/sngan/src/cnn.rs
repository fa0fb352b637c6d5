//! The standard CNN of the paper's Table 3 for 32×32 images (M_g = 4), with chainer-gan-lib's
//! layers (`common/net.py`: `DCGANGenerator`, `SNDCGANDiscriminator`).
//!
//! - G: z → dense → `ch × 4 × 4` → three 4×4 stride-2 transposed convolutions, each followed by
//!   BN and ReLU (ch/2, ch/4, ch/8 channels) → 3×3 conv to the image → tanh. As in the table
//!   (and StudioGAN's `deep_conv`, whose G has the same parameter count), the dense layer is
//!   followed by nothing; chainer-gan-lib's `DCGANGenerator` adds a BN and a ReLU over its 8192
//!   outputs, which the paper's table does not list.
//! - D: 3×3 conv (ch/8) → 4×4 stride-2 conv (ch/8) → 3×3 (ch/4) → 4×4 s2 (ch/4) → 3×3 (ch/2)
//!   → 4×4 s2 (ch/2) → 3×3 (ch), each followed by LeakyReLU(0.1), then a dense layer from the
//!   whole `ch × 4 × 4` map to one logit.
use lab_nn::gan;
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::Settings;
use crate::layers::{
    batch_norm, conv2d, conv_transpose2d, leaky_relu, linear, BatchNorm2d, Conv2d, ConvSpec, Init, Linear,
};

/// The side of G's first and D's last feature map (M_g = M/8 for 32×32 images).
const BOTTOM_WIDTH: i64 = 4;

/// One of G's up-steps: 2× side, BN, ReLU.
#[derive(Debug)]
struct UpBlock {
    deconv: nn::ConvTranspose2D,
    bn: BatchNorm2d,
}

/// The CNN generator. Its variables are `linear.*`, `blocks.<i>.{deconv,bn}.*` and
/// `output_conv.*`.
#[derive(Debug)]
pub struct Generator {
    linear: Linear,
    channels: i64,
    blocks: Vec<UpBlock>,
    output_conv: Conv2d,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let c = s.g_channels;
        let side = BOTTOM_WIDTH;
        let blocks = &p / "blocks";
        // 512 → 256 → 128 → 64 at the paper's width.
        let widths = [c, c / 2, c / 4, c / 8];
        Self {
            linear: linear(&p / "linear", s.z_dim, c * side * side, Init::Normal, false, true),
            channels: c,
            blocks: widths
                .windows(2)
                .enumerate()
                .map(|(i, pair)| {
                    let b = &blocks / i;
                    UpBlock {
                        deconv: conv_transpose2d(&b / "deconv", ConvSpec::k4s2(pair[0], pair[1])),
                        bn: batch_norm(&b / "bn", pair[1], s.bn_eps, None),
                    }
                })
                .collect(),
            output_conv: conv2d(&p / "output_conv", ConvSpec::same(c / 8, s.image_channels, 3), Init::Normal, false),
        }
    }
}

impl gan::Generator for Generator {
    fn generate(&self, z: &Tensor, _y: Option<&Tensor>, train: bool) -> Tensor {
        let mut h = self.linear.forward(z, train).reshape([-1, self.channels, BOTTOM_WIDTH, BOTTOM_WIDTH]);
        for block in &self.blocks {
            h = block.bn.forward(&nn::Module::forward(&block.deconv, &h), None, train).relu();
        }
        self.output_conv.forward(&h, train).tanh()
    }
}

/// The CNN discriminator. Its variables are `convs.<i>.*` (seven) and `linear.*`; with spectral
/// norm, every weight carries a `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    convs: Vec<Conv2d>,
    linear: Linear,
    slope: f64,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let c = s.d_channels;
        let sn = s.d_sn;
        let (c8, c4, c2) = (c / 8, c / 4, c / 2);
        let specs = [
            ConvSpec::same(s.image_channels, c8, 3),
            ConvSpec::k4s2(c8, c8),
            ConvSpec::same(c8, c4, 3),
            ConvSpec::k4s2(c4, c4),
            ConvSpec::same(c4, c2, 3),
            ConvSpec::k4s2(c2, c2),
            ConvSpec::same(c2, c, 3),
        ];
        let convs = &p / "convs";
        Self {
            convs: specs.iter().enumerate().map(|(i, spec)| conv2d(&convs / i, *spec, Init::Normal, sn)).collect(),
            linear: linear(&p / "linear", c * BOTTOM_WIDTH * BOTTOM_WIDTH, 1, Init::Normal, sn, true),
            slope: s.leaky_slope,
        }
    }
}

impl gan::Discriminator for Discriminator {
    /// `features` is the last feature map after its LeakyReLU, flattened: what the dense layer
    /// reads.
    fn discriminate(&self, x: &Tensor, _y: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for conv in &self.convs {
            h = leaky_relu(&conv.forward(&h, train), self.slope);
        }
        let features = h.flatten(1, -1);
        (self.linear.forward(&features, train).squeeze_dim(1), features)
    }
}
