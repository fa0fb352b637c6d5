//! `lab run`.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::config::{Experiment, Sources};
use crate::plugins::PluginError;
use crate::train::{RunOptions, TrainError, Trainer, INTERRUPTED};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (TOML). Not needed with --resume.
    pub file: Option<PathBuf>,
    /// Override a config key: `--set train.steps=2000` (values are TOML; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Shorthand for `--set seed=N`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// `cpu`, `cuda` or `cuda:N` (default: CUDA when present).
    #[arg(long)]
    pub device: Option<String>,
    /// Where run folders go.
    #[arg(long, default_value = "runs", env = "LAB_RUNS_DIR")]
    pub runs_dir: PathBuf,
    /// Continue a run from its last checkpoint, with its own config.toml.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let file = match (&args.resume, &args.file) {
        (Some(dir), None) => dir.join("config.toml"),
        (Some(_), Some(_)) => anyhow::bail!("give either an experiment file or --resume RUN_DIR, not both"),
        (None, Some(f)) => f.clone(),
        (None, None) => anyhow::bail!("missing the experiment file: `lab run experiments/quickstart.toml`"),
    };
    let mut set = args.set.clone();
    if let Some(seed) = args.seed {
        set.push(format!("seed={seed}"));
    }
    if let Some(device) = &args.device {
        set.push(format!("device={device:?}"));
    }
    let exp = Experiment::load(&Sources { file: Some(file.clone()), env: true, set })?;
    if exp.deterministic == crate::config::Determinism::Portable {
        // Before libtorch does any work: it reads the CPU switches once.
        crate::numerics::enter_portable_mode()?;
    }
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the current step and writing a checkpoint (Ctrl-C again to abort)");
    });
    let opts = RunOptions {
        runs_dir: args.runs_dir.clone(),
        resume: args.resume.clone(),
        progress: std::io::stderr().is_terminal(),
        quiet: args.quiet,
        label: crate::train::run_label(&args.set),
    };
    let mut trainer = Trainer::new(exp, &opts).map_err(|e| match e {
        // Plugin choices and plugin configs come from the experiment file: name it.
        TrainError::Plugin(PluginError::Config { .. } | PluginError::Missing { .. }) | TrainError::Config { .. } => {
            anyhow::anyhow!("{}: {e}", file.display())
        }
        e => e.into(),
    })?;
    let run_dir = trainer.run_dir().to_path_buf();
    if !args.quiet {
        let e = trainer.experiment();
        println!(
            "run {}  ({} on {}, {} G steps, batch {}, device {})",
            run_dir.display(),
            e.model.architecture,
            e.data.dataset,
            e.train.steps,
            e.train.batch_size,
            e.device
        );
    }
    let summary = trainer.train(&opts).with_context(|| format!("run {}", run_dir.display()))?;
    if !args.quiet {
        println!(
            "done: {} steps in {:.1}s ({:.0} img/s); samples {}",
            summary.steps,
            summary.wall_time_s,
            summary.images_per_s,
            summary.samples.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
