//! BigGAN's generator (BigGAN-PyTorch `Generator` without shared embedding, hierarchical z or
//! attention): z → linear → `4·ch × 4 × 4`, residual up-blocks with class-conditional batch
//! norm, then batch norm → ReLU → 3×3 convolution → tanh.
use lab_nn::gan;
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::Settings;
use crate::layers::{batch_norm, class_conditional_batch_norm, conv2d, linear, upsample, BatchNorm2d, Conv2d, Linear};
use crate::plan::{self, BlockPlan};

/// BigGAN-PyTorch's output-layer `bn` is built without `BN_eps`, so it keeps PyTorch's default
/// whatever `bn_eps` says.
const OUTPUT_BN_EPS: f64 = 1e-5;

/// `GBlock`: bn1 → ReLU → upsample → conv1 (3×3) → bn2 → ReLU → conv2 (3×3), plus a shortcut
/// that is upsampled and, when the block changes channels or resolution, a learned 1×1 conv.
#[derive(Debug)]
struct GBlock {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    conv_sc: Option<Conv2d>,
    upsample: bool,
}

impl GBlock {
    fn new(p: nn::Path, plan: BlockPlan, s: &Settings) -> Self {
        let (c_in, c_out) = (plan.in_channels, plan.out_channels);
        let norm = |name: &str, channels| match s.classes {
            Some(k) => class_conditional_batch_norm(&p / name, channels, k, s.bn_eps, s.init),
            None => batch_norm(&p / name, channels, s.bn_eps),
        };
        let learnable_sc = c_in != c_out || plan.resample;
        Self {
            bn1: norm("bn1", c_in),
            conv1: conv2d(&p / "conv1", c_in, c_out, 3, s.init, s.g_sn),
            bn2: norm("bn2", c_out),
            conv2: conv2d(&p / "conv2", c_out, c_out, 3, s.init, s.g_sn),
            conv_sc: learnable_sc.then(|| conv2d(&p / "conv_sc", c_in, c_out, 1, s.init, s.g_sn)),
            upsample: plan.resample,
        }
    }

    fn forward(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let mut h = self.bn1.forward(x, y, train).relu();
        let mut x = x.shallow_clone();
        if self.upsample {
            h = upsample(&h);
            x = upsample(&x);
        }
        h = self.conv1.forward(&h, train);
        h = self.conv2.forward(&self.bn2.forward(&h, y, train).relu(), train);
        if let Some(conv_sc) = &self.conv_sc {
            x = conv_sc.forward(&x, train);
        }
        h + x
    }
}

/// The generator network. Its variables are `linear.*`, `blocks.<i>.{bn1,conv1,bn2,conv2,conv_sc}.*`
/// and `output_layer.{bn,conv}.*`; spectrally normalised weights carry a `weight_u` buffer and
/// batch norms `stored_mean` / `stored_var` buffers.
#[derive(Debug)]
pub struct Generator {
    linear: Linear,
    /// `[channels, side, side]` of the feature map z is projected to.
    bottom: [i64; 3],
    blocks: Vec<GBlock>,
    output_bn: BatchNorm2d,
    output_conv: Conv2d,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let plan = plan::generator(s.resolution, s.g_ch);
        let first = plan.blocks[0].in_channels;
        let last = plan.blocks.last().expect("at least one block").out_channels;
        let side = plan.bottom_width;
        let blocks = &p / "blocks";
        let output = &p / "output_layer";
        Self {
            linear: linear(&p / "linear", s.z_dim, first * side * side, s.init, s.g_sn),
            bottom: [first, side, side],
            blocks: plan.blocks.iter().enumerate().map(|(i, b)| GBlock::new(&blocks / i, *b, s)).collect(),
            output_bn: batch_norm(&output / "bn", last, OUTPUT_BN_EPS),
            output_conv: conv2d(&output / "conv", last, s.image_channels, 3, s.init, s.g_sn),
        }
    }
}

impl gan::Generator for Generator {
    /// Images from z `[N, z_dim]` and, for a conditional model, the labels that select each
    /// batch norm's gain and bias.
    fn generate(&self, z: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let [c, side, _] = self.bottom;
        let mut h = self.linear.forward(z, train).reshape([-1, c, side, side]);
        for block in &self.blocks {
            h = block.forward(&h, y, train);
        }
        let h = self.output_bn.forward(&h, None, train).relu();
        self.output_conv.forward(&h, train).tanh()
    }
}
