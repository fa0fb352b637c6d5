//! Schedules as pure functions of the generator step, so a checkpoint's step is all a resume
//! needs to continue them exactly.
use crate::config::ScheduleConfig;

/// The learning rate at `step`, from the base rate `lr`.
pub fn lr(lr: f64, s: &ScheduleConfig, step: u64, total_steps: u64) -> f64 {
    match s.kind.as_str() {
        "linear" => {
            let end = end_step(s, total_steps);
            if step < s.start || end <= s.start {
                lr
            } else {
                lr * (1.0 - (step - s.start) as f64 / (end - s.start) as f64).max(0.0)
            }
        }
        "exponential" => (lr * s.factor.powf(step as f64)).max(s.floor),
        "step" => (lr * s.factor.powi((step / s.every.max(1)) as i32)).max(s.floor),
        "inverse" => lr / (1.0 + step as f64 / s.every.max(1) as f64),
        "power" => {
            // deeppy's GammaAnnealer sets the rate once per epoch, so t moves in whole periods.
            let end = end_step(s, total_steps);
            let every = s.every.max(1);
            let t = ((step / every * every) as f64 / end.max(1) as f64).min(1.0);
            lr - t.powf(s.power) * (lr - s.floor)
        }
        _ => lr,
    }
}

/// Where a linear or power decay ends: `end`, or the run's last step when it is 0.
fn end_step(s: &ScheduleConfig, total_steps: u64) -> u64 {
    if s.end == 0 {
        total_steps
    } else {
        s.end
    }
}

/// The target of the momentum ramp, when there is one.
pub fn momentum(s: &ScheduleConfig, _step: u64) -> Option<f64> {
    s.momentum_to
}

/// A linear ramp from `from` to `to` over `momentum_steps` steps, then `to`.
pub fn ramp(from: f64, to: f64, s: &ScheduleConfig, step: u64) -> f64 {
    if s.momentum_steps == 0 {
        return to;
    }
    let f = (step as f64 / s.momentum_steps as f64).min(1.0);
    from + (to - from) * f
}
