//! `lab eval RUN_DIR`: evaluate a run's checkpoint again, with the same or other metrics.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{Experiment, Sources};
use crate::train::{write_json, RunOptions, Trainer};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Metric plugins, comma-separated (default: the run's `eval.metrics`).
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Generated samples (default: the run's `eval.num_samples`).
    #[arg(long)]
    pub num_samples: Option<i64>,
    /// Reference split: `test` or `train` (default: the run's).
    #[arg(long)]
    pub reference: Option<String>,
    /// Which checkpoint: `last` or `best`.
    #[arg(long, default_value = "last")]
    pub checkpoint: String,
    /// Other config overrides, e.g. `--set eval.features=/path/net.pt`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut set = args.set.clone();
    if !args.metrics.is_empty() {
        let list: Vec<String> = args.metrics.iter().map(|m| format!("{m:?}")).collect();
        set.push(format!("eval.metrics=[{}]", list.join(", ")));
    }
    if let Some(n) = args.num_samples {
        set.push(format!("eval.num_samples={n}"));
    }
    if let Some(r) = &args.reference {
        set.push(format!("eval.reference={r:?}"));
    }
    let exp = Experiment::load(&Sources { file: Some(args.run.join("config.toml")), env: true, set })?;
    if !exp.eval.enabled() {
        anyhow::bail!("{}: no metrics to compute; pass e.g. `--metrics fid`", args.run.display());
    }
    let opts = RunOptions {
        runs_dir: PathBuf::new(),
        resume: Some(args.run.clone()),
        progress: std::io::stderr().is_terminal(),
        quiet: false,
        read_only: true,
        checkpoint: Some(args.checkpoint.clone()),
        label: String::new(),
    };
    let mut trainer = Trainer::new(exp, &opts)?;
    let step = trainer.step();
    let result = trainer.run_eval(step)?;
    for (name, value) in &result.values {
        println!("{name}: {value}");
    }
    let out = args.run.join(format!("eval-{}-step{step:06}.json", args.checkpoint));
    write_json(&out, &result)?;
    println!("({} checkpoint at step {step}; protocol in {})", args.checkpoint, out.display());
    Ok(ExitCode::SUCCESS)
}
