//! The regularisers any objective can add to its D loss: R1, consistency regularisation and the
//! WGAN-GP gradient penalty. Each logs the term it adds (`loss/r1`, `loss/cr`, `loss/gp`).
//!
//! They live here, in the library every plugin may link, rather than in the `losses` plugin:
//! a plugin that links another plugin's crate gets that crate's entry points too whenever the
//! workspace builds both (cargo unifies the `export` feature), and the library fails to link.
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{LossCtx, Role};

/// Keeps the square root in the gradient norm differentiable where the gradient is zero.
const NORM_EPS: f64 = 1e-12;

/// Logits as `[N]`, whether D returned `[N]` or `[N, 1]`.
pub fn flat(logits: Tensor) -> Tensor {
    logits.flatten(0, -1)
}

/// D's first output (the logit), flattened.
pub fn logits(outputs: Vec<Tensor>) -> lab_plugin_api::Result<Tensor> {
    outputs.into_iter().next().map(flat).ok_or_else(|| "the discriminator returned no outputs".into())
}

/// ∂(Σ out)/∂x, kept in the graph (`create_graph`) so a penalty on it trains D, and keeping the
/// graph of `out` alive (`keep_graph`) because the caller usually back-propagates `out` as well.
fn input_gradient(out: &Tensor, x: &Tensor) -> lab_plugin_api::Result<Tensor> {
    let grads = Tensor::f_run_backward(&[out.sum(Kind::Float)], &[x], true, true)
        .map_err(|e| format!("could not differentiate D with respect to its input: {e}"))?;
    grads.into_iter().next().ok_or_else(|| "autograd returned no input gradient".into())
}

/// Per-sample squared L2 norm of a batch: `[N, ...]` → `[N]`.
fn squared_norms(grad: &Tensor) -> Tensor {
    grad.square().flatten(1, -1).sum_dim_intlist([1i64].as_slice(), false, Kind::Float)
}

/// A fresh leaf copy of `x` that records gradients, so D's input gradient can be taken on it.
fn leaf_with_grad(x: &Tensor) -> Tensor {
    x.detach().set_requires_grad(true)
}

/// D's logits on the augmented real batch, role Real. When `for_r1` is set, the real batch is
/// also returned as a leaf requiring grad: R1 then differentiates these same logits instead of
/// running D a second time (as StyleGAN2 does), and D(x) is reported to the core only once.
pub fn real_logits(ctx: &mut LossCtx<'_>, for_r1: bool) -> lab_plugin_api::Result<(Tensor, Option<Tensor>)> {
    if !for_r1 {
        return Ok((flat(ctx.d_real()?), None));
    }
    let x = leaf_with_grad(&ctx.real()?);
    let y = ctx.real_labels()?;
    let out = logits(ctx.discriminate(&x, y.as_ref(), true, Role::Real)?)?;
    Ok((out, Some(x)))
}

/// D's logits on a fresh augmentation of the real batch, role Real, and that augmented batch as
/// the leaf R1 differentiates by: the penalty on the augmented images themselves (DiffAugment's
/// TF StyleGAN2, `ns_r1_DiffAugment`), where [`real_logits`] takes the gradient through the
/// augmentation to the clean images.
pub fn augmented_real_logits(ctx: &mut LossCtx<'_>) -> lab_plugin_api::Result<(Tensor, Tensor)> {
    let x = leaf_with_grad(&ctx.augment(&ctx.real()?)?);
    let y = ctx.real_labels()?;
    let out = logits(ctx.discriminate(&x, y.as_ref(), false, Role::Real)?)?;
    Ok((out, x))
}

