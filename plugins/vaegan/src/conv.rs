//! The official `architectures.img32x32` networks (the CIFAR run), for any channel count and
//! for 28×28 as well as 32×32 images: the stride-2 chain goes 28 → 14 → 7 → 4 (32 → 16 → 8 → 4)
//! and back, so every layer, the 4×4 bottleneck included, has the reference's parameter count.
//! - Encoder: [conv 5×5 s2, BN, ReLU] to 64 / 128 / 256 → FC 1024, BN, ReLU → (μ, log σ²).
//! - Decoder: FC to 256·4·4, BN, ReLU → [backconv 5×5 s2, BN, ReLU] to 192 / 128 / 32 → conv
//!   5×5 to the image's channels, tanh.
//! - Discriminator: conv 5×5 to 32, ReLU → [conv 5×5 s2, BN, ReLU] to 128 / 192 / 256 → FC
//!   512, BN, ReLU → FC 1. The learned similarity reads the output of its first `recon_depth`
//!   layers in deeppy's count (conv, BN, ReLU, flatten and FC are a layer each); the CIFAR
//!   run's 6 is the third convolution's output, before its batch norm.
//!
//! Layers followed by batch norm have no bias (the code's `bias=None`); spatial batch norm uses
//! the code's ε = 1e-6; weights and biases start as the code draws them ([`crate::filler`]). `width` scales every channel and unit count (1 = the reference), for
//! CPU budgets.
use lab_nn::prelude::*;

/// Channels scaled by the width, at least 1.
pub fn scaled(channels: i64, width: f64) -> i64 {
    ((channels as f64 * width).round() as i64).max(1)
}

/// The spatial sides of the stride-2 chain from `side`: `[side, ⌈side/2⌉, ⌈side/4⌉, ⌈side/8⌉]`
/// (5×5 kernels padded by 2).
pub fn sides(side: i64) -> [i64; 4] {
    let half = |s: i64| (s + 1) / 2;
    [side, half(side), half(half(side)), half(half(half(side)))]
}

/// A layer list split at the similarity layer: `head` runs the first `depth` layers, `tail` the
/// rest.
pub struct Split {
    depth: usize,
    count: usize,
    pub head: nn::SequentialT,
    pub tail: nn::SequentialT,
}

impl Split {
    pub fn new(depth: usize) -> Self {
        Self { depth, count: 0, head: nn::seq_t(), tail: nn::seq_t() }
    }

    pub fn layer<M: nn::ModuleT + 'static>(mut self, m: M) -> Self {
        if self.count < self.depth {
            self.head = self.head.add(m);
        } else {
            self.tail = self.tail.add(m);
        }
        self.count += 1;
        self
    }

    pub fn relu(self) -> Self {
        self.layer(nn::func(|x| x.relu()))
    }

    pub fn flatten(self) -> Self {
        self.layer(nn::func(|x| x.flatten(1, -1)))
    }

    /// The number of layers pushed so far.
    pub fn count(&self) -> usize {
        self.count
    }
}

use crate::filler::{backconv5, batch_norm1d, batch_norm2d, conv5 as conv, linear};

/// Layers of the discriminator in deeppy's count.
pub const DISCRIMINATOR_LAYERS: usize = 16;

/// The encoder: images → `[μ, log σ²]`.
pub fn encoder(
    p: &nn::Path,
    channels: i64,
    side: i64,
    z_dim: i64,
    width: f64,
) -> (nn::SequentialT, nn::Linear, nn::Linear) {
    let widths = [64, 128, 256].map(|c| scaled(c, width));
    let mut body = nn::seq_t();
    let mut input = channels;
    for (i, &c) in widths.iter().enumerate() {
        body = body
            .add(conv(p / format!("conv{i}"), input, c, 2, false))
            .add(batch_norm2d(p / format!("bn{i}"), c))
            .add_fn(|x| x.relu());
        input = c;
    }
    let bottleneck = sides(side)[3];
    let hidden = scaled(1024, width);
    body = body
        .add_fn(|x| x.flatten(1, -1))
        .add(linear(p / "fc", input * bottleneck * bottleneck, hidden, false))
        .add(batch_norm1d(p / "fc_bn", hidden))
        .add_fn(|x| x.relu());
    let mu = linear(p / "z_mu", hidden, z_dim, true);
    let logvar = linear(p / "z_logvar", hidden, z_dim, true);
    (body, mu, logvar)
}

/// The decoder: latents → images in [-1, 1].
pub fn decoder(p: &nn::Path, channels: i64, side: i64, z_dim: i64, width: f64) -> nn::SequentialT {
    let s = sides(side);
    let start = scaled(256, width);
    let seed = start * s[3] * s[3];
    let mut body = nn::seq_t()
        .add(linear(p / "fc", z_dim, seed, false))
        .add(batch_norm1d(p / "fc_bn", seed))
        .add_fn(|x| x.relu())
        .add_fn(move |x| x.view([-1, start, s[3], s[3]]));
    let mut input = start;
    for (i, &c) in [192, 128, 32].map(|c| scaled(c, width)).iter().enumerate() {
        // `same` backward convolution: the output padding that lands on the forward chain's side.
        let (from, to) = (s[3 - i], s[2 - i]);
        body = body
            .add(backconv5(p / format!("backconv{i}"), input, c, to - (2 * from - 1)))
            .add(batch_norm2d(p / format!("bn{i}"), c))
            .add_fn(|x| x.relu());
        input = c;
    }
    body.add(conv(p / "out", input, channels, 1, true)).add_fn(|x| x.tanh())
}

/// The discriminator split at layer `depth`: `head` gives the similarity's features (before
/// flattening), `tail` the logit.
pub fn discriminator(p: &nn::Path, channels: i64, side: i64, depth: usize, width: f64) -> Split {
    let first = scaled(32, width);
    let mut split = Split::new(depth).layer(conv(p / "conv_in", channels, first, 1, true)).relu();
    let mut input = first;
    for (i, &c) in [128, 192, 256].map(|c| scaled(c, width)).iter().enumerate() {
        split = split
            .layer(conv(p / format!("conv{i}"), input, c, 2, false))
            .layer(batch_norm2d(p / format!("bn{i}"), c))
            .relu();
        input = c;
    }
    let bottleneck = sides(side)[3];
    let hidden = scaled(512, width);
    split = split
        .flatten()
        .layer(linear(p / "fc", input * bottleneck * bottleneck, hidden, false))
        .layer(batch_norm1d(p / "fc_bn", hidden))
        .relu()
        .layer(linear(p / "out", hidden, 1, true));
    debug_assert_eq!(split.count(), DISCRIMINATOR_LAYERS);
    split
}
