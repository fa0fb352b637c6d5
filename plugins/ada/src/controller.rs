//! ADA's controller: the augmentation probability p, steered by how confidently D classifies
//! the real images it trains on (Karras et al., 2020, §3).
//!
//! After every D step it receives D's logits on the real batch and accumulates their signs.
//! Every `interval` steps it computes the overfitting heuristic r_t = E[sign D(x_real)] over
//! them and moves p by `sign(r_t − target) · images / (adjust_kimg · 1000)`, where `images` is
//! the number of real images behind the estimate (`batch_size · interval`), clamped to [0, 1].
//!
//! The signs are summed on D's device and read back only once per interval, so the training
//! loop is not synchronised with the GPU on every step.
use lab_plugin_api::tch::{Kind, Tensor};
use serde::{Deserialize, Serialize};

use crate::AdaConfig;

/// Everything the controller knows, as saved in checkpoints: resuming restores p and the
/// partial sums of the interval in progress, so a resumed run adjusts exactly as an
/// uninterrupted one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The augmentation probability.
    pub p: f64,
    /// r_t at the last adjustment; `None` before the first.
    pub rt: Option<f64>,
    /// Σ sign(D(x_real)) since the last adjustment.
    pub sign_sum: f64,
    /// How many logits that sum covers.
    pub logits: u64,
    /// How many real images they came from.
    pub images: u64,
    /// D steps (feedback calls) since the last adjustment.
    pub calls: u64,
}

/// The p controller.
#[derive(Debug)]
pub struct Controller {
    target: f64,
    adjust_kimg: f64,
    interval: u64,
    batch_size: u64,
    state: State,
    /// Signs summed on the device since the last read-back; `state.sign_sum` holds the rest.
    pending: Option<Tensor>,
}

impl Controller {
    /// A controller at `initial_p`, from a validated config.
    pub fn new(config: &AdaConfig) -> Self {
        Self {
            target: config.target,
            adjust_kimg: config.adjust_kimg,
            interval: config.interval as u64,
            batch_size: config.batch_size as u64,
            state: State { p: config.initial_p, rt: None, sign_sum: 0.0, logits: 0, images: 0, calls: 0 },
            pending: None,
        }
    }

    /// The current augmentation probability.
    pub fn p(&self) -> f64 {
        self.state.p
    }

    /// r_t at the last adjustment, if there has been one.
    pub fn rt(&self) -> Option<f64> {
        self.state.rt
    }

    /// How far p moves in one adjustment covering `images` real images.
    pub fn step_size(&self, images: u64) -> f64 {
        images as f64 / (self.adjust_kimg * 1000.0)
    }

    /// Takes D's logits on one real batch (`[N]`, `[N, 1]` or `[N, …]`); adjusts p when an
    /// interval is complete. Empty batches are ignored.
    pub fn feedback(&mut self, d_real: &Tensor) -> lab_plugin_api::Result<()> {
        if d_real.numel() == 0 {
            return Ok(());
        }
        // Detached: the feedback must not keep D's graph alive. Summed in f64, exact for
        // integers up to 2^53.
        let signs = d_real.detach().sign().sum(Kind::Double);
        self.pending = Some(match self.pending.take() {
            Some(sum) => sum + signs,
            None => signs,
        });
        self.state.logits += d_real.numel() as u64;
        self.state.images += d_real.size().first().map_or(1, |&n| n as u64);
        self.state.calls += 1;
        if self.state.calls >= self.interval {
            self.adjust()?;
        }
        Ok(())
    }

    /// Ends an interval: r_t from the accumulated signs, p moved towards the target.
    fn adjust(&mut self) -> lab_plugin_api::Result<()> {
        let sign_sum = self.sign_sum();
        let images = if self.batch_size > 0 { self.batch_size * self.state.calls } else { self.state.images };
        let rt = sign_sum / self.state.logits as f64;
        let logits = self.state.logits;
        self.state = State { p: self.state.p, rt: self.state.rt, sign_sum: 0.0, logits: 0, images: 0, calls: 0 };
        if !rt.is_finite() {
            return Err(lab_plugin_api::Error::new(format!(
                "D's logits on real images were not finite over the last {} D steps ({logits} logits); p stays at {}",
                self.interval, self.state.p
            )));
        }
        // sign(r_t − target), with no move at all when r_t is exactly on target.
        let direction = if rt > self.target {
            1.0
        } else if rt < self.target {
            -1.0
        } else {
            0.0
        };
        self.state.p = (self.state.p + direction * self.step_size(images)).clamp(0.0, 1.0);
        self.state.rt = Some(rt);
        Ok(())
    }

    /// The signs accumulated since the last adjustment, reading the device's part back once.
    fn sign_sum(&mut self) -> f64 {
        if let Some(pending) = self.pending.take() {
            self.state.sign_sum += pending.double_value(&[]);
        }
        self.state.sign_sum
    }

    /// The state to checkpoint.
    pub fn state(&self) -> State {
        let mut state = self.state.clone();
        if let Some(pending) = &self.pending {
            state.sign_sum += pending.double_value(&[]);
        }
        state
    }

    /// Restores a checkpointed state, after checking it is one this controller could have had.
    pub fn load(&mut self, state: State) -> lab_plugin_api::Result<()> {
        if !(0.0..=1.0).contains(&state.p) {
            return Err(lab_plugin_api::Error::new(format!("`p` must be in [0, 1], found {}", state.p)));
        }
        if !(state.sign_sum.is_finite() && state.sign_sum.abs() <= state.logits as f64) {
            return Err(lab_plugin_api::Error::new(format!(
                "`sign_sum` {} is not a sum of {} signs",
                state.sign_sum, state.logits
            )));
        }
        if let Some(rt) = state.rt {
            if !(-1.0..=1.0).contains(&rt) {
                return Err(lab_plugin_api::Error::new(format!("`rt` must be in [-1, 1], found {rt}")));
            }
        }
        self.state = state;
        self.pending = None;
        Ok(())
    }
}
