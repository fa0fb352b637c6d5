//! Spectral normalisation as BigGAN-PyTorch applies it (`layers.SN`, one singular value, one
//! power iteration per forward pass): a weight divided by an estimate of its largest singular
//! value. The mechanism is `lab_nn`'s; this module fixes BigGAN-PyTorch's details, which the
//! cross-check against `reference/biggan_cifar.py` holds to.
use lab_nn::{Eps, EvalStep, SnOptions};

pub use lab_nn::SpectralNorm;

/// BigGAN-PyTorch's `SN_eps` as the DiffAugment scripts run it (utils.py default): the floor
/// under a vector's norm when it is normalised.
pub const SN_EPS: f64 = 1e-8;

/// BigGAN-PyTorch's spectral norm: vectors normalised as `F.normalize` does, `x / max(‖x‖, eps)`,
/// and the power-iteration step taken in both modes, though only training stores the new `u`.
pub const OPTIONS: SnOptions = SnOptions { eps: Eps::Floor(SN_EPS), eval: EvalStep::Iterate };
