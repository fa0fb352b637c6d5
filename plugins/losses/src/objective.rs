//! The five adversarial objectives, written on D's logits for real (`r`) and fake (`f`) batches.
//! Each is a scalar mean over the batch; the penalties are added elsewhere ([`crate::penalty`]).
use lab_plugin_api::tch::{Kind, Tensor};

use crate::config::{LossConfig, PenaltyConfig, WganGpConfig};

/// One GAN objective: its name, its config, and its losses on logits.
pub trait Objective: Send + 'static {
    /// The name users write as `loss.name`.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Config: PenaltyConfig;
    /// What D minimises, given logits on real and fake data (both of shape `[N]`).
    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor;
    /// What G minimises, given D's logits on fake data.
    fn g_loss(f: &Tensor) -> Tensor;
}

fn mean(x: Tensor) -> Tensor {
    x.mean(Kind::Float)
}

/// Binary cross-entropy on logits, real → 1 and fake → 0: softplus(−r) + softplus(f).
fn logistic_d_loss(r: &Tensor, f: &Tensor) -> Tensor {
    mean((-r).softplus()) + mean(f.softplus())
}

/// Goodfellow et al.'s practical variant: G maximises log D(G(z)).
pub struct NonSaturating;

impl Objective for NonSaturating {
    const NAME: &'static str = "non-saturating";
    const DESCRIPTION: &'static str = "the standard GAN loss with G maximising log D(G(z)) (Goodfellow et al., 2014)";
    type Config = LossConfig;

    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor {
        logistic_d_loss(r, f)
    }

    fn g_loss(f: &Tensor) -> Tensor {
        mean((-f).softplus())
    }
}

/// The original minimax game: G minimises log(1 − D(G(z))) = −softplus(f). Its gradient
/// vanishes when D wins, which is why `non-saturating` is the usual choice.
pub struct Minimax;

impl Objective for Minimax {
    const NAME: &'static str = "minimax";
    const DESCRIPTION: &'static str =
        "the original minimax GAN loss, G minimising log(1 - D(G(z))) (Goodfellow et al., 2014)";
    type Config = LossConfig;

    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor {
        logistic_d_loss(r, f)
    }

    fn g_loss(f: &Tensor) -> Tensor {
        -mean(f.softplus())
    }
}

/// Hinge loss (Lim & Ye, 2017; used by SNGAN, SAGAN and BigGAN).
pub struct Hinge;

impl Objective for Hinge {
    const NAME: &'static str = "hinge";
    const DESCRIPTION: &'static str = "hinge loss: D relu(1 - r) + relu(1 + f), G -f (SNGAN, BigGAN)";
    type Config = LossConfig;

    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor {
        mean((1.0_f64 - r).relu()) + mean((f + 1.0).relu())
    }

    fn g_loss(f: &Tensor) -> Tensor {
        -mean(f.shallow_clone())
    }
}

/// Wasserstein loss with a gradient penalty (Arjovsky et al., 2017; Gulrajani et al., 2017).
pub struct WganGp;

impl Objective for WganGp {
    const NAME: &'static str = "wgan-gp";
    const DESCRIPTION: &'static str = "Wasserstein loss with gradient penalty on interpolates (Gulrajani et al., 2017)";
    type Config = WganGpConfig;

    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor {
        mean(f.shallow_clone()) - mean(r.shallow_clone())
    }

    fn g_loss(f: &Tensor) -> Tensor {
        -mean(f.shallow_clone())
    }
}

/// Least-squares loss with targets a = 0, b = 1, c = 1 (Mao et al., 2017).
pub struct LeastSquares;

impl Objective for LeastSquares {
    const NAME: &'static str = "least-squares";
    const DESCRIPTION: &'static str = "least-squares GAN loss: D ½(r-1)² + ½f², G ½(f-1)² (Mao et al., 2017)";
    type Config = LossConfig;

    fn d_loss(r: &Tensor, f: &Tensor) -> Tensor {
        0.5 * mean((r - 1.0).square()) + 0.5 * mean(f.square())
    }

    fn g_loss(f: &Tensor) -> Tensor {
        0.5 * mean((f - 1.0).square())
    }
}
