//! What a member's run group already holds, and so what the sweep does with it: skip a
//! finished run, resume an interrupted one from its last checkpoint, or start afresh.
use std::path::{Path, PathBuf};

use crate::report::value;

use super::member::Member;
use super::SweepError;

/// What to do for one member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A run with this config finished: nothing to do.
    Skip { run: PathBuf },
    /// A run with this config stopped after a checkpoint: `lab run --resume <run>`.
    Resume { run: PathBuf },
    /// No usable run yet: `lab run <config>`.
    Start,
}

impl Action {
    /// `skip`, `resume` or `run`, for the plan and progress lines.
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Skip { .. } => "skip",
            Action::Resume { .. } => "resume",
            Action::Start => "run",
        }
    }
}

/// `finished`, `failed`, `killed`, ... from a run folder's summary.json; `None` without one.
pub fn status(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("status")?.as_str().map(str::to_string)
}

/// The first key where a run's `config.toml` departs from the member's resolved config. Keys
/// the run has beyond the member's (plugin defaults filled in at start) do not count.
fn departure(member: &toml::Table, run: &toml::Table) -> Option<String> {
    for (key, want) in value::flatten(member) {
        match value::lookup(run, &key) {
            Some(found) if value::same(&want, found) => {}
            Some(found) => return Some(format!("{key} = {found} there, {want} now")),
            None => return Some(format!("{key} is missing there, {want} now")),
        }
    }
    None
}

/// Decides a member's action from the run folders in its group.
pub fn decide(member: &Member, runs_dir: &Path) -> Result<Action, SweepError> {
    let group = member.group(runs_dir);
    let Ok(entries) = std::fs::read_dir(&group) else { return Ok(Action::Start) };
    let mut runs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.join("config.toml").is_file()).collect();
    // Run folders start with their start time, so the last one is the newest.
    runs.sort();
    let want: toml::Table = toml::from_str(&member.experiment.to_toml()).expect("a resolved config parses");
    let mut resumable = None;
    for run in &runs {
        let path = run.join("config.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SweepError::Io { path: path.clone(), message: e.to_string() })?;
        let have: toml::Table =
            toml::from_str(&text).map_err(|e| SweepError::Io { path: path.clone(), message: e.to_string() })?;
        if let Some(difference) = departure(&want, &have) {
            return Err(SweepError::Changed { member: member.full_name.clone(), run: run.clone(), difference });
        }
        if status(run).as_deref() == Some("finished") {
            return Ok(Action::Skip { run: run.clone() });
        }
        if run.join("checkpoints/last.safetensors").is_file() {
            resumable = Some(run.clone());
        }
    }
    Ok(match resumable {
        Some(run) => Action::Resume { run },
        None => Action::Start,
    })
}
