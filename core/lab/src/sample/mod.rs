//! `lab sample`: a synthetic dataset from a run's generator, in formats other tools read
//! ([`formats`]), with a `samples.json` that says where it came from.
//!
//! Generation is deterministic: batch `b` is drawn right after seeding libtorch from
//! `(seed, b)`, so the same checkpoint and seed give byte-identical files on the CPU. The
//! output is written under a temporary name beside its destination and renamed into place only
//! when complete: a failure (a full disk, Ctrl-C) never leaves something that looks finished.
pub mod formats;
pub mod labels;

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{Kind, Tensor};

pub use formats::Format;
pub use labels::LabelPlan;

use crate::config::Experiment;
use crate::seeds::{key, seed_torch, Stream};
use crate::train::GeneratorSnapshot;

/// What `lab sample` was asked for.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    pub run: PathBuf,
    pub checkpoint: String,
    pub n: Option<i64>,
    pub out: PathBuf,
    pub format: Format,
    pub labels: Option<String>,
    pub truncation: Option<f64>,
    /// A TorchScript classifier that labels an unconditional model's samples.
    pub label_with: Option<PathBuf>,
    pub seed: u64,
    pub batch_size: i64,
    /// Batches of standing batch-norm statistics; `None`: the run's `eval.standing_stats`.
    pub standing_stats: Option<u64>,
    pub overwrite: bool,
    pub progress: bool,
}

/// `samples.json`: how the dataset was made.
#[derive(Debug, Serialize)]
pub struct Provenance {
    pub lab_version: String,
    pub run: String,
    pub checkpoint: String,
    pub checkpoint_sha256: String,
    pub step: u64,
    pub generator: &'static str,
    pub seed: u64,
    pub count: i64,
    /// `[channels, height, width]`.
    pub image_shape: [i64; 3],
    pub format: String,
    pub labels: String,
    /// Images per class; empty when unlabelled.
    pub per_class: Vec<i64>,
    pub truncation: Option<f64>,
    /// Batches of prior samples (the run's `eval.batch_size` each, drawn as its evaluations
    /// draw them) whose mean batch-norm statistics the generator sampled with (standing
    /// statistics); absent: the checkpoint's running statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standing_stats: Option<u64>,
    /// Present when a classifier chose the labels (`--label-with`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_with: Option<LabelledBy>,
}

/// The classifier that labelled the samples, and how sure it was.
#[derive(Debug, Serialize)]
pub struct LabelledBy {
    pub classifier: String,
    pub sha256: String,
    /// The mean of the top softmax probability over all samples, and per class.
    pub mean_confidence: f64,
    pub per_class_confidence: Vec<f64>,
}

/// A TorchScript classifier: images `[N, C, H, W]` in [-1, 1] → logits `[N, classes]`.
struct Classifier {
    module: tch::CModule,
    path: PathBuf,
}

impl Classifier {
    fn load(path: &Path, device: tch::Device) -> anyhow::Result<Self> {
        let module = tch::CModule::load_on_device(path, device).map_err(|e| {
            anyhow::anyhow!(
                "cannot load the classifier {}: {}; --label-with takes a TorchScript file (torch.jit.save) mapping images [N, C, H, W] in [-1, 1] to logits [N, classes]",
                path.display(),
                crate::cli::brief(&e.to_string()).lines().next().unwrap_or_default()
            )
        })?;
        Ok(Self { module, path: path.to_path_buf() })
    }

    /// `(labels, top probabilities, number of classes)` of a batch.
    fn label(&self, x: &Tensor) -> anyhow::Result<(Tensor, Tensor, i64)> {
        let logits = tch::no_grad(|| self.module.forward_ts(&[x.to_kind(Kind::Float)])).map_err(|e| {
            anyhow::anyhow!("the classifier {} failed: {}", self.path.display(), crate::cli::brief(&e.to_string()))
        })?;
        anyhow::ensure!(
            logits.dim() == 2 && logits.size()[0] == x.size()[0] && logits.size()[1] >= 2,
            "the classifier {} returned shape {:?}; expected logits [{}, classes]",
            self.path.display(),
            logits.size(),
            x.size()[0]
        );
        let (confidence, labels) = logits.softmax(-1, Kind::Float).max_dim(-1, false);
        Ok((labels, confidence, logits.size()[1]))
    }
}

