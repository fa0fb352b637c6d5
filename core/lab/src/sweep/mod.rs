//! `lab sweep`: one experiment over a grid of settings × seeds. Each member gets a readable
//! name (`augment.name=diffaugment__data.fraction=0.1__seed=1`), a resolved config written
//! before anything runs (`<sweep-dir>/<member>.toml`, sweep-dir defaulting to
//! `sweeps/<experiment>`), and its own run group: the config's `name` becomes
//! `<experiment>__<member>`, so its run folder is the one folder in
//! `<runs-dir>/<experiment>__<member>/`, found again on every re-run without any registry.
//! Re-running a sweep skips finished members and resumes interrupted ones from their last
//! checkpoint; a run group holding a run of a *different* config is an error, never silently
//! mixed. Members run in a local queue (`--jobs N`, GPUs assigned round-robin) or as a Slurm
//! array (`--slurm`).
mod grid;
mod member;
mod queue;
mod slurm;
mod state;

use std::path::{Path, PathBuf};

pub use grid::{expand, parse_seeds, GridAxis};
pub use member::{member_name, sanitise, Member};
pub use queue::{gpus, run as run_queue, Job, Outcome, STOP};
pub use slurm::{find_on_path, job_id, script as slurm_script, submit as slurm_submit, SlurmOptions, Task};
pub use state::{decide, status, Action};

use crate::config::ConfigError;

/// A sweep could not be planned or started.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("--grid {grid:?}: {message}")]
    Grid { grid: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sweep member `{name}`: {message}")]
    Member { name: String, message: String },
    #[error("members {a} and {b} get the same run name `{name}` after sanitising; make their grid values differ in letters or digits")]
    NameClash { name: String, a: usize, b: usize },
    #[error("sweep member `{member}`: {} was run with a different config ({difference}). Move it away, or sweep into another --runs-dir.", run.display())]
    Changed { member: String, run: PathBuf, difference: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("slurm: {message}")]
    Slurm { message: String },
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Request {
    /// The experiment file.
    pub file: PathBuf,
    pub grid: Vec<GridAxis>,
    pub seeds: Vec<u64>,
    /// Overrides for every member (`--set`), not part of the names.
    pub set: Vec<String>,
    pub runs_dir: PathBuf,
    /// Default: `sweeps/<experiment name>`.
    pub sweep_dir: Option<PathBuf>,
}

/// The members of a sweep and what to do with each.
#[derive(Clone, Debug)]
pub struct Plan {
    pub experiment: String,
    pub sweep_dir: PathBuf,
    pub runs_dir: PathBuf,
    pub members: Vec<Member>,
    pub actions: Vec<Action>,
}

/// Expands the grid, resolves each member's config and looks at what already ran.
pub fn plan(request: &Request) -> Result<Plan, SweepError> {
    let combos = expand(&request.grid, &request.seeds);
    let base = crate::config::Experiment::load(&crate::config::Sources {
        file: Some(request.file.clone()),
        env: true,
        set: request.set.clone(),
    })?;
    let sweep_dir = request.sweep_dir.clone().unwrap_or_else(|| Path::new("sweeps").join(&base.name));
    let members = member::resolve(&request.file, &request.set, &combos, &sweep_dir)?;
    let actions = members.iter().map(|m| decide(m, &request.runs_dir)).collect::<Result<Vec<_>, _>>()?;
    Ok(Plan { experiment: base.name, sweep_dir, runs_dir: request.runs_dir.clone(), members, actions })
}

impl Plan {
    /// Writes every member's resolved config and `sweep.json` (the members, their run groups
    /// and the request) into the sweep folder.
    pub fn write(&self, request: &Request) -> Result<(), SweepError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| SweepError::Io { path, message: e.to_string() }
        };
        std::fs::create_dir_all(&self.sweep_dir).map_err(io(&self.sweep_dir))?;
        for m in &self.members {
            std::fs::write(&m.config_path, m.config_text(self.members.len(), &request.file))
                .map_err(io(&m.config_path))?;
        }
        let manifest = serde_json::json!({
            "experiment": request.file,
            "grid": request.grid.iter().map(|g| serde_json::json!({"key": g.key, "values": g.values})).collect::<Vec<_>>(),
            "seeds": request.seeds,
            "set": request.set,
            "runs_dir": request.runs_dir,
            "members": self.members.iter().map(|m| serde_json::json!({
                "name": m.name,
                "run_group": m.group(&self.runs_dir),
                "config": m.config_path,
                "assignments": m.assignments.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        let path = self.sweep_dir.join("sweep.json");
        crate::train::write_json(&path, &manifest).map_err(io(&path))
    }

    /// One line per member: what will happen to it.
    pub fn describe(&self) -> String {
        let total = self.members.len();
        self.members
            .iter()
            .zip(&self.actions)
            .map(|(m, a)| {
                let detail = match a {
                    Action::Skip { run } => format!("  (finished: {})", run.display()),
                    Action::Resume { run } => format!("  (from {})", run.display()),
                    Action::Start => String::new(),
                };
                format!("[{}/{total}] {:<6} {}{detail}", m.index + 1, a.verb(), m.full_name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The `lab run` arguments of each member that needs running, as queue jobs.
    pub fn jobs(&self) -> Vec<Job> {
        self.members
            .iter()
            .zip(&self.actions)
            .filter_map(|(m, a)| {
                let args: Vec<std::ffi::OsString> = match a {
                    Action::Skip { .. } => return None,
                    Action::Resume { run } => vec!["run".into(), "--resume".into(), run.into()],
                    Action::Start => vec![
                        "run".into(),
                        m.config_path.clone().into(),
                        "--runs-dir".into(),
                        self.runs_dir.clone().into(),
                    ],
                };
                let device = m.experiment.device.as_str();
                Some(Job {
                    position: m.index + 1,
                    label: format!("{} {}", a.verb(), m.full_name),
                    args,
                    log: self.sweep_dir.join("logs").join(format!("{}.log", m.name)),
                    wants_gpu: matches!(device, "auto" | "cuda" | "cuda:0"),
                })
            })
            .collect()
    }

    /// The Slurm tasks: every member not finished yet.
    pub fn slurm_tasks(&self) -> Vec<Task> {
        self.members
            .iter()
            .zip(&self.actions)
            .filter(|(_, a)| !matches!(a, Action::Skip { .. }))
            .map(|(m, _)| Task { full_name: m.full_name.clone(), config: absolute(&m.config_path) })
            .collect()
    }
}

/// `path` made absolute against the working directory (for scripts run elsewhere).
pub fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests;