/// R1: γ/2 · E‖∇ₓD(x)‖² on real data, `real_logits` having been computed from the leaf `real`.
/// With [`real_logits`] the gradient goes through the augmentation to the clean images, as
/// stylegan2-ada's R1 does; with [`augmented_real_logits`] it is taken on the augmented images.
pub fn r1(ctx: &LossCtx<'_>, real_logits: &Tensor, real: &Tensor, gamma: f64) -> lab_plugin_api::Result<Tensor> {
    let grad = input_gradient(real_logits, real)?;
    let term = gamma / 2.0 * squared_norms(&grad).mean(Kind::Float);
    ctx.log("loss/r1", &term.detach());
    Ok(term)
}

/// WGAN-GP: λ · E(‖∇D(x̂)‖ − 1)² with x̂ = ε·x + (1 − ε)·G(z), ε ~ U(0, 1) per sample. The
/// interpolates are not augmented (the penalty constrains D itself) and carry role Other.
pub fn gradient_penalty(ctx: &mut LossCtx<'_>, lambda: f64) -> lab_plugin_api::Result<Tensor> {
    let real = ctx.real()?;
    let y = ctx.real_labels()?;
    let (fake, _) = ctx.fake()?;
    let mut eps_shape = vec![1; real.dim()];
    eps_shape[0] = real.size()[0];
    // libtorch's global RNG, which the trainer seeds before each phase.
    let eps = Tensor::rand(eps_shape.as_slice(), (real.kind(), real.device()));
    let fake = fake.detach();
    let x_hat = leaf_with_grad(&(&fake + eps * (&real - &fake)));
    let out = logits(ctx.discriminate(&x_hat, y.as_ref(), false, Role::Other)?)?;
    let norms = (squared_norms(&input_gradient(&out, &x_hat)?) + NORM_EPS).sqrt();
    // ‖∇D(x̂)‖ itself: the penalty holds it near 1 when it works.
    ctx.log("gp/grad_norm", &norms.mean(Kind::Float).detach());
    let term = lambda * (norms - 1.0).square().mean(Kind::Float);
    ctx.log("loss/gp", &term.detach());
    Ok(term)
}

/// Consistency regularisation: λ · E(D(T(x)) − D(x))² on real data; neither pass is augmented
/// by `discriminate` itself. T is CR's own flip-and-shift, or a fresh draw of the run's
/// augmentation when `run_augment` is set.
pub fn consistency(ctx: &LossCtx<'_>, lambda: f64, run_augment: bool) -> lab_plugin_api::Result<Tensor> {
    let real = ctx.real()?;
    let y = ctx.real_labels()?;
    let clean = logits(ctx.discriminate(&real, y.as_ref(), false, Role::Other)?)?;
    let transformed = if run_augment { ctx.augment(&real)? } else { flip_and_shift(&real, 4) };
    let augmented = logits(ctx.discriminate(&transformed, y.as_ref(), false, Role::Other)?)?;
    let term = lambda * (augmented - clean).square().mean(Kind::Float);
    ctx.log("loss/cr", &term.detach());
    Ok(term)
}

/// CR's transformation (Zhang et al., 2020): a random horizontal flip and a random shift of up
/// to `pad` pixels per axis with reflection padding, drawn per sample from libtorch's generator
/// (which the core seeds before every phase).
pub fn flip_and_shift(x: &Tensor, pad: i64) -> Tensor {
    let (n, h, w) = (x.size()[0], x.size()[2], x.size()[3]);
    let device = x.device();
    let flip = Tensor::rand([n, 1, 1, 1], (Kind::Float, device)).lt(0.5);
    let x = x.flip([3]).where_self(&flip, x);
    let padded = x.reflection_pad2d([pad, pad, pad, pad]);
    let shifts = Tensor::randint(2 * pad + 1, [n, 2], (Kind::Int64, Device::Cpu));
    let shifts: Vec<i64> = Vec::try_from(shifts.flatten(0, -1)).expect("int64 shifts");
    let crops: Vec<Tensor> = (0..n)
        .map(|i| padded.get(i).narrow(1, shifts[2 * i as usize], h).narrow(2, shifts[2 * i as usize + 1], w))
        .collect();
    Tensor::stack(&crops, 0)
}
