//! Evaluation during and after training: metric plugins fed the reference split and samples
//! from the EMA generator, with the full protocol recorded beside every value.
//!
//! The reference set is the dataset's `eval.reference` split (`test` or `train`), whole or its
//! first `eval.reference_count` images. FID's reference statistics are cached per protocol
//! (dataset, split, count, feature network sha256, resize rule) in `$LAB_CACHE/stats` (default
//! `~/.cache/lab/stats`), so they are computed once.
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use lab_plugin_api::metric::Metric;
use lab_plugin_api::{BuildEnv, PluginKind, Value};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::{self, DataConfig};
use crate::plugins::{PluginError, Registry};
use crate::seeds::{key, seed_torch, Stream};

/// `[eval]`: which metrics, how often, against what.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every N generator steps; 0: only at the end. Nothing runs without `metrics`,
    /// unless the architecture measures itself (a VAE's test ELBO).
    pub every: u64,
    /// Metric plugins, e.g. `["fid", "is"]`.
    pub metrics: Vec<String>,
    /// Generated samples per evaluation.
    pub num_samples: i64,
    /// `test` or `train`: the split the reference images come from.
    pub reference: String,
    /// Reference images: the first N of the split; 0 for all of it.
    pub reference_count: i64,
    /// The value that selects `checkpoints/best` (default: the first metric's first value).
    pub primary: String,
    /// Feature network (TorchScript) handed to every metric that has a `features` key and does
    /// not set its own.
    pub features: String,
    /// Images per generator / feature-network call.
    pub batch_size: i64,
    /// Per-metric plugin configs: `[eval.config.fid]`.
    pub config: BTreeMap<String, toml::Table>,
    /// Images of each side (training set, reference set) for D's overfitting signature
    /// (`eval/overfit/*`, see `train::overfit`); 0 turns it off.
    pub overfit_images: i64,
    /// Batches (of `batch_size` prior samples) whose batch-norm statistics replace the
    /// generator's running ones while the metrics score its samples: BigGAN's "standing
    /// statistics" (`train::standing_stats`). 0 samples with the running statistics training
    /// left. The architecture's own measures (reconstructions, ELBO) always use those.
    pub standing_stats: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 0,
            metrics: Vec::new(),
            num_samples: 10_000,
            reference: "test".into(),
            reference_count: 0,
            primary: String::new(),
            features: String::new(),
            batch_size: 100,
            config: BTreeMap::new(),
            overfit_images: 1000,
            standing_stats: 0,
        }
    }
}

impl EvalConfig {
    pub fn enabled(&self) -> bool {
        !self.metrics.is_empty()
    }
}

/// One evaluation's values and how they were obtained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalResult {
    pub step: u64,
    pub values: BTreeMap<String, f64>,
    pub higher_is_better: BTreeMap<String, bool>,
    pub protocol: serde_json::Value,
    pub seconds: f64,
}

/// The metric plugins of a run and its reference images.
pub struct Evaluator {
    cfg: EvalConfig,
    metrics: Vec<(String, Metric)>,
    reference: Tensor,
    /// The reference images' class labels, when the dataset has them (for metrics such as CAS).
    reference_labels: Option<Tensor>,
    /// The second domain's reference images, for two-domain data (image-to-image translation).
    reference_b: Option<Tensor>,
    reference_desc: serde_json::Value,
    /// What the architecture measures about itself (its values join the metrics').
    measures: Vec<String>,
    device: Device,
    progress: bool,
    /// The metrics whose warning has been printed (each once per run).
    warned: std::collections::BTreeSet<String>,
}

/// On first use of the standard feature network (no `features` key, no `$LAB_FEATURES`, no file
/// at the default place), downloads it, verified. A failed download is one warning line; the
/// metric then says the file is missing and how to get it by hand. Nothing is tried offline.
fn fetch_default_feature_network(metric_config: &toml::Table) {
    let named = metric_config.get("features").and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty());
    let from_env = std::env::var_os(lab_plugin_api::paths::FEATURES_ENV).is_some_and(|v| !v.is_empty());
    let dest = lab_plugin_api::paths::default_feature_network();
    if named || from_env || crate::data::fetch::offline() || dest.exists() {
        return;
    }
    eprintln!("The feature network is not in {} yet: downloading it (once, 96 MB)", dest.display());
    if let Err(e) = crate::data::fetch::fetch_feature_network(&dest) {
        eprintln!("warning: {e}");
    }
}

/// A metric plugin's error, named by the metric and its config table.
fn metric_error(name: &str, e: lab_plugin_api::Error) -> crate::train::TrainError {
    crate::train::TrainError::Plugin(PluginError::from_plugin(
        PluginKind::Metric,
        name,
        &format!("eval.config.{name}"),
        e,
    ))
}

