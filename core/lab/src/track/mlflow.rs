//! MLflow tracking: an uploader that brings a run folder to an MLflow server.
//!
//! The run folder is the only journal. `metrics.jsonl` (always written, see
//! [`MetricsLog`](super::MetricsLog)), `config.toml` (the params), `manifest.json` (the final
//! status), `summary.json`, `samples/*.png` and, when `[track.mlflow] upload_checkpoints` is
//! set, `checkpoints/*` hold everything MLflow gets; nothing is queued in memory or in a
//! second file. One [`Uploader`](uploader) pass reads them and sends what the server lacks.
//! The same pass runs live, on a background thread of [`MlflowTracker`] (every
//! `batch_window`, or at once when 1000 rows are waiting), and in [`sync`] (`lab sync RUN_DIR`).
//!
//! What has reached the server is recorded in one watermark file, `mlflow-sent.json` (see
//! [`watermark`]): the number of leading rows of `metrics.jsonl` the server confirmed, with
//! their byte length and the last confirmed line, plus fingerprints of the params and tags,
//! the status and each artifact last confirmed. Metric points are sent once: MLflow keeps
//! every point it is sent, so the watermark, not the server, says what is done. Params, tags,
//! the status and artifacts are idempotent on the server, so they are simply sent again when
//! their fingerprint is not the confirmed one.
//!
//! A crash between a metrics request and the watermark update is made safe by writing the
//! batch's end (`in_flight_end`) to the watermark *before* sending it. Rows between the
//! watermark and that end are in doubt; before they are sent again, the server's history of
//! their keys is read, the confirmed rows are taken out of it, and the rows it still holds
//! are skipped (counted as `already_on_server`). This does not rely on a given store
//! dropping identical points (MLflow's SQL store does, its file store does not), and the
//! history is read only for an uncertain batch. A metric's MLflow timestamp is derived from
//! its row (the run's start time in `mlflow.json` plus the row's `time`), so a row maps to the
//! same point every time it is read.
//!
//! If the server cannot be reached (at start or later) training goes on, one warning says
//! so, and the thread retries with backoff; `lab sync` sends what is still missing when the
//! run ends. `mlflow.json` keeps the server, experiment, run id and tags of the folder's
//! MLflow run, so a sync continues the same run, or creates it if the server was never
//! reached. A flock on `mlflow.lock` keeps a live run and a sync from sending at once.
//!
//! Facts about the server (mlflow 3.17.2) this relies on: artifacts are uploaded with
//! `PUT {uri}/api/2.0/mlflow-artifacts/artifacts/<experiment_id>/<run_id>/artifacts/<path>`
//! when the server runs with `--serve-artifacts`; non-finite metric values are sent as
//! `"NaN"`/`"Infinity"`/`"-Infinity"`, and its SQL store gives ±infinity back as ±`f64::MAX`
//! and -0.0 as 0.0; param values are limited to 6000 characters, tag values to 8000, keys to
//! 250 characters of `[A-Za-z0-9_-. /:]`; a param, once logged, cannot change.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::jsonl::write_atomically;
use super::TrackError;

pub(crate) mod rest;
#[cfg(test)]
mod tests;
mod tracker;
mod uploader;
pub mod watermark;

pub use tracker::MlflowTracker;
use uploader::{Failure, Target, Uploader};

/// `mlflow.json` in the run folder: which server, experiment and run the folder is tracked to.
pub const STATE_FILE: &str = "mlflow.json";
/// The lock a live tracker (or a sync) holds on the run folder.
pub const LOCK_FILE: &str = "mlflow.lock";
/// The tag that identifies a run folder's MLflow run, so a lost `runs/create` answer does
/// not lead to a second run.
pub const RUN_UID_TAG: &str = "lab.run_uid";
/// The tag holding the run folder's path.
pub const RUN_DIR_TAG: &str = "lab.run_dir";
/// MLflow's limit on param values, in characters.
pub const MAX_PARAM_VALUE: usize = 6000;
/// MLflow's limit on tag values, in characters.
pub const MAX_TAG_VALUE: usize = 8000;
/// MLflow's limit on param, metric and tag keys, in characters.
pub const MAX_KEY: usize = 250;

/// Timeouts of the MLflow uploader.
#[derive(Debug, Clone)]
pub struct MlflowOptions {
    /// How long to wait for a TCP connection (also bounds how long `start` can take when the
    /// server is down).
    pub connect_timeout: Duration,
    /// Read/write timeout of one request.
    pub request_timeout: Duration,
    /// How often the live uploader looks for new rows (it also wakes when 1000 are waiting).
    pub batch_window: Duration,
    /// The first wait before retrying an unreachable server; it doubles up to
    /// `max_retry_interval`.
    pub retry_interval: Duration,
    /// The longest wait between retries.
    pub max_retry_interval: Duration,
    /// How long `finish` waits for the last pass; what it does not send, `lab sync` does.
    pub finish_timeout: Duration,
}

impl Default for MlflowOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            batch_window: Duration::from_secs(2),
            retry_interval: Duration::from_secs(5),
            max_retry_interval: Duration::from_secs(60),
            finish_timeout: Duration::from_secs(30),
        }
    }
}

