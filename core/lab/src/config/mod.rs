//! Experiment configs: typed sections with defaults in code, layered by figment as
//! defaults ← experiment TOML ← `LAB_*` environment ← `--set key=value`, then validated once.
mod error;
mod sections;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use sections::*;

use crate::data::DataConfig;
pub use crate::metrics::EvalConfig;

/// One experiment: everything a run needs, exactly as it ran (written to `config.toml`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Experiment {
    /// Groups runs: `runs/<name>/...`, and the MLflow experiment.
    pub name: String,
    pub seed: u64,
    /// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// `true`: deterministic cuDNN kernels, no benchmark autotuning (CPU runs are deterministic
    /// on one machine anyway). `"portable"`: also the same CPU results on every machine (see
    /// [`crate::numerics`]).
    pub deterministic: Determinism,
    /// CPU threads for libtorch's intra-op parallelism; 0 keeps libtorch's default (one per core).
    pub threads: usize,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub loss: LossConfig,
    pub augment: AugmentConfig,
    pub train: TrainConfig,
    pub optim: OptimConfig,
    pub ema: EmaConfig,
    pub log: LogConfig,
    pub checkpoint: CheckpointConfig,
    pub eval: EvalConfig,
    pub plugins: PluginsConfig,
    pub track: TrackConfig,
}

impl Default for Experiment {
    fn default() -> Self {
        Self {
            name: "experiment".into(),
            seed: 0,
            device: "auto".into(),
            deterministic: Determinism::Off,
            threads: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            loss: LossConfig::default(),
            augment: AugmentConfig::default(),
            train: TrainConfig::default(),
            optim: OptimConfig::default(),
            ema: EmaConfig::default(),
            log: LogConfig::default(),
            checkpoint: CheckpointConfig::default(),
            eval: EvalConfig::default(),
            plugins: PluginsConfig::default(),
            track: TrackConfig::default(),
        }
    }
}

/// `deterministic`: `false`, `true`, or `"portable"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Determinism {
    /// Fastest kernels.
    #[default]
    Off,
    /// Deterministic cuDNN kernels on CUDA.
    On,
    /// As `On`, plus CPU results that do not depend on the machine: a fixed thread count and
    /// every CPU library capped at the same instruction set.
    Portable,
}

impl Determinism {
    /// Whether deterministic kernels are asked for at all.
    pub fn is_on(self) -> bool {
        self != Determinism::Off
    }
}

impl Serialize for Determinism {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Determinism::Off => s.serialize_bool(false),
            Determinism::On => s.serialize_bool(true),
            Determinism::Portable => s.serialize_str("portable"),
        }
    }
}

