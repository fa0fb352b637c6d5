//! Sweep members: one grid combination (and seed), its readable name, its resolved config and
//! the run group its run folder lives in (`<runs-dir>/<experiment>__<member>/`).
use std::path::{Path, PathBuf};

use crate::config::{Experiment, Sources};

use super::SweepError;

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct Member {
    /// Position in the sweep, from 0.
    pub index: usize,
    /// `augment.name=diffaugment__data.fraction=0.1__seed=1` (sanitised).
    pub name: String,
    /// `<experiment>__<name>`: the run's `name`, so its group is `<runs-dir>/<full name>/`.
    pub full_name: String,
    /// The grid assignments, as given.
    pub assignments: Vec<(String, String)>,
    /// The resolved experiment.
    pub experiment: Experiment,
    /// `<sweep-dir>/<name>.toml`.
    pub config_path: PathBuf,
}

impl Member {
    /// `<runs-dir>/<full name>`: where this member's run folder is, or will be.
    pub fn group(&self, runs_dir: &Path) -> PathBuf {
        runs_dir.join(&self.full_name)
    }

    /// The resolved config file's text: a comment saying what it is, then the config.
    pub fn config_text(&self, total: usize, source: &Path) -> String {
        let grid: Vec<String> = self.assignments.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "# Sweep member {} of {total} over {}: {}.\n# Written by `lab sweep`; run it alone with `lab run <this file>`.\n{}",
            self.index + 1,
            source.display(),
            if grid.is_empty() { "no grid".to_string() } else { grid.join(", ") },
            self.experiment.to_toml()
        )
    }
}

/// `key=value` as a folder-name part: letters, digits and `._=+-` stay, anything else is `_`.
pub fn sanitise(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "._=+-".contains(c) { c } else { '_' }).collect()
}

/// The member name of a combination: its assignments joined by `__`.
pub fn member_name(assignments: &[(String, String)]) -> String {
    if assignments.is_empty() {
        return "default".to_string();
    }
    assignments.iter().map(|(k, v)| sanitise(&format!("{k}={}", v.trim_matches('"')))).collect::<Vec<_>>().join("__")
}

/// Resolves every combination against the experiment file and the fixed overrides.
pub fn resolve(
    file: &Path,
    set: &[String],
    combos: &[Vec<(String, String)>],
    sweep_dir: &Path,
) -> Result<Vec<Member>, SweepError> {
    let base = Experiment::load(&Sources { file: Some(file.to_path_buf()), env: true, set: set.to_vec() })?;
    let mut members: Vec<Member> = Vec::with_capacity(combos.len());
    for (index, assignments) in combos.iter().enumerate() {
        let name = member_name(assignments);
        let full_name = format!("{}__{name}", base.name);
        if let Some(other) = members.iter().find(|m| m.full_name == full_name) {
            return Err(SweepError::NameClash { name: full_name, a: other.index + 1, b: index + 1 });
        }
        let mut all = set.to_vec();
        all.extend(assignments.iter().map(|(k, v)| format!("{k}={v}")));
        all.push(format!("name={}", toml::Value::String(full_name.clone())));
        // One MLflow experiment for the whole sweep, so its members can be compared side by side
        // (each run is named after its member).
        if base.track.mlflow.experiment.is_empty() {
            all.push(format!("track.mlflow.experiment={}", toml::Value::String(base.name.clone())));
        }
        let experiment = Experiment::load(&Sources { file: Some(file.to_path_buf()), env: true, set: all })
            .map_err(|e| SweepError::Member { name: name.clone(), message: e.to_string() })?;
        let config_path = sweep_dir.join(format!("{name}.toml"));
        members.push(Member { index, name, full_name, assignments: assignments.clone(), experiment, config_path });
    }
    Ok(members)
}
