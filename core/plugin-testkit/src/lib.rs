//! # lab-plugin-testkit
//!
//! What a plugin's own unit tests need, so that `cargo test` in a plugin crate checks the plugin
//! the way `lab run` will use it. Every harness creates the plugin through its descriptor and
//! calls it through the same `extern "C"` tables the core calls: a test that passes here has
//! crossed the real boundary (config parsing, error values, tensor ownership), not a Rust
//! shortcut around it.
//!
//! - [`rng_lock`]: serialises tests that seed libtorch's global generator.
//! - [`architecture`]: build an architecture from TOML and check its networks (shapes, value
//!   range, gradients reaching every parameter, weights decided by the seed).
//! - [`loss`]: a fake loss context ([`loss::FakeLossHost`]): a fixed real batch, a trainable
//!   "generator output" and a linear discriminator, recording every call.
//! - [`augment`]: check an augmentation (shape kept, seed decides, differentiable).
//! - [`metric`]: stream batches through a metric and compute it.
//! - [`network`]: checks on a network before it crosses the boundary (parameter counts,
//!   singular values, weights decided by the seed).
//! - [`reference`]: cross-checks of networks against an independent PyTorch implementation
//!   (recorded float64 passes replayed by a Python script).
//!
//! ```ignore
//! # use lab_plugin_api::DataSpec;
//! # struct MyGan;
//! # impl lab_plugin_api::ArchitecturePlugin for MyGan {
//! #   const NAME: &'static str = "x"; const DESCRIPTION: &'static str = "x"; type Config = ();
//! #   fn create(_: (), _: lab_plugin_api::BuildEnv) -> lab_plugin_api::Result<Self> { Ok(MyGan) }
//! #   fn z_dim(&self) -> i64 { 1 }
//! #   fn networks(&self) -> Vec<lab_plugin_api::Spec> { vec![] }
//! #   fn build(&self, _: &str) -> lab_plugin_api::Result<Box<dyn lab_plugin_api::Network>> { unimplemented!() }
//! # }
//! let arch = lab_plugin_testkit::architecture::create::<MyGan>("", lab_plugin_testkit::FASHION_MNIST).unwrap();
//! arch.check_gan(4); // shapes, range, gradients, determinism
//! ```
pub mod architecture;
pub mod augment;
pub mod loss;
pub mod metric;
pub mod network;
pub mod reference;

use std::sync::{Mutex, MutexGuard, PoisonError};

use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{BuildEnv, DataSpec};

pub use lab_plugin_api;

/// Serialises tests that seed or draw from libtorch's global random generator. The test harness
/// runs tests on parallel threads, and a draw by another test between `manual_seed` and a build
/// makes "same seed, same weights" flaky. One lock per test process, shared by every crate in it.
pub fn rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 28×28 grey images in 10 classes, as the quickstart's data.
pub const FASHION_MNIST: DataSpec = DataSpec { channels: 1, height: 28, width: 28, num_classes: 10 };
/// 32×32 colour images in 10 classes.
pub const CIFAR10: DataSpec = DataSpec { channels: 3, height: 32, width: 32, num_classes: 10 };

/// The environment the core passes to a factory, on the CPU.
pub fn cpu_env(data: DataSpec) -> BuildEnv {
    BuildEnv::from_device(Device::Cpu, data)
}

/// `n` images shaped like `data`, uniformly in [-1, 1), from the global generator.
pub fn images(n: i64, data: DataSpec) -> Tensor {
    Tensor::rand([n, data.channels, data.height, data.width], (Kind::Float, Device::Cpu)) * 2.0 - 1.0
}

/// `n` labels in `0..classes` from the global generator.
pub fn labels(n: i64, classes: i64) -> Tensor {
    Tensor::randint(classes.max(1), [n], (Kind::Int64, Device::Cpu))
}

/// Whether every value of `t` is finite.
pub fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) != 0
}
