//! Adam, written in the core so its state can be checkpointed and restored exactly
//! (tch's optimizers keep their state inside libtorch, out of reach). Same update as PyTorch's
//! non-fused Adam without weight decay.
use tch::Tensor;

use crate::config::Adam as Settings;

pub struct Adam {
    pub settings: Settings,
    /// Steps taken, for bias correction.
    pub t: i64,
    pub params: Vec<Tensor>,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

impl Adam {
    pub fn new(settings: Settings, params: Vec<Tensor>) -> Self {
        let m = params.iter().map(Tensor::zeros_like).collect();
        let v = params.iter().map(Tensor::zeros_like).collect();
        Self { settings, t: 0, params, m, v }
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    pub fn step(&mut self) {
        self.t += 1;
        let Settings { lr, betas: [b1, b2], eps } = self.settings;
        let bias1 = 1.0 - b1.powi(self.t as i32);
        let bias2_sqrt = (1.0 - b2.powi(self.t as i32)).sqrt();
        let step_size = lr / bias1;
        tch::no_grad(|| {
            for ((p, m), v) in self.params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = (v.sqrt() / bias2_sqrt) + eps;
                let _ = p.g_sub_(&(&*m / denom * step_size));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_by_lr_against_the_gradient_sign() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = Adam::new(Settings { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8 }, vec![p.shallow_clone()]);
        (&p * &p).sum(tch::Kind::Float).backward();
        opt.step();
        let after: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        assert!((after[0] - 0.9).abs() < 1e-6 && (after[1] + 1.9).abs() < 1e-6, "{after:?}");
    }
}