/// A run status as MLflow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MlflowStatus {
    /// In progress (also set again when a run is resumed).
    Running,
    /// Ran to its end.
    Finished,
    /// Stopped by an error.
    Failed,
    /// Interrupted, or its process ended without finishing the run.
    Killed,
}

impl MlflowStatus {
    /// The name MLflow's REST API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }
}

/// `mlflow.json`: where a run folder is tracked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlflowState {
    /// The tracking server, `http://host:port`.
    pub uri: String,
    /// Experiment name.
    pub experiment: String,
    /// Experiment id, once known.
    #[serde(default)]
    pub experiment_id: Option<String>,
    /// Run name shown by MLflow.
    pub run_name: String,
    /// MLflow run id, once the run exists on the server.
    #[serde(default)]
    pub run_id: Option<String>,
    /// This folder's identity, stored as the run's `lab.run_uid` tag.
    pub run_uid: String,
    /// When tracking started, in milliseconds since the Unix epoch: the run's start time, and
    /// the origin of the metrics' timestamps (a row's `time` is added to it).
    pub start_time: i64,
    /// The run's artifact root as the server reported it.
    #[serde(default)]
    pub artifact_uri: Option<String>,
    /// The run's tags (git commit, versions, plugins), as the trainer gave them.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl MlflowState {
    /// Reads `run_dir/mlflow.json`.
    pub fn load(run_dir: &Path) -> Result<Self, TrackError> {
        let path = run_dir.join(STATE_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                TrackError::Invalid(format!(
                    "{}: no {STATE_FILE}: this run was not tracked with MLflow (set \
                     MLFLOW_TRACKING_URI or [track.mlflow] before `lab run`)",
                    run_dir.display()
                ))
            } else {
                TrackError::Io { path: path.clone(), source: e }
            }
        })?;
        serde_json::from_str(&text).map_err(|e| TrackError::Parse { path, line: e.line(), message: e.to_string() })
    }

    /// Writes `run_dir/mlflow.json` atomically.
    pub fn save(&self, run_dir: &Path) -> Result<(), TrackError> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| TrackError::Invalid(format!("{STATE_FILE}: {e}")))?;
        text.push('\n');
        write_atomically(&run_dir.join(STATE_FILE), text.as_bytes())
    }

    /// Points the state at `uri`. Switching servers is only possible while no run was
    /// created; returns whether the state changed.
    fn adopt_uri(&mut self, uri: &str, run_dir: &Path) -> Result<bool, TrackError> {
        if self.uri == uri {
            return Ok(false);
        }
        if let Some(run_id) = &self.run_id {
            return Err(TrackError::Invalid(format!(
                "{} is tracked as run {run_id} on the MLflow server {}, not {uri}: sync it to {} \
                 (or, to send it to {uri} as a new run, delete {STATE_FILE} and {} in the run \
                 folder)",
                run_dir.display(),
                self.uri,
                self.uri,
                watermark::WATERMARK_FILE
            )));
        }
        self.uri = uri.to_owned();
        self.experiment_id = None;
        Ok(true)
    }
}

/// What a [`sync`] (or one uploader pass) sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The server.
    pub uri: String,
    /// The MLflow experiment id.
    pub experiment_id: String,
    /// The MLflow run id.
    pub run_id: String,
    /// Whether this sync created the run (the server was unreachable while training).
    pub created_run: bool,
    /// Params sent.
    pub params: usize,
    /// Tags sent.
    pub tags: usize,
    /// Metric points sent.
    pub metrics: usize,
    /// Files uploaded.
    pub artifacts: usize,
    /// The status set, if one was.
    pub status: Option<MlflowStatus>,
    /// Rows of an uncertain batch (sent, but its confirmation was lost) found on the server
    /// and therefore not sent again.
    pub already_on_server: usize,
    /// Items the server refused, with its reason; they are not retried.
    pub rejected: Vec<String>,
}

impl SyncReport {
    /// Whether nothing was sent.
    pub fn is_empty(&self) -> bool {
        !self.created_run && self.params + self.tags + self.metrics + self.artifacts == 0 && self.status.is_none()
    }
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.run_dir.display())?;
        if self.is_empty() {
            write!(f, "nothing to send, MLflow run {} is up to date", self.run_id)?;
        } else {
            write!(
                f,
                "{} run {} (experiment {}) on {}: {} metrics, {} params, {} tags, {} artifacts",
                if self.created_run { "created" } else { "updated" },
                self.run_id,
                self.experiment_id,
                self.uri,
                self.metrics,
                self.params,
                self.tags,
                self.artifacts
            )?;
            if let Some(status) = self.status {
                write!(f, ", status {}", status.as_str())?;
            }
        }
        if self.already_on_server > 0 {
            write!(f, " ({} metrics were already on the server)", self.already_on_server)?;
        }
        if !self.rejected.is_empty() {
            write!(f, "; {} refused by the server: {}", self.rejected.len(), self.rejected.join("; "))?;
        }
        Ok(())
    }
}

