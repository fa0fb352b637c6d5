//! # lab-plugin-api
//!
//! The interface between `lab`'s runtime and its plugins, and the only crate they share.
//!
//! ## For plugin authors
//! Implement one of the four traits and call [`export_plugins!`]:
//! - [`ArchitecturePlugin`]: builds named networks ([`Network`]); optionally its own latent
//!   sampler and sample grid ([`VisualCtx`]).
//! - [`LossPlugin`]: a plan of phases ([`PhasePlan`]) and, per phase, one loss per group of
//!   networks ([`Losses`]) computed through the [`LossCtx`]; optional checkpointed state.
//! - [`AugmentPlugin`]: differentiable `apply(x, seed)`, a feedback hook, checkpointed state.
//! - [`MetricPlugin`]: streaming `reset / update / compute` with `higher_is_better`.
//!
//! Every entry point returns [`Result`], whose [`Error`] carries a message, the config key it is
//! about ([`Error::config`]) and a detail (backtraces) shown only with `--verbose`. Configs are
//! parsed with [`config::parse`]: unknown keys and wrong types are refused naming the key; the
//! common checks on values are in [`config::check`]. A metric may cache what it derives from the
//! reference set through [`MetricPlugin::reference`].
//! The core's side (handles, loader glue) lives in [`host`]; authors never need it.
//!
//! ## The rule
//! Only C-ABI-stable data crosses the dynamic-library boundary: `#[repr(C)]` structs of plain
//! data, `extern "C"` function tables, `abi_stable`'s FFI-safe `RString`/`RVec`/`RResult`, and
//! libtorch's own tensor handle with explicit ownership ([`tensor`]). No `dyn Trait`, no
//! `tch::Tensor`, no `VarStore` ever crosses. The tables, glue and panic guards are generated:
//! the contexts the core lends ([`LossCtx`], [`VisualCtx`]) from one method list each
//! ([`host_context!`]), the plugin tables from the traits' glue in each module.
//!
//! ## Compatibility
//! Every table starts with its `size` and grows only at its end, one block per *revision*.
//! Each revision's definitions are hashed ([`FINGERPRINTS`]); a library reports the revision it
//! was built for and the fingerprint of every revision up to it. The loader accepts it when all
//! the revisions both sides know have equal fingerprints: a plugin built for an older revision
//! keeps loading (the core sees its shorter tables and uses defaults for what is missing), and a
//! newer one loads too (its extra methods are ignored; a context method the core lacks fails
//! with a clear error when called). Any other change to a definition changes revision 0's
//! fingerprint, and the library is skipped with a one-paragraph warning instead of crashing.
//! Revision 1 added checkpointed loss state and the metrics' reference hook (what a metric may
//! cache about the reference set, such as FID's statistics); revision 2 the class labels of
//! every batch a metric sees ([`MetricPlugin::update_labelled`], for the Classification
//! Accuracy Score); revision 3 what a model measures about itself
//! ([`ArchitecturePlugin::evaluate`] through an [`EvalCtx`]: a VAE's test ELBO, InfoGAN's code
//! accuracy, BiGAN's encoder probe); revision 4 the images the generator was trained on, for
//! metrics that ask for them ([`MetricPlugin::wants_training_set`]: CAS's augmentation arm
//! trains a classifier on them with and without samples).
//!
//! ## The zoo, written against this interface
//! Networks name the phases their optimizers step in; the default plan is `D` ×
//! `train.d_steps` then `G`; optimizers, schedules and clipping are per-network config
//! (`[optim.networks.<name>]`), not plugin code.
//! - **GAN (MLP), CGAN**: an architecture with `generator`/`discriminator` (labels as a second
//!   input, `num_classes > 0`); `minimax` or `non-saturating`; SGD with momentum, an
//!   exponential lr decay and a momentum ramp in `[optim.networks.*]`; uniform latents through
//!   `sample_latent`.
//! - **DCGAN, BigGAN, SNGAN, SAGAN**: `generator`/`discriminator` with the default plan;
//!   `hinge` or `non-saturating`; TTUR by per-network lr; SNGAN's n_dis = 5 is `train.d_steps`
//!   and its G batch of 128 a `[[train.phases]]` with `batch_size = 128`.
//! - **LAPGAN**: one `generator` holding every level (sampling down the pyramid from a latent,
//!   or each level's image on the real pyramid from `[latent, real]` through `run_network`) and
//!   `discriminator_k` per level; the loss returns one group per level's D ([`Losses::add`]);
//!   `visualize` draws the pyramid's stages (`plugins/lapgan`).
//! - **GRAN**: `sample_latent` returns one z per recurrent step (`[n, T·z]`); `visualize`
//!   draws the canvases per step.
//! - **InfoGAN**: `sample_latent` returns noise ‖ codes; `q_head` has phases `D` and `G`; the
//!   loss adds the mutual-information term with `run_network("q_head", [features])`;
//!   `visualize` lays out code traversals; `evaluate` scores the code as a classifier
//!   (`plugins/infogan`).
//! - **BiGAN / ALI**: `encoder` with phase `G`; D takes `(x, z)`: the loss calls
//!   `run_network("discriminator", [x, E(x)])` and `[G(z), z]`; `visualize` draws x → E → G.
//! - **WGAN**: the loss's plan boosts `D` to 100 repeats on the first 25 steps and every 500th
//!   (`boost_*`); RMSprop and `clip = 0.01` on `discriminator` in config (the `wgan` loss).
//! - **WGAN-GP, LSGAN**: the `wgan-gp` and `least-squares` losses (`d_steps = 5` for WGAN-GP,
//!   Adam β = (0, 0.9)).
//! - **BEGAN**: an auto-encoder `discriminator`; the loss keeps k_t in `state()` and logs
//!   M_global and k_t; lr halving is a step schedule (`plugins/began`).
//! - **StyleGAN2**: a plan with `G`, `G_pl` (every 4, lazy) and `D`, `D_r1` (every 16, lazy);
//!   the loss keeps the path-length mean in `state()` and reads w from the generator's second
//!   output; EMA by half-life with ramp-up (`plugins/stylegan2`).
//! - **VAE**: a plan with one phase `G` stepping `encoder` and `generator` (the decoder); no
//!   discriminator at all; `evaluate` measures the test ELBO (`plugins/vae`).
//! - **VAE-GAN**: one phase stepping `encoder`, `generator` and `discriminator`, each with its
//!   own loss ([`Losses::add`]); the equilibrium gating is [`Losses::skip`].
//! - **pix2pix, CycleGAN**: two-domain data (`real` is A, `real_b` is B); CycleGAN declares
//!   `generator`, `generator_ba`, `discriminator_a`, `discriminator_b`, keeps its image pools in
//!   `state()`, and `visualize` draws A → B → A.
pub mod architecture;
pub mod augment;
pub mod config;
pub mod context;
pub mod error;
pub mod inputs;
pub mod library;
pub mod loss;
pub mod metric;
pub mod paths;
pub mod tensor;