/// Streams the run's training data (the subset `data.fraction` selects, the images the model
/// saw) to the metrics that ask for it, once; returns its description for the protocol, or
/// `None` when no metric asked (nothing is loaded then).
fn feed_training_set(
    metrics: &mut [(String, Metric)],
    data_cfg: &DataConfig,
    batch_size: i64,
    device: Device,
) -> Result<Option<serde_json::Value>, crate::train::TrainError> {
    let mut wanting = Vec::new();
    for (i, (name, metric)) in metrics.iter().enumerate() {
        if metric.wants_training_set().map_err(|e| metric_error(name, e))? {
            wanting.push(i);
        }
    }
    if wanting.is_empty() {
        return Ok(None);
    }
    let ds = data::load(data_cfg)?.centred();
    let n = ds.images.size()[0];
    let b = batch_size.max(1);
    let mut start = 0;
    while start < n {
        let len = b.min(n - start);
        let images = ds.images.narrow(0, start, len).to_device(device);
        let labels = ds.labels.as_ref().map(|y| y.narrow(0, start, len).to_device(device));
        for &i in &wanting {
            let (name, metric) = &mut metrics[i];
            metric.update_training(&images, labels.as_ref()).map_err(|e| metric_error(name, e))?;
        }
        start += len;
    }
    Ok(Some(serde_json::json!({
        "split": data_cfg.split, "fraction": data_cfg.fraction, "subset": data_cfg.subset,
        "subset_seed": data_cfg.subset_seed, "count": n,
    })))
}

