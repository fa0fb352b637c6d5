//! `lab eval RUN_DIR`: evaluate a run's checkpoint again, with the same or other metrics. It
//! loads the sampling generator and the evaluator, nothing else, and never writes to the run
//! folder (`--out` saves the result elsewhere).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{Experiment, Sources};
use crate::train::{write_json, GeneratorSnapshot};

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
    /// Also write the values and their protocol as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    let mut exp = Experiment::load(&Sources { file: Some(args.run.join("config.toml")), env: true, set })?;
    let mut snapshot = GeneratorSnapshot::load(&mut exp, &args.run, &args.checkpoint)?;
    // An architecture that measures itself (a VAE's test ELBO) has something to compute even
    // without metric plugins.
    if !exp.eval.enabled() && snapshot.measures()?.is_empty() {
        anyhow::bail!("{}: no metrics to compute; pass e.g. `--metrics fid`", args.run.display());
    }
    let step = snapshot.step;
    let result = snapshot.evaluate(&exp)?;
    for (name, value) in &result.values {
        println!("{name}: {value}");
    }
    let which = if snapshot.ema { "EMA generator" } else { "generator" };
    match &args.out {
        Some(out) => {
            write_json(out, &result)?;
            println!(
                "({which} of the {} checkpoint at step {step}; values and protocol in {})",
                args.checkpoint,
                out.display()
            );
        }
        None => println!(
            "({which} of the {} checkpoint at step {step}; `--out FILE` saves values and protocol)",
            args.checkpoint
        ),
    }
    Ok(ExitCode::SUCCESS)
}
