//! Per-sample random draws, all from libtorch's default generator on the batch's device.
//!
//! Drawing on the device keeps the hot loop free of host-to-device copies (a copy from host
//! memory would wait for the GPU's queue). The price is that the draws use libtorch's global
//! generator: [`seed`] resets it at the start of every `apply`, from the seed the core passes,
//! which makes every augmentation a pure function of `(input, seed)`. The core reseeds the
//! generator at the start of every phase anyway, so later draws in the phase stay reproducible.
//!
//! Draws are made in `f32` whatever the batch's kind, so a `f64` batch gets exactly the
//! parameters a `f32` batch would under the same seed.
use lab_plugin_api::tch::{self, Device, Kind, Tensor};

/// Resets libtorch's default generators (the CPU's and every CUDA device's) from `seed`.
///
/// libtorch's CPU generator (a Mersenne twister) keeps only 32 bits of its seed, so the 64 bits
/// are mixed first: seeds that differ in any bit give different streams.
pub fn seed(seed: u64) {
    tch::manual_seed(mix(seed) as i64);
}

/// splitmix64's finaliser: every output bit depends on every input bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` draws from U(low, high), as `f32`.
pub fn uniform(n: i64, low: f64, high: f64, device: Device) -> Tensor {
    // `rand·(high − low) + low` reproduces DiffAugment's own expressions exactly for its ranges
    // (`rand − 0.5`, `rand·2`, `rand + 0.5`): multiplying by 1 or 2 and adding 0 are exact.
    Tensor::rand([n], (Kind::Float, device)) * (high - low) + low
}

/// `n` draws whose logarithm is uniform: scale factors in [low, high] (both > 0) whose
/// inverses are as likely as themselves when the range is symmetric (`low = 1/high`).
pub fn log_uniform(n: i64, low: f64, high: f64, device: Device) -> Tensor {
    uniform(n, low.ln(), high.ln(), device).exp()
}

/// `n` integers drawn uniformly from `low..=high`, as `i64`.
pub fn integers(n: i64, low: i64, high: i64, device: Device) -> Tensor {
    Tensor::randint_low(low, high + 1, [n], (Kind::Int64, device))
}

/// A boolean `[n]` mask, each entry true with probability `p`.
pub fn coin(n: i64, p: f64, device: Device) -> Tensor {
    Tensor::rand([n], (Kind::Float, device)).lt(p)
}
