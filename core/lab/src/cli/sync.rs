//! `lab sync RUN_DIR...`: replay what MLflow tracking spooled while the server was unreachable.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Run folders to replay.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The tracking server (default: the one each run used, or $MLFLOW_TRACKING_URI).
    #[arg(long)]
    pub uri: Option<String>,
}

pub fn sync(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for run in &args.runs {
        match crate::track::sync(run, args.uri.as_deref()) {
            Ok(report) if report.is_empty() => println!("{}: up to date", run.display()),
            Ok(report) => println!("{}: {report}", run.display()),
            Err(e) => {
                eprintln!("error: {}: {e}", run.display());
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
