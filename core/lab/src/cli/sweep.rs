//! `lab sweep FILE --grid key=v1,v2 ... [--seeds 0,1,2]`: every combination as its own run,
//! in a local queue or as a Slurm array.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::sweep::{self, GridAxis, Request, SlurmOptions};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The experiment file (TOML).
    pub file: PathBuf,
    /// A key and its values: `--grid data.fraction=1.0,0.2,0.1` (repeatable; values are TOML,
    /// bare words are strings; commas inside [] or quotes do not split).
    #[arg(long = "grid", value_name = "KEY=V1,V2,...")]
    pub grid: Vec<String>,
    /// Seeds for every combination: `--seeds 0,1,2` (default: the experiment's seed).
    #[arg(long)]
    pub seeds: Option<String>,
    /// An override for every member, not part of their names: `--set train.steps=2000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Local runs at once (Slurm: the most array tasks at once).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where run folders go; member runs land in `<runs-dir>/<experiment>__<member>/`.
    #[arg(long, default_value = "runs", env = "LAB_RUNS_DIR")]
    pub runs_dir: PathBuf,
    /// Where the resolved configs, logs and scripts go (default: `sweeps/<experiment>`).
    #[arg(long)]
    pub sweep_dir: Option<PathBuf>,
    /// Write an sbatch array script and submit it (when `sbatch` is on PATH).
    #[arg(long)]
    pub slurm: bool,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Slurm time limit per task, e.g. `2-00:00:00`.
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// GPUs per Slurm task.
    #[arg(long, requires = "slurm")]
    pub gpus_per_task: Option<u32>,
    /// Write the configs (and the Slurm script) and print the plan, but run or submit nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Plans the sweep, writes the configs, then runs it locally, or writes (and submits) the
/// Slurm array.
pub fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let grid = args.grid.iter().map(|g| GridAxis::parse(g)).collect::<Result<Vec<_>, _>>()?;
    let seeds = match &args.seeds {
        Some(s) => sweep::parse_seeds(s)?,
        None => Vec::new(),
    };
    let request = Request {
        file: args.file.clone(),
        grid,
        seeds,
        set: args.set.clone(),
        runs_dir: args.runs_dir.clone(),
        sweep_dir: args.sweep_dir.clone(),
    };
    let plan = sweep::plan(&request)?;
    plan.write(&request)?;
    println!("sweep {}: {} member(s); configs in {}", plan.experiment, plan.members.len(), plan.sweep_dir.display());
    println!("{}", plan.describe());
    let lab = std::env::current_exe()?;

    if args.slurm {
        let tasks = plan.slurm_tasks();
        if tasks.is_empty() {
            println!("every member has finished: nothing to submit");
            return Ok(ExitCode::SUCCESS);
        }
        let opts = SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            gpus_per_task: args.gpus_per_task,
            max_running: args.jobs,
        };
        let logs = sweep::absolute(&plan.sweep_dir.join("logs"));
        std::fs::create_dir_all(&logs)?;
        let text = sweep::slurm_script(
            &plan.experiment,
            &tasks,
            &lab,
            &std::env::current_dir()?,
            &sweep::absolute(&plan.runs_dir),
            &logs,
            &opts,
        );
        let path = plan.sweep_dir.join("slurm.sbatch");
        std::fs::write(&path, text)?;
        println!("wrote {} ({} array task(s))", path.display(), tasks.len());
        if args.dry_run {
            println!("dry run: submit it with `sbatch {}`", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        match sweep::slurm_submit(&path)? {
            Some(answer) => println!("{answer}; logs in {}", logs.display()),
            None => println!("`sbatch` is not on PATH: submit it on the cluster with `sbatch {}`", path.display()),
        }
        return Ok(ExitCode::SUCCESS);
    }

    if args.dry_run {
        println!("dry run: nothing started");
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = plan.jobs();
    if jobs.is_empty() {
        println!("every member has finished: nothing to run");
        return Ok(ExitCode::SUCCESS);
    }
    let gpus = sweep::gpus();
    let parallel = args.jobs.unwrap_or(1);
    let _ = ctrlc::set_handler(|| {
        if sweep::STOP.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: no new runs start; running ones checkpoint and stop (Ctrl-C again to abort)");
    });
    let outcome = sweep::run_queue(&lab, jobs, parallel, &gpus, plan.members.len());
    let skipped = plan.actions.iter().filter(|a| matches!(a, sweep::Action::Skip { .. })).count();
    println!(
        "sweep {}: {} done, {} failed, {} skipped (finished before), {} not started",
        plan.experiment,
        outcome.succeeded.len(),
        outcome.failed.len(),
        skipped,
        outcome.not_started
    );
    if outcome.interrupted {
        println!("interrupted: run the same command again to resume");
        return Ok(ExitCode::from(130));
    }
    Ok(if outcome.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