pub use architecture::{ArchitecturePlugin, EvalCtx, Network, Spec, VarStoreNetwork, VisualCtx};
pub use augment::AugmentPlugin;
pub use error::{Error, Result};
pub use library::{BuildEnv, BuildInfo, DataSpec, PluginKind};
pub use loss::{LossCtx, LossPlugin, Losses, PhasePlan, Role, PHASE_D, PHASE_G};
pub use metric::{MetricPlugin, Value};

/// What the core uses: handles on plugin objects, the traits it implements to serve the
/// contexts, and the loader's view of a library. Plugin authors never need this module.
pub mod host {
    pub use crate::architecture::{Architecture, EvalHost, Info, NetworkHandle, VisualHost};
    pub use crate::augment::Augment;
    pub use crate::library::{into_result, Factory, FfiResult, PluginDescriptor, PluginLibrary};
    pub use crate::loss::{Group, Loss, LossHost};
    pub use crate::metric::Metric;
}

/// Re-exported so plugins use exactly the core's versions.
pub use abi_stable;
pub use tch;

/// The interface's human-readable version: `2.<revision>`.
pub const INTERFACE_VERSION: &str = "2.4";
/// The interface revision this crate defines. Revisions only add at the end of tables.
pub const REVISION: u32 = 4;
/// The libtorch version this build is compiled against (from torch's `version.py`).
pub const LIBTORCH_VERSION: &str = env!("LAB_LIBTORCH_VERSION");
/// The `tch` version pinned by the workspace.
pub const TCH_VERSION: &str = "0.24.0";

/// Defines `#[repr(C)]` interface items and records their source text for [`FINGERPRINTS`]:
/// `LAYOUT` for revision 0, `LAYOUT_R1`..`LAYOUT_R4` for items added in revisions 1 to 4.
#[doc(hidden)]
#[macro_export]
macro_rules! abi {
    (revision 1: $($item:item)*) => {
        $($item)*
        #[doc(hidden)]
        pub const LAYOUT_R1: &str = stringify!($($item)*);
    };
    (revision 2: $($item:item)*) => {
        $($item)*
        #[doc(hidden)]
        pub const LAYOUT_R2: &str = stringify!($($item)*);
    };
    (revision 3: $($item:item)*) => {
        $($item)*
        #[doc(hidden)]
        pub const LAYOUT_R3: &str = stringify!($($item)*);
    };
    (revision 4: $($item:item)*) => {
        $($item)*
        #[doc(hidden)]
        pub const LAYOUT_R4: &str = stringify!($($item)*);
    };
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

/// Revision 0: every definition's text, plus the libtorch and tch versions.
const FINGERPRINT_R0: u64 = {
    let mut h = 0xcbf2_9ce4_8422_2325;
    h = fnv1a(h, tensor::LAYOUT);
    h = fnv1a(h, error::LAYOUT);
    h = fnv1a(h, library::LAYOUT);
    h = fnv1a(h, architecture::LAYOUT);
    h = fnv1a(h, architecture::VISUAL_LAYOUT);
    h = fnv1a(h, loss::LAYOUT);
    h = fnv1a(h, loss::CONTEXT_LAYOUT);
    h = fnv1a(h, augment::LAYOUT);
    h = fnv1a(h, metric::LAYOUT);
    h = fnv1a(h, TCH_VERSION);
    h = fnv1a(h, LIBTORCH_VERSION);
    h
};

/// The fingerprint of each revision: revision r's hashes r − 1's and the items r added.
pub const FINGERPRINTS: [u64; 5] = [FINGERPRINT_R0, FINGERPRINT_R1, FINGERPRINT_R2, FINGERPRINT_R3, FINGERPRINT_R4];

const FINGERPRINT_R1: u64 = fnv1a(fnv1a(FINGERPRINT_R0, loss::LAYOUT_R1), metric::LAYOUT_R1);
const FINGERPRINT_R2: u64 = fnv1a(FINGERPRINT_R1, metric::LAYOUT_R2);
const FINGERPRINT_R3: u64 = fnv1a(fnv1a(FINGERPRINT_R2, architecture::LAYOUT_R3), architecture::EVAL_LAYOUT);
const FINGERPRINT_R4: u64 = fnv1a(FINGERPRINT_R3, metric::LAYOUT_R4);

/// Revision 0's fingerprint, which every library exports through a function that never
/// changes shape.
pub const ABI_FINGERPRINT: u64 = FINGERPRINTS[0];
