//! Geometric warps that resample the image: rotation, scaling, anisotropic stretch, sub-pixel
//! translation and crops.
//!
//! Each warp is a per-sample 3×3 matrix `[N, 3, 3]` that maps an output pixel's position to the
//! input position it reads, in libtorch's normalised coordinates (−1 and 1 are the outer edges
//! of the image, `align_corners = false`). Matrices compose by multiplication, so a run of warps
//! costs one bilinear resampling ([`warp`]) instead of one each, and blurs the image once.
//! Rotations are built in pixel units, so they stay rotations on non-square images.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use crate::Padding;

/// The identity warp for `n` samples.
pub fn identity(n: i64, device: Device) -> Tensor {
    Tensor::eye(3, (Kind::Float, device)).expand([n, 3, 3], false).contiguous()
}

/// Turns sample `i`'s content counter-clockwise (as displayed) by `angle[i]` radians about the
/// image centre, on an `h`×`w` image.
pub fn rotation(angle: &Tensor, h: i64, w: i64) -> Tensor {
    let (cos, sin) = (angle.cos(), angle.sin());
    // In pixel units (x right, y down) the output reads the input at [[c, −s], [s, c]]·u;
    // converting to normalised units scales the off-diagonal terms by the aspect ratio.
    let aspect = h as f64 / w as f64;
    let zero = angle.zeros_like();
    from_rows([&cos, &(&sin * -aspect), &zero], [&(&sin / aspect), &cos, &zero])
}

/// Scales sample `i`'s content by `sx[i]` horizontally and `sy[i]` vertically about the image
/// centre (> 1 enlarges).
pub fn scaling(sx: &Tensor, sy: &Tensor) -> Tensor {
    let zero = sx.zeros_like();
    from_rows([&sx.reciprocal(), &zero, &zero], [&zero, &sy.reciprocal(), &zero])
}

/// Moves sample `i`'s content right by `dx[i]` and down by `dy[i]` pixels (fractions allowed)
/// on an `h`×`w` image.
pub fn translation(dx: &Tensor, dy: &Tensor, h: i64, w: i64) -> Tensor {
    let (zero, one) = (dx.zeros_like(), dx.ones_like());
    from_rows([&one, &zero, &(dx * (-2.0 / w as f64))], [&zero, &one, &(dy * (-2.0 / h as f64))])
}

/// Shows, in sample `i`, the window of `width[i]`×`height[i]` (fractions of the image's width and
/// height) centred at (`cx[i]`, `cy[i]`) (normalised coordinates), stretched to the full image.
pub fn crop(width: &Tensor, height: &Tensor, cx: &Tensor, cy: &Tensor) -> Tensor {
    let zero = width.zeros_like();
    from_rows([width, &zero, cx], [&zero, height, cy])
}

/// The warp that applies `first`, then `then` (both `[N, 3, 3]`).
pub fn then(first: &Tensor, then: &Tensor) -> Tensor {
    // The output of `then` at u reads `first`'s output at B·u, which reads the input at A·B·u.
    first.matmul(then)
}

/// Resamples every image of `x` through its warp (`[N, 3, 3]` or `[N, 2, 3]`) with bilinear
/// interpolation; positions outside the image read according to `padding`. Differentiable with
/// respect to `x`.
pub fn warp(x: &Tensor, matrix: &Tensor, padding: Padding) -> Tensor {
    let theta = matrix.narrow(1, 0, 2).to_kind(x.kind());
    let grid = Tensor::affine_grid_generator(&theta, x.size(), false);
    // Interpolation mode 0 is bilinear.
    x.grid_sampler(&grid, 0, padding.grid_sampler_code(), false)
}

/// `[N, 3, 3]` from the two top rows' entries (each `[N]`); the bottom row is (0, 0, 1).
fn from_rows(top: [&Tensor; 3], middle: [&Tensor; 3]) -> Tensor {
    let zero = top[0].zeros_like();
    let one = top[0].ones_like();
    let entries = [top[0], top[1], top[2], middle[0], middle[1], middle[2], &zero, &zero, &one];
    Tensor::stack(&entries, 1).view([-1, 3, 3])
}