impl<'de> Deserialize<'de> for Determinism {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Determinism;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or \"portable\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Determinism, E> {
                Ok(if v { Determinism::On } else { Determinism::Off })
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Determinism, E> {
                match v {
                    "portable" => Ok(Determinism::Portable),
                    "true" => Ok(Determinism::On),
                    "false" => Ok(Determinism::Off),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The top-level keys, so that `LAB_*` variables meant for other things (`LAB_DATA`,
/// `LAB_PLUGIN_PATH`) are never mistaken for config.
const TOP_LEVEL: &[&str] = &[
    "name",
    "seed",
    "device",
    "deterministic",
    "threads",
    "data",
    "model",
    "loss",
    "augment",
    "train",
    "optim",
    "ema",
    "log",
    "checkpoint",
    "eval",
    "plugins",
    "track",
];
const SCALARS: &[&str] = &["name", "seed", "device", "deterministic", "threads"];

/// Where a config comes from, in layering order after the defaults.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Whether to read `LAB_<SECTION>__<KEY>` variables.
    pub env: bool,
    /// `key=value` assignments, values in TOML syntax (bare words are strings).
    pub set: Vec<String>,
}

impl Experiment {
    /// Layers the sources over the defaults and validates the result.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Experiment::default()));
        if let Some(file) = &sources.file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| ConfigError::Read { path: file.clone(), message: e.to_string() })?;
            // Parse first, so syntax errors point at a line in the user's file.
            toml::from_str::<toml::Table>(&text)
                .map_err(|e| ConfigError::Syntax { path: file.clone(), message: e.to_string().trim().to_string() })?;
            fig = fig.merge(Toml::file_exact(file));
        }
        if sources.env {
            // The filter sees keys after `split` has turned `__` into `.` (`train.steps`).
            fig = fig.merge(Env::prefixed("LAB_").split("__").filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                match key.split_once('.') {
                    Some((top, _)) => TOP_LEVEL.contains(&top),
                    None => SCALARS.contains(&key.as_str()),
                }
            }));
        }
        if !sources.set.is_empty() {
            let table = parse_assignments(&sources.set)?;
            fig = fig.merge(Toml::string(&toml::to_string(&table).expect("a TOML table serialises")));
        }
        let mut exp: Experiment = fig.extract().map_err(|e| ConfigError::from_figment(e, sources))?;
        // `~/` in a file path means the home folder, as in a shell; the resolved config records
        // the expanded path, i.e. the file that was actually used.
        exp.eval.features = expand_home(&exp.eval.features);
        exp.validate(sources.file.as_deref())?;
        Ok(exp)
    }

    /// Cross-field rules, checked in one place.
    pub fn validate(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        let bad = |key: &str, expected: &str, found: String| ConfigError::Invalid {
            file: file.map(Path::to_path_buf),
            key: key.to_string(),
            expected: expected.to_string(),
            found,
        };
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(bad("name", "a non-empty name without slashes", format!("{:?}", self.name)));
        }
        parse_device(&self.device)
            .map_err(|_| bad("device", "`auto`, `cpu`, `cuda` or `cuda:N`", format!("{:?}", self.device)))?;
        self.data
            .validate()
            .map_err(|e| ConfigError::Data { file: file.map(Path::to_path_buf), message: e.to_string() })?;
        let t = &self.train;
        if t.steps == 0 {
            return Err(bad("train.steps", "at least 1 generator step", "0".into()));
        }
        if t.batch_size < 1 {
            return Err(bad("train.batch_size", "a positive batch size", t.batch_size.to_string()));
        }
        if t.d_steps < 1 {
            return Err(bad("train.d_steps", "at least 1 discriminator step per generator step", "0".into()));
        }
        if t.amp == sections::Precision::Fp16 {
            if !(t.amp_init_scale.is_finite() && t.amp_init_scale > 0.0) {
                return Err(bad("train.amp_init_scale", "a positive, finite loss scale", t.amp_init_scale.to_string()));
            }
            if t.amp_growth_interval == 0 {
                return Err(bad("train.amp_growth_interval", "at least 1 phase between growths", "0".into()));
            }
        }
        self.validate_optim(file)?;
        for (i, p) in t.phases.iter().enumerate() {
            let key = format!("train.phases[{i}]");
            if p.name.is_empty() {
                return Err(bad(&format!("{key}.name"), "a phase name such as `D` or `G`", "\"\"".into()));
            }
            if p.every == 0 {
                return Err(bad(&format!("{key}.every"), "at least 1 (run every N steps)", "0".into()));
            }
        }
        if !["both", "reals"].contains(&self.augment.apply.as_str()) {
            return Err(bad(
                "augment.apply",
                "`both` (reals and fakes) or `reals` (reals only)",
                format!("{:?}", self.augment.apply),
            ));
        }
        if !(0.0..=1.0).contains(&self.ema.decay) {
            return Err(bad("ema.decay", "a value in [0, 1]", self.ema.decay.to_string()));
        }
        if self.log.every == 0 {
            return Err(bad("log.every", "at least 1", "0".into()));
        }
        if self.eval.enabled() {
            if !["test", "train"].contains(&self.eval.reference.as_str()) {
                return Err(bad("eval.reference", "`test` or `train`", format!("{:?}", self.eval.reference)));
            }
            if self.eval.num_samples < 1 {
                return Err(bad("eval.num_samples", "at least 1 generated sample", self.eval.num_samples.to_string()));
            }
        }
        if self.log.samples < 1 {
            return Err(bad("log.samples", "at least 1 image in the sample grid", self.log.samples.to_string()));
        }
        Ok(())
    }

    /// `[optim]` and every `[optim.networks.<name>]`: known kinds, sane values, and no key set
    /// that the chosen optimizer would silently ignore.
    fn validate_optim(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        use sections::{OptimOverride, OPTIMIZER_KINDS, SCHEDULE_KINDS};
        let bad = |key: String, expected: String, found: String| ConfigError::Invalid {
            file: file.map(Path::to_path_buf),
            key,
            expected,
            found,
        };
        let top = OptimOverride {
            kind: Some(self.optim.kind.clone()),
            betas: (self.optim.betas != OptimConfig::default().betas).then_some(self.optim.betas),
            momentum: (self.optim.momentum != 0.0).then_some(self.optim.momentum),
            nesterov: self.optim.nesterov.then_some(true),
            alpha: (self.optim.alpha != OptimConfig::default().alpha).then_some(self.optim.alpha),
            ..OptimOverride::default()
        };
        let sections = std::iter::once(("optim".to_string(), &top, self.optim.defaults()))
            .chain(self.optim.networks.iter().map(|(n, o)| (format!("optim.networks.{n}"), o, self.optim.resolve(o))));
        for (key, set, o) in sections {
            if !OPTIMIZER_KINDS.contains(&o.kind.as_str()) {
                return Err(bad(
                    format!("{key}.kind"),
                    format!("one of {}", quoted(&OPTIMIZER_KINDS)),
                    format!("{:?}", o.kind),
                ));
            }
            // Keys that only one kind reads: setting one for another kind is a mistake.
            let only: [(&str, Option<String>, &str); 4] = [
                ("betas", set.betas.map(|b| format!("{b:?}")), "adam"),
                ("momentum", set.momentum.map(|m| m.to_string()), "sgd"),
                ("nesterov", set.nesterov.map(|n| n.to_string()), "sgd"),
                ("alpha", set.alpha.map(|a| a.to_string()), "rmsprop"),
            ];
            for (name, value, kind) in only {
                let applies = o.kind == kind || (name == "momentum" && o.kind == "rmsprop");
                if let (Some(value), false) = (value, applies) {
                    return Err(bad(
                        format!("{key}.{name}"),
                        format!(
                            "no `{name}`, which only `{kind}` reads, for this `{}` optimizer (remove it, or set `{key}.kind = \"{kind}\"`)",
                            o.kind
                        ),
                        format!("{name} = {value}"),
                    ));
                }
            }
            if !(o.hyper.lr > 0.0 && o.hyper.lr.is_finite()) {
                return Err(bad(format!("{key}.lr"), "a positive learning rate".into(), o.hyper.lr.to_string()));
            }
            if o.hyper.betas.iter().any(|b| !(0.0..1.0).contains(b)) {
                return Err(bad(format!("{key}.betas"), "two values in [0, 1)".into(), format!("{:?}", o.hyper.betas)));
            }
            if !(0.0..1.0).contains(&o.hyper.momentum) {
                return Err(bad(format!("{key}.momentum"), "a value in [0, 1)".into(), o.hyper.momentum.to_string()));
            }
            if !(o.clip >= 0.0 && o.clip.is_finite()) {
                return Err(bad(
                    format!("{key}.clip"),
                    "a bound >= 0 (0 turns clipping off)".into(),
                    o.clip.to_string(),
                ));
            }
            let s = &o.schedule;
            if !SCHEDULE_KINDS.contains(&s.kind.as_str()) {
                return Err(bad(
                    format!("{key}.schedule.kind"),
                    format!("one of {}", quoted(&SCHEDULE_KINDS)),
                    format!("{:?}", s.kind),
                ));
            }
            if matches!(s.kind.as_str(), "step" | "inverse" | "power") && s.every == 0 {
                return Err(bad(format!("{key}.schedule.every"), "at least 1 step between decays".into(), "0".into()));
            }
            if (s.kind == "exponential" || s.kind == "step") && !(s.factor > 0.0 && s.factor <= 1.0) {
                return Err(bad(format!("{key}.schedule.factor"), "a factor in (0, 1]".into(), s.factor.to_string()));
            }
            if s.kind == "power" && !(s.power > 0.0 && s.power.is_finite()) {
                return Err(bad(format!("{key}.schedule.power"), "an exponent > 0".into(), s.power.to_string()));
            }
            if s.kind == "power" && !(s.floor >= 0.0 && s.floor <= o.hyper.lr) {
                return Err(bad(
                    format!("{key}.schedule.floor"),
                    format!("the rate a power schedule ends at, in [0, lr = {}]", o.hyper.lr),
                    s.floor.to_string(),
                ));
            }
            if s.momentum_to.is_some() && !(o.kind == "sgd" || o.kind == "adam") {
                return Err(bad(
                    format!("{key}.schedule.momentum_to"),
                    "a momentum ramp on `sgd` (momentum) or `adam` (β1)".into(),
                    format!("`{}`", o.kind),
                ));
            }
        }
        Ok(())
    }

    /// The resolved config as TOML, exactly what `config.toml` holds.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the experiment serialises to TOML")
    }
}

