//! `lab sweep --slurm`: an `sbatch` array script, task i running `lab run` on member i's
//! resolved config. The member list is written into the script itself, so a later submission
//! never changes what a running array does (Slurm keeps its own copy of the script). Each task
//! checks its run group first: a finished run is left alone, an interrupted one (preempted,
//! requeued, out of time) is resumed from its last checkpoint.
use std::path::{Path, PathBuf};

use super::SweepError;

/// Options of the array job.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    /// At most this many tasks at once (`--array=0-N%K`).
    pub max_running: Option<usize>,
}

/// One array task: the member's run name and its config file.
#[derive(Clone, Debug)]
pub struct Task {
    pub full_name: String,
    pub config: PathBuf,
}

/// Quotes for bash: `'...'`, with single quotes escaped.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

/// The script's text. Paths should be absolute: tasks start in the submission directory, but
/// the script says `cd` to `workdir` anyway.
pub fn script(
    job_name: &str,
    tasks: &[Task],
    lab: &Path,
    workdir: &Path,
    runs_dir: &Path,
    logs: &Path,
    opts: &SlurmOptions,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("# Written by `lab sweep --slurm`: {} task(s) of sweep `{job_name}`.\n", tasks.len()));
    s.push_str("# Task i runs `lab run` on config i below; finished members are skipped, interrupted ones resumed.\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name.replace(char::is_whitespace, "_")));
    let throttle = opts.max_running.map(|k| format!("%{k}")).unwrap_or_default();
    s.push_str(&format!("#SBATCH --array=0-{}{throttle}\n", tasks.len().saturating_sub(1)));
    s.push_str(&format!("#SBATCH --output={}\n", logs.join("slurm-%A_%a.out").display()));
    s.push_str("#SBATCH --ntasks=1\n");
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(g) = opts.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    s.push_str("set -euo pipefail\n\n");
    s.push_str(&format!("cd {}\n", quote_path(workdir)));
    s.push_str(&format!("LAB={}\n", quote_path(lab)));
    s.push_str(&format!("RUNS={}\n", quote_path(runs_dir)));
    s.push_str("NAMES=(\n");
    for t in tasks {
        s.push_str(&format!("  {}\n", quote(&t.full_name)));
    }
    s.push_str(")\nCONFIGS=(\n");
    for t in tasks {
        s.push_str(&format!("  {}\n", quote_path(&t.config)));
    }
    s.push_str(")\n");
    s.push_str(
        r#"NAME="${NAMES[$SLURM_ARRAY_TASK_ID]}"
CONFIG="${CONFIGS[$SLURM_ARRAY_TASK_ID]}"
GROUP="$RUNS/$NAME"
echo "task $SLURM_ARRAY_TASK_ID: $NAME on $(hostname)"

# The run folder of a member is the one folder in its group (runs/<name>/<start time>-...).
RESUME=""
for run in "$GROUP"/*/; do
  [ -f "$run/config.toml" ] || continue
  if grep -qE '"status": *"finished"' "$run/summary.json" 2>/dev/null; then
    echo "already finished: $run"
    exit 0
  fi
  if [ -f "$run/checkpoints/last.safetensors" ]; then RESUME="$run"; fi
done
if [ -n "$RESUME" ]; then
  exec "$LAB" run --resume "${RESUME%/}"
fi
exec "$LAB" run "$CONFIG" --runs-dir "$RUNS"
"#,
    );
    s
}

/// Submits with `sbatch` when it is on PATH; returns its answer (`Submitted batch job N`), or
/// `None` when there is no `sbatch`.
pub fn submit(script: &Path) -> Result<Option<String>, SweepError> {
    let Some(sbatch) = find_on_path("sbatch") else { return Ok(None) };
    let out = std::process::Command::new(&sbatch)
        .arg(script)
        .output()
        .map_err(|e| SweepError::Slurm { message: format!("{}: {e}", sbatch.display()) })?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)).trim().to_string();
    if !out.status.success() {
        return Err(SweepError::Slurm { message: format!("sbatch {} failed: {text}", script.display()) });
    }
    Ok(Some(text))
}

/// The job id in sbatch's answer.
pub fn job_id(answer: &str) -> Option<u64> {
    answer.split_whitespace().rev().find_map(|w| w.parse().ok())
}

/// A program on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()))
}
