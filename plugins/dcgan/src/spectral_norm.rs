//! Spectral normalisation (Miyato et al., 2018) as DCGAN's `d_norm = "spectral"` applies it: a
//! weight divided by an estimate of its largest singular value, refined by one power iteration
//! per training forward pass. The mechanism is `lab_nn`'s; this module fixes DCGAN's details.
use lab_nn::{Eps, EvalStep, SnOptions};

pub use lab_nn::SpectralNorm;

/// Keeps the power iteration away from a division by zero for an all-zero weight.
const EPS: f64 = 1e-12;

/// DCGAN's spectral norm: vectors normalised as `x / (‖x‖ + 1e-12)`, and evaluation reusing the
/// stored `u` without a power-iteration step.
pub const OPTIONS: SnOptions = SnOptions { eps: Eps::Offset(EPS), eval: EvalStep::Reuse };
