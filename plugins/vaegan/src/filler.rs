//! The official code's weight initialisation (deeppy's `AutoFiller`, gain 1): weights uniform
//! in ±1/√(3·fan_in), where fan_in is the input units of an affine layer or the
//! `channels · k · k` behind a filter (for a backward convolution its output channels, the
//! filter array's second axis); biases start at 0 (`bias_filler=0.0`). PyTorch's default bound
//! is √3 times wider and draws biases too, so every layer here is built with these. Batch norm
//! starts at γ = 1, β = 0 (deeppy's `Parameter(1.0)` and `Parameter(0.0)`); tch's default draws
//! γ from U(0, 1), which would start some units nearly switched off.
use lab_nn::prelude::*;

/// `AutoFiller`'s uniform weights for a layer with `fan_in` inputs per output.
pub fn weights(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (3.0 * fan_in as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

/// An affine layer of `input` → `output` units with the code's initialisation.
pub fn linear(p: nn::Path, input: i64, output: i64, bias: bool) -> nn::Linear {
    let config = nn::LinearConfig { ws_init: weights(input), bs_init: Some(nn::Init::Const(0.0)), bias };
    nn::linear(p, input, output, config)
}

/// A 5×5 convolution padded by 2 (`same`) with the code's initialisation.
pub fn conv5(p: nn::Path, input: i64, output: i64, stride: i64, bias: bool) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 2,
        bias,
        ws_init: weights(input * 25),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, input, output, 5, config)
}

/// A 5×5 stride-2 backward convolution padded by 2, with `output_padding` to land on the
/// forward chain's side, with the code's initialisation (no bias: batch norm follows).
pub fn backconv5(p: nn::Path, input: i64, output: i64, output_padding: i64) -> nn::ConvTranspose2D {
    let config = nn::ConvTransposeConfig {
        stride: 2,
        padding: 2,
        output_padding,
        bias: false,
        ws_init: weights(output * 25),
        ..Default::default()
    };
    nn::conv_transpose2d(p, input, output, 5, config)
}

// Batch norm starts as deeppy's (γ = 1, β = 0); its momentum, 0.9 on the running value, is
// PyTorch's 0.1 on the batch's.

/// Batch norm after an affine layer (`BatchNormalization`, ε = 1e-5).
pub fn batch_norm1d(p: nn::Path, units: i64) -> nn::BatchNorm {
    nn::batch_norm1d(p, units, reference_batch_norm(1e-5))
}

/// Batch norm after a convolution (`img32x32`'s `SpatialBatchNormalization`, ε = 1e-6).
pub fn batch_norm2d(p: nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, channels, reference_batch_norm(1e-6))
}