/// Sends everything of `run_dir` the MLflow server lacks (see the module docs): metrics past
/// the watermark, params, tags and artifacts whose fingerprint changed, and the final status
/// from `manifest.json`. It continues the run recorded in `mlflow.json`, or creates it if the
/// server was never reached. `uri` overrides the recorded server, which is only allowed while
/// the run was never created anywhere. A second sync sends nothing.
///
/// A run whose manifest still says `running` (its process ended without finishing) gets
/// KILLED, with the time of its last metric as the end time.
pub fn sync(run_dir: &Path, uri: Option<&str>) -> Result<SyncReport, TrackError> {
    sync_with(run_dir, uri, &MlflowOptions::default())
}

/// [`sync`] with explicit timeouts.
pub fn sync_with(run_dir: &Path, uri: Option<&str>, options: &MlflowOptions) -> Result<SyncReport, TrackError> {
    let _lock = RunLock::acquire(run_dir)?;
    let mut state = MlflowState::load(run_dir)?;
    let rest = rest::Rest::new(uri.unwrap_or(&state.uri), options.connect_timeout, options.request_timeout)
        .map_err(TrackError::Invalid)?;
    if state.adopt_uri(rest.base(), run_dir)? {
        state.save(run_dir)?;
    }
    let (status, end_time) = final_status_of(run_dir);
    let mut uploader = Uploader::new(run_dir, rest, state)?;
    match uploader.pass(Target::Final { status, end_time }) {
        Ok(()) => Ok(uploader.into_report()),
        Err(Failure::Unavailable(e)) => Err(TrackError::Invalid(format!(
            "cannot sync {} to MLflow at {}: {}; {} (start the server and run `lab sync` again; \
             nothing is sent twice)",
            run_dir.display(),
            uploader.uri(),
            e.detail(),
            uploader.unsent_rows()
        ))),
        Err(Failure::Fatal(message)) => Err(TrackError::Invalid(message)),
        Err(Failure::Local(e)) => Err(e),
    }
}

/// The run's final status from `manifest.json`, with its end time in milliseconds since the
/// Unix epoch when the manifest has one. A manifest that still says `running` (or none) means
/// the run's process is gone without finishing: KILLED, ended at its last metric.
fn final_status_of(run_dir: &Path) -> (MlflowStatus, Option<i64>) {
    let manifest: serde_json::Value = fs::read_to_string(run_dir.join("manifest.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let status = match manifest["status"].as_str() {
        Some("finished") => MlflowStatus::Finished,
        Some("failed") => MlflowStatus::Failed,
        Some("killed") => MlflowStatus::Killed,
        _ => return (MlflowStatus::Killed, None),
    };
    let end_time = manifest["finished"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    (status, end_time)
}

/// The key MLflow stores `key` under: characters MLflow refuses (anything but letters,
/// digits, `_ - . / :` and space) become `_`, and it is cut to 250 characters. lab's own
/// keys (`loss/d`, `train.lr`) are unchanged.
pub fn mlflow_key(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | ' ') { c } else { '_' })
        .take(MAX_KEY)
        .collect()
}

/// `value` cut to at most `limit` characters, ending in a marker that says how long it was.
pub fn truncate_value(value: &str, limit: usize) -> String {
    let len = value.chars().count();
    if len <= limit {
        return value.to_owned();
    }
    let marker = format!("...[truncated, {len} characters]");
    let keep = limit.saturating_sub(marker.chars().count());
    value.chars().take(keep).chain(marker.chars()).collect()
}

/// Flattens a resolved config into MLflow params: nested tables become dotted keys
/// (`train.lr`), strings are given without quotes, arrays (and arrays of tables) as their TOML
/// inline text (`[0, 1, 2]`, `["a", "b"]`), everything else as TOML writes it. Empty tables
/// give nothing. Values are not cut here; the uploader cuts them to MLflow's limit.
pub fn flatten_config(config: toml::Table) -> BTreeMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => {
                    out.insert(key, s.clone());
                }
                other => {
                    out.insert(key, other.to_string());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &config, &mut out);
    out
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// An exclusive `flock` on `run_dir/mlflow.lock`: one uploader per run folder, so a `lab sync`
/// cannot race a live run into sending the same rows twice. The kernel drops it when the
/// process ends.
#[derive(Debug)]
struct RunLock {
    _file: File,
}

impl RunLock {
    fn acquire(run_dir: &Path) -> Result<Self, TrackError> {
        let path = run_dir.join(LOCK_FILE);
        let io_err = |source| TrackError::Io { path: path.clone(), source };
        let mut file =
            OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path).map_err(io_err)?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                return Err(TrackError::Invalid(format!(
                    "{}: another process (pid {}) is sending this run to MLflow right now (it \
                     holds {LOCK_FILE}); wait for it to end, then run `lab sync {}`",
                    run_dir.display(),
                    holder.trim(),
                    run_dir.display()
                )));
            }
            return Err(io_err(e));
        }
        file.set_len(0).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(Self { _file: file })
    }
}

/// A fresh identity for a run folder's MLflow run.
fn new_run_uid(run_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let digest = Sha256::digest(format!("{}\n{nanos}\n{}", run_dir.display(), std::process::id()));
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}
