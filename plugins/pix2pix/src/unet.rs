//! pix2pix's U-Net generator (Isola et al. 2017, §3.2.1 and appendix 6.1.1), laid out as the
//! official `UnetGenerator` builds it from nested skip blocks.
//!
//! Block k (k = 0 outermost, `depth` − 1 innermost) halves the side with a 4×4 stride-2
//! convolution to `encoder_width(k)` channels (ngf, 2·ngf, 4·ngf, then 8·ngf) and doubles it back
//! with a 4×4 stride-2 transposed convolution, around the blocks inside it:
//! - down: LeakyReLU 0.2 (not on the image itself), convolution, norm (not in the outermost or
//!   the innermost block: the innermost map is 1×1);
//! - up: ReLU, transposed convolution, norm (not in the outermost), dropout (in the blocks
//!   [`Settings::has_dropout`] names); the outermost ends in tanh instead;
//! - a block's output is its input concatenated with its up path's output (the skip), except
//!   the outermost's, which is the image.
//!
//! Convolutions carry a bias only with instance norm, except the outermost transposed one,
//! which always does. Weights start from N(0, 0.02), batch norm gains from N(1, 0.02), biases
//! at 0 (the official `init_weights('normal')`). Variables: `down{k}.weight|bias`,
//! `down_norm{k}.*`, `up{k}.weight|bias`, `up_norm{k}.*`.
use lab_nn::layers::leaky_relu;
use lab_nn::NormLayer;
use lab_plugin_api::tch::{nn, Tensor};

use crate::config::Settings;

/// Every convolution's kernel side, stride and padding.
const KERNEL: i64 = 4;
const STRIDE: i64 = 2;
const PADDING: i64 = 1;
const DOWN_SLOPE: f64 = 0.2;

/// How the generator runs: training, or evaluation with or without the paper's test noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Dropout on; batch norm on batch statistics, updating the running ones.
    Train,
    /// The paper's test protocol: dropout on; batch norm on the test batch's own statistics,
    /// leaving the running ones unchanged.
    TestWithNoise,
    /// Deterministic evaluation: no dropout; batch norm on the running statistics.
    Eval,
}

impl Mode {
    /// The mode of a forward pass with `train`, for a generator with or without test noise.
    pub fn of(train: bool, noise_at_test: bool) -> Self {
        match (train, noise_at_test) {
            (true, _) => Mode::Train,
            (false, true) => Mode::TestWithNoise,
            (false, false) => Mode::Eval,
        }
    }
}

/// One skip block's layers.
#[derive(Debug)]
struct Block {
    down: (Tensor, Option<Tensor>),
    down_norm: Option<NormLayer>,
    up: (Tensor, Option<Tensor>),
    up_norm: Option<NormLayer>,
    dropout: f64,
}

/// The U-Net: images A `[N, C, S, S]` → images B `[N, C, S, S]` in [-1, 1].
#[derive(Debug)]
pub struct UNet {
    blocks: Vec<Block>,
}

fn normal(mean: f64) -> nn::Init {
    nn::Init::Randn { mean, stdev: 0.02 }
}

impl UNet {
    /// A fresh U-Net under `p`; variables are drawn block by block from the outermost, each
    /// block's down path before its up path, weight before bias before norm.
    pub fn new(p: &nn::Path, s: &Settings) -> Self {
        let innermost = s.depth - 1;
        let bias = s.norm.conv_bias();
        let blocks = (0..s.depth)
            .map(|k| {
                let outer = if k == 0 { s.channels } else { s.encoder_width(k - 1) };
                let inner = s.encoder_width(k);
                let middle = k > 0 && k < innermost;

                let down_path = p / format!("down{k}");
                let down_w = down_path.var("weight", &[inner, outer, KERNEL, KERNEL], normal(0.0));
                let down_b = bias.then(|| down_path.zeros("bias", &[inner]));
                let down_norm = middle.then(|| s.norm.layer(&(p / format!("down_norm{k}")), inner, normal(1.0)));

                // Every block but the innermost receives its inner block's output with the skip.
                let up_in = if k == innermost { inner } else { 2 * inner };
                let up_path = p / format!("up{k}");
                let up_w = up_path.var("weight", &[up_in, outer, KERNEL, KERNEL], normal(0.0));
                let up_b = (bias || k == 0).then(|| up_path.zeros("bias", &[outer]));
                let up_norm = (k > 0).then(|| s.norm.layer(&(p / format!("up_norm{k}")), outer, normal(1.0)));
                let dropout = if s.has_dropout(k) { s.dropout } else { 0.0 };
                Block { down: (down_w, down_b), down_norm, up: (up_w, up_b), up_norm, dropout }
            })
            .collect();
        Self { blocks }
    }

    /// B from A.
    pub fn forward(&self, a: &Tensor, mode: Mode) -> Tensor {
        let norm = |layer: &NormLayer, x: &Tensor| match mode {
            Mode::Train => layer.forward(x, true),
            Mode::TestWithNoise => layer.forward_on_batch_statistics(x),
            Mode::Eval => layer.forward(x, false),
        };
        // Down: what each block receives (its skip), the image first.
        let mut skips = vec![a.shallow_clone()];
        for (k, block) in self.blocks.iter().enumerate() {
            let input = skips.last().expect("the image is first");
            let input = if k == 0 { input.shallow_clone() } else { input.apply(&leaky_relu(DOWN_SLOPE)) };
            let (w, b) = &block.down;
            let mut h = input.conv2d(w, b.as_ref(), [STRIDE; 2], [PADDING; 2], [1, 1], 1);
            if let Some(layer) = &block.down_norm {
                h = norm(layer, &h);
            }
            skips.push(h);
        }
        // Up: from the innermost block's down output, through each block's up path, joined with
        // what that block received.
        let mut h = skips.pop().expect("one output per block");
        for (k, block) in self.blocks.iter().enumerate().rev() {
            let (w, b) = &block.up;
            let mut u = h.relu().conv_transpose2d(w, b.as_ref(), [STRIDE; 2], [PADDING; 2], [0, 0], 1, [1, 1]);
            if let Some(layer) = &block.up_norm {
                u = norm(layer, &u);
            }
            if block.dropout > 0.0 && mode != Mode::Eval {
                u = u.dropout(block.dropout, true);
            }
            h = if k == 0 { u.tanh() } else { Tensor::cat(&[skips.pop().expect("a skip per block"), u], 1) };
        }
        h
    }
}
