//! The layers BigGAN is made of, initialised as BigGAN-PyTorch initialises them: every
//! convolution, linear and embedding weight by the configured style (N(0, 0.02) or orthogonal),
//! every bias by PyTorch's default U(±1/√fan_in) (BigGAN-PyTorch's `init_weights` only touches
//! weights), batch-norm gains 1 and biases 0.
//!
//! The convolution, linear and embedding layers themselves are `lab_nn`'s; the constructors
//! here give them BigGAN's initialisation and spectral norm.
use lab_nn::Weight;
use lab_plugin_api::tch::{nn, Tensor};

pub use lab_nn::{Conv2d, Embedding, Linear};

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

/// How a batch norm rescales the normalised activations.
#[derive(Debug)]
enum Affine {
    /// One learned gain (from 1) and bias (from 0) per channel: `p/gain`, `p/bias`.
    Shared { gain: Tensor, bias: Tensor },
    /// BigGAN-PyTorch's `ccbn` without a shared embedding: each class has its own gain and bias
    /// vectors, embeddings `p/gain.weight` and `p/bias.weight`; the gain applied is
    /// `1 + gain[y]`, so the embeddings start near zero like every other weight.
    PerClass { gain: Embedding, bias: Embedding },
}

/// Batch norm over channels with its running statistics as buffers `p/stored_mean` and
/// `p/stored_var` (BigGAN-PyTorch's names): checkpointed, moved by the core with the weights,
/// updated (momentum 0.1) only by training-mode forward passes.
#[derive(Debug)]
pub struct BatchNorm2d {
    mean: Tensor,
    var: Tensor,
    eps: f64,
    affine: Affine,
}

impl BatchNorm2d {
    fn stats(p: &nn::Path, channels: i64) -> (Tensor, Tensor) {
        (p.zeros_no_train("stored_mean", &[channels]), p.ones_no_train("stored_var", &[channels]))
    }

    /// BigGAN-PyTorch's `bn`: a learned per-channel gain and bias.
    pub fn plain(p: nn::Path, channels: i64, eps: f64) -> Self {
        let (mean, var) = Self::stats(&p, channels);
        let affine = Affine::Shared { gain: p.ones("gain", &[channels]), bias: p.zeros("bias", &[channels]) };
        Self { mean, var, eps, affine }
    }

    /// BigGAN-PyTorch's `ccbn` with `which_linear = nn.Embedding`: per-class gain and bias.
    /// The embeddings are never spectrally normalised (BigGAN-PyTorch: "applying SN to G's
    /// embedding seems to randomly cripple G").
    pub fn class_conditional(p: nn::Path, channels: i64, classes: i64, eps: f64, init: InitStyle) -> Self {
        let (mean, var) = Self::stats(&p, channels);
        let gain = embedding(&p / "gain", classes, channels, init, false);
        let bias = embedding(&p / "bias", classes, channels, init, false);
        Self { mean, var, eps, affine: Affine::PerClass { gain, bias } }
    }

    /// Normalises `x` (`[N, C, H, W]`) with batch statistics in training (updating the running
    /// ones) and the running statistics otherwise, then applies the gain and bias; a
    /// class-conditional norm reads them from `labels`.
    pub fn forward(&self, x: &Tensor, labels: Option<&Tensor>, train: bool) -> Tensor {
        let normalize = |gain: Option<&Tensor>, bias: Option<&Tensor>| {
            x.batch_norm(gain, bias, Some(&self.mean), Some(&self.var), train, BN_MOMENTUM, self.eps, true)
        };
        match (&self.affine, labels) {
            (Affine::Shared { gain, bias }, _) => normalize(Some(gain), Some(bias)),
            (Affine::PerClass { gain, bias }, Some(y)) => {
                let n = x.size()[0];
                let g = gain.forward(y, train).reshape([n, -1, 1, 1]) + 1.0;
                let b = bias.forward(y, train).reshape([n, -1, 1, 1]);
                normalize(None, None) * g + b
            }
            (Affine::PerClass { .. }, None) => unreachable!("conditional networks check for labels first"),
        }
    }
}

/// 2× nearest-neighbour upsampling (`F.interpolate(scale_factor=2)`).
pub fn upsample(x: &Tensor) -> Tensor {
    let size = x.size();
    x.upsample_nearest2d([size[2] * 2, size[3] * 2], 2.0, 2.0)
}

/// 2×2 average pooling (`nn.AvgPool2d(2)`).
pub fn downsample(x: &Tensor) -> Tensor {
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}
