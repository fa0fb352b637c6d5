//! `lab battle`: the Generative Adversarial Metric (GAM) of Im et al. 2016 ("Generating images
//! with recurrent adversarial networks", §4), which compares two trained GANs by letting each
//! generator face the other's discriminator.
//!
//! For models M1 = (G1, D1) and M2 = (G2, D2), with ε the share a discriminator gets wrong:
//! - r_test = ε(D1; test images) / ε(D2; test images), which says whether the two
//!   discriminators judge real images alike;
//! - r_sample = ε(D1; G2's samples) / ε(D2; G1's samples): below 1, G1 fools D2 more often
//!   than G2 fools D1.
//!
//! The paper declares M1 the winner when r_sample < 1 and M2 when r_sample > 1, but only when
//! r_test ≈ 1: a discriminator that calls everything fake would otherwise win every battle on
//! samples. "≈" is `tolerance` here (|r_test − 1| ≤ tolerance).
//!
//! Both models are loaded from their run folders without writing to them. The generators are
//! the trained ones (`net.generator`), not an EMA copy: the discriminator fought that generator,
//! and the paper's models had no EMA. Each discriminator judges batches of its own training batch
//! size, all real or all generated, as in training; by default in training mode, so batch
//! normalisation uses the batch's statistics (the mode the discriminator was trained and
//! fooled in), with `eval` mode using the running statistics instead.
//!
//! Everything random is keyed by the seed and the batch alone, never by which side a model is
//! on: `battle A B` and `battle B A` give reciprocal ratios exactly, and a model battling itself
//! gets r_test = r_sample = 1.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::config::{Experiment, Sources};
use crate::data::{self, DataConfig};
use crate::seeds::{key, seed_torch, Stream};
use crate::train::GeneratorSnapshot;

/// The network every battle uses as the discriminator.
pub const DISCRIMINATOR: &str = "discriminator";

/// The mode discriminators judge in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JudgeMode {
    /// Training mode: batch statistics, dropout on, as when the discriminator was trained.
    Train,
    /// Evaluation mode: running statistics, no dropout.
    Eval,
}

impl JudgeMode {
    /// The mode in words, as the battle's header prints it.
    pub fn describe(self) -> &'static str {
        match self {
            JudgeMode::Train => "training",
            JudgeMode::Eval => "evaluation",
        }
    }
}

/// What a battle was asked for.
#[derive(Clone, Debug)]
pub struct BattleOptions {
    /// The two run folders, M1 and M2.
    pub runs: [PathBuf; 2],
    /// `last` or `best`.
    pub checkpoint: String,
    /// Samples per generator, and the most test images used.
    pub n: i64,
    pub seed: u64,
    /// How far r_test may be from 1 for a winner to be declared.
    pub tolerance: f64,
    /// The logit above which a discriminator calls an image real.
    pub boundary: f64,
    pub mode: JudgeMode,
    pub progress: bool,
}

/// One side of a battle, as reported.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Side {
    pub run: String,
    pub experiment: String,
    pub architecture: String,
    pub loss: String,
    /// The checkpoint's generator step.
    pub step: u64,
    /// The share of test images this model's discriminator calls generated.
    pub test_error: f64,
    /// The share of the other model's samples this model's discriminator calls real.
    pub sample_error: f64,
}

/// Who won.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// r_test ≈ 1 and r_sample < 1.
    FirstWins,
    /// r_test ≈ 1 and r_sample > 1.
    SecondWins,
    /// r_test ≈ 1 and r_sample = 1.
    Tie,
    /// r_test is not within the tolerance of 1: the discriminators are not comparable.
    NoDecision,
}

/// A battle's figures, as printed and written by `--out`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Battle {
    pub metric: &'static str,
    pub models: [Side; 2],
    /// Written as the string `"inf"` when D2 never erred and D1 did (JSON has no infinity).
    #[serde(serialize_with = "number_or_inf")]
    pub r_test: f64,
    #[serde(serialize_with = "number_or_inf")]
    pub r_sample: f64,
    pub verdict: Verdict,
    pub tolerance: f64,
    pub boundary: f64,
    pub mode: JudgeMode,
    pub test_images: i64,
    pub samples: i64,
    pub dataset: String,
    pub checkpoint: String,
    pub seed: u64,
}

fn number_or_inf<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_infinite() {
        s.serialize_str(if *x > 0.0 { "inf" } else { "-inf" })
    } else {
        s.serialize_f64(*x)
    }
}

/// `a / b`, with 0 / 0 = 1: two discriminators that never err are equal, not undefined.
pub fn ratio(a: f64, b: f64) -> f64 {
    if a == 0.0 && b == 0.0 {
        1.0
    } else {
        a / b
    }
}

