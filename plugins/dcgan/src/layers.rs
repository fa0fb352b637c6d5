//! The few layers DCGAN needs, with its initialisation (weights N(0, 0.02), batch-norm scales
//! N(1, 0.02), biases 0) and optional spectral normalisation of any weight.
//!
//! The convolution, linear and embedding layers are `lab_nn`'s; the constructors here give them
//! DCGAN's initialisation and spectral norm. The transposed convolution is DCGAN's alone.
use lab_nn::Weight;
use lab_plugin_api::tch::{nn, Tensor};

pub use lab_nn::{Conv2d, Embedding, Linear};

use crate::spectral_norm;

/// DCGAN's initialisation for convolution, linear and embedding weights.
const WEIGHT_INIT: nn::Init = nn::Init::Randn { mean: 0.0, stdev: 0.02 };

/// `p/weight` of shape `dims` drawn from `init`, spectrally normalised (with a `p/weight_u`
/// buffer) when `spectral` is set.
fn weight(p: &nn::Path, dims: &[i64], init: nn::Init, spectral: bool) -> Weight {
    Weight::new(p, p.var("weight", dims, init), spectral.then_some(spectral_norm::OPTIONS))
}

/// An optional `p/bias`, zero-initialised. Layers followed by batch norm have none: the norm's
/// own shift makes it redundant.
fn bias(p: &nn::Path, size: i64, wanted: bool) -> Option<Tensor> {
    wanted.then(|| p.zeros("bias", &[size]))
}

/// Shape and options of a [`Conv2d`] or [`ConvTranspose2d`].
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub bias: bool,
}

impl ConvSpec {
    /// DCGAN's resolution-changing convolution: kernel 4, stride 2, padding 1.
    pub fn k4s2(in_channels: i64, out_channels: i64, bias: bool) -> Self {
        Self { in_channels, out_channels, kernel: 4, stride: 2, padding: 1, bias }
    }
}

/// A 2-D convolution with square kernels.
pub fn conv2d(p: nn::Path, spec: ConvSpec, spectral: bool) -> Conv2d {
    let dims = [spec.out_channels, spec.in_channels, spec.kernel, spec.kernel];
    // The weight (and its `u`) before the bias: the order of draws from the RNG decides the
    // weights a seed gives.
    let weight = weight(&p, &dims, WEIGHT_INIT, spectral);
    Conv2d::new(weight, bias(&p, spec.out_channels, spec.bias), spec.stride, spec.padding)
}

/// A 2-D transposed convolution ("fractionally strided"), the generator's upsampling step.
#[derive(Debug)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

impl ConvTranspose2d {
    pub fn new(p: nn::Path, spec: ConvSpec) -> Self {
        // libtorch stores transposed-convolution weights as (in, out, k, k).
        let dims = [spec.in_channels, spec.out_channels, spec.kernel, spec.kernel];
        Self {
            weight: p.var("weight", &dims, WEIGHT_INIT),
            bias: bias(&p, spec.out_channels, spec.bias),
            stride: spec.stride,
            padding: spec.padding,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = (self.stride, self.padding);
        x.conv_transpose2d(&self.weight, self.bias.as_ref(), [s, s], [p, p], [0, 0], 1, [1, 1])
    }
}

/// A fully connected layer, never spectrally normalised (only the generator has one).
pub fn linear(p: nn::Path, in_features: i64, out_features: i64, bias_wanted: bool) -> Linear {
    let weight = weight(&p, &[out_features, in_features], WEIGHT_INIT, false);
    Linear::new(weight, bias(&p, out_features, bias_wanted))
}

/// A lookup table from class labels to vectors. `std` is the initial scale: 1 where the vectors
/// sit beside N(0, 1) noise, DCGAN's 0.02 where they act as weights.
pub fn embedding(p: nn::Path, classes: i64, dim: i64, std: f64, spectral: bool) -> Embedding {
    Embedding::new(weight(&p, &[classes, dim], nn::Init::Randn { mean: 0.0, stdev: std }, spectral))
}

/// Batch norm over channels, or nothing.
#[derive(Debug)]
pub enum Norm2d {
    Batch(nn::BatchNorm),
    Identity,
}

impl Norm2d {
    /// `p/running_mean` and `p/running_var` are buffers, so they are checkpointed and adopted.
    pub fn batch(p: nn::Path, channels: i64) -> Self {
        let config = nn::BatchNormConfig {
            ws_init: nn::Init::Randn { mean: 1.0, stdev: 0.02 },
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        Norm2d::Batch(nn::batch_norm2d(p, channels, config))
    }

    /// Batch statistics (and a running-stats update) when `train`, running statistics otherwise.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Norm2d::Batch(bn) => nn::ModuleT::forward_t(bn, x, train),
            Norm2d::Identity => x.shallow_clone(),
        }
    }

    pub fn is_identity(&self) -> bool {
        matches!(self, Norm2d::Identity)
    }
}

/// LeakyReLU with DCGAN's slope of 0.2.
pub const LEAKY_RELU: lab_nn::LeakyRelu = lab_nn::LeakyRelu(0.2);
