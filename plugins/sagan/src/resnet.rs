//! SAGAN's CIFAR-10 networks: StudioGAN's ResNet (`src/models/resnet.py`, the SNGAN ResNet of
//! Miyato et al.'s Table 4) with a self-attention block between two residual blocks.
//!
//! - G: z → linear → `ch × 4 × 4` → three residual up-blocks (BN → ReLU → 2× nearest upsample →
//!   3×3 conv → BN → ReLU → 3×3 conv, plus an upsampled 1×1-conv shortcut), self-attention after
//!   block `g_attention_after` → BN → ReLU → 3×3 conv to the image → tanh.
//! - D: an "optimized" first block (3×3 conv → ReLU → 3×3 conv → 2×2 average pool, plus a
//!   pooled-then-1×1-conv shortcut), a pre-activation down-block, two pre-activation blocks with
//!   identity shortcuts, self-attention after block `d_attention_after`, ReLU, global sum
//!   pooling, a linear logit (with a bias, as StudioGAN's) and, when conditional, the projection
//!   ⟨embed(y), φ(x)⟩.
use lab_nn::{gan, with_projection, DownBlock, SelfAttention, UpBlock};
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::{Settings, D_BLOCKS, G_BLOCKS};
use crate::layers::{batch_norm, conv2d, embedding, linear, self_attention, BatchNorm2d, Conv2d, Embedding, Linear};

/// The side z is projected to.
const BOTTOM_WIDTH: i64 = 4;

/// G's residual up-block (StudioGAN's `GenBlock`).
fn up_block(p: nn::Path, c: i64, classes: Option<i64>) -> UpBlock {
    UpBlock {
        bn1: batch_norm(&p / "bn1", c, classes),
        conv1: conv2d(&p / "conv1", c, c, 3, true),
        bn2: batch_norm(&p / "bn2", c, classes),
        conv2: conv2d(&p / "conv2", c, c, 3, true),
        conv_sc: conv2d(&p / "conv_sc", c, c, 1, true),
    }
}

/// A self-attention block placed after residual block `after` (counted from 1).
#[derive(Debug)]
struct Placed {
    after: usize,
    block: SelfAttention,
}

impl Placed {
    fn new(p: nn::Path, after: Option<i64>, channels: i64) -> Option<Self> {
        after.map(|after| Self { after: after as usize, block: self_attention(p, channels) })
    }
}

/// The generator. Its variables are `linear.*`, `blocks.<i>.{bn1,conv1,bn2,conv2,conv_sc}.*`,
/// `attention.{query,key,value,output}.weight` and `attention.gamma`, and
/// `output_layer.{bn,conv}.*`; every weight has its `weight_u` buffer, batch norms their
/// `stored_mean` / `stored_var` and, when conditional, `gain.weight` / `bias.weight` tables.
#[derive(Debug)]
pub struct Generator {
    linear: Linear,
    channels: i64,
    blocks: Vec<UpBlock>,
    attention: Option<Placed>,
    output_bn: BatchNorm2d,
    output_conv: Conv2d,
}

