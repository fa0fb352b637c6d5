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

/// The grid of a model with an encoder: up to four pairs of rows of eight real images over
/// their reconstructions `generator(encoder(x)[0])` (fewer when `log.samples` is small), then as
/// many samples of the generator on the run's fixed latents. Networks run as the core lends
/// them: in eval mode, the EMA generator when the run keeps one.
pub fn reconstructions(ctx: &lab_plugin_api::VisualCtx<'_>) -> lab_plugin_api::Result<(Tensor, i64)> {
    let columns = 8;
    let rows = (ctx.samples()? / (2 * columns)).clamp(1, 4);
    let real = ctx.real(rows * columns)?;
    let code = ctx.run_network("encoder", &[real.shallow_clone()])?.remove(0);
    let recon = ctx.run_network("generator", &[code])?.remove(0);
    let z = ctx.fixed_latent()?;
    let shown = z.size()[0].min(real.size()[0]);
    let samples = ctx.run_network("generator", &[z.narrow(0, 0, shown)])?.remove(0);
    Ok((pairs_then(&real, &recon, &samples, columns), columns))
}
