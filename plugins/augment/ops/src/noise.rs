//! Additive Gaussian pixel noise.
use lab_plugin_api::tch::Tensor;

use crate::per_sample;

/// Adds independent N(0, `std[i]`²) noise to every pixel and channel of sample `i`. The noise is
/// drawn here, from libtorch's default generator; the gradient with respect to `x` is the
/// identity.
pub fn gaussian(x: &Tensor, std: &Tensor) -> Tensor {
    x + x.randn_like() * per_sample(std, x)
}
