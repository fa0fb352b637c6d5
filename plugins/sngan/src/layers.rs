//! SNGAN's layers, initialised as the official chainer code initialises them, and its spectral
//! norm.
//!
//! - ResNet (sngan_projection `gen_models/resblocks.py`, `dis_models/resblocks.py`,
//!   `resnet_32.py`, `snresnet_32.py`): the 3×3 convolutions of the residual paths
//!   `GlorotUniform(√2)`, shortcuts, linear layers, the output convolution and the projection
//!   embedding `GlorotUniform(1)`.
//! - CNN (chainer-gan-lib `common/net.py`, `DCGANGenerator` / `SNDCGANDiscriminator`): every
//!   weight N(0, 0.02).
//! - Every bias 0 (chainer's default), batch-norm gains 1 and biases 0.
//!
//! The convolution, linear, embedding and batch-norm layers are `lab_nn`'s; the transposed
//! convolution of the CNN generator is `tch`'s own (G is never spectrally normalised).
use lab_nn::{Eps, EvalStep, SnOptions, Weight};
use lab_plugin_api::tch::{nn, Tensor};

pub use lab_nn::{downsample, upsample, BatchNorm2d, Conv2d, Embedding, Linear};

/// The official code's spectral norm (sngan_projection `source/functions/max_sv.py`, and
/// `sn_convolution_2d.py` / `sn_linear.py` / `sn_embed_id.py`): vectors normalised as
/// `x / (‖x‖ + 1e-12)`, one power-iteration step from the stored `u` at every forward pass, in
/// evaluation too, but only training stores the new `u` (`if chainer.config.train: self.u[:] = _u`).
pub const SN: SnOptions = SnOptions { eps: Eps::Offset(1e-12), eval: EvalStep::Iterate };

/// Chainer's `BatchNormalization(decay=0.9)`: the new batch weighs 0.1 in the running statistics.
const BN_MOMENTUM: f64 = 0.1;

/// chainer-gan-lib's `Normal(wscale=0.02)`.
const NORMAL: nn::Init = nn::Init::Randn { mean: 0.0, stdev: 0.02 };

/// How a weight starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// N(0, 0.02) (chainer-gan-lib's `wscale`).
    Normal,
    /// chainer's `GlorotUniform(scale)`: U(±scale·√(6 / (fan_in + fan_out))), with the fans of a
    /// `[out, in, k, k]` weight being `in·k·k` and `out·k·k`.
    Glorot(f64),
}

impl Init {
    fn for_shape(self, dims: &[i64]) -> nn::Init {
        match self {
            Init::Normal => NORMAL,
            Init::Glorot(scale) => {
                let receptive: i64 = dims[2..].iter().product();
                let (fan_in, fan_out) = (dims[1] * receptive, dims[0] * receptive);
                let bound = scale * (6.0 / (fan_in + fan_out) as f64).sqrt();
                nn::Init::Uniform { lo: -bound, up: bound }
            }
        }
    }
}

/// The residual paths' 3×3 convolutions: chainer's `GlorotUniform(math.sqrt(2))`, the gain of a
/// ReLU.
pub const RESIDUAL: Init = Init::Glorot(std::f64::consts::SQRT_2);
/// Shortcuts, linear layers, G's output convolution and the projection embedding.
pub const GLOROT: Init = Init::Glorot(1.0);

/// `p/weight` of shape `dims` drawn from `init`, spectrally normalised (with a `p/weight_u`
/// buffer) when `sn` is set.
fn weight(p: &nn::Path, dims: &[i64], init: Init, sn: bool) -> Weight {
    Weight::new(p, p.var("weight", dims, init.for_shape(dims)), sn.then_some(SN))
}

/// Shape and options of a convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

impl ConvSpec {
    /// Stride 1 and "same" padding (3×3 pad 1, 1×1 pad 0).
    pub fn same(in_channels: i64, out_channels: i64, kernel: i64) -> Self {
        Self { in_channels, out_channels, kernel, stride: 1, padding: kernel / 2 }
    }

    /// The CNN's resolution-changing layers: 4×4, stride 2, padding 1.
    pub fn k4s2(in_channels: i64, out_channels: i64) -> Self {
        Self { in_channels, out_channels, kernel: 4, stride: 2, padding: 1 }
    }
}

/// A convolution with a zero-initialised bias.
pub fn conv2d(p: nn::Path, spec: ConvSpec, init: Init, sn: bool) -> Conv2d {
    let dims = [spec.out_channels, spec.in_channels, spec.kernel, spec.kernel];
    // The weight (and its `u`) before the bias: the order of draws from the RNG decides the
    // weights a seed gives.
    let weight = weight(&p, &dims, init, sn);
    Conv2d::new(weight, Some(p.zeros("bias", &[spec.out_channels])), spec.stride, spec.padding)
}

