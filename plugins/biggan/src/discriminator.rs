//! BigGAN's discriminator (BigGAN-PyTorch `Discriminator`, wide, without attention): residual
//! down-blocks, a final ReLU, sum pooling over space, a linear logit and, for conditional models,
//! the projection term ⟨embed(y), φ(x)⟩ (Miyato & Koyama, 2018).
use lab_nn::{gan, with_projection, DownBlock};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::Settings;
use crate::layers::{conv2d, embedding, linear, Embedding, Linear};
use crate::plan::{self, BlockPlan};

/// `DBlock` (wide: the hidden width is the output width): [ReLU →] conv1 (3×3) → ReLU →
/// conv2 (3×3) [→ avg-pool], plus a shortcut with a learned 1×1 conv when the block changes
/// channels or resolution. Block 0 sees the raw image: no ReLU before it, and its shortcut pools
/// before it convolves, as BigGAN-PyTorch's.
fn down_block(p: nn::Path, plan: BlockPlan, first: bool, s: &Settings) -> DownBlock {
    let (c_in, c_out) = (plan.in_channels, plan.out_channels);
    DownBlock {
        conv1: conv2d(&p / "conv1", c_in, c_out, 3, s.init, s.d_sn),
        conv2: conv2d(&p / "conv2", c_out, c_out, 3, s.init, s.d_sn),
        conv_sc: (c_in != c_out || plan.resample).then(|| conv2d(&p / "conv_sc", c_in, c_out, 1, s.init, s.d_sn)),
        first,
        downsample: plan.resample,
    }
}

/// The discriminator network. Its variables are `blocks.<i>.{conv1,conv2,conv_sc}.*`, `linear.*`
/// and `embed.weight` (conditional); spectrally normalised weights carry a `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DownBlock>,
    linear: Linear,
    embed: Option<Embedding>,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let plan = plan::discriminator(s.resolution, s.d_ch, s.image_channels);
        let features = plan.last().expect("at least one block").out_channels;
        let blocks = &p / "blocks";
        Self {
            blocks: plan.iter().enumerate().map(|(i, b)| down_block(&blocks / i, *b, i == 0, s)).collect(),
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