/// Generates and writes the dataset; returns its provenance and the images per second
/// (generated and written).
pub fn sample(opts: &SampleOptions) -> anyhow::Result<(Provenance, f64)> {
    refuse_occupied(&opts.out, opts.overwrite)?;
    let mut exp = Experiment::load(&crate::config::Sources {
        file: Some(opts.run.join("config.toml")),
        env: false,
        set: Vec::new(),
    })
    .map_err(|e| anyhow::anyhow!("{}: not a run folder of lab ({e})", opts.run.display()))?;
    let mut snapshot = GeneratorSnapshot::load(&mut exp, &opts.run, &opts.checkpoint)?;
    // The statistics the run's evaluations scored (the same batches of the same prior draws,
    // so the same statistics), unless the command says otherwise.
    let standing_stats = opts.standing_stats.unwrap_or(exp.eval.standing_stats);
    snapshot.use_standing_stats(standing_stats, exp.eval.batch_size, exp.seed)?;
    let mut classes = snapshot.num_classes();
    if opts.label_with.is_some() {
        anyhow::ensure!(classes == 0, "--label-with labels an unconditional model's samples; this run's generator is class-conditional, so its labels are exact: drop --label-with");
        anyhow::ensure!(opts.labels.is_none(), "--labels chooses a conditional model's classes; with --label-with the classifier names them: drop --labels");
    }
    let classifier = opts.label_with.as_deref().map(|p| Classifier::load(p, snapshot.device())).transpose()?;
    let plan = LabelPlan::parse(opts.labels.as_deref(), opts.n, classes)?;
    let n = plan.count();
    let shape = snapshot.image_shape();
    opts.format.check_shape(shape)?;
    // Refused before anything is generated, like the shape.
    anyhow::ensure!(
        opts.format != Format::Cifar || n >= 5,
        "--format cifar writes CIFAR-10's five training batches: export at least 5 images"
    );
    anyhow::ensure!(
        opts.format != Format::Cifar || !matches!(plan, LabelPlan::Unlabelled { .. }) || opts.label_with.is_some(),
        "--format cifar stores a label per image and this export has none (an unconditional model); use png, npz or idx, or label the samples with --label-with"
    );

    let start = Instant::now();
    let bar = opts.progress.then(|| {
        let bar = ProgressBar::new(n as u64);
        bar.set_style(
            ProgressStyle::with_template("  sample [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} images")
                .expect("static template"),
        );
        bar
    });
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut confidences = Vec::new();
    let mut made = 0;
    let mut batch = 0u64;
    while made < n {
        let len = opts.batch_size.min(n - made);
        seed_torch(key(opts.seed, Stream::Sample, &[batch]));
        let y = plan.labels(made, len);
        let x = snapshot.generate(len, y.as_ref(), opts.truncation)?;
        let y = match &classifier {
            Some(c) => {
                let (y, confidence, k) = c.label(&x)?;
                confidences.push(confidence.to_device(tch::Device::Cpu));
                classes = k;
                Some(y)
            }
            None => y,
        };
        images.push(crate::data::to_pixels(&x).to_device(tch::Device::Cpu));
        if let Some(y) = y {
            labels.push(y.to_device(tch::Device::Cpu));
        }
        made += len;
        batch += 1;
        if let Some(bar) = &bar {
            bar.set_position(made as u64);
        }
    }
    let images = Tensor::cat(&images, 0);
    let labels = (!labels.is_empty()).then(|| Tensor::cat(&labels, 0));
    let label_with = match (&classifier, &labels) {
        (Some(c), Some(y)) => {
            let confidence: Vec<f64> = Vec::try_from(Tensor::cat(&confidences, 0).to_kind(Kind::Double))?;
            let y: Vec<i64> = Vec::try_from(y)?;
            let mut sums = vec![(0.0, 0usize); classes as usize];
            for (&label, &p) in y.iter().zip(&confidence) {
                sums[label as usize].0 += p;
                sums[label as usize].1 += 1;
            }
            Some(LabelledBy {
                classifier: c.path.display().to_string(),
                sha256: crate::plugins::sha256_file(&c.path)?,
                mean_confidence: confidence.iter().sum::<f64>() / confidence.len().max(1) as f64,
                per_class_confidence: sums.iter().map(|(s, k)| if *k > 0 { s / *k as f64 } else { 0.0 }).collect(),
            })
        }
        _ => None,
    };

    let checkpoint_file = opts.run.join("checkpoints").join(format!("{}.safetensors", opts.checkpoint));
    let provenance = Provenance {
        lab_version: env!("CARGO_PKG_VERSION").to_string(),
        run: opts.run.display().to_string(),
        checkpoint: opts.checkpoint.clone(),
        checkpoint_sha256: crate::plugins::sha256_file(&checkpoint_file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", checkpoint_file.display()))?,
        step: snapshot.step,
        generator: if snapshot.ema { "ema" } else { "generator" },
        seed: opts.seed,
        count: n,
        image_shape: shape,
        format: opts.format.as_str().to_string(),
        labels: if label_with.is_some() { "classifier".into() } else { plan.describe() },
        per_class: match &label_with {
            Some(_) => crate::sample::labels::count_per_class(labels.as_ref(), classes),
            None => plan.per_class(labels.as_ref()),
        },
        truncation: opts.truncation,
        standing_stats: (standing_stats > 0).then_some(standing_stats),
        label_with,
    };
    // Written complete under a temporary name, then moved into place.
    let partial = partial_path(&opts.out);
    let _ = remove_any(&partial);
    let format = opts.format;
    let written = format.write(&partial, &images, labels.as_ref(), classes).and_then(|()| {
        let json = serde_json::to_string_pretty(&provenance).map_err(std::io::Error::other)? + "\n";
        std::fs::write(format.provenance_path(&partial), json)?;
        preview(&images, labels.as_ref(), classes)?
            .save_png(&format.preview_path(&partial))
            .map_err(std::io::Error::other)
    });
    if let Err(e) = written {
        let _ = remove_any(&partial);
        format.beside(&partial).iter().for_each(|p| drop(std::fs::remove_file(p)));
        anyhow::bail!("writing {}: {e}; nothing was left behind", opts.out.display());
    }
    if opts.overwrite {
        remove_any(&opts.out).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", opts.out.display()))?;
        format.beside(&opts.out).iter().for_each(|p| drop(std::fs::remove_file(p)));
    }
    for (from, to) in format.beside(&partial).iter().zip(format.beside(&opts.out)) {
        std::fs::rename(from, to)?;
    }
    std::fs::rename(&partial, &opts.out)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Generation and writing together: what a user waits for.
    Ok((provenance, n as f64 / start.elapsed().as_secs_f64().max(1e-9)))
}

/// A picture of the export: a row per class with its first ten images (black where a class has
/// fewer), or the first hundred images ten to a row when unlabelled.
fn preview(images: &Tensor, labels: Option<&Tensor>, classes: i64) -> std::io::Result<crate::track::GridImage> {
    const PER_ROW: i64 = 10;
    let floats = crate::data::to_unit_range(images);
    let picked = match labels {
        Some(y) => {
            let y: Vec<i64> = Vec::try_from(y).map_err(std::io::Error::other)?;
            let blank = Tensor::full_like(&floats.get(0), -1.0);
            let mut cells = Vec::new();
            for c in 0..classes {
                let mut row: Vec<Tensor> = y
                    .iter()
                    .enumerate()
                    .filter(|(_, &l)| l == c)
                    .take(PER_ROW as usize)
                    .map(|(i, _)| floats.get(i as i64))
                    .collect();
                row.resize_with(PER_ROW as usize, || blank.shallow_clone());
                cells.extend(row);
            }
            Tensor::stack(&cells, 0)
        }
        None => floats.narrow(0, 0, floats.size()[0].min(PER_ROW * PER_ROW)),
    };
    crate::track::grid(&picked, PER_ROW, 2).map_err(std::io::Error::other)
}

/// Refuses an output that exists and is not empty, unless `overwrite`.
fn refuse_occupied(out: &Path, overwrite: bool) -> anyhow::Result<()> {
    let occupied = match std::fs::metadata(out) {
        Ok(m) if m.is_dir() => std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true),
        Ok(_) => true,
        Err(_) => false,
    };
    anyhow::ensure!(
        !occupied || overwrite,
        "{} exists and is not empty; choose another --out, or pass --overwrite to replace it",
        out.display()
    );
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    Ok(())
}

/// `dir/.name.partial`: where the output is assembled.
fn partial_path(out: &Path) -> PathBuf {
    let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "samples".into());
    out.with_file_name(format!(".{name}.partial"))
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