/// A transposed convolution with a zero-initialised bias and N(0, 0.02) weights (libtorch's
/// `[in, out, k, k]` layout, as chainer's `Deconvolution2D`).
pub fn conv_transpose2d(p: nn::Path, spec: ConvSpec) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: spec.stride,
        padding: spec.padding,
        ws_init: NORMAL,
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv_transpose2d(p, spec.in_channels, spec.out_channels, spec.kernel, config)
}

/// A fully connected layer; with `bias`, a zero-initialised one.
pub fn linear(p: nn::Path, in_features: i64, out_features: i64, init: Init, sn: bool, bias: bool) -> Linear {
    let weight = weight(&p, &[out_features, in_features], init, sn);
    Linear::new(weight, bias.then(|| p.zeros("bias", &[out_features])))
}

/// A lookup table from class labels to vectors (`[classes, dim]`, chainer's `EmbedID` layout);
/// spectral normalisation treats it as a `classes × dim` matrix, like `SNEmbedID`.
pub fn embedding(p: nn::Path, classes: i64, dim: i64, init: Init, sn: bool) -> Embedding {
    Embedding::new(weight(&p, &[classes, dim], init, sn))
}

/// Batch norm over channels with gain 1 and bias 0 at the start; with `classes`, one gain and
/// one bias per class (chainer's `CategoricalConditionalBatchNormalization`).
///
/// That link keeps γ_y (from 1) and β_y (from 0) per class; lab_nn's conditional norm applies
/// `1 + gain[y]`, so the gain table here starts at 0. The function is the same, and so are the
/// gradients and Adam's steps: the table holds γ_y − 1.
pub fn batch_norm(p: nn::Path, channels: i64, eps: f64, classes: Option<i64>) -> BatchNorm2d {
    match classes {
        None => BatchNorm2d::plain(&p, channels, eps, BN_MOMENTUM),
        Some(k) => {
            let table = |name: &str| Embedding::new(Weight::Plain((&p / name).zeros("weight", &[k, channels])));
            BatchNorm2d::class_conditional(&p, channels, table("gain"), table("bias"), eps, BN_MOMENTUM)
        }
    }
}

/// The leaky ReLU of the CNN discriminator, as a function on tensors.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.apply(&lab_nn::leaky_relu(slope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_plugin_api::tch::{self, Device, Kind};

    #[test]
    fn glorot_bounds_follow_chainers_fans() {
        // A 3×3 conv from 128 to 256 channels: fans 1152 and 2304.
        let bound = |init: Init, dims: &[i64]| match init.for_shape(dims) {
            nn::Init::Uniform { lo, up } => {
                assert_eq!(lo, -up);
                up
            }
            other => panic!("{other:?}"),
        };
        let expected = std::f64::consts::SQRT_2 * (6.0f64 / (1152.0 + 2304.0)).sqrt();
        assert!((bound(RESIDUAL, &[256, 128, 3, 3]) - expected).abs() < 1e-15);
        // A linear layer [out, in] and an embedding [classes, dim] use their two sides.
        assert!((bound(GLOROT, &[1, 128]) - (6.0f64 / 129.0).sqrt()).abs() < 1e-15);
        assert!((bound(GLOROT, &[10, 128]) - (6.0f64 / 138.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn weights_are_drawn_from_their_init_and_biases_start_at_zero() {
        let _rng = crate::rng_lock();
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _conv = conv2d(vs.root() / "conv", ConvSpec::same(64, 64, 3), RESIDUAL, true);
        let _deconv = conv_transpose2d(vs.root() / "deconv", ConvSpec::k4s2(64, 32));
        let _linear = linear(vs.root() / "linear", 64, 1, GLOROT, true, false);
        let vars = vs.variables();
        let w = &vars["conv.weight"];
        let bound = std::f64::consts::SQRT_2 * (6.0f64 / (2.0 * 576.0)).sqrt();
        let max = w.abs().max().double_value(&[]);
        assert!(max <= bound && max > 0.95 * bound, "U(±{bound}): max {max}");
        assert_eq!(vars["conv.bias"].abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(vars["deconv.weight"].size(), [64, 32, 4, 4]);
        assert!((vars["deconv.weight"].std(true).double_value(&[]) - 0.02).abs() < 1e-3);
        assert!(vars.contains_key("conv.weight_u") && vars.contains_key("linear.weight_u"));
        assert!(!vars.contains_key("linear.bias"), "the official D's last layer has no bias");
    }
}
