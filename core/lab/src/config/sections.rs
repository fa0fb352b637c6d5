//! The sections of an experiment other than `[data]` (which lives with the datasets).
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[model]`: which architecture plugin, and its own config (validated by the plugin).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub architecture: String,
    pub config: toml::Table,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { architecture: "dcgan".into(), config: toml::Table::new() }
    }
}

/// `[loss]`: which loss plugin, and its own config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    pub name: String,
    pub config: toml::Table,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { name: "non-saturating".into(), config: toml::Table::new() }
    }
}

/// `[augment]`: which augmentation plugin (`none` for no augmentation), and its own config.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    pub name: String,
    pub config: toml::Table,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self { name: "none".into(), config: toml::Table::new() }
    }
}

impl AugmentConfig {
    pub fn enabled(&self) -> bool {
        self.name != "none"
    }
}

/// `[train]`: the length and shape of training.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Generator steps.
    pub steps: u64,
    pub batch_size: i64,
    /// Discriminator steps per generator step.
    pub d_steps: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self { steps: 1000, batch_size: 64, d_steps: 1 }
    }
}

/// Adam settings for one network; unset fields fall back to `[optim]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimOverride {
    pub lr: Option<f64>,
    pub betas: Option<[f64; 2]>,
}

/// Resolved Adam settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
}

/// `[optim]`: Adam for every network, with per-network overrides in `[optim.networks.<name>]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub networks: BTreeMap<String, OptimOverride>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self { lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, networks: BTreeMap::new() }
    }
}

impl OptimConfig {
    pub fn defaults(&self) -> Adam {
        Adam { lr: self.lr, betas: self.betas, eps: self.eps }
    }

    pub fn resolve(&self, o: &OptimOverride) -> Adam {
        Adam { lr: o.lr.unwrap_or(self.lr), betas: o.betas.unwrap_or(self.betas), eps: self.eps }
    }

    /// The settings for network `name`.
    pub fn for_network(&self, name: &str) -> Adam {
        self.networks.get(name).map(|o| self.resolve(o)).unwrap_or_else(|| self.defaults())
    }
}

/// `[ema]`: an exponential moving average of the generator, used for samples and evaluation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmaConfig {
    pub enabled: bool,
    pub decay: f64,
    /// Before this step the EMA copies the generator.
    pub start: u64,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self { enabled: true, decay: 0.999, start: 0 }
    }
}

/// `[log]`: scalars and sample grids.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Scalars every N generator steps.
    pub every: u64,
    /// A fixed-z sample grid every N generator steps (0: only at the end).
    pub samples_every: u64,
    /// Images in the sample grid.
    pub samples: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { every: 50, samples_every: 500, samples: 64 }
    }
}

/// `[checkpoint]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// A checkpoint every N generator steps (0: only at the end).
    pub every: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { every: 1000 }
    }
}

/// `[plugins]`: extra folders searched for plugin libraries.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub paths: Vec<PathBuf>,
}

/// `[track]`: where metrics go besides `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrackConfig {
    pub tensorboard: bool,
    pub mlflow: MlflowConfig,
}

impl Default for TrackConfig {
    fn default() -> Self {
        Self { tensorboard: true, mlflow: MlflowConfig::default() }
    }
}

/// `[track.mlflow]`: on when `uri` is set or `MLFLOW_TRACKING_URI` is in the environment.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MlflowConfig {
    /// The tracking server, e.g. `http://127.0.0.1:5000` (default: `$MLFLOW_TRACKING_URI`).
    pub uri: String,
    /// The MLflow experiment (default: the config's `name`).
    pub experiment: String,
    /// Also upload `checkpoints/*` as artifacts at the end.
    pub upload_checkpoints: bool,
}

impl MlflowConfig {
    /// The server to use, if any.
    pub fn resolved_uri(&self) -> Option<String> {
        if !self.uri.is_empty() {
            return Some(self.uri.clone());
        }
        std::env::var("MLFLOW_TRACKING_URI").ok().filter(|u| !u.is_empty())
    }
}
