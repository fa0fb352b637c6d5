//! Run folders as a report reads them: found by glob, with their resolved config, their
//! `summary.json` and, when needed, the evaluation values in `metrics.jsonl`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ReportError;

/// One run folder.
#[derive(Clone, Debug)]
pub struct Run {
    pub path: PathBuf,
    /// The path as notes show it: relative to the working directory when it is inside it.
    pub shown: String,
    pub config: toml::Table,
    pub seed: u64,
    /// `finished`, `failed`, `killed`, `running`, or `no summary.json`.
    pub status: String,
    pub eval: Option<EvalSummary>,
    /// When the run started (`manifest.json`), to pick the newest of two runs of one seed.
    pub started: String,
}

/// `summary.json`'s `eval`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct EvalSummary {
    #[serde(rename = "final")]
    pub last: Option<FinalEval>,
    pub best: Option<BestEval>,
}

/// The last evaluation of a run, with the protocol it used.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FinalEval {
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    #[serde(default)]
    pub higher_is_better: BTreeMap<String, bool>,
    #[serde(default)]
    pub protocol: serde_json::Value,
}

/// The best evaluation by the run's primary metric.
#[derive(Clone, Debug, Deserialize)]
pub struct BestEval {
    pub metric: String,
    pub value: f64,
    pub step: u64,
}

#[derive(Deserialize)]
struct SummaryFile {
    status: String,
    #[serde(default)]
    eval: Option<EvalSummary>,
}

/// Folders the globs matched that are not runs (no `config.toml`).
#[derive(Debug, Default)]
pub struct Found {
    pub runs: Vec<Run>,
    pub not_runs: Vec<String>,
}

/// Expands the globs (relative to `base`) and reads every run folder they match, in path order.
pub fn discover(patterns: &[String], base: &Path, spec: &Path) -> Result<Found, ReportError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let full = if Path::new(pattern).is_absolute() { PathBuf::from(pattern) } else { base.join(pattern) };
        let matches = glob::glob(&full.to_string_lossy())
            .map_err(|e| ReportError::key(spec, format!("runs[{i}]"), format!("not a glob pattern: {e}")))?;
        dirs.extend(matches.filter_map(Result::ok).filter(|p| p.is_dir()));
    }
    dirs.sort();
    dirs.dedup();
    let mut found = Found::default();
    for dir in dirs {
        let shown = shown(&dir, base);
        if !dir.join("config.toml").is_file() {
            found.not_runs.push(shown);
            continue;
        }
        found.runs.push(read_run(&dir, shown)?);
    }
    Ok(found)
}

/// A key a spec can group or filter by that no config holds: the run's experiment, its `name`
/// without a sweep member's suffix, so the seeds of `lab sweep --seeds 0,1,2` (named
/// `cgan__seed=0`, `cgan__seed=1`, ...) fall into one row.
pub const EXPERIMENT_KEY: &str = "experiment";

/// `name` up to a sweep member's suffix (`__<key>=<value>...`).
pub fn experiment_of(name: &str) -> &str {
    name.split_once("__").map_or(name, |(base, _)| base)
}

fn shown(dir: &Path, base: &Path) -> String {
    dir.strip_prefix(base).unwrap_or(dir).display().to_string()
}

/// Reads a run folder's `config.toml`, `summary.json` and `manifest.json`.
pub fn read_run(dir: &Path, shown: String) -> Result<Run, ReportError> {
    let config_path = dir.join("config.toml");
    let text = std::fs::read_to_string(&config_path).map_err(|e| ReportError::read(&config_path, e))?;
    let raw: toml::Table = toml::from_str(&text).map_err(|e| ReportError::Syntax {
        path: config_path.clone(),
        format: "TOML",
        message: e.to_string().trim().to_string(),
    })?;
    let mut config = with_current_defaults(raw);
    if let Some(name) = config.get("name").and_then(|n| n.as_str()) {
        let experiment = experiment_of(name).to_string();
        config.insert(EXPERIMENT_KEY.to_string(), toml::Value::String(experiment));
    }
    let seed = config.get("seed").and_then(|s| s.as_integer()).unwrap_or(0) as u64;
    let summary_path = dir.join("summary.json");
    let (status, eval) = match std::fs::read_to_string(&summary_path) {
        Ok(text) => {
            let s: SummaryFile = serde_json::from_str(&text).map_err(|e| ReportError::Syntax {
                path: summary_path.clone(),
                format: "JSON",
                message: e.to_string(),
            })?;
            (s.status, s.eval)
        }
        Err(_) => ("no summary.json".to_string(), None),
    };
    let started = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| m.get("started").and_then(|s| s.as_str()).map(str::to_string))
        .unwrap_or_default();
    Ok(Run { path: dir.to_path_buf(), shown, config, seed, status, eval, started })
}

/// A run's config with every key a later version added filled in with its default: a run
/// written before `optim.schedule.power` existed ran with what its default does, so it must
/// not look like a different experiment from a run written after. A config this version cannot
/// read (a key since removed) is kept as written.
fn with_current_defaults(raw: toml::Table) -> toml::Table {
    let current = toml::Value::Table(raw.clone())
        .try_into::<crate::config::Experiment>()
        .ok()
        .and_then(|experiment| toml::Table::try_from(experiment).ok());
    current.unwrap_or(raw)
}

impl Run {
    /// Only finished runs count in a table.
    pub fn finished(&self) -> bool {
        self.status == "finished"
    }

    /// The run's evaluation protocol, from its last evaluation.
    pub fn protocol(&self) -> Option<&serde_json::Value> {
        self.eval.as_ref()?.last.as_ref().map(|f| &f.protocol)
    }

    /// Whether higher is better for `metric`, as the metric plugin declared it.
    pub fn higher_is_better(&self, metric: &str) -> Option<bool> {
        self.eval.as_ref()?.last.as_ref()?.higher_is_better.get(metric).copied()
    }
}

/// A run's logged values: the `eval/<name>` series of its `metrics.jsonl`, by name, in step
/// order, and the last value of every other scalar it logged (`toy/modes`, `loss/D/...`), so a
/// table can show a value that no evaluation produced.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    pub eval: BTreeMap<String, Vec<(u64, f64)>>,
    /// Per key, the step and value of its latest record.
    pub last_logged: BTreeMap<String, (u64, f64)>,
}

impl Curves {
    /// The `eval/<name>` series.
    pub fn get(&self, name: &str) -> Option<&Vec<(u64, f64)>> {
        self.eval.get(name)
    }
}

/// Reads the logged values of a run; a run without `metrics.jsonl` has none.
pub fn eval_curves(run: &Run) -> Result<Curves, ReportError> {
    let path = run.path.join("metrics.jsonl");
    if !path.exists() {
        return Ok(Curves::default());
    }
    let records = crate::track::read_metrics(&path).map_err(|e| ReportError::read(&path, e))?;
    let mut curves = Curves::default();
    for r in records {
        if let Some(name) = r.key.strip_prefix("eval/") {
            curves.eval.entry(name.to_string()).or_default().push((r.step, r.value));
        } else if curves.last_logged.get(&r.key).is_none_or(|&(step, _)| r.step >= step) {
            curves.last_logged.insert(r.key, (r.step, r.value));
        }
    }
    for series in curves.eval.values_mut() {
        // A resumed run may log a step twice; the later value is the one that stands.
        series.sort_by_key(|p| p.0);
        let mut dedup: Vec<(u64, f64)> = Vec::with_capacity(series.len());
        for p in series.drain(..) {
            match dedup.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => dedup.push(p),
            }
        }
        *series = dedup;
    }
    Ok(curves)
}
