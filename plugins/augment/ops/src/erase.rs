//! Cutout (DeVries & Taylor, 2017), as DiffAugment uses it: one rectangle per image set to zero.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use crate::random;

/// The side DiffAugment's cutout uses along an axis of `size` pixels for `ratio`:
/// ⌊ratio·size + 0.5⌋, i.e. 16 px at 32 px for the default 0.5.
pub fn side(size: i64, ratio: f64) -> i64 {
    (ratio * size as f64 + 0.5).floor() as i64
}

/// Draws `n` centre coordinates along an axis of `size` pixels for a cutout of `side` pixels,
/// uniformly from `0..size + (1 − side mod 2)` as DiffAugment does: for an even side the centre
/// may also sit on the far edge, so the rectangle reaches each border equally often.
pub fn sample_centres(n: i64, size: i64, side: i64, device: Device) -> Tensor {
    random::integers(n, 0, size - side % 2, device)
}

/// Zeroes, in sample `i`, the `width`×`height` rectangle centred at (`cx[i]`, `cy[i]`) (column,
/// row; `[N]` integers). It spans rows `cy − height/2 .. cy − height/2 + height` (integer
/// division) and likewise columns, clipped where it overlaps the border.
///
/// The rectangle is a mask, so the result stays differentiable: the gradient is zero inside it
/// and passes through unchanged outside.
pub fn cutout(x: &Tensor, cx: &Tensor, cy: &Tensor, width: i64, height: i64) -> Tensor {
    let (n, _, h, w) = x.size4().expect("a 4-D batch");
    let rows = covered(h, cy, height, x.device()).view([n, 1, h, 1]);
    let cols = covered(w, cx, width, x.device()).view([n, 1, 1, w]);
    // `where` rather than multiplying by a 0/1 mask: same values and gradient, and a non-finite
    // pixel inside the rectangle is erased too instead of turning into NaN.
    x.where_scalarother(&rows.logical_and(&cols).logical_not(), 0.0)
}

/// `[N, len]`: whether each position along an axis of `len` pixels lies in the `side`-pixel
/// span around each sample's centre.
fn covered(len: i64, centre: &Tensor, side: i64, device: Device) -> Tensor {
    let pos = Tensor::arange(len, (Kind::Int64, device)).unsqueeze(0);
    let start = centre.to_kind(Kind::Int64).unsqueeze(1) - side / 2;
    let end = &start + side;
    pos.ge_tensor(&start).logical_and(&pos.lt_tensor(&end))
}
