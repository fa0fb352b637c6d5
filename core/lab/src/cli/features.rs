//! `lab features train`: a domain feature network for metrics that work offline and on
//! grayscale data. Training runs in the project's venv (`scripts/train_features.py`), which
//! saves the TorchScript module the metric plugins load.
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Train a small classifier and save it as a feature network (TorchScript).
    Train(TrainArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// `fashion-mnist` or `mnist`.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: String,
    /// Output file (default: ~/.cache/lab/features/<dataset>.pt).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    pub epochs: u32,
}

/// The checkout the binary was built in (binaries live in `<checkout>/target/<profile>/`).
fn checkout() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().find(|p| p.join("scripts/train_features.py").exists()).map(Path::to_path_buf)
}

pub fn features(cmd: FeaturesCommand) -> anyhow::Result<ExitCode> {
    let FeaturesCommand::Train(args) = cmd;
    let root = checkout().ok_or_else(|| {
        anyhow::anyhow!("scripts/train_features.py not found above {:?}; run `lab features train` from the lab checkout (./lab features train)", std::env::current_exe().ok())
    })?;
    let python = root.join(".venv/bin/python3");
    let out = args.out.unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/lab/features").join(format!("{}.pt", args.dataset))
    });
    let status = Command::new(&python)
        .arg(root.join("scripts/train_features.py"))
        .args(["--dataset", &args.dataset, "--epochs", &args.epochs.to_string(), "--out"])
        .arg(&out)
        .status()
        .map_err(|e| anyhow::anyhow!("{}: cannot run ({e}); run `./lab` once to set up the venv", python.display()))?;
    if !status.success() {
        anyhow::bail!("training the feature network failed ({status})");
    }
    println!("use it with: --set eval.features={}", out.display());
    Ok(ExitCode::SUCCESS)
}
