//! MLflow tracking against an MLflow server, with offline spooling and `lab sync` replay.
//!
//! [`MlflowTracker`] never does network I/O on the training thread: every param, tag, metric,
//! artifact upload and status change is appended to `<run>/mlflow-spool.jsonl` (see
//! [`spool`](super::spool)) and handed to a background thread, which sends metrics in
//! `runs/log-batch` requests of up to 1000 and records what the server acknowledged in
//! `<run>/mlflow-sent`. If the server cannot be reached (at start or later) training goes on,
//! one warning says so, and the thread retries with backoff; whatever is still unsent when the
//! run ends is replayed by [`sync`] (`lab sync RUN_DIR`). The run's server, experiment and run
//! id are kept in `<run>/mlflow.json`, so a sync continues the same MLflow run, or creates it
//! if the server was never reached.
//!
//! Why not the `mlflow-client` crate (0.0.1): it has no artifact call at all; it builds a new
//! reqwest client (and tokio runtime) per request, without configurable timeouts; its
//! `log_batch` splits a large batch itself and stops at the first failed chunk without saying
//! which chunks were acknowledged, which a never-resend watermark needs to know; its run writer
//! marks the run FAILED on drop; and it would add a second HTTP stack (reqwest, tokio, hyper,
//! native-tls) next to `ureq`. The dozen REST calls used here are in `mlflow/rest.rs`.
//!
//! Facts about the server (mlflow 3.17.2) this relies on: artifacts are uploaded with
//! `PUT {uri}/api/2.0/mlflow-artifacts/artifacts/<experiment_id>/<run_id>/artifacts/<path>`
//! when the server runs with `--serve-artifacts` (the run's `artifact_uri` then reads
//! `mlflow-artifacts:/<experiment_id>/<run_id>/artifacts`); non-finite metric values are
//! sent as `"NaN"`/`"Infinity"`/`"-Infinity"`, and its SQL store gives ±infinity back as
//! ±`f64::MAX` and -0.0 as 0.0; param values are limited to 6000 characters, tag values to
//! 8000, keys to 250 characters of `[A-Za-z0-9_-. /:]`; a param, once logged, cannot change.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::jsonl::write_atomically;
use super::spool::MlflowStatus;
use super::TrackError;

mod replay;
pub(crate) mod rest;
mod sender;
mod sync;
#[cfg(test)]
mod tests;
mod tracker;

pub use sync::{sync, sync_with};
pub use tracker::MlflowTracker;

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

/// Timeouts and switches of the MLflow tracker.
#[derive(Debug, Clone)]
pub struct MlflowOptions {
    /// How long to wait for a TCP connection (also bounds how long `start` can take when the
    /// server is down).
    pub connect_timeout: Duration,
    /// Read/write timeout of one request.
    pub request_timeout: Duration,
    /// How long metrics are collected before a batch is sent (a batch also goes out as soon
    /// as it holds 1000 metrics).
    pub batch_window: Duration,
    /// The first wait before retrying an unreachable server; it doubles up to
    /// `max_retry_interval`.
    pub retry_interval: Duration,
    /// The longest wait between retries.
    pub max_retry_interval: Duration,
    /// How long `finish` waits for the queue to drain and the artifacts to upload; what is
    /// left stays in the spool for `lab sync`.
    pub finish_timeout: Duration,
    /// Also upload `checkpoints/*` at `finish` (they can be large).
    pub upload_checkpoints: bool,
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
            upload_checkpoints: false,
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
    /// When tracking started, in milliseconds since the Unix epoch (the run's start time).
    pub start_time: i64,
    /// The run's artifact root as the server reported it.
    #[serde(default)]
    pub artifact_uri: Option<String>,
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
}

/// What a [`sync`] sent.
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
    /// Metric points found on the server although their request was never acknowledged (the
    /// server died before answering); not sent again.
    pub already_on_server: usize,
    /// Entries the server refused, with its reason; they are not retried.
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

/// One point of a metric history read back from the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Training step.
    pub step: u64,
    /// The value as the server stores it (see the module docs for ±infinity and -0.0).
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// Parses one entry of a `metrics/get-history` answer.
pub(crate) fn history_point(v: &serde_json::Value) -> MetricPoint {
    let value = match &v["value"] {
        serde_json::Value::String(s) => match s.as_str() {
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => f64::NAN,
        },
        other => other.as_f64().unwrap_or(f64::NAN),
    };
    // Protobuf's JSON may write 64-bit integers as strings; MLflow writes numbers.
    let int = |x: &serde_json::Value| x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    MetricPoint { step: int(&v["step"]).max(0) as u64, value, timestamp: int(&v["timestamp"]) }
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
/// give nothing. Values are not cut here; `MlflowTracker::start` cuts params to MLflow's limit.
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

/// An exclusive `flock` on `run_dir/mlflow.lock`: one sender per run folder, so a `lab sync`
/// cannot race a live run into duplicate metrics. The kernel drops it when the process ends.
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
