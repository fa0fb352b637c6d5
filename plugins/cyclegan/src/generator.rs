//! The ResNet generator of CycleGAN (Johnson et al.'s style-transfer network as Zhu et al.
//! use it): a 7×7 stem, two stride-2 downsamplings, `n_blocks` residual blocks at 4·ngf
//! channels, two stride-2 transposed convolutions back up, a 7×7 head and tanh. Padding before
//! the 7×7 and the residual 3×3 convolutions reflects the image instead of adding zeros.
//!
//! Variable names read like the architecture: `stem`, `down1`, `down2`, `blocks.<i>.conv1`,
//! `blocks.<i>.conv2`, `up1`, `up2`, `head`; norms with parameters (batch norm) sit beside
//! their convolution as `<name>_norm`.
use lab_nn::prelude::*;

use lab_nn::{Norm, NormLayer};

/// Weights N(0, 0.02) and biases 0, the official `init_type = 'normal'`.
pub const INIT_STD: f64 = 0.02;

fn conv_config(stride: i64, padding: i64, bias: bool) -> nn::ConvConfig {
    nn::ConvConfig {
        stride,
        padding,
        bias,
        ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}

/// The generator's norm after a convolution `name`: instance norm has no variables; batch
/// norm's gain starts from N(1, 0.02), as the official `init_weights` draws it.
fn norm_layer(p: &nn::Path, name: &str, norm: Norm, channels: i64) -> NormLayer {
    norm.layer(&(p / format!("{name}_norm")), channels, nn::Init::Randn { mean: 1.0, stdev: INIT_STD })
}

/// A convolution followed by its norm.
#[derive(Debug)]
struct ConvNorm {
    conv: nn::Conv2D,
    norm: NormLayer,
}

impl ConvNorm {
    #[allow(clippy::too_many_arguments)]
    fn new(
        p: &nn::Path,
        name: &str,
        norm: Norm,
        input: i64,
        output: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> Self {
        // Batch norm's own bias makes the convolution's redundant; instance norm keeps it, as
        // the official code does.
        let conv = nn::conv2d(p / name, input, output, kernel, conv_config(stride, padding, norm.conv_bias()));
        Self { conv, norm: norm_layer(p, name, norm, output) }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.norm.forward(&x.apply(&self.conv), train)
    }
}

/// x + (reflect-pad, conv 3×3, norm, ReLU, reflect-pad, conv 3×3, norm)(x).
#[derive(Debug)]
struct ResidualBlock {
    conv1: ConvNorm,
    conv2: ConvNorm,
}

impl ResidualBlock {
    fn new(p: &nn::Path, norm: Norm, channels: i64) -> Self {
        Self {
            conv1: ConvNorm::new(p, "conv1", norm, channels, channels, 3, 1, 0),
            conv2: ConvNorm::new(p, "conv2", norm, channels, channels, 3, 1, 0),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let h = self.conv1.forward(&x.reflection_pad2d([1, 1, 1, 1]), train).relu();
        x + self.conv2.forward(&h.reflection_pad2d([1, 1, 1, 1]), train)
    }
}

/// A transposed convolution 3×3, stride 2, that doubles the side exactly (output padding 1),
/// then its norm.
#[derive(Debug)]
struct UpConvNorm {
    conv: nn::ConvTranspose2D,
    norm: NormLayer,
}

impl UpConvNorm {
    fn new(p: &nn::Path, name: &str, norm: Norm, input: i64, output: i64) -> Self {
        let config = nn::ConvTransposeConfig {
            stride: 2,
            padding: 1,
            output_padding: 1,
            bias: norm.conv_bias(),
            ws_init: nn::Init::Randn { mean: 0.0, stdev: INIT_STD },
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let conv = nn::conv_transpose2d(p / name, input, output, 3, config);
        Self { conv, norm: norm_layer(p, name, norm, output) }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.norm.forward(&x.apply(&self.conv), train)
    }
}

/// The widths and depth of one generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorShape {
    /// Image channels in and out (both domains have the data's channels).
    pub channels: i64,
    /// Filters of the first layer (`ngf`).
    pub ngf: i64,
    pub n_blocks: i64,
    pub norm: Norm,
}

/// The ResNet generator, translating `[N, C, H, W]` images in [-1, 1] to images in (-1, 1).
#[derive(Debug)]
pub struct ResnetGenerator {
    stem: ConvNorm,
    down: [ConvNorm; 2],
    blocks: Vec<ResidualBlock>,
    up: [UpConvNorm; 2],
    head: nn::Conv2D,
}

impl ResnetGenerator {
    pub fn new(p: &nn::Path, s: GeneratorShape) -> Self {
        let (ngf, norm) = (s.ngf, s.norm);
        let blocks_path = p / "blocks";
        Self {
            stem: ConvNorm::new(p, "stem", norm, s.channels, ngf, 7, 1, 0),
            down: [
                ConvNorm::new(p, "down1", norm, ngf, 2 * ngf, 3, 2, 1),
                ConvNorm::new(p, "down2", norm, 2 * ngf, 4 * ngf, 3, 2, 1),
            ],
            blocks: (0..s.n_blocks).map(|i| ResidualBlock::new(&(&blocks_path / i), norm, 4 * ngf)).collect(),
            up: [UpConvNorm::new(p, "up1", norm, 4 * ngf, 2 * ngf), UpConvNorm::new(p, "up2", norm, 2 * ngf, ngf)],
            // The head always has a bias: no norm follows it.
            head: nn::conv2d(p / "head", ngf, s.channels, 7, conv_config(1, 0, true)),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.stem.forward(&x.reflection_pad2d([3, 3, 3, 3]), train).relu();
        for down in &self.down {
            h = down.forward(&h, train).relu();
        }
        for block in &self.blocks {
            h = block.forward(&h, train);
        }
        for up in &self.up {
            h = up.forward(&h, train).relu();
        }
        h.reflection_pad2d([3, 3, 3, 3]).apply(&self.head).tanh()
    }
}