impl Generator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let c = s.g_channels;
        let blocks = &p / "blocks";
        let output = &p / "output_layer";
        Self {
            linear: linear(&p / "linear", s.z_dim, c * BOTTOM_WIDTH * BOTTOM_WIDTH),
            channels: c,
            blocks: (0..G_BLOCKS).map(|i| up_block(&blocks / i, c, s.classes)).collect(),
            attention: Placed::new(&p / "attention", s.g_attention_after, c),
            // StudioGAN's `bn4` is a plain batch norm in every configuration.
            output_bn: batch_norm(&output / "bn", c, None),
            output_conv: conv2d(&output / "conv", c, s.image_channels, 3, true),
        }
    }

    /// The images and, when G has attention, its attention map `[N, H·W, H·W/4]` (see
    /// [`SelfAttention::forward_with_map`]).
    pub fn generate_with_attention(&self, z: &Tensor, y: Option<&Tensor>, train: bool) -> (Tensor, Option<Tensor>) {
        let mut h = self.linear.forward(z, train).reshape([-1, self.channels, BOTTOM_WIDTH, BOTTOM_WIDTH]);
        let mut map = None;
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, y, train);
            if let Some(placed) = self.attention.as_ref().filter(|a| a.after == i + 1) {
                let (out, m) = placed.block.forward_with_map(&h, train);
                (h, map) = (out, Some(m));
            }
        }
        let h = self.output_bn.forward(&h, None, train).relu();
        (self.output_conv.forward(&h, train).tanh(), map)
    }

    /// γ of G's attention block, if it has one.
    pub fn attention_gamma(&self) -> Option<&Tensor> {
        self.attention.as_ref().map(|a| a.block.gamma())
    }
}

impl gan::Generator for Generator {
    fn generate(&self, z: &Tensor, y: Option<&Tensor>, train: bool) -> Tensor {
        self.generate_with_attention(z, y, train).0
    }
}

/// D's residual blocks (StudioGAN's `DiscOptBlock` first, then `DiscBlock`s): conv1 goes
/// straight to the output width.
fn down_block(p: nn::Path, c_in: i64, c_out: i64, first: bool, downsample: bool) -> DownBlock {
    DownBlock {
        conv1: conv2d(&p / "conv1", c_in, c_out, 3, true),
        conv2: conv2d(&p / "conv2", c_out, c_out, 3, true),
        conv_sc: (c_in != c_out || downsample).then(|| conv2d(&p / "conv_sc", c_in, c_out, 1, true)),
        first,
        downsample,
    }
}

/// The discriminator. Its variables are `blocks.<i>.{conv1,conv2,conv_sc}.*`,
/// `attention.{query,key,value,output}.weight`, `attention.gamma`, `linear.{weight,bias}` and
/// `embed.weight` (conditional); every weight carries a `weight_u` buffer.
#[derive(Debug)]
pub struct Discriminator {
    blocks: Vec<DownBlock>,
    attention: Option<Placed>,
    linear: Linear,
    embed: Option<Embedding>,
}

impl Discriminator {
    pub fn new(p: nn::Path, s: &Settings) -> Self {
        let c = s.d_channels;
        let blocks = &p / "blocks";
        // 32 → 16 → 8, then two blocks at 8×8.
        let plan = [(s.image_channels, true, true), (c, false, true), (c, false, false), (c, false, false)];
        debug_assert_eq!(plan.len() as i64, D_BLOCKS);
        Self {
            blocks: plan
                .iter()
                .enumerate()
                .map(|(i, &(c_in, first, down))| down_block(&blocks / i, c_in, c, first, down))
                .collect(),
            attention: Placed::new(&p / "attention", s.d_attention_after, c),
            linear: linear(&p / "linear", c, 1),
            embed: s.classes.map(|k| embedding(&p / "embed", k, c)),
        }
    }

    /// γ of D's attention block, if it has one.
    pub fn attention_gamma(&self) -> Option<&Tensor> {
        self.attention.as_ref().map(|a| a.block.gamma())
    }
}

impl gan::Discriminator for Discriminator {
    /// `features` is the last feature map after ReLU, summed over space: what the linear layer
    /// and the projection read.
    fn discriminate(&self, x: &Tensor, y: Option<&Tensor>, train: bool) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(&h, train);
            if let Some(placed) = self.attention.as_ref().filter(|a| a.after == i + 1) {
                h = placed.block.forward(&h, train);
            }
        }
        let h = h.relu();
        let features = h.sum_dim_intlist([2i64, 3].as_slice(), false, h.kind());
        let logits = self.linear.forward(&features, train).squeeze_dim(1);
        (with_projection(logits, &features, self.embed.as_ref().zip(y), train), features)
    }
}
