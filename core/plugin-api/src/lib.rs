//! # lab-plugin-api
//!
//! The interface between `lab`'s runtime and its plugins, and the only crate they share.
//!
//! ## The rule
//! Only C-ABI-stable data crosses the dynamic-library boundary: `#[repr(C)]` structs of plain
//! data, `extern "C"` function tables, `abi_stable`'s FFI-safe `RString`/`RVec`/`RResult`, and
//! libtorch's own tensor handle with explicit ownership ([`tensor`]). No `dyn Trait`, no
//! `tch::Tensor`, no `VarStore` ever crosses. Plugin authors still write plain Rust: they
//! implement [`ArchitecturePlugin`], [`LossPlugin`], [`AugmentPlugin`] or [`MetricPlugin`] and call
//! [`export_plugins!`]; this crate generates the C tables and wraps every entry point in
//! `catch_unwind`, so a panic (tch reports shape errors as panics) returns as an error.
//!
//! ## Layout fingerprint
//! Every `#[repr(C)]` definition is written inside the `abi!` macro, which also records its
//! source text. [`ABI_FINGERPRINT`] hashes all of it at compile time. The loader compares a
//! library's fingerprint (read through a function whose signature never changes) with its own
//! before touching anything else, so a plugin built against a different interface is refused
//! with a one-paragraph message instead of crashing. The hash covers the full text, so even a doc
//! edit on an interface type asks plugins to be rebuilt: conservative by design.
//!
//! ## The four kinds
//! - [`architecture`]: builds named networks; the core adopts their parameters and buffers.
//! - [`loss`]: D-phase and G-phase losses through a context ([`LossCtx`]) the core implements.
//! - [`augment`]: differentiable `apply(x, seed)`, a feedback hook, checkpointed state.
//! - [`metric`]: streaming `reset / update / compute` with `higher_is_better`.
//!
//! ## Writing methods against the loss context
//! The context gives: the real batch and labels, seeded latent and label samples, the generator,
//! the discriminator (optionally behind the run's augmentation, with a [`Role`] so the core can
//! track D(x) and D(G(z))), the augmentation alone, any other named network, and scalar logging.
//! In the D phase the core runs the generator without autograd history; only networks whose
//! [`architecture::Spec`] lists a phase are stepped in it.
//! - **WGAN-GP**: `d_loss` takes `d_fake().mean() - d_real().mean()`, draws `eps ~ U(0,1)` with
//!   `Tensor::rand` (seeded by the trainer before each phase), interpolates `x̂ = eps·x + (1-eps)·G(z)`
//!   with `requires_grad`, calls `discriminate(x̂, y, false, Role::Other)`, and takes the input
//!   gradient with `Tensor::run_backward(.., create_graph = true)`; the penalty
//!   `λ·(‖∇‖₂ − 1)²` is differentiable because libtorch's autograd is shared by both sides.
//! - **R1**: the same input gradient on the real batch (`real()` with `requires_grad`, through
//!   `discriminate(.., augment = true, Role::Real)` as StyleGAN2+DiffAugment does), `γ/2·‖∇‖²`.
//! - **CR**: `discriminate(real, y, false, Real)` and `discriminate(augment(real), y, false, Other)`
//!   and `λ·‖D(T(x)) − D(x)‖²` added to the D loss.
//! - **InfoGAN**: the architecture declares `q_head` with phases `D | G`; the loss builds `z` as
//!   noise ‖ codes, generates, asks `discriminate` for all outputs (the trunk's features are the
//!   second output) and `run_network("q_head", [features])`, adding the code-reconstruction
//!   (mutual information) term to both phases.
//! - **BiGAN / ALI**: the architecture declares `encoder` with phase `G`; D takes `(x, z)` pairs,
//!   so the loss calls `run_network("encoder", [real])` and `run_network("discriminator",
//!   [real, E(real)])` / `[G(z), z]` directly instead of `discriminate`.
pub mod architecture;
pub mod augment;
pub mod config;
pub mod inputs;
pub mod library;
pub mod loss;
pub mod metric;
pub mod tensor;

pub use architecture::{ArchitecturePlugin, Network, Spec, VarStoreNetwork, PHASE_D, PHASE_G};
pub use augment::AugmentPlugin;
pub use library::{BuildEnv, BuildInfo, DataSpec, PluginKind};
pub use loss::{LossCtx, LossPlugin, Phase, Role};
pub use metric::{MetricPlugin, Value};

/// Re-exported so plugins use exactly the core's versions.
pub use abi_stable;
pub use tch;

/// The interface's human-readable version; the fingerprint is what is enforced.
pub const INTERFACE_VERSION: &str = "0.1";
/// The libtorch version this build is compiled against (from torch's `version.py`).
pub const LIBTORCH_VERSION: &str = env!("LAB_LIBTORCH_VERSION");
/// The `tch` version pinned by the workspace.
pub const TCH_VERSION: &str = "0.24.0";

/// Defines `#[repr(C)]` interface items and records their source text for [`ABI_FINGERPRINT`].
#[doc(hidden)]
#[macro_export]
macro_rules! abi {
    ($($item:item)*) => {
        $($item)*
        #[doc(hidden)]
        pub const LAYOUT: &str = stringify!($($item)*);
    };
}

const fn fnv1a(mut hash: u64, text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// A hash of every interface definition's text, plus the libtorch and tch versions.
pub const ABI_FINGERPRINT: u64 = {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, tensor::LAYOUT);
    h = fnv1a(h, library::LAYOUT);
    h = fnv1a(h, architecture::LAYOUT);
    h = fnv1a(h, loss::LAYOUT);
    h = fnv1a(h, augment::LAYOUT);
    h = fnv1a(h, metric::LAYOUT);
    h = fnv1a(h, TCH_VERSION);
    h
};
