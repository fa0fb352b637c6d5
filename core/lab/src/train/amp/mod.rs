//! Mixed precision (`train.amp`): autocast around the training phases' forward passes, and for
//! float16 a dynamic loss scale.
//!
//! - **Autocast** runs convolutions and matrix products in bf16 or fp16 while the parameters,
//!   their gradients and the optimizer state stay fp32, as `torch.autocast` does. It covers the
//!   loss plugin's call, so every forward pass a phase makes (the plugins' networks run in the
//!   same libtorch, whose autocast switch is per thread) and not the backward pass, the
//!   optimizer, the EMA or evaluation. tch binds no way to choose the device type or the
//!   dtype, so a small C++ shim compiled against the same libtorch does (`autocast.cpp`).
//! - **Loss scaling** (fp16 only; bf16 has fp32's range): each loss is multiplied by the scale
//!   before back-propagation and the gradients divided by it after, so small gradients do not
//!   flush to zero in fp16. A phase whose gradients overflowed is skipped whole (no optimizer
//!   steps, Adam's step count unchanged) and the scale halves; after `train.amp_growth_interval`
//!   phases without an overflow it doubles. One scaler serves every phase, G's and D's: a
//!   shared scale was what StudioGAN settled on. Its state is checkpointed, so resumes are
//!   exact. Deciding to skip reads one flag to the host per phase, as PyTorch's `GradScaler`
//!   does; fp32 and bf16 runs read nothing between logging steps.
use std::os::raw::c_int;

use tch::{Device, Tensor};

use crate::config::Precision;

extern "C" {
    fn lab_autocast_enter(device: c_int, dtype: c_int, was_enabled: *mut c_int, was_dtype: *mut c_int) -> c_int;
    fn lab_autocast_exit(device: c_int, was_enabled: c_int, was_dtype: c_int) -> c_int;
    fn lab_autocast_is_enabled(device: c_int) -> c_int;
}

/// The shim's device code: 0 = CPU, 1 = CUDA.
fn device_code(device: Device) -> c_int {
    if device.is_cuda() {
        1
    } else {
        0
    }
}

/// Autocast on `device` while this guard lives; what was there before comes back on drop.
pub struct Autocast {
    device: c_int,
    was_enabled: c_int,
    was_dtype: c_int,
}

impl Autocast {
    /// Turns autocast on for `precision` on `device`; `None` for fp32 (nothing to do).
    pub fn enter(precision: Precision, device: Device) -> Result<Option<Self>, String> {
        let dtype = match precision {
            Precision::Full => return Ok(None),
            Precision::Fp16 => 0,
            Precision::Bf16 => 1,
        };
        let device = device_code(device);
        let (mut was_enabled, mut was_dtype) = (0, 2);
        // SAFETY: the shim only reads its integer arguments and writes the two out-pointers,
        // which point at live locals.
        let status = unsafe { lab_autocast_enter(device, dtype, &mut was_enabled, &mut was_dtype) };
        if status != 0 {
            return Err(format!("libtorch refused to turn on {precision:?} autocast on this device"));
        }
        Ok(Some(Self { device, was_enabled, was_dtype }))
    }

    /// Whether autocast is on for `device` now (for tests).
    pub fn is_enabled(device: Device) -> bool {
        // SAFETY: integer in, integer out.
        unsafe { lab_autocast_is_enabled(device_code(device)) == 1 }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // SAFETY: integers only. A failure here cannot be reported from `drop`; it would leave
        // autocast on, which the next `enter`/exit pair overwrites.
        unsafe {
            lab_autocast_exit(self.device, self.was_enabled, self.was_dtype);
        }
    }
}

/// fp16's dynamic loss scale, with PyTorch `GradScaler`'s rules and defaults (growth ×2,
/// back-off ×½).
#[derive(Clone, Debug, PartialEq)]
pub struct Scaler {
    pub scale: f64,
    /// Consecutive phases without an overflow since the last change of scale.
    pub growth_tracker: u64,
    pub growth_interval: u64,
    /// Phases skipped for an overflow, over the run.
    pub skipped: u64,
}

/// The scale's growth and back-off factors (PyTorch's defaults).
const GROWTH: f64 = 2.0;
const BACKOFF: f64 = 0.5;

impl Scaler {
    pub fn new(init_scale: f64, growth_interval: u64) -> Self {
        Self { scale: init_scale, growth_tracker: 0, growth_interval, skipped: 0 }
    }

    /// The loss to back-propagate: `loss` in fp32 (an fp16 loss times 2^16 would overflow
    /// before any gradient does) times the scale.
    pub fn scaled(&self, loss: &Tensor) -> Tensor {
        loss.to_kind(tch::Kind::Float) * self.scale
    }

    /// Divides `grads` by the scale in place and returns, on the device, whether any of them
    /// holds an inf or a NaN (a bool scalar). Undefined gradients (unreached parameters) are
    /// left alone.
    pub fn unscale(&self, grads: &mut [Tensor]) -> Option<Tensor> {
        let inverse = 1.0 / self.scale;
        let mut found: Option<Tensor> = None;
        tch::no_grad(|| {
            for g in grads.iter_mut().filter(|g| g.defined()) {
                let _ = g.g_mul_scalar_(inverse);
                let bad = g.isfinite().all().logical_not();
                found = Some(match found.take() {
                    Some(f) => f.logical_or(&bad),
                    None => bad,
                });
            }
        });
        found
    }

    /// After a phase: back off on an overflow (the phase was skipped), grow after
    /// `growth_interval` clean phases in a row.
    pub fn update(&mut self, overflowed: bool) {
        if overflowed {
            self.scale *= BACKOFF;
            self.growth_tracker = 0;
            self.skipped += 1;
        } else {
            self.growth_tracker += 1;
            if self.growth_tracker == self.growth_interval {
                self.scale *= GROWTH;
                self.growth_tracker = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
