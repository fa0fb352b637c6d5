//! SAGAN's layers as StudioGAN builds them (`src/utils/ops.py`): every convolution, linear layer
//! and embedding spectrally normalised (`torch.nn.utils.spectral_norm(eps=1e-6)`), every weight
//! orthogonal at the start (`init.orthogonal_`, StudioGAN's `ortho`), every bias 0, batch norms
//! with ε = 1e-4 and PyTorch's momentum 0.1.
//!
//! The layers themselves are `lab_nn`'s; this module fixes their initialisation and the details
//! of spectral normalisation.
use lab_nn::{Eps, EvalStep, SelfAttention, SnOptions, Weight};
use lab_plugin_api::tch::nn;

pub use lab_nn::{downsample, upsample, BatchNorm2d, Conv2d, Embedding, Linear};

/// PyTorch's `spectral_norm(eps=1e-6)`: vectors normalised as `x / max(‖x‖, 1e-6)`, one
/// power-iteration step per training forward pass. In evaluation PyTorch takes no step and
/// divides by `uᵀ W v` with the `u` and `v` the last training pass stored; this crate stores
/// only `u` (the checkpointed buffer) and derives `v = Wᵀu / ‖Wᵀu‖` from it, which is the same
/// once the iteration has converged.
pub const SN: SnOptions = SnOptions { eps: Eps::Floor(1e-6), eval: EvalStep::Reuse };

/// StudioGAN's `batchnorm_2d` and the norm inside its `ConditionalBatchNorm2d`.
pub const BN_EPS: f64 = 1e-4;
const BN_MOMENTUM: f64 = 0.1;

/// `init.orthogonal_` (gain 1): the weight viewed as `rows × (everything else)` has orthonormal
/// rows or columns, whichever are fewer.
const ORTHO: nn::Init = nn::Init::Orthogonal { gain: 1.0 };

/// `p/weight` of shape `dims`, orthogonal, spectrally normalised with its buffer `p/weight_u`.
fn weight(p: &nn::Path, dims: &[i64]) -> Weight {
    // Drawn as the `rows × rest` matrix, then reshaped: tch's `var` with `Init::Orthogonal`
    // returns that matrix unreshaped for a convolution's four dimensions.
    let matrix = nn::init(ORTHO, &[dims[0], dims[1..].iter().product()], p.device());
    // The weight before its `u`: the order of draws from the RNG decides the weights a seed gives.
    Weight::new(p, p.var_copy("weight", &matrix.reshape(dims)), Some(SN))
}

/// A stride-1 convolution with "same" padding (3×3 pad 1, 1×1 pad 0); with `bias`, a
/// zero-initialised one.
pub fn conv2d(p: nn::Path, in_channels: i64, out_channels: i64, kernel: i64, bias: bool) -> Conv2d {
    let weight = weight(&p, &[out_channels, in_channels, kernel, kernel]);
    Conv2d::new(weight, bias.then(|| p.zeros("bias", &[out_channels])), 1, kernel / 2)
}

/// A fully connected layer with a zero-initialised bias.
pub fn linear(p: nn::Path, in_features: i64, out_features: i64) -> Linear {
    let weight = weight(&p, &[out_features, in_features]);
    Linear::new(weight, Some(p.zeros("bias", &[out_features])))
}

/// A lookup table `[classes, dim]` (`sn_embedding`): spectrally normalised as a `classes × dim`
/// matrix, like PyTorch's `spectral_norm` on `nn.Embedding`.
pub fn embedding(p: nn::Path, classes: i64, dim: i64) -> Embedding {
    Embedding::new(weight(&p, &[classes, dim]))
}

/// Batch norm with a learned gain (from 1) and bias (from 0), or, with `classes`, StudioGAN's
/// `ConditionalBatchNorm2d`: no affine of its own, but `1 + gain[y]` and `bias[y]` from two
/// spectrally normalised, orthogonally initialised embeddings (`p/gain`, `p/bias`).
pub fn batch_norm(p: nn::Path, channels: i64, classes: Option<i64>) -> BatchNorm2d {
    match classes {
        None => BatchNorm2d::plain(&p, channels, BN_EPS, BN_MOMENTUM),
        Some(k) => {
            let (gain, bias) = (embedding(&p / "gain", k, channels), embedding(&p / "bias", k, channels));
            BatchNorm2d::class_conditional(&p, channels, gain, bias, BN_EPS, BN_MOMENTUM)
        }
    }
}

/// The self-attention block over `channels` (StudioGAN's `SelfAttention`): bias-free,
/// spectrally normalised 1×1 convolutions `query` (C/8), `key` (C/8), `value` (C/2) and
/// `output` (C/2 → C), and `gamma` from 0.
pub fn self_attention(p: nn::Path, channels: i64) -> SelfAttention {
    let c = channels;
    SelfAttention::new(
        conv2d(&p / "query", c, c / 8, 1, false),
        conv2d(&p / "key", c, c / 8, 1, false),
        conv2d(&p / "value", c, c / 2, 1, false),
        conv2d(&p / "output", c / 2, c, 1, false),
        p.zeros("gamma", &[1]),
    )
}
