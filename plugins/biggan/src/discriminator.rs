//! BigGAN's discriminator (BigGAN-PyTorch `Discriminator`, wide, without attention): residual
//! down-blocks, a final ReLU, sum pooling over space, a linear logit and, for conditional models,
//! the projection term ⟨embed(y), φ(x)⟩ (Miyato & Koyama, 2018).
use lab_nn::{gan, with_projection};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::Settings;
use crate::layers::{conv2d, downsample, embedding, linear, Conv2d, Embedding, Linear};
use crate::plan::{self, BlockPlan};

/// `DBlock` (wide: the hidden width is the output width): [ReLU →] conv1 (3×3) → ReLU →
/// conv2 (3×3) [→ avg-pool], plus a shortcut with a learned 1×1 conv when the block changes
/// channels or resolution.
#[derive(Debug)]
struct DBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    conv_sc: Option<Conv2d>,
    /// Every block but the first starts with a ReLU; the first sees the raw image.
    preactivation: bool,
    downsample: bool,
}

impl DBlock {
    fn new(p: nn::Path, plan: BlockPlan, preactivation: bool, s: &Settings) -> Self {
        let (c_in, c_out) = (plan.in_channels, plan.out_channels);
        let learnable_sc = c_in != c_out || plan.resample;
        Self {
            conv1: conv2d(&p / "conv1", c_in, c_out, 3, s.init, s.d_sn),
            conv2: conv2d(&p / "conv2", c_out, c_out, 3, s.init, s.d_sn),
            conv_sc: learnable_sc.then(|| conv2d(&p / "conv_sc", c_in, c_out, 1, s.init, s.d_sn)),
            preactivation,
            downsample: plan.resample,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        // Out of place: the shortcut below must see x before the activation.
        let h = if self.preactivation { x.relu() } else { x.shallow_clone() };
        let h = self.conv2.forward(&self.conv1.forward(&h, train).relu(), train);
        let h = if self.downsample { downsample(&h) } else { h };
        h + self.shortcut(x, train)
    }

    /// The shortcut in BigGAN-PyTorch's order: pre-activated blocks convolve then pool, the
    /// first block pools then convolves. A 1×1 convolution and average pooling commute, so the
    /// order changes only cost and rounding; keeping the reference's keeps outputs comparable.
    fn shortcut(&self, x: &Tensor, train: bool) -> Tensor {
        let conv = |t: &Tensor| match &self.conv_sc {
            Some(c) => c.forward(t, train),
            None => t.shallow_clone(),
        };
        let pool = |t: &Tensor| if self.downsample { downsample(t) } else { t.shallow_clone() };
        if self.preactivation {
            pool(&conv(x))
        } else {
            conv(&pool(x))
        }
    }
}

/// The discriminator network. Its variables are `blocks.<i>.{conv1,conv2,conv_sc}.*`, `linear.*`
/// and `embed.weight` (conditional); spectrally normalised weights carry a `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DBlock>,
    linear: Linear,
    embed: Option<Embedding>,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let plan = plan::discriminator(s.resolution, s.d_ch, s.image_channels);
        let features = plan.last().expect("at least one block").out_channels;
        let blocks = &p / "blocks";
        Self {
            blocks: plan.iter().enumerate().map(|(i, b)| DBlock::new(&blocks / i, *b, i > 0, s)).collect(),
            linear: linear(&p / "linear", features, 1, s.init, s.d_sn),
            embed: s.classes.map(|k| embedding(&p / "embed", k, features, s.init, s.d_sn)),
        }
    }
}

impl gan::Discriminator for Discriminator {
    /// `features` is the last feature map after ReLU, summed over space: what the linear layer
    /// and the projection read.
    fn discriminate(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for block in &self.blocks {
            h = block.forward(&h, train);
        }
        let features = h.relu().sum_dim_intlist([2i64, 3].as_slice(), false, h.kind());
        let logits = self.linear.forward(&features, train).squeeze_dim(1);
        // Projection: the class-dependent part of the logit is ⟨embed(y), φ(x)⟩.
        (with_projection(logits, &features, self.embed.as_ref().zip(y), train), features)
    }
}
