//! The ResNet of the paper's Table 4 for 32×32 images, as the official code builds it
//! (sngan_projection `gen_models/resnet_32.py`, `dis_models/snresnet_32.py` and their
//! `resblocks.py`).
//!
//! - G: z → linear → `ch × 4 × 4` → three residual up-blocks (BN → ReLU → 2× nearest upsample →
//!   3×3 conv → BN → ReLU → 3×3 conv, plus an upsampled 1×1-conv shortcut) → BN → ReLU → 3×3
//!   conv to the image → tanh.
//! - D: an "optimized" first block (3×3 conv → ReLU → 3×3 conv → 2×2 average pool, plus a
//!   pooled-then-1×1-conv shortcut), one pre-activation down-block, two pre-activation blocks
//!   with identity shortcuts, ReLU, global sum pooling, a linear logit without bias and, when
//!   conditional, the projection ⟨embed(y), φ(x)⟩.
use lab_nn::{gan, with_projection, DownBlock, UpBlock};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::{Pooling, Settings};
use crate::layers::{
    batch_norm, conv2d, embedding, linear, BatchNorm2d, Conv2d, ConvSpec, Embedding, Linear, GLOROT, RESIDUAL,
};

/// G's blocks (4 → 8 → 16 → 32 pixels) and the side z is projected to.
const G_BLOCKS: usize = 3;
const BOTTOM_WIDTH: i64 = 4;

/// G's residual up-block (`gen_models/resblocks.py` `Block` with `upsample=True`).
fn up_block(p: nn::Path, c: i64, s: &Settings) -> UpBlock {
    UpBlock {
        bn1: batch_norm(&p / "bn1", c, s.bn_eps, s.classes),
        conv1: conv2d(&p / "conv1", ConvSpec::same(c, c, 3), RESIDUAL, false),
        bn2: batch_norm(&p / "bn2", c, s.bn_eps, s.classes),
        conv2: conv2d(&p / "conv2", ConvSpec::same(c, c, 3), RESIDUAL, false),
        conv_sc: conv2d(&p / "conv_sc", ConvSpec::same(c, c, 1), GLOROT, false),
    }
}

/// The ResNet generator. Its variables are `linear.*`, `blocks.<i>.{bn1,conv1,bn2,conv2,conv_sc}.*`
/// and `output_layer.{bn,conv}.*`; batch norms carry `stored_mean` / `stored_var` buffers and,
/// when conditional, per-class `gain.weight` / `bias.weight` tables instead of `gain` / `bias`.
#[derive(Debug)]
pub struct Generator {
    linear: Linear,
    channels: i64,
    blocks: Vec<UpBlock>,
    output_bn: BatchNorm2d,
    output_conv: Conv2d,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let c = s.g_channels;
        let blocks = &p / "blocks";
        let output = &p / "output_layer";
        Self {
            linear: linear(&p / "linear", s.z_dim, c * BOTTOM_WIDTH * BOTTOM_WIDTH, GLOROT, false, true),
            channels: c,
            blocks: (0..G_BLOCKS).map(|i| up_block(&blocks / i, c, s)).collect(),
            // The last norm is never class-conditional (`resnet_32.py`'s `b5`).
            output_bn: batch_norm(&output / "bn", c, s.bn_eps, None),
            output_conv: conv2d(&output / "conv", ConvSpec::same(c, s.image_channels, 3), GLOROT, false),
        }
    }
}

impl gan::Generator for Generator {
    fn generate(&self, z: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let mut h = self.linear.forward(z, train).reshape([-1, self.channels, BOTTOM_WIDTH, BOTTOM_WIDTH]);
        for block in &self.blocks {
            h = block.forward(&h, y, train);
        }
        let h = self.output_bn.forward(&h, None, train).relu();
        self.output_conv.forward(&h, train).tanh()
    }
}

/// D's residual blocks (`dis_models/resblocks.py`): `OptimizedBlock` first, then `Block`s.
fn down_block(p: nn::Path, c_in: i64, c_out: i64, first: bool, downsample: bool, sn: bool) -> DownBlock {
    // The hidden width is the input's (`hidden_channels = in_channels`), except in the optimized
    // block, which goes straight to the output width.
    let hidden = if first { c_out } else { c_in };
    DownBlock {
        conv1: conv2d(&p / "conv1", ConvSpec::same(c_in, hidden, 3), RESIDUAL, sn),
        conv2: conv2d(&p / "conv2", ConvSpec::same(hidden, c_out, 3), RESIDUAL, sn),
        conv_sc: (c_in != c_out || downsample)
            .then(|| conv2d(&p / "conv_sc", ConvSpec::same(c_in, c_out, 1), GLOROT, sn)),
        first,
        downsample,
    }
}

/// The ResNet discriminator. Its variables are `blocks.<i>.{conv1,conv2,conv_sc}.*`,
/// `linear.weight` and `embed.weight` (conditional); with spectral norm, every weight carries a
/// `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DownBlock>,
    linear: Linear,
    embed: Option<Embedding>,
    pooling: Pooling,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let (c, sn) = (s.d_channels, s.d_sn);
        let blocks = &p / "blocks";
        // 32 → 16 → 8, then two blocks at 8×8.
        let plan = [(s.image_channels, true, true), (c, false, true), (c, false, false), (c, false, false)];
        Self {
            blocks: plan
                .iter()
                .enumerate()
                .map(|(i, &(c_in, first, down))| down_block(&blocks / i, c_in, c, first, down, sn))
                .collect(),
            // `SNLinear(ch, 1, nobias=True)`: the official D's logit has no bias.
            linear: linear(&p / "linear", c, 1, GLOROT, sn, false),
            embed: s.classes.map(|k| embedding(&p / "embed", k, c, GLOROT, sn)),
            pooling: s.pooling,
        }
    }
}

impl gan::Discriminator for Discriminator {
    /// `features` is the last feature map after ReLU, pooled over space: what the linear layer
    /// and the projection read.
    fn discriminate(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for block in &self.blocks {
            h = block.forward(&h, train);
        }
        let h = h.relu();
        let space = [2i64, 3];
        let features = match self.pooling {
            Pooling::Sum => h.sum_dim_intlist(space.as_slice(), false, h.kind()),
            Pooling::Mean => h.mean_dim(space.as_slice(), false, h.kind()),
        };
        let logits = self.linear.forward(&features, train).squeeze_dim(1);
        (with_projection(logits, &features, self.embed.as_ref().zip(y), train), features)
    }
}
