//! Layouts of architectures' own sample grids.
use lab_plugin_api::tch::Tensor;

/// Rows of `columns` images of `top`, each over the same images of `bottom` (real images over
/// their reconstructions), then `tail` (samples): one batch for a grid `columns` wide. Only
/// whole rows of `top` are used.
pub fn pairs_then(top: &Tensor, bottom: &Tensor, tail: &Tensor, columns: i64) -> Tensor {
    let rows = top.size()[0].min(bottom.size()[0]) / columns;
    let mut parts = Vec::new();
    for r in 0..rows {
        parts.push(top.narrow(0, r * columns, columns));
        parts.push(bottom.narrow(0, r * columns, columns));
    }
    parts.push(tail.shallow_clone());
    Tensor::cat(&parts, 0)
}
