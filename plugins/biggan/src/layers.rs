//! The layers BigGAN is made of, initialised as BigGAN-PyTorch initialises them: every
//! convolution, linear and embedding weight by the configured style (N(0, 0.02) or orthogonal),
//! every bias by PyTorch's default U(±1/√fan_in) (BigGAN-PyTorch's `init_weights` only touches
//! weights), batch-norm gains 1 and biases 0.
//!
//! The convolution, linear, embedding and batch-norm layers themselves are `lab_nn`'s; the
//! constructors here give them BigGAN's initialisation, spectral norm and batch-norm settings.
use lab_nn::Weight;
use lab_plugin_api::tch::{nn, Tensor};

pub use lab_nn::{downsample, upsample, BatchNorm2d, Conv2d, Embedding, Linear};

use crate::config::InitStyle;
use crate::spectral_norm;

/// Momentum of the batch-norm running statistics (PyTorch's and BigGAN-PyTorch's 0.1).
const BN_MOMENTUM: f64 = 0.1;

/// `p/weight` of shape `dims`, initialised by `init`, spectrally normalised (with a
/// `p/weight_u` buffer) when `spectral` is set.
fn weight(p: &nn::Path, dims: &[i64], init: InitStyle, spectral: bool) -> Weight {
    let w = match init {
        InitStyle::N02 => p.var("weight", dims, nn::Init::Randn { mean: 0.0, stdev: 0.02 }),
        InitStyle::Ortho => {
            // tch's orthogonal init returns the flattened `rows × rest` matrix; give it the
            // weight's shape back, as torch's `orthogonal_` does.
            let q = nn::init::init(nn::Init::Orthogonal { gain: 1.0 }, dims, p.device());
            p.var_copy("weight", &q.reshape(dims))
        }
    };
    Weight::new(p, w, spectral.then_some(spectral_norm::OPTIONS))
}

/// `p/bias` with PyTorch's default initialisation for a layer with `fan_in` inputs per output.
fn default_bias(p: &nn::Path, size: i64, fan_in: i64) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    p.var("bias", &[size], nn::Init::Uniform { lo: -bound, up: bound })
}

/// A square-kernel 2-D convolution with stride 1, "same" padding and a bias: BigGAN's 3×3
/// (`which_conv`) and 1×1 shortcut convolutions.
pub fn conv2d(p: nn::Path, in_channels: i64, out_channels: i64, kernel: i64, init: InitStyle, sn: bool) -> Conv2d {
    // The weight (and its `u`) before the bias: the order of draws from the RNG decides the
    // weights a seed gives.
    let weight = weight(&p, &[out_channels, in_channels, kernel, kernel], init, sn);
    let bias = default_bias(&p, out_channels, in_channels * kernel * kernel);
    Conv2d::new(weight, Some(bias), 1, kernel / 2)
}

/// A fully connected layer with a bias.
pub fn linear(p: nn::Path, in_features: i64, out_features: i64, init: InitStyle, sn: bool) -> Linear {
    let weight = weight(&p, &[out_features, in_features], init, sn);
    let bias = default_bias(&p, out_features, in_features);
    Linear::new(weight, Some(bias))
}

/// A lookup table from class labels to vectors (`[classes, dim]`); spectral normalisation
/// treats the table as a `classes × dim` matrix, like BigGAN-PyTorch's `SNEmbedding`.
pub fn embedding(p: nn::Path, classes: i64, dim: i64, init: InitStyle, sn: bool) -> Embedding {
    Embedding::new(weight(&p, &[classes, dim], init, sn))
}

/// BigGAN-PyTorch's `bn`: batch norm with a learned per-channel gain and bias.
pub fn batch_norm(p: nn::Path, channels: i64, eps: f64) -> BatchNorm2d {
    BatchNorm2d::plain(&p, channels, eps, BN_MOMENTUM)
}

/// BigGAN-PyTorch's `ccbn` with `which_linear = nn.Embedding`: per-class gain and bias
/// embeddings (`p/gain.weight`, `p/bias.weight`, drawn by `init`), the gain applied being
/// `1 + gain[y]`. The embeddings are never spectrally normalised (BigGAN-PyTorch: "applying SN
/// to G's embedding seems to randomly cripple G").
pub fn class_conditional_batch_norm(
    p: nn::Path,
    channels: i64,
    classes: i64,
    eps: f64,
    init: InitStyle,
) -> BatchNorm2d {
    let gain = embedding(&p / "gain", classes, channels, init, false);
    let bias = embedding(&p / "bias", classes, channels, init, false);
    BatchNorm2d::class_conditional(&p, channels, gain, bias, eps, BN_MOMENTUM)
}
