//! `lab sample RUN_DIR --n N --out PATH`: a synthetic dataset from a run's generator.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::sample::{sample, Format, SampleOptions};

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The run folder.
    pub run: PathBuf,
    /// How many images (optional when --labels lists counts per class).
    #[arg(long)]
    pub n: Option<i64>,
    /// Where to write: a folder (png, cifar, idx) or a file (npz). Must not exist or be empty.
    #[arg(long)]
    pub out: PathBuf,
    /// Which checkpoint: `last` or `best`.
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: Format,
    /// Class labels for a conditional model: `balanced` (the default), `uniform`, or counts per
    /// class such as `3=100,5=200`.
    #[arg(long)]
    pub labels: Option<String>,
    /// Truncation trick: redraw latent entries with |z| > T (Gaussian latents only).
    #[arg(long, value_name = "T")]
    pub truncation: Option<f64>,
    /// Label an unconditional model's samples with this TorchScript classifier (images
    /// [N, C, H, W] in [-1, 1] → logits); its confidence is kept in samples.json.
    #[arg(long, value_name = "CLASSIFIER.pt")]
    pub label_with: Option<PathBuf>,
    /// Seed of the latents (and of `uniform` labels); the same seed gives the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per generator call.
    #[arg(long, default_value_t = 250)]
    pub batch_size: i64,
    /// Sample with standing batch-norm statistics: the mean of N batches' statistics (prior
    /// samples drawn as the run's evaluations draw them) instead of the running ones; 0 for the
    /// running ones. Default: the run's `eval.standing_stats`, so the samples match what its FID
    /// scored.
    #[arg(long, value_name = "N")]
    pub standing_stats: Option<u64>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1, got {}", args.batch_size);
    let opts = SampleOptions {
        run: args.run,
        checkpoint: args.checkpoint,
        n: args.n,
        out: args.out,
        format: args.format,
        labels: args.labels,
        truncation: args.truncation,
        label_with: args.label_with,
        seed: args.seed,
        batch_size: args.batch_size,
        standing_stats: args.standing_stats,
        overwrite: args.overwrite,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    let (provenance, per_second) = sample(&opts)?;
    let classes = if provenance.per_class.is_empty() {
        "unlabelled".to_string()
    } else {
        format!("labels {} over {} classes", provenance.labels, provenance.per_class.len())
    };
    println!(
        "wrote {} images ({classes}) to {} as {} in {:.0} images/s; provenance in {}",
        provenance.count,
        opts.out.display(),
        provenance.format,
        per_second,
        opts.format.provenance_path(&opts.out).display()
    );
    Ok(ExitCode::SUCCESS)
}
