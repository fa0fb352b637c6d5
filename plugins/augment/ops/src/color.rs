//! Colour transforms with one per-sample parameter each, in DiffAugment's formulation. All are
//! affine in the image, so their gradient is exact and cheap.
use lab_plugin_api::tch::{Kind, Tensor};

use crate::per_sample;

/// Adds `shift[i]` to every pixel and channel of sample `i`.
pub fn brightness(x: &Tensor, shift: &Tensor) -> Tensor {
    x + per_sample(shift, x)
}

/// Scales each pixel's deviation from its own channel mean by `factor[i]`:
/// `(x − m)·factor + m`. 0 turns the image grey, 1 leaves it, 2 doubles the saturation.
/// A single-channel image is its own mean, so this leaves it unchanged.
pub fn saturation(x: &Tensor, factor: &Tensor) -> Tensor {
    let mean = x.mean_dim(1, true, None::<Kind>);
    (x - &mean) * per_sample(factor, x) + mean
}

/// Scales each image's deviation from its mean over all channels and pixels by `factor[i]`:
/// `(x − m)·factor + m`.
pub fn contrast(x: &Tensor, factor: &Tensor) -> Tensor {
    let mean = x.mean_dim([1i64, 2, 3].as_slice(), true, None::<Kind>);
    (x - &mean) * per_sample(factor, x) + mean
}
