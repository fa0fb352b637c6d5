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
use lab_nn::{gan, with_projection};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::{Pooling, Settings};
use crate::layers::{
    batch_norm, conv2d, downsample, embedding, linear, upsample, BatchNorm2d, Conv2d, ConvSpec, Embedding, Linear,
    GLOROT, RESIDUAL,
};

/// G's blocks (4 → 8 → 16 → 32 pixels) and the side z is projected to.
const G_BLOCKS: usize = 3;
const BOTTOM_WIDTH: i64 = 4;

/// G's residual up-block (`gen_models/resblocks.py` `Block` with `upsample=True`).
#[derive(Debug)]
struct GBlock {
    bn1: BatchNorm2d,
    conv1: Conv2d,
    bn2: BatchNorm2d,
    conv2: Conv2d,
    /// Always learned: an upsampling block changes the resolution.
    conv_sc: Conv2d,
}

impl GBlock {
    fn new(p: nn::Path, channels: i64, s: &Settings) -> Self {
        let c = channels;
        Self {
            bn1: batch_norm(&p / "bn1", c, s.bn_eps, s.classes),
            conv1: conv2d(&p / "conv1", ConvSpec::same(c, c, 3), RESIDUAL, false),
            bn2: batch_norm(&p / "bn2", c, s.bn_eps, s.classes),
            conv2: conv2d(&p / "conv2", ConvSpec::same(c, c, 3), RESIDUAL, false),
            conv_sc: conv2d(&p / "conv_sc", ConvSpec::same(c, c, 1), GLOROT, false),
        }
    }

    fn forward(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        let h = upsample(&self.bn1.forward(x, y, train).relu());
        let h = self.conv1.forward(&h, train);
        let h = self.conv2.forward(&self.bn2.forward(&h, y, train).relu(), train);
        h + self.conv_sc.forward(&upsample(x), train)
    }
}

/// The ResNet generator. Its variables are `linear.*`, `blocks.<i>.{bn1,conv1,bn2,conv2,conv_sc}.*`
/// and `output_layer.{bn,conv}.*`; batch norms carry `stored_mean` / `stored_var` buffers and,
/// when conditional, per-class `gain.weight` / `bias.weight` tables instead of `gain` / `bias`.
#[derive(Debug)]
pub struct Generator {
    linear: Linear,
    channels: i64,
    blocks: Vec<GBlock>,
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
            blocks: (0..G_BLOCKS).map(|i| GBlock::new(&blocks / i, c, s)).collect(),
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
#[derive(Debug)]
struct DBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    /// Learned when the block changes channels or resolution; the identity otherwise.
    conv_sc: Option<Conv2d>,
    /// `OptimizedBlock`: no activation before conv1 (it sees the image), and a shortcut that
    /// pools before its convolution (cheaper on 3 channels); `Block` convolves then pools.
    first: bool,
    downsample: bool,
}

impl DBlock {
    fn new(p: nn::Path, c_in: i64, c_out: i64, first: bool, down: bool, sn: bool) -> Self {
        let learnable_sc = c_in != c_out || down;
        Self {
            // The hidden width is the input's (`hidden_channels = in_channels`), except in the
            // optimized block, which goes straight to the output width.
            conv1: conv2d(&p / "conv1", ConvSpec::same(c_in, if first { c_out } else { c_in }, 3), RESIDUAL, sn),
            conv2: conv2d(&p / "conv2", ConvSpec::same(if first { c_out } else { c_in }, c_out, 3), RESIDUAL, sn),
            conv_sc: learnable_sc.then(|| conv2d(&p / "conv_sc", ConvSpec::same(c_in, c_out, 1), GLOROT, sn)),
            first,
            downsample: down,
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        // Out of place: the shortcut below must see x before the activation.
        let h = if self.first { x.shallow_clone() } else { x.relu() };
        let h = self.conv2.forward(&self.conv1.forward(&h, train).relu(), train);
        let h = if self.downsample { downsample(&h) } else { h };
        h + self.shortcut(x, train)
    }

    fn shortcut(&self, x: &Tensor, train: bool) -> Tensor {
        let Some(conv) = &self.conv_sc else { return x.shallow_clone() };
        match (self.first, self.downsample) {
            (true, _) => conv.forward(&downsample(x), train),
            (false, true) => downsample(&conv.forward(x, train)),
            (false, false) => conv.forward(x, train),
        }
    }
}

/// The ResNet discriminator. Its variables are `blocks.<i>.{conv1,conv2,conv_sc}.*`,
/// `linear.weight` and `embed.weight` (conditional); with spectral norm, every weight carries a
/// `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DBlock>,
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
                .map(|(i, &(c_in, first, down))| DBlock::new(&blocks / i, c_in, c, first, down, sn))
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
