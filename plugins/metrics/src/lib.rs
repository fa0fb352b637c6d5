//! # lab-plugin-metrics
//!
//! The standard GAN metrics as metric plugins: `fid` ([`Fid`]), `kid` ([`Kid`]), `is`
//! ([`InceptionScore`]) and `pr` ([`PrecisionRecall`]). All four run a TorchScript feature
//! network from a local file ([`features`]; by default stylegan2-ada-pytorch's port of
//! TF-Inception `inception-2015-12-05.pt`) on the uint8 batches the core hands over, keep what
//! they need on the run's device, and compute in float64 there.
//!
//! Every metric's `protocol()` is a JSON record of how its numbers were obtained: the network's
//! file name and SHA-256, how it was called, the resize rule, sample counts, splits, subsets,
//! seeds and the reference statistics' origin, so that two numbers are only compared when they
//! were measured the same way.
//!
//! For the core's reference-statistics cache: [`stats_cache_key`] and [`stats_file_name`] name a
//! file by dataset, split, count, feature network and resize rule; `fid`'s `reference_stats` key
//! reads it, or writes it at the first evaluation; [`GaussianStats`] reads and writes it directly.
//!
//! Translation systems, whose generators take images, measure FID themselves with
//! [`SetFid`] (two image sets they hold, in a feature network's features). That and the
//! feature network's code are in the plain library `lab-features`, re-exported here.
//!
//! `cas` ([`Cas`]) is of another kind: it trains a small classifier on labelled samples and
//! tests it on real images (revision 2 of the interface hands metrics the labels).
//!
//! None of the feature-network metrics draws from libtorch's global RNG (KID's subsets come
//! from [`rng`]); `cas` seeds it with its own seed to train its classifiers.
use lab_plugin_api::tch::{Kind, Tensor};

pub mod cas;
pub mod config;
pub mod fid;
pub mod inception_score;
pub mod kid;
pub mod leak;
pub mod precision_recall;
pub mod rng;

/// The feature network, its statistics and FID between held sets live in `lab-features`,
/// which models that measure themselves link too.
pub use lab_features::{features, gaussian, translation};

pub use cas::{Cas, CasConfig};
pub use config::{FidConfig, IsConfig, KidConfig, NetworkConfig, PrConfig};
pub use fid::Fid;
pub use inception_score::{inception_score, InceptionScore};
pub use kid::{kernel_inception_distance, Kid};
pub use lab_features::{
    frechet_distance, stats_cache_key, stats_file_name, FeatureNet, GaussianStats, Moments, SetFid, StatsKey,
};
pub use leak::{Leak, LeakConfig};
pub use precision_recall::{precision_recall, PrecisionRecall};

lab_plugin_api::export_plugins! {
    metric: Fid,
    metric: Kid,
    metric: InceptionScore,
    metric: PrecisionRecall,
    metric: Cas,
    metric: Leak,
}

/// Refuses anything but a non-empty `[N, D]` floating-point batch of features.
pub(crate) fn check_features(features: &Tensor) -> lab_plugin_api::Result<()> {
    if features.dim() != 2 || features.size()[0] == 0 {
        return Err(lab_plugin_api::Error::new(format!(
            "expected a non-empty [N, D] batch of features; got shape [{}]",
            features::shape(features)
        )));
    }
    if !features.is_floating_point() {
        return Err(lab_plugin_api::Error::new(format!("expected floating-point features; got {:?}", features.kind())));
    }
    Ok(())
}

/// The features of real and of generated images, each side kept whole: what KID and
/// precision/recall compute from (FID needs only running moments).
#[derive(Debug, Default)]
pub(crate) struct RealAndFake {
    pub(crate) real: FeatureStore,
    pub(crate) fake: FeatureStore,
}

impl RealAndFake {
    /// Checks a `[N, D]` batch of features and stores it on its side.
    pub(crate) fn push(&mut self, features: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        check_features(features)?;
        if fake { &mut self.fake } else { &mut self.real }.push(features)
    }

    /// Forgets both sides.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Feature batches kept on their device until `compute`, all of one width.
#[derive(Debug, Default)]
pub(crate) struct FeatureStore {
    parts: Vec<Tensor>,
    count: i64,
}

impl FeatureStore {
    /// Keeps a `[N, D]` batch (as float32: the network's precision).
    pub(crate) fn push(&mut self, features: &Tensor) -> lab_plugin_api::Result<()> {
        if let Some(dim) = self.dim() {
            if features.size()[1] != dim {
                return Err(lab_plugin_api::Error::new(format!(
                    "features changed size: {dim} before, {} now",
                    features.size()[1]
                )));
            }
        }
        self.count += features.size()[0];
        self.parts.push(features.to_kind(Kind::Float).detach());
        Ok(())
    }

    /// Samples kept.
    pub(crate) fn count(&self) -> i64 {
        self.count
    }

    /// The feature width, once a batch is in.
    pub(crate) fn dim(&self) -> Option<i64> {
        self.parts.first().map(|t| t.size()[1])
    }

    /// Every batch in one `[N, D]` tensor; `[0, 0]` (on the CPU) when empty.
    pub(crate) fn all(&self) -> Tensor {
        if self.parts.is_empty() {
            Tensor::zeros([0, 0], (Kind::Float, lab_plugin_api::tch::Device::Cpu))
        } else {
            Tensor::cat(&self.parts, 0)
        }
    }
}

#[cfg(test)]
mod tests;
