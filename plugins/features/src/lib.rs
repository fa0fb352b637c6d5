//! # lab-features
//!
//! What the metric plugins (`plugins/metrics`) and models that measure themselves (pix2pix's and
//! CycleGAN's translation FIDs) share: the TorchScript feature network ([`features`]), streaming
//! Gaussian statistics of its features and the Fréchet distance between them ([`gaussian`]),
//! and FID between two image sets a model holds ([`translation`]).
//!
//! It is a plain library, not a plugin: a plugin crate linked into another plugin would bring
//! its exported entry points along (a workspace build turns its `export` feature on for every
//! dependent), so what plugins share lives here, as `lab_nn` does for networks.
pub mod features;
pub mod gaussian;
pub mod network;
pub mod translation;

pub use features::FeatureNet;
pub use gaussian::{frechet_distance, stats_cache_key, stats_file_name, GaussianStats, Moments, StatsKey};
pub use network::NetworkConfig;
pub use translation::SetFid;
