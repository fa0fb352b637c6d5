//! Optimizers, written in the core so their state is checkpointed and restored exactly (tch's
//! keep theirs inside libtorch, out of reach). One [`Rule`] per kind (Adam, RMSprop, SGD with
//! momentum and Nesterov, Adagrad), each the same update as PyTorch's non-fused implementation;
//! [`Optimizer`] adds what every kind shares: per-parameter state buffers, the schedule, lazy
//! regularisation's rescaling, and post-step clipping. With `optim.fused` (the default) the
//! parameters and state live in one buffer per network and a step is one update of it
//! ([`flat`]).
pub mod flat;
mod rules;
pub mod schedule;

use tch::Tensor;

pub use rules::{Adagrad, Adam, Hyper, RmsProp, Rule, Sgd};

use crate::config::OptimSettings;

/// The rule for a kind named in config (validated before).
pub fn rule(kind: &str) -> Box<dyn Rule> {
    match kind {
        "rmsprop" => Box::new(RmsProp),
        "sgd" => Box::new(Sgd),
        "adagrad" => Box::new(Adagrad),
        _ => Box::new(Adam),
    }
}

/// One network's optimizer.
pub struct Optimizer {
    pub settings: OptimSettings,
    /// stylegan2-ada's lazy-regularisation ratio N/(N+1) (1 when not lazy): lr × ratio,
    /// Adam's betas ^ ratio.
    pub lazy_ratio: f64,
    rule: Box<dyn Rule>,
    /// Steps taken, for bias correction.
    pub t: i64,
    pub params: Vec<Tensor>,
    /// Per slot (`m`, `v`, `square_avg`, ...), one buffer per parameter.
    pub slots: Vec<(&'static str, Vec<Tensor>)>,
    /// `train.steps`, the default end of a linear decay.
    total_steps: u64,
    /// The fused buffers, when the parameters were adopted into one.
    flat: Option<flat::Flat>,
}

impl Optimizer {
    /// An optimizer over `params`; `fused` moves them into one buffer first ([`flat`]).
    pub fn new(
        settings: OptimSettings,
        mut params: Vec<Tensor>,
        lazy_ratio: f64,
        total_steps: u64,
        fused: bool,
    ) -> Self {
        let rule = rule(&settings.kind);
        let names = rule.slots(&settings);
        let adopted = if fused { tch::no_grad(|| flat::Flat::adopt(&mut params, names.len())) } else { None };
        let (flat, slots) = match adopted {
            Some((flat, views)) => (Some(flat), names.iter().copied().zip(views).collect()),
            None => (None, names.iter().map(|name| (*name, params.iter().map(Tensor::zeros_like).collect())).collect()),
        };
        Self { settings, lazy_ratio, rule, t: 0, params, slots, total_steps, flat }
    }

    /// Whether the parameters live in one fused buffer.
    pub fn fused(&self) -> bool {
        self.flat.is_some()
    }

    /// Whether `t`'s data lies in this optimizer's fused buffer.
    pub fn holds(&self, t: &Tensor) -> bool {
        self.flat.as_ref().is_some_and(|f| {
            let start = f.params.data_ptr() as usize;
            let end = start + f.params.numel() * f.params.kind().elt_size_in_bytes();
            (start..end).contains(&(t.data_ptr() as usize))
        })
    }

    /// The fused buffer of the parameters, in their order.
    pub fn flat_params(&self) -> Option<&Tensor> {
        self.flat.as_ref().map(|f| &f.params)
    }

    /// The hyperparameters in force at generator step `step`.
    pub fn hyper(&self, step: u64) -> Hyper {
        let s = &self.settings;
        let mut h = s.hyper;
        h.lr = schedule::lr(h.lr, &s.schedule, step, self.total_steps) * self.lazy_ratio;
        if let Some(to) = schedule::momentum(&s.schedule, step) {
            if s.kind == "adam" {
                h.betas[0] = schedule::ramp(s.hyper.betas[0], to, &s.schedule, step);
            } else {
                h.momentum = schedule::ramp(s.hyper.momentum, to, &s.schedule, step);
            }
        }
        if self.lazy_ratio != 1.0 {
            h.betas = [h.betas[0].powf(self.lazy_ratio), h.betas[1].powf(self.lazy_ratio)];
        }
        h
    }

    /// One update from `grads` (one per parameter; undefined for a parameter the loss did not
    /// reach, which is then left alone), then the clip constraint.
    pub fn step(&mut self, grads: &[Tensor], step: u64) {
        self.t += 1;
        let h = self.hyper(step);
        let t = self.t;
        let clip = self.settings.clip;
        // Fused: one update of the whole buffer. A parameter the loss did not reach must keep
        // its state untouched, which only the per-tensor loop can do.
        if let Some(flat) = self.flat.as_mut().filter(|_| grads.iter().all(Tensor::defined)) {
            tch::no_grad(|| {
                let g = flat.flatten(grads);
                let mut state: Vec<Tensor> = flat.slots.iter().map(Tensor::shallow_clone).collect();
                self.rule.update(&mut flat.params, &g, &mut state, &h, t);
                if clip > 0.0 {
                    let _ = flat.params.clamp_(-clip, clip);
                }
            });
            return;
        }
        tch::no_grad(|| {
            for (i, (p, g)) in self.params.iter_mut().zip(grads).enumerate() {
                if !g.defined() {
                    continue;
                }
                let mut state: Vec<Tensor> = self.slots.iter().map(|(_, b)| b[i].shallow_clone()).collect();
                self.rule.update(p, g, &mut state, &h, t);
                if clip > 0.0 {
                    let _ = p.clamp_(-clip, clip);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