/// The paper's rule: a winner by r_sample, only when |r_test − 1| ≤ `tolerance`.
pub fn verdict(r_test: f64, r_sample: f64, tolerance: f64) -> Verdict {
    if r_test.is_nan() || (r_test - 1.0).abs() > tolerance {
        Verdict::NoDecision
    } else if r_sample < 1.0 {
        Verdict::FirstWins
    } else if r_sample > 1.0 {
        Verdict::SecondWins
    } else {
        Verdict::Tie
    }
}

/// How many of `logits` (one per image) are above `boundary`, i.e. called real.
pub fn called_real(logits: &Tensor, boundary: f64) -> i64 {
    logits.gt(boundary).sum(Kind::Int64).int64_value(&[])
}

/// A run loaded for battle: its config, its generator and its discriminator.
struct Contestant {
    run: PathBuf,
    exp: Experiment,
    snapshot: GeneratorSnapshot,
}

impl Contestant {
    fn load(run: &Path, checkpoint: &str) -> anyhow::Result<Self> {
        let mut exp = Experiment::load(&Sources { file: Some(run.join("config.toml")), env: false, set: Vec::new() })
            .map_err(|e| anyhow::anyhow!("{}: not a run folder of lab ({e})", run.display()))?;
        let mut snapshot = GeneratorSnapshot::load(&mut exp, run, checkpoint)
            .map_err(|e| anyhow::anyhow!("{}: {e}", run.display()))?;
        for name in ["generator", DISCRIMINATOR] {
            snapshot.trained_network(&exp, name).map_err(|e| {
                anyhow::anyhow!("{}: {e}; a battle needs a generator and a discriminator", run.display())
            })?;
        }
        Ok(Self { run: run.to_path_buf(), exp, snapshot })
    }

    fn name(&self) -> String {
        self.run.display().to_string()
    }

    /// `n` samples of the trained generator, batch `b` drawn right after seeding libtorch from
    /// `(seed, b)`, with uniform labels when conditional.
    fn samples(&mut self, n: i64, seed: u64, bar: Option<&ProgressBar>) -> anyhow::Result<(Tensor, Option<Tensor>)> {
        const BATCH: i64 = 250;
        let classes = self.snapshot.num_classes();
        let device = self.snapshot.device();
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        let mut made = 0;
        while made < n {
            let len = BATCH.min(n - made);
            seed_torch(key(seed, Stream::Battle, &[0, (made / BATCH) as u64]));
            let y = (classes > 0).then(|| Tensor::randint(classes, [len], (Kind::Int64, device)));
            let z = self.snapshot.latent(len)?;
            let mut inputs = vec![z];
            inputs.extend(y.iter().map(Tensor::shallow_clone));
            let generator = self.snapshot.trained_network(&self.exp, "generator")?;
            let out = tch::no_grad(|| generator.forward(&inputs, false))
                .map_err(|e| anyhow::anyhow!("{}: the generator failed: {e}", self.name()))?;
            let x = out
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("{}: the generator returned no outputs", self.name()))?;
            images.push(x);
            labels.extend(y);
            made += len;
            if let Some(bar) = bar {
                bar.inc(len as u64);
            }
        }
        Ok((Tensor::cat(&images, 0), (!labels.is_empty()).then(|| Tensor::cat(&labels, 0))))
    }

    /// How many of `images` (in [-1, 1], or uint8 pixels) the discriminator calls real, judged
    /// in batches of the run's own batch size.
    fn judge(
        &mut self,
        images: &Tensor,
        labels: Option<&Tensor>,
        opts: &BattleOptions,
        what: &str,
        bar: Option<&ProgressBar>,
    ) -> anyhow::Result<i64> {
        let n = images.size()[0];
        let batch = self.exp.train.batch_size.max(1);
        let device = self.snapshot.device();
        let conditional = self.snapshot.num_classes() > 0;
        let name = self.name();
        let discriminator = self.snapshot.trained_network(&self.exp, DISCRIMINATOR)?;
        let mut real = 0;
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            // Keyed by the batch alone (dropout's draws in training mode), not by the side.
            seed_torch(key(opts.seed, Stream::Battle, &[1, (start / batch) as u64]));
            let x = data::to_unit_range(&images.narrow(0, start, len).to_device(device));
            let mut inputs = vec![x];
            if conditional {
                let y = labels
                    .ok_or_else(|| anyhow::anyhow!("{name}: a conditional discriminator needs labels for {what}"))?;
                inputs.push(y.narrow(0, start, len).to_device(device));
            }
            let out = tch::no_grad(|| discriminator.forward(&inputs, opts.mode == JudgeMode::Train))
                .map_err(|e| anyhow::anyhow!("{name}: the discriminator failed on {what}: {e}"))?;
            let logits = out
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("{name}: the discriminator returned no outputs"))?;
            anyhow::ensure!(
                logits.numel() == len as usize,
                "{name}: the discriminator returned {} values for {len} images ({:?}); a battle needs one logit per image",
                logits.numel(),
                logits.size()
            );
            real += called_real(&logits.to_kind(Kind::Double), opts.boundary);
            start += len;
            if let Some(bar) = bar {
                bar.inc(len as u64);
            }
        }
        Ok(real)
    }

    fn describe(&self) -> String {
        let [c, h, w] = self.snapshot.image_shape();
        let conditioning = match self.snapshot.num_classes() {
            0 => "unconditional".to_string(),
            k => format!("conditional on {k} classes"),
        };
        format!("{} ({c}×{h}×{w}, {conditioning})", self.exp.data.dataset)
    }
}

