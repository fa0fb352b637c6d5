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
    /// Which images D sees augmented: `both` (default: reals and fakes, the differentiable
    /// augmentation of DiffAugment and ADA) or `reals` (reals only: classic dataset
    /// augmentation, which the DiffAugment paper shows leaks into G's samples; kept for that
    /// comparison). Direct `augment(x)` calls of a loss (consistency regularisation) are not
    /// affected.
    pub apply: String,
    pub config: toml::Table,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self { name: "none".into(), apply: "both".into(), config: toml::Table::new() }
    }
}

impl AugmentConfig {
    pub fn enabled(&self) -> bool {
        self.name != "none"
    }

    /// Whether only the images D sees as real are augmented (`apply = "reals"`).
    pub fn reals_only(&self) -> bool {
        self.apply == "reals"
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
    /// The phases of a step, replacing the loss's own plan (empty: the loss's plan, or
    /// `D` × `d_steps` then `G`). See `lab_plugin_api::PhasePlan`.
    pub phases: Vec<lab_plugin_api::PhasePlan>,
    /// Mixed precision for the training phases' forward passes: `false`, `"bf16"` or `"fp16"`
    /// (with dynamic loss scaling). See `lab::train::amp`.
    pub amp: Precision,
    /// fp16's first loss scale (PyTorch's `GradScaler` default, 2^16).
    pub amp_init_scale: f64,
    /// fp16: consecutive phases without an overflow before the scale doubles.
    pub amp_growth_interval: u64,
    /// Keep 4-D weights and image batches in channels-last (NHWC) memory order, PyTorch's
    /// `memory_format=torch.channels_last`. See `lab::train::layout`.
    pub channels_last: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 64,
            d_steps: 1,
            phases: Vec::new(),
            amp: Precision::Full,
            amp_init_scale: 65536.0,
            amp_growth_interval: 2000,
            channels_last: false,
        }
    }
}

/// `train.amp`: the precision of the training phases' forward passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// fp32 throughout (`false`).
    #[default]
    Full,
    /// bfloat16 autocast: fp32's range, so no loss scaling.
    Bf16,
    /// float16 autocast with a dynamic loss scale shared by every phase.
    Fp16,
}

impl Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Precision::Full => s.serialize_bool(false),
            Precision::Bf16 => s.serialize_str("bf16"),
            Precision::Fp16 => s.serialize_str("fp16"),
        }
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Precision;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("false, \"bf16\" or \"fp16\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Precision, E> {
                // `true` names no precision: say which ones there are.
                if v {
                    Err(E::invalid_value(serde::de::Unexpected::Bool(true), &self))
                } else {
                    Ok(Precision::Full)
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Precision, E> {
                match v {
                    "false" | "fp32" => Ok(Precision::Full),
                    "bf16" => Ok(Precision::Bf16),
                    "fp16" => Ok(Precision::Fp16),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A learning-rate (and momentum) schedule, as a pure function of the generator step: the
/// checkpointed step is all a resume needs to continue it exactly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// `constant`, `linear` (to 0 from `start` to `end`), `exponential` (× `factor` per step,
    /// down to `floor`), `step` (× `factor` every `every` steps, down to `floor`), `inverse`
    /// (lr / (1 + step / `every`), GRAN's lr/(1 + epoch/50)) or `power`
    /// (lr − (t/`end`)^`power` · (lr − `floor`), t counted in whole periods of `every` steps:
    /// deeppy's GammaAnnealer, VAE-GAN's per-epoch annealing).
    pub kind: String,
    pub start: u64,
    /// The step where a linear decay reaches 0 and a power decay reaches `floor`; 0 means
    /// `train.steps`.
    pub end: u64,
    pub factor: f64,
    pub every: u64,
    /// The lowest learning rate an exponential or step schedule reaches; where a power
    /// schedule ends.
    pub floor: f64,
    /// The exponent of a power schedule: 1 is linear, below 1 falls fast early (VAE-GAN: 0.75).
    pub power: f64,
    /// A momentum ramp (SGD momentum, Adam β1): from the optimizer's value to `momentum_to`
    /// over `momentum_steps` steps (the original GAN's 0.5 → 0.7). Off when unset.
    pub momentum_to: Option<f64>,
    pub momentum_steps: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: "constant".into(),
            start: 0,
            end: 0,
            factor: 0.5,
            every: 0,
            floor: 0.0,
            power: 1.0,
            momentum_to: None,
            momentum_steps: 0,
        }
    }
}

/// The schedule kinds, as users write them.
pub const SCHEDULE_KINDS: [&str; 6] = ["constant", "linear", "exponential", "step", "inverse", "power"];
/// The optimizer kinds, as users write them.
pub const OPTIMIZER_KINDS: [&str; 4] = ["adam", "rmsprop", "sgd", "adagrad"];

/// One network's overrides in `[optim.networks.<name>]`; unset fields fall back to `[optim]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimOverride {
    pub kind: Option<String>,
    pub lr: Option<f64>,
    pub betas: Option<[f64; 2]>,
    pub eps: Option<f64>,
    pub momentum: Option<f64>,
    pub nesterov: Option<bool>,
    pub alpha: Option<f64>,
    pub weight_decay: Option<f64>,
    pub clip: Option<f64>,
    pub schedule: Option<ScheduleConfig>,
}