fn cache_dir() -> PathBuf {
    std::env::var_os("LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".cache/lab"))
}

impl Evaluator {
    pub fn new(
        cfg: &EvalConfig,
        data_cfg: &DataConfig,
        registry: &Registry,
        env: BuildEnv,
        device: Device,
    ) -> Result<Self, crate::train::TrainError> {
        let reference_cfg = DataConfig { split: cfg.reference.clone(), fraction: 1.0, count: 0, ..data_cfg.clone() };
        let ds = data::load(&reference_cfg)?.centred();
        let available = ds.images.size()[0];
        let count = if cfg.reference_count > 0 { cfg.reference_count.min(available) } else { available };
        let reference = ds.images.narrow(0, 0, count);
        let reference_labels = ds.labels.as_ref().map(|y| y.narrow(0, 0, count));
        // Two-domain data: the second domain's reference images, aligned with the first's when
        // paired, capped alike when unpaired.
        let reference_b = ds.domain_b.as_ref().map(|b| {
            let n = if b.paired { count } else { count.min(b.images.size()[0]) };
            b.images.narrow(0, 0, n)
        });
        let mut metrics = Vec::new();
        let mut protocol_base = serde_json::json!({
            "dataset": data_cfg.dataset, "split": cfg.reference, "count": count,
        });
        for name in &cfg.metrics {
            let mut table = cfg.config.get(name).cloned().unwrap_or_default();
            // Only metrics with a feature network (a `features` key) take `eval.features`: CAS
            // trains its own classifier.
            let takes_features =
                registry.resolved_config(PluginKind::Metric, name, &toml::Table::new()).contains_key("features");
            if takes_features && !cfg.features.is_empty() && !table.contains_key("features") {
                table.insert("features".into(), cfg.features.clone().into());
            }
            if takes_features {
                fetch_default_feature_network(&table);
            }
            let mut metric = registry.metric(name, &table, env).map_err(|e| match e {
                // Each metric's config lives in its own table, `eval.config.<metric>`.
                PluginError::Config { kind, name, key, keyed, message } => {
                    let key = format!("eval.config.{name}{}", key.strip_prefix("eval.config").unwrap_or(""));
                    PluginError::Config { kind, name, key, keyed, message }
                }
                e => e,
            })?;
            // What a metric derives from the reference set alone (FID's statistics) it may cache,
            // keyed by this identity and what else it depends on; the core knows no metric.
            let id = format!("{}-{}-{count}", data_cfg.dataset, cfg.reference);
            metric.reference(&id, &cache_dir().join("stats")).map_err(|e| metric_error(name, e))?;
            metrics.push((name.clone(), metric));
        }
        if let Some(training_set) = feed_training_set(&mut metrics, data_cfg, cfg.batch_size, device)? {
            protocol_base["training_set"] = training_set;
        }
        Ok(Self {
            cfg: cfg.clone(),
            metrics,
            reference,
            reference_labels,
            reference_b,
            reference_desc: protocol_base,
            measures: Vec::new(),
            device,
            progress: std::io::stderr().is_terminal(),
            warned: Default::default(),
        })
    }

    /// Declares what the architecture measures about itself: the first of them selects the
    /// best checkpoint when there is no metric plugin and no `eval.primary`.
    pub fn with_measures(mut self, measures: Vec<String>) -> Self {
        self.measures = measures;
        self
    }

    /// The reference images (uint8, on the CPU) and their labels.
    pub fn reference(&self) -> (&Tensor, Option<&Tensor>) {
        (&self.reference, self.reference_labels.as_ref())
    }

    /// The second domain's reference images, for two-domain data.
    pub fn reference_b(&self) -> Option<&Tensor> {
        self.reference_b.as_ref()
    }

    /// Runs every metric on `num_samples` images from `generate` (called with latents from
    /// `latent(n)`, drawn right after the core seeds libtorch for each batch, and labels).
    pub fn evaluate(
        &mut self,
        step: u64,
        seed: u64,
        num_classes: i64,
        mut latent: impl FnMut(i64) -> Result<Tensor, String>,
        mut generate: impl FnMut(&Tensor, Option<&Tensor>) -> Result<Tensor, String>,
    ) -> Result<EvalResult, String> {
        let start = Instant::now();
        let b = self.cfg.batch_size.max(1);
        // Without metric plugins (only the architecture's own measures) there is nothing to feed.
        let (n_ref, num_samples) =
            if self.metrics.is_empty() { (0, 0) } else { (self.reference.size()[0], self.cfg.num_samples) };
        let total = (n_ref + num_samples) as u64;
        let bar = self.progress.then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "  eval {msg} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} images",
                )
                .expect("static template"),
            );
            bar
        });
        let mut done = 0u64;
        let mut advance = |n: i64, what: &str| {
            done += n as u64;
            if let Some(bar) = &bar {
                bar.set_message(what.to_string());
                bar.set_position(done);
            }
        };
        for (name, m) in &mut self.metrics {
            m.reset().map_err(|e| format!("metric `{name}`: {e}"))?;
        }
        let mut i = 0;
        while i < n_ref {
            let len = b.min(n_ref - i);
            let batch = self.reference.narrow(0, i, len).to_device(self.device);
            let labels = self.reference_labels.as_ref().map(|y| y.narrow(0, i, len).to_device(self.device));
            for (name, m) in &mut self.metrics {
                m.update_labelled(&batch, labels.as_ref(), false).map_err(|e| format!("metric `{name}`: {e}"))?;
            }
            advance(len, "reference");
            i += len;
        }
        let mut made = 0;
        let mut batch_index = 0u64;
        while made < num_samples {
            let len = b.min(num_samples - made);
            // Seeded by the sample index alone: the same checkpoint always gets the same samples.
            seed_torch(key(seed, Stream::Eval, &[batch_index]));
            let z = latent(len)?;
            let y = (num_classes > 0)
                .then(|| (Tensor::arange(len, (Kind::Int64, self.device)) + made).remainder(num_classes));
            let x = tch::no_grad(|| generate(&z, y.as_ref()))?;
            let images = data::to_pixels(&x);
            for (name, m) in &mut self.metrics {
                m.update_labelled(&images, y.as_ref(), true).map_err(|e| format!("metric `{name}`: {e}"))?;
            }
            advance(len, "samples");
            made += len;
            batch_index += 1;
        }
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let mut values = BTreeMap::new();
        let mut higher = BTreeMap::new();
        let mut protocols = serde_json::Map::new();
        for (name, m) in &mut self.metrics {
            let computed: Vec<Value> = m.compute().map_err(|e| format!("metric `{name}`: {e}"))?;
            for v in computed {
                higher.insert(v.name.clone(), v.higher_is_better);
                values.insert(v.name, v.value);
            }
            let p = m.protocol().map_err(|e| format!("metric `{name}`: {e}"))?;
            let mut p = serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p));
            // A metric raises an alarm through its protocol's `warning` (the leak detector):
            // printed once per run, and kept out of the protocol so that runs stay comparable.
            if let Some(warning) = p.as_object_mut().and_then(|o| o.remove("warning")) {
                if self.warned.insert(name.clone()) {
                    let text = warning.as_str().map(str::to_string).unwrap_or_else(|| warning.to_string());
                    eprintln!("warning: step {step}: metric `{name}`: {text}");
                }
            }
            protocols.insert(name.clone(), p);
        }
        let mut generator = "EMA generator in eval mode (the training generator when EMA is off)".to_string();
        if self.cfg.standing_stats > 0 {
            generator += &format!(
                ", with standing batch-norm statistics: the mean over {} batches of {b} prior samples",
                self.cfg.standing_stats
            );
        }
        let protocol = serde_json::json!({
            "num_samples": num_samples,
            "generator": generator,
            "sample_seed": "keyed by (run seed, eval, batch index)",
            "reference": self.reference_desc,
            "metrics": protocols,
        });
        Ok(EvalResult { step, values, higher_is_better: higher, protocol, seconds: start.elapsed().as_secs_f64() })
    }

    /// The value that selects the best checkpoint, and whether higher is better.
    pub fn primary<'a>(&'a self, result: &'a EvalResult) -> Option<(&'a str, f64, bool)> {
        let name = if self.cfg.primary.is_empty() {
            // The first metric's headline value, e.g. `fid` for the FID plugin; without metric
            // plugins, the architecture's first measure.
            let first = match self.metrics.first() {
                Some((name, _)) => name.as_str(),
                None => self.measures.first()?.as_str(),
            };
            // D's overfitting signature (`overfit/*`) is never a default: it measures D, not G.
            let candidates = || result.values.keys().filter(|k| !k.starts_with("overfit/"));
            candidates().find(|k| k.as_str() == first).or_else(|| candidates().next())?.as_str()
        } else {
            self.cfg.primary.as_str()
        };
        let value = *result.values.get(name)?;
        Some((name, value, *result.higher_is_better.get(name).unwrap_or(&false)))
    }
}
