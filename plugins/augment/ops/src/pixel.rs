//! Exact pixel moves: horizontal flips, quarter turns and integer translations. They only copy
//! pixels (no resampling), so they lose nothing, and their gradient routes each output pixel's
//! gradient back to the one input pixel it came from.
use lab_plugin_api::tch::{Device, Kind, Tensor};

use crate::Padding;

/// Mirrors every image left to right.
pub fn hflip(x: &Tensor) -> Tensor {
    x.flip([3])
}

/// Turns sample `i` by `k[i]` quarter turns counter-clockwise (`k` is `[N]` integers; only
/// `k mod 4` matters). Quarter turns keep the shape only for square images.
pub fn rotate90(x: &Tensor, k: &Tensor) -> lab_plugin_api::Result<Tensor> {
    let size = x.size();
    if size[2] != size[3] {
        return Err(lab_plugin_api::Error::new(format!(
            "rotate90 needs square images, got {}×{} (H×W)",
            size[2], size[3]
        )));
    }
    let k = k.remainder(4).view([-1, 1, 1, 1]);
    let mut out = x.shallow_clone();
    for turns in 1..4 {
        // libtorch's `rot90` over (H, W) turns counter-clockwise as displayed.
        out = x.rot90(turns, [2, 3]).where_self(&k.eq(turns), &out);
    }
    Ok(out)
}

/// The largest shift DiffAugment's translation draws along an axis of `size` pixels for
/// `ratio`: ⌊ratio·size + 0.5⌋, i.e. ±4 px at 32 px for the default 0.125.
pub fn max_shift(size: i64, ratio: f64) -> i64 {
    (ratio * size as f64 + 0.5).floor() as i64
}

/// Moves the content of sample `i` right by `dx[i]` and down by `dy[i]` whole pixels
/// (`[N]` integers, negative for left/up): `out[.., r, c] = x[.., r − dy, c − dx]`. Pixels
/// uncovered by the move are filled according to `padding` (zeros for DiffAugment).
pub fn translate(x: &Tensor, dx: &Tensor, dy: &Tensor, padding: Padding) -> Tensor {
    let (n, c, h, w) = x.size4().expect("a 4-D batch");
    let device = x.device();
    let (rows, rows_inside) = source_positions(h, dy, padding, device);
    let (cols, cols_inside) = source_positions(w, dx, padding, device);
    // Two gathers: pick each output row's source row, then each output column's source column.
    let out = x.gather(2, &rows.view([n, 1, h, 1]).expand([n, c, h, w], false), false).gather(
        3,
        &cols.view([n, 1, 1, w]).expand([n, c, h, w], false),
        false,
    );
    match (rows_inside, cols_inside) {
        (Some(r), Some(c)) => {
            let inside = r.view([n, 1, h, 1]).logical_and(&c.view([n, 1, 1, w]));
            out.where_scalarother(&inside, 0.0)
        }
        _ => out,
    }
}

/// For every sample, the source index of each of `len` output positions shifted by `shift`,
/// and (for zero padding) whether that source lies inside the image.
fn source_positions(len: i64, shift: &Tensor, padding: Padding, device: Device) -> (Tensor, Option<Tensor>) {
    let pos = Tensor::arange(len, (Kind::Int64, device)).unsqueeze(0) - shift.to_kind(Kind::Int64).unsqueeze(1);
    padding.resolve(&pos, len)
}
