//! The update rules: each is PyTorch's single-tensor (`foreach=False`) algorithm, written with
//! in-place tensor ops so the state buffers are updated where they live.
use tch::Tensor;

pub use crate::config::Hyper;
use crate::config::OptimSettings;

/// One optimizer kind.
pub trait Rule: Send {
    /// The names of the per-parameter state buffers, in checkpoint order.
    fn slots(&self, settings: &OptimSettings) -> &'static [&'static str];
    /// Updates `p` in place from its gradient `g` and its buffers; `t` counts steps from 1.
    fn update(&self, p: &mut Tensor, g: &Tensor, state: &mut [Tensor], h: &Hyper, t: i64);
}

/// L2 weight decay added to the gradient, as PyTorch's non-decoupled optimizers do.
fn decayed(p: &Tensor, g: &Tensor, weight_decay: f64) -> Tensor {
    if weight_decay == 0.0 {
        g.shallow_clone()
    } else {
        g + p * weight_decay
    }
}

pub struct Adam;

impl Rule for Adam {
    fn slots(&self, _: &OptimSettings) -> &'static [&'static str] {
        &["m", "v"]
    }

    fn update(&self, p: &mut Tensor, g: &Tensor, state: &mut [Tensor], h: &Hyper, t: i64) {
        let [b1, b2] = h.betas;
        let g = decayed(p, g, h.weight_decay);
        let bias1 = 1.0 - b1.powi(t as i32);
        let bias2_sqrt = (1.0 - b2.powi(t as i32)).sqrt();
        let step_size = h.lr / bias1;
        let (m, v) = state.split_at_mut(1);
        let _ = m[0].lerp_(&g, 1.0 - b1);
        let _ = v[0].g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
        let denom = (v[0].sqrt() / bias2_sqrt) + h.eps;
        let _ = p.g_sub_(&(&m[0] / denom * step_size));
    }
}

pub struct RmsProp;

impl Rule for RmsProp {
    fn slots(&self, settings: &OptimSettings) -> &'static [&'static str] {
        if settings.hyper.momentum > 0.0 || settings.schedule.momentum_to.is_some() {
            &["square_avg", "momentum_buffer"]
        } else {
            &["square_avg"]
        }
    }

    fn update(&self, p: &mut Tensor, g: &Tensor, state: &mut [Tensor], h: &Hyper, _t: i64) {
        let g = decayed(p, g, h.weight_decay);
        let _ = state[0].g_mul_scalar_(h.alpha).g_add_(&(&g * &g * (1.0 - h.alpha)));
        let avg = state[0].sqrt() + h.eps;
        if state.len() > 1 {
            let _ = state[1].g_mul_scalar_(h.momentum).g_add_(&(&g / &avg));
            let _ = p.g_sub_(&(&state[1] * h.lr));
        } else {
            let _ = p.g_sub_(&(&g / &avg * h.lr));
        }
    }
}

pub struct Sgd;

impl Rule for Sgd {
    fn slots(&self, settings: &OptimSettings) -> &'static [&'static str] {
        if settings.hyper.momentum > 0.0 || settings.schedule.momentum_to.is_some() {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn update(&self, p: &mut Tensor, g: &Tensor, state: &mut [Tensor], h: &Hyper, _t: i64) {
        let g = decayed(p, g, h.weight_decay);
        let direction = match state.first_mut() {
            // The buffer starts at zero, so the first step sets it to g as PyTorch does.
            Some(buf) => {
                let _ = buf.g_mul_scalar_(h.momentum).g_add_(&g);
                if h.nesterov {
                    &g + &*buf * h.momentum
                } else {
                    buf.shallow_clone()
                }
            }
            None => g,
        };
        let _ = p.g_sub_(&(direction * h.lr));
    }
}

pub struct Adagrad;

impl Rule for Adagrad {
    fn slots(&self, _: &OptimSettings) -> &'static [&'static str] {
        &["sum"]
    }

    fn update(&self, p: &mut Tensor, g: &Tensor, state: &mut [Tensor], h: &Hyper, _t: i64) {
        let g = decayed(p, g, h.weight_decay);
        let _ = state[0].g_add_(&(&g * &g));
        let std = state[0].sqrt() + h.eps;
        let _ = p.g_sub_(&(&g / std * h.lr));
    }
}