/// An optimizer's numeric hyperparameters: as configured, or in force at a step (after the
/// schedule and lazy regularisation's rescaling).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    pub lr: f64,
    /// Adam's (β1, β2).
    pub betas: [f64; 2],
    pub eps: f64,
    /// SGD's (and RMSprop's) momentum.
    pub momentum: f64,
    pub nesterov: bool,
    /// RMSprop's smoothing constant.
    pub alpha: f64,
    pub weight_decay: f64,
}

/// Resolved optimizer settings for one network.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimSettings {
    pub kind: String,
    pub hyper: Hyper,
    /// After each step, clamp every parameter to ±clip (WGAN); 0 = off.
    pub clip: f64,
    pub schedule: ScheduleConfig,
}

/// `[optim]`: one optimizer per network, with per-network overrides in
/// `[optim.networks.<name>]`. Keys that do not apply to a kind are refused when set.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// `adam`, `rmsprop`, `sgd` or `adagrad`.
    pub kind: String,
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub alpha: f64,
    pub weight_decay: f64,
    pub clip: f64,
    pub schedule: ScheduleConfig,
    pub networks: BTreeMap<String, OptimOverride>,
    /// Each network's parameters and optimizer state in one buffer, updated in a constant
    /// number of kernels (`train::optim::flat`); false: the per-tensor loop.
    pub fused: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: "adam".into(),
            lr: 2e-4,
            betas: [0.5, 0.999],
            eps: 1e-8,
            momentum: 0.0,
            nesterov: false,
            alpha: 0.99,
            weight_decay: 0.0,
            clip: 0.0,
            schedule: ScheduleConfig::default(),
            networks: BTreeMap::new(),
            fused: true,
        }
    }
}

impl OptimConfig {
    pub fn defaults(&self) -> OptimSettings {
        self.resolve(&OptimOverride::default())
    }

    pub fn resolve(&self, o: &OptimOverride) -> OptimSettings {
        OptimSettings {
            kind: o.kind.clone().unwrap_or_else(|| self.kind.clone()),
            hyper: Hyper {
                lr: o.lr.unwrap_or(self.lr),
                betas: o.betas.unwrap_or(self.betas),
                eps: o.eps.unwrap_or(self.eps),
                momentum: o.momentum.unwrap_or(self.momentum),
                nesterov: o.nesterov.unwrap_or(self.nesterov),
                alpha: o.alpha.unwrap_or(self.alpha),
                weight_decay: o.weight_decay.unwrap_or(self.weight_decay),
            },
            clip: o.clip.unwrap_or(self.clip),
            schedule: o.schedule.clone().unwrap_or_else(|| self.schedule.clone()),
        }
    }

    /// The settings for network `name`.
    pub fn for_network(&self, name: &str) -> OptimSettings {
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
    /// StyleGAN2's form, used instead of `decay` when > 0: the EMA's half-life in thousands
    /// of generator images (`ema_kimg`).
    pub half_life_kimg: f64,
    /// With `half_life_kimg`: the half-life is at most `rampup` × the images seen so far
    /// (StyleGAN2: 0.05); 0 = no ramp-up.
    pub rampup: f64,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self { enabled: true, decay: 0.999, start: 0, half_life_kimg: 0.0, rampup: 0.0 }
    }
}

impl EmaConfig {
    /// The weight of the old average at generator step `step` with `batch` images a step.
    pub fn beta(&self, step: u64, batch: i64) -> f64 {
        if self.half_life_kimg <= 0.0 {
            return self.decay;
        }
        let mut half_life = self.half_life_kimg * 1000.0;
        if self.rampup > 0.0 {
            half_life = half_life.min(step as f64 * batch as f64 * self.rampup);
        }
        0.5f64.powf(batch as f64 / half_life.max(1e-8))
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
