//! `fid`: the Fréchet Inception distance between the real (reference) and generated feature
//! distributions, each summarised by streaming float64 moments on the device.
use sha2::Digest;
use std::path::PathBuf;

use lab_plugin_api::tch::{Device, Tensor};
use lab_plugin_api::{BuildEnv, MetricPlugin, Value};
use serde_json::json;

use crate::check_features;
use crate::config::FidConfig;
use crate::features::FeatureNet;
use crate::gaussian::{frechet_distance, GaussianStats, Moments};

/// Where the reference side comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reference {
    /// Real batches of the current evaluation (`reference_stats = ""`).
    Batches,
    /// Read from `reference_stats` at creation.
    Loaded(PathBuf),
    /// Accumulated from real batches at the first `compute`, written to `reference_stats`.
    Written(PathBuf),
}

/// The `fid` metric. Lower is better; 0 for identical feature distributions.
#[derive(Debug)]
pub struct Fid {
    config: FidConfig,
    net: FeatureNet,
    device: Device,
    real: Moments,
    fake: Moments,
    /// The frozen reference statistics, once loaded or written; kept across `reset`.
    reference: Option<GaussianStats>,
    source: Reference,
    /// Real images seen while a frozen reference was in use.
    real_ignored: i64,
}

impl Fid {
    /// Adds a `[N, D]` batch of features to one side; what `update` does after the network.
    pub fn update_features(&mut self, features: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        check_features(features)?;
        if fake {
            self.fake.add(features)
        } else if self.reference.is_some() {
            self.real_ignored += features.size()[0];
            Ok(())
        } else {
            self.real.add(features)
        }
    }

    /// This evaluation's real batches as reference statistics.
    fn real_stats(&self) -> lab_plugin_api::Result<GaussianStats> {
        if self.real.count() == 0 {
            return Err("fid has no reference: feed real images (update with fake = false) or set `reference_stats` \
                        to a statistics file"
                .into());
        }
        self.real.stats(self.net.sha256()).map_err(|e| e.context("fid reference"))
    }
}

impl Fid {
    /// Reads `reference_stats` when it names an existing file, refusing one computed with
    /// another feature network.
    fn load_reference(&mut self) -> lab_plugin_api::Result<()> {
        let path = PathBuf::from(&self.config.reference_stats);
        if self.config.reference_stats.is_empty() || !path.is_file() {
            return Ok(());
        }
        let stats = GaussianStats::load(&path, self.device)?;
        if stats.features_sha256 != self.net.sha256() {
            return Err(lab_plugin_api::Error::new(format!(
                "reference statistics {} were computed with a feature network of SHA-256 {}, but {} has {}; \
                 delete the file to recompute them, or point `reference_stats` elsewhere",
                path.display(),
                stats.features_sha256,
                self.net.file_name(),
                self.net.sha256()
            )));
        }
        self.reference = Some(stats);
        self.source = Reference::Loaded(path);
        Ok(())
    }
}

impl MetricPlugin for Fid {
    const NAME: &'static str = "fid";
    const DESCRIPTION: &'static str =
        "Fréchet Inception distance (Heusel et al., 2017): float64 moments and eigh-based matrix square root on the device";
    type Config = FidConfig;

    fn create(config: FidConfig, env: BuildEnv) -> lab_plugin_api::Result<Self> {
        let device = env.device();
        let net = FeatureNet::load(&config.network, device)?;
        let mut fid = Self {
            config,
            net,
            device,
            real: Moments::default(),
            fake: Moments::default(),
            reference: None,
            source: Reference::Batches,
            real_ignored: 0,
        };
        fid.load_reference()?;
        Ok(fid)
    }

    /// Caches the reference statistics under `cache_dir`, named by the reference set and the
    /// feature network, unless `reference_stats` names a file already.
    fn reference(&mut self, id: &str, cache_dir: &std::path::Path) -> lab_plugin_api::Result<()> {
        if !self.config.reference_stats.is_empty() {
            return Ok(());
        }
        let key = format!("{id}|{}", self.net.sha256());
        let hash = format!("{:x}", sha2::Sha256::digest(key.as_bytes()));
        std::fs::create_dir_all(cache_dir).map_err(|e| format!("cannot create {}: {e}", cache_dir.display()))?;
        let file = cache_dir.join(format!("fid-{}-{}.safetensors", id.replace(['/', '|'], "-"), &hash[..16]));
        self.config.reference_stats = file.display().to_string();
        self.load_reference()
    }

    /// Forgets the generated side and this evaluation's real batches; a reference read from or
    /// written to `reference_stats` stays.
    fn reset(&mut self) -> lab_plugin_api::Result<()> {
        self.real = Moments::default();
        self.fake = Moments::default();
        self.real_ignored = 0;
        Ok(())
    }

    fn update(&mut self, images: &Tensor, fake: bool) -> lab_plugin_api::Result<()> {
        let features = self.net.run(images, &self.config.feature_args)?;
        self.update_features(&features, fake)
    }

    fn compute(&mut self) -> lab_plugin_api::Result<Vec<Value>> {
        if self.fake.count() < 2 {
            return Err(lab_plugin_api::Error::new(format!(
                "fid needs at least 2 generated images; got {}",
                self.fake.count()
            )));
        }
        let fake = self.fake.stats(self.net.sha256())?;
        let mut fresh = match self.reference {
            Some(_) => None,
            None => Some(self.real_stats()?),
        };
        if !self.config.reference_stats.is_empty() {
            if let Some(stats) = fresh.take() {
                // First evaluation with caching on: write the reference once, then reuse it.
                let path = PathBuf::from(&self.config.reference_stats);
                stats.save(&path)?;
                self.source = Reference::Written(path);
                self.reference = Some(stats);
            }
        }
        let reference = self.reference.as_ref().or(fresh.as_ref()).expect("one of them is set");
        let value = frechet_distance(reference, &fake).map_err(|e| format!("fid: {e}"))?;
        Ok(vec![Value { name: "fid".into(), value, higher_is_better: false }])
    }

    fn protocol(&self) -> String {
        let reference = match &self.source {
            Reference::Batches => json!({
                "source": "real batches of this evaluation",
                "count": self.real.count(),
            }),
            Reference::Loaded(p) | Reference::Written(p) => json!({
                "source": if matches!(self.source, Reference::Loaded(_)) { "statistics file (loaded)" } else { "statistics file (written from real batches)" },
                "path": p.display().to_string(),
                "count": self.reference.as_ref().map_or(0, |s| s.count),
                "real_images_ignored": self.real_ignored,
            }),
        };
        json!({
            "metric": "fid",
            "features": self.net.protocol(&self.config.feature_args),
            "generated_count": self.fake.count(),
            "reference": reference,
            "covariance": "unbiased (divided by n - 1)",
            "matrix_sqrt": format!("symmetric eigendecomposition in float64 on {:?}", self.device),
        })
        .to_string()
    }
}
