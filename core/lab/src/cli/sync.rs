//! `lab sync RUN_DIR...`: send MLflow what a run folder holds and the server lacks (metrics the
//! server never confirmed, params, tags, artifacts, the final status).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Run folders to send.
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
            // The report starts with the run folder.
            Ok(report) => println!("{report}"),
            Err(e) => {
                eprintln!("error: {}: {e}", run.display());
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