/// `"a", "b", "c"`: choices as users would write them.
fn quoted(choices: &[&str]) -> String {
    choices.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
}

/// `~/rest` as `$HOME/rest`; anything else unchanged.
pub fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest).to_string_lossy().into_owned(),
        _ => path.to_string(),
    }
}

/// The device a config names; `auto` picks CUDA when it is available.
pub fn parse_device(s: &str) -> Result<tch::Device, String> {
    match s {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .map(tch::Device::Cuda)
            .ok_or_else(|| format!("unknown device `{s}`")),
    }
}

/// Turns `a.b=v` assignments into a nested table; `v` is TOML (`3`, `1e-4`, `true`, `[0.5, 0.9]`,
/// `"text"`), and anything that does not parse as TOML is taken as a bare string.
pub fn parse_assignments(set: &[String]) -> Result<toml::Table, ConfigError> {
    let mut root = toml::Table::new();
    for assignment in set {
        let (key, raw) =
            assignment.split_once('=').ok_or_else(|| ConfigError::Assignment { assignment: assignment.clone() })?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ConfigError::Assignment { assignment: assignment.clone() });
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
        let mut table = &mut root;
        let parts: Vec<&str> = key.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => return Err(ConfigError::Assignment { assignment: assignment.clone() }),
            };
        }
        table.insert(parts[parts.len() - 1].to_string(), value);
    }
    Ok(root)
}

#[cfg(test)]
mod tests;
