//! # lab-augment-ops
//!
//! The augmentation kernels and the pipeline behind lab's `augment`, `diffaugment` and `ada`
//! plugins. It is a plain library, not a plugin, so that all three can link it: a plugin crate
//! cannot be linked into another plugin's library, since both would define the same exported
//! entry points. `lab-plugin-augment` re-exports it as `lab_plugin_augment::ops`.
//!
//! ## Conventions
//! - Images are float batches `[N, C, H, W]`, nominally in [-1, 1], on any device.
//! - Every kernel is differentiable with respect to the image, so G's gradients flow through
//!   the augmentation, and takes its random parameters as explicit per-sample tensors (shape
//!   `[N]`), so tests can check exact behaviour. Parameters carry no gradient.
//! - The samplers in [`op`] draw those parameters, independently for every sample, from
//!   libtorch's default generator on the batch's device; [`random::seed`] resets it from the
//!   seed the core passes to `apply`, so every draw derives from that seed.
//!
//! ## Modules
//! - [`pixel`]: exact pixel moves: flips, quarter turns, integer translation.
//! - [`affine`]: resampling warps (rotation, scaling, crops, sub-pixel translation) as 3×3
//!   matrices, composed before a single bilinear resampling.
//! - [`color`]: brightness, saturation and contrast.
//! - [`erase`]: cutout, one zeroed rectangle per image.
//! - [`noise`]: additive Gaussian noise.
//! - [`op`]: the operation vocabulary users write in TOML, and what each one draws.
//! - [`spec`]: parsing and writing pipeline entries (`{ op = "rotate", p = 0.3, degrees = 15 }`).
//! - [`pipeline`]: applying a list of operations, each with its own probability per sample.
pub mod affine;
pub mod color;
pub mod erase;
pub mod noise;
pub mod op;
pub mod padding;
pub mod pipeline;
pub mod pixel;
pub mod random;
pub mod spec;

pub use op::{Op, Step};
pub use padding::Padding;
pub use pipeline::Pipeline;

use lab_plugin_api::tch::Tensor;

/// Checks that `x` is a batch of float images `[N, C, H, W]`, the only input the kernels accept.
pub fn check_batch(x: &Tensor) -> lab_plugin_api::Result<()> {
    if x.dim() != 4 || !x.is_floating_point() {
        return Err(lab_plugin_api::Error::new(format!(
            "expected a float image batch [N, C, H, W], got a {:?} tensor of shape {:?}",
            x.kind(),
            x.size()
        )));
    }
    Ok(())
}

/// A per-sample value `[N]` shaped to broadcast over `[N, C, H, W]`, in the batch's kind.
fn per_sample(v: &Tensor, x: &Tensor) -> Tensor {
    v.to_kind(x.kind()).view([-1, 1, 1, 1])
}