/// The test images both discriminators judge: the first `n` of the test split of M1's data.
fn test_set(cfg: &DataConfig, n: i64) -> anyhow::Result<(Tensor, Option<Tensor>)> {
    let cfg = DataConfig { split: "test".into(), fraction: 1.0, count: 0, ..cfg.clone() };
    let ds = data::load(&cfg)?.centred();
    let n = n.min(ds.len());
    Ok((ds.images.narrow(0, 0, n), ds.labels.as_ref().map(|y| y.narrow(0, 0, n))))
}

/// Runs the battle between `opts.runs[0]` (M1) and `opts.runs[1]` (M2).
pub fn battle(opts: &BattleOptions) -> anyhow::Result<Battle> {
    anyhow::ensure!(opts.n > 0, "--n must be at least 1, got {}", opts.n);
    anyhow::ensure!(
        opts.tolerance >= 0.0 && opts.tolerance.is_finite(),
        "--tolerance must be a non-negative number, got {}",
        opts.tolerance
    );
    let mut models =
        [Contestant::load(&opts.runs[0], &opts.checkpoint)?, Contestant::load(&opts.runs[1], &opts.checkpoint)?];
    let same_data = models[0].exp.data.dataset == models[1].exp.data.dataset
        && models[0].exp.data.path == models[1].exp.data.path
        && models[0].snapshot.image_shape() == models[1].snapshot.image_shape()
        && models[0].snapshot.num_classes() == models[1].snapshot.num_classes();
    anyhow::ensure!(
        same_data,
        "the two runs do not model the same thing: {} is {}, {} is {}; a battle needs two models of the same data \
         with the same conditioning, so that each discriminator can judge the other's samples and one test set",
        models[0].name(),
        models[0].describe(),
        models[1].name(),
        models[1].describe()
    );
    let (test, test_labels) = test_set(&models[0].exp.data, opts.n)?;
    let n_test = test.size()[0];
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new((2 * n_test + 4 * opts.n) as u64);
        bar.set_style(
            ProgressStyle::with_template("  battle [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} images")
                .expect("static template"),
        );
        bar
    });
    let mut test_real = [0; 2];
    for (model, real) in models.iter_mut().zip(&mut test_real) {
        *real = model.judge(&test, test_labels.as_ref(), opts, "test images", bar.as_ref())?;
    }
    let samples =
        [models[0].samples(opts.n, opts.seed, bar.as_ref())?, models[1].samples(opts.n, opts.seed, bar.as_ref())?];
    // D1 judges G2's samples and D2 judges G1's.
    let mut fooled = [0; 2];
    for (i, model) in models.iter_mut().enumerate() {
        let (x, y) = &samples[1 - i];
        fooled[i] = model.judge(x, y.as_ref(), opts, "the other model's samples", bar.as_ref())?;
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let sides: Vec<Side> = models
        .iter()
        .zip(test_real.iter().zip(&fooled))
        .map(|(m, (&real, &fooled))| Side {
            run: m.name(),
            experiment: m.exp.name.clone(),
            architecture: m.exp.model.architecture.clone(),
            loss: m.exp.loss.name.clone(),
            step: m.snapshot.step,
            test_error: (n_test - real) as f64 / n_test as f64,
            sample_error: fooled as f64 / opts.n as f64,
        })
        .collect();
    let [first, second]: [Side; 2] = sides.try_into().expect("two sides");
    let r_test = ratio(first.test_error, second.test_error);
    let r_sample = ratio(first.sample_error, second.sample_error);
    Ok(Battle {
        metric: "GAM (Im et al. 2016)",
        verdict: verdict(r_test, r_sample, opts.tolerance),
        models: [first, second],
        r_test,
        r_sample,
        tolerance: opts.tolerance,
        boundary: opts.boundary,
        mode: opts.mode,
        test_images: n_test,
        samples: opts.n,
        dataset: models[0].exp.data.dataset.clone(),
        checkpoint: opts.checkpoint.clone(),
        seed: opts.seed,
    })
}

/// Whether a run's loss trains a critic, whose scores have no decision boundary.
pub fn trains_a_critic(loss: &str) -> bool {
    loss.starts_with("wgan")
}

#[cfg(test)]
mod tests;
