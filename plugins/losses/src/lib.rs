//! # lab-plugin-losses
//!
//! The classic GAN objectives as loss plugins: `non-saturating`, `minimax`, `hinge`, `wgan-gp`,
//! `least-squares`, and `wgan` (weight clipping's objective with its critic schedule). All but
//! `wgan` accept R1 (`r1_gamma`) and consistency regularisation
//! (`cr_lambda`) on real data; `wgan-gp` adds its gradient penalty (`gp_lambda`).
//!
//! An objective is a few lines on D's logits ([`objective`]); the regularisers are shared
//! ([`penalty`]); [`GanLoss`] glues one objective and the penalties into a plugin.
pub mod config;
pub mod gan_loss;
pub mod objective;
/// The shared regularisers, from `lab_nn` (which any plugin may link).
pub use lab_nn::penalty;
pub mod wgan;

pub use config::{LossConfig, Penalties, WganGpConfig};
pub use gan_loss::GanLoss;
pub use wgan::{Wgan, WganConfig};

/// `loss.name = "non-saturating"`.
pub type NonSaturating = GanLoss<objective::NonSaturating>;
/// `loss.name = "minimax"`.
pub type Minimax = GanLoss<objective::Minimax>;
/// `loss.name = "hinge"`.
pub type Hinge = GanLoss<objective::Hinge>;
/// `loss.name = "wgan-gp"`.
pub type WganGp = GanLoss<objective::WganGp>;
/// `loss.name = "least-squares"`.
pub type LeastSquares = GanLoss<objective::LeastSquares>;

lab_plugin_api::export_plugins! {
    loss: NonSaturating,
    loss: Minimax,
    loss: Hinge,
    loss: WganGp,
    loss: LeastSquares,
    loss: Wgan,
}

#[cfg(test)]
mod tests;
