//! One pass over a run folder: sends the MLflow server what it lacks and moves the watermark.
//! The live tracker's thread and `lab sync` both run it (see the [`mlflow`](super) module docs).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::rest::{MetricOut, PutError, Rest, RestError};
use super::watermark::{read_rows, Row, Watermark, WATERMARK_FILE};
use super::{
    flatten_config, mlflow_key, now_ms, truncate_value, MlflowState, MlflowStatus, SyncReport, MAX_PARAM_VALUE,
    MAX_TAG_VALUE, RUN_DIR_TAG, RUN_UID_TAG, STATE_FILE,
};
use crate::track::TrackError;

/// MLflow's log-batch limits: 1000 metrics, 100 params, 100 tags per request, and a margin
/// under its 1 MB request limit for params and tags (values of up to 8000 characters).
const MAX_METRICS: usize = 1000;
const MAX_PARAMS_OR_TAGS: usize = 100;
const MAX_BATCH_BYTES: usize = 500_000;
/// Rows read at a time when the confirmed rows are counted against the server's history.
const CONFIRMED_ROWS_PER_READ: usize = 10_000;
/// How many refused items are logged one by one before the rest are only counted.
const REJECTIONS_LOGGED: usize = 5;

/// Why a pass stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server did not answer: try again later; the run folder keeps everything.
    Unavailable(RestError),
    /// Sending cannot go on (the run is gone, the experiment is deleted, ...).
    Fatal(String),
    /// A file in the run folder could not be read or written.
    Local(TrackError),
}

impl Failure {
    /// One line for users.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Unavailable(e) => format!("server unreachable ({})", e.detail()),
            Self::Fatal(m) => m.clone(),
            Self::Local(e) => e.to_string(),
        }
    }
}

impl From<TrackError> for Failure {
    fn from(e: TrackError) -> Self {
        Self::Local(e)
    }
}

/// The status a pass brings the run to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// The run is training: RUNNING, and artifacts wait for the end.
    Running,
    /// The run has ended: artifacts, then this status; `end_time` defaults to the last
    /// metric's time.
    Final { status: MlflowStatus, end_time: Option<i64> },
}

/// Sends one run folder to its MLflow run.
pub(super) struct Uploader {
    run_dir: PathBuf,
    rest: Rest,
    state: MlflowState,
    mark: Watermark,
    report: SyncReport,
    /// Params and tags are read once per uploader: they do not change while it lives.
    params_tags_done: bool,
}

impl Uploader {
    pub fn new(run_dir: &Path, rest: Rest, state: MlflowState) -> Result<Self, TrackError> {
        Ok(Self {
            run_dir: run_dir.to_owned(),
            mark: Watermark::load(run_dir)?,
            report: SyncReport { run_dir: run_dir.to_owned(), ..SyncReport::default() },
            rest,
            state,
            params_tags_done: false,
        })
    }

    pub fn run_id(&self) -> Option<&str> {
        self.state.run_id.as_deref()
    }

    pub fn uri(&self) -> &str {
        self.rest.base()
    }

    pub fn into_report(self) -> SyncReport {
        let mut report = self.report;
        report.uri = self.rest.base().to_owned();
        report.run_id = self.state.run_id.unwrap_or_default();
        report.experiment_id = self.state.experiment_id.unwrap_or_default();
        report
    }

    /// How many rows of `metrics.jsonl` are not confirmed, as a phrase.
    pub fn unsent_rows(&self) -> String {
        match read_rows(&self.metrics_path(), self.mark.metric_bytes, usize::MAX, 0) {
            Ok(rows) => format!("{} rows of metrics.jsonl are not on the server yet", rows.len()),
            Err(e) => e.to_string(),
        }
    }

    fn metrics_path(&self) -> PathBuf {
        self.run_dir.join("metrics.jsonl")
    }

    /// Sends what the server lacks, in this order: params and tags, RUNNING (for a live run),
    /// metric rows past the watermark, and for an ended run the artifacts and the final
    /// status. Every confirmed step is recorded in the watermark at once.
    pub fn pass(&mut self, target: Target) -> Result<(), Failure> {
        self.ensure_run()?;
        if !self.params_tags_done {
            self.send_params_and_tags()?;
            self.params_tags_done = true;
        }
        if let Target::Running = target {
            self.send_status(MlflowStatus::Running, None)?;
        }
        self.send_metrics()?;
        if let Target::Final { status, end_time } = target {
            self.send_artifacts()?;
            let end_time = end_time.or_else(|| self.last_row_time()).unwrap_or_else(now_ms);
            self.send_status(status, Some(end_time))?;
        }
        Ok(())
    }

    /// Makes sure the run exists on the server: finds or creates the experiment, then finds
    /// the run by its `lab.run_uid` tag (a `runs/create` whose answer was lost) or creates it,
    /// records its id in `mlflow.json` and fits the watermark to it.
    pub fn ensure_run(&mut self) -> Result<(), Failure> {
        let mut created_now = false;
        if self.state.run_id.is_none() {
            let experiment_id = self.experiment_id()?;
            let found = self
                .rest
                .find_run_by_tag(&experiment_id, RUN_UID_TAG, &self.state.run_uid)
                .map_err(|e| self.fail("looking for the run", e))?;
            let info = match found {
                Some(info) => info,
                None => {
                    let tags = [(RUN_UID_TAG, self.state.run_uid.as_str())];
                    let info = self
                        .rest
                        .create_run(&experiment_id, &self.state.run_name, self.state.start_time, &tags)
                        .map_err(|e| self.fail("creating the run", e))?;
                    self.report.created_run = true;
                    created_now = true;
                    info
                }
            };
            self.state.experiment_id = Some(experiment_id);
            self.state.run_id = Some(info.run_id);
            self.state.artifact_uri = Some(info.artifact_uri);
            self.state.save(&self.run_dir)?;
        }
        let run_id = self.run_id().unwrap_or_default().to_owned();
        if self.mark.reconcile(&run_id, &self.metrics_path(), !created_now)? {
            self.mark.save(&self.run_dir)?;
        }
        Ok(())
    }

    fn experiment_id(&self) -> Result<String, Failure> {
        let name = &self.state.experiment;
        let lookup = |u: &Self| u.rest.experiment_by_name(name).map_err(|e| u.fail("looking up the experiment", e));
        let experiment = match lookup(self)? {
            Some(e) => e,
            None => match self.rest.create_experiment(name) {
                Ok(id) => return Ok(id),
                // Another run of a sweep created it in the meantime.
                Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {
                    lookup(self)?.ok_or_else(|| self.fail("creating the experiment", e))?
                }
                Err(e) => return Err(self.fail("creating the experiment", e)),
            },
        };
        if experiment["lifecycle_stage"].as_str() == Some("deleted") {
            let id = experiment["experiment_id"].as_str().unwrap_or("?");
            return Err(Failure::Fatal(format!(
                "MLflow experiment `{name}` (id {id}) on {} is deleted: restore it \
                 (`mlflow experiments restore --experiment-id {id}`) or track to another \
                 experiment name",
                self.rest.base()
            )));
        }
        Ok(experiment["experiment_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Params from `config.toml` and the tags of `mlflow.json`, cut to MLflow's limits, when
    /// they differ from what was last confirmed.
    fn send_params_and_tags(&mut self) -> Result<(), Failure> {
        let params: Vec<(String, String)> = read_config(&self.run_dir)
            .map(flatten_config)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (mlflow_key(&k), truncate_value(&v, MAX_PARAM_VALUE)))
            .collect();
        let mut tags = self.state.tags.clone();
        let run_dir = self.run_dir.canonicalize().unwrap_or_else(|_| self.run_dir.clone());
        tags.entry(RUN_DIR_TAG.to_owned()).or_insert_with(|| run_dir.display().to_string());
        let tags: Vec<(String, String)> =
            tags.into_iter().map(|(k, v)| (mlflow_key(&k), truncate_value(&v, MAX_TAG_VALUE))).collect();
        let fingerprint = format!("{:x}", Sha256::digest(serde_json::json!([params, tags]).to_string()));
        if self.mark.params_tags == fingerprint {
            return Ok(());
        }
        for (items, is_param) in [(&params, true), (&tags, false)] {
            for batch in chunks(items, MAX_PARAMS_OR_TAGS, MAX_BATCH_BYTES, |(k, v)| k.len() + v.len()) {
                self.send_key_values(batch, is_param)?;
            }
        }
        self.mark.params_tags = fingerprint;
        self.mark.save(&self.run_dir)?;
        Ok(())
    }

    /// One log-batch of params (or tags); a refused batch is sent again item by item, and the
    /// items the server refuses on their own are reported and skipped (a param cannot change
    /// its value, e.g. after `--resume --set`).
    fn send_key_values(&mut self, batch: &[(String, String)], is_param: bool) -> Result<(), Failure> {
        let items: Vec<(&str, &str)> = batch.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (params, tags) = if is_param { (&items[..], &[][..]) } else { (&[][..], &items[..]) };
        let run_id = self.run_id().unwrap_or_default().to_owned();
        match self.rest.log_batch(&run_id, &[], params, tags) {
            Ok(()) => {
                if is_param {
                    self.report.params += batch.len();
                } else {
                    self.report.tags += batch.len();
                }
                Ok(())
            }
            Err(e @ RestError::Unavailable { .. }) => Err(Failure::Unavailable(e)),
            Err(e) if batch.len() == 1 => {
                self.check_run_alive(&e)?;
                let what = if is_param { "param" } else { "tag" };
                self.reject(format!("{what} {}", batch[0].0), &e);
                Ok(())
            }
            Err(e) => {
                self.check_run_alive(&e)?;
                batch.iter().try_for_each(|one| self.send_key_values(std::slice::from_ref(one), is_param))
            }
        }
    }

    fn send_status(&mut self, status: MlflowStatus, end_time: Option<i64>) -> Result<(), Failure> {
        if self.mark.status == Some(status) {
            return Ok(());
        }
        let run_id = self.run_id().unwrap_or_default().to_owned();
        match self.rest.update_run(&run_id, status.as_str(), end_time) {
            Ok(()) => self.report.status = Some(status),
            Err(e @ RestError::Unavailable { .. }) => return Err(Failure::Unavailable(e)),
            Err(e) => {
                self.check_run_alive(&e)?;
                self.reject(format!("status {}", status.as_str()), &e);
            }
        }
        self.mark.status = Some(status);
        self.mark.save(&self.run_dir)?;
        Ok(())
    }

    /// Sends the rows past the watermark, 1000 a request. Before each request the batch's
    /// end is recorded as in flight, after it the watermark moves past the batch. Rows of an
    /// earlier in-flight batch are first checked against the server's history.
    fn send_metrics(&mut self) -> Result<(), Failure> {
        let path = self.metrics_path();
        loop {
            let doubt_end = self.mark.in_flight_end.unwrap_or(0);
            let rows = read_rows(&path, self.mark.metric_bytes, MAX_METRICS, doubt_end)?;
            let Some(last) = rows.last() else {
                return self.clear_in_flight();
            };
            let chunk_end = last.end;
            let (doubtful, sure): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.end <= doubt_end);
            let mut to_send = self.not_on_server(&doubtful)?;
            to_send.extend(sure);
            self.mark.in_flight_end = Some(doubt_end.max(chunk_end));
            self.mark.save(&self.run_dir)?;
            for batch in to_send.chunks(MAX_METRICS) {
                self.send_metric_batch(batch)?;
            }
            self.mark.metric_rows += rows.len() as u64;
            self.mark.metric_bytes = chunk_end;
            self.mark.last_row = last.line.clone();
            if self.mark.in_flight_end <= Some(chunk_end) {
                self.mark.in_flight_end = None;
            }
            self.mark.save(&self.run_dir)?;
        }
    }

    fn clear_in_flight(&mut self) -> Result<(), Failure> {
        if self.mark.in_flight_end.take().is_some() {
            self.mark.save(&self.run_dir)?;
        }
        Ok(())
    }

    /// One metrics request; a refused batch is sent again row by row, and the rows the server
    /// refuses on their own are reported and skipped.
    fn send_metric_batch(&mut self, rows: &[&Row]) -> Result<(), Failure> {
        let keys: Vec<String> = rows.iter().map(|r| mlflow_key(&r.record.key)).collect();
        let metrics: Vec<MetricOut> = rows
            .iter()
            .zip(&keys)
            .map(|(r, key)| MetricOut { key, value: r.record.value, step: r.record.step, timestamp: self.timestamp(r) })
            .collect();
        let run_id = self.run_id().unwrap_or_default().to_owned();
        match self.rest.log_batch(&run_id, &metrics, &[], &[]) {
            Ok(()) => {
                self.report.metrics += rows.len();
                Ok(())
            }
            Err(e @ RestError::Unavailable { .. }) => Err(Failure::Unavailable(e)),
            Err(e) if rows.len() == 1 => {
                self.check_run_alive(&e)?;
                self.reject(format!("metric {} at step {}", rows[0].record.key, rows[0].record.step), &e);
                Ok(())
            }
            Err(e) => {
                self.check_run_alive(&e)?;
                rows.iter().try_for_each(|one| self.send_metric_batch(std::slice::from_ref(one)))
            }
        }
    }

    /// The rows of an uncertain batch the server does not hold: the server's history of their
    /// keys, less the confirmed rows, as multisets of (key, step, timestamp, stored value).
    fn not_on_server<'a>(&mut self, doubtful: &[&'a Row]) -> Result<Vec<&'a Row>, Failure> {
        if doubtful.is_empty() {
            return Ok(Vec::new());
        }
        let id =
            |u: &Self, r: &Row| (mlflow_key(&r.record.key), r.record.step, u.timestamp(r), stored_bits(r.record.value));
        let keys: BTreeSet<String> = doubtful.iter().map(|r| mlflow_key(&r.record.key)).collect();
        let run_id = self.run_id().unwrap_or_default().to_owned();
        let mut extra: HashMap<(String, u64, i64, u64), i64> = HashMap::new();
        for key in &keys {
            let history =
                self.rest.metric_history(&run_id, key).map_err(|e| self.fail("reading the metric history", e))?;
            for point in history {
                let (step, timestamp, value) = super::rest::history_point(&point);
                *extra.entry((key.clone(), step, timestamp, stored_bits(value))).or_default() += 1;
            }
        }
        // The confirmed rows, a bounded number at a time: the file can be long.
        let mut from = 0;
        while from < self.mark.metric_bytes {
            let confirmed = read_rows(&self.metrics_path(), from, CONFIRMED_ROWS_PER_READ, 0)?;
            let Some(last) = confirmed.last() else { break };
            from = last.end;
            for row in confirmed.iter().filter(|r| r.end <= self.mark.metric_bytes) {
                if keys.contains(&mlflow_key(&row.record.key)) {
                    *extra.entry(id(self, row)).or_default() -= 1;
                }
            }
        }
        let mut out = Vec::new();
        for row in doubtful {
            match extra.get_mut(&id(self, row)).filter(|n| **n > 0) {
                Some(n) => {
                    *n -= 1;
                    self.report.already_on_server += 1;
                }
                None => out.push(*row),
            }
        }
        Ok(out)
    }

    /// A row's MLflow timestamp: the run's start plus the row's `time`, so that the same row
    /// always gives the same point.
    fn timestamp(&self, row: &Row) -> i64 {
        self.state.start_time + (row.record.time * 1000.0).round() as i64
    }

    /// The timestamp of the last confirmed row, the end time of a run that ended unfinished.
    fn last_row_time(&self) -> Option<i64> {
        let record = crate::track::Record::from_json_line(&self.mark.last_row).ok()?;
        Some(self.state.start_time + (record.time * 1000.0).round() as i64)
    }

    /// Uploads the run-folder files whose fingerprint changed since they were last confirmed:
    /// `config.toml`, `manifest.json`, `summary.json`, `metrics.jsonl`, `samples/*.png`, and
    /// `checkpoints/*` when `[track.mlflow] upload_checkpoints` is set.
    fn send_artifacts(&mut self) -> Result<(), Failure> {
        for local in self.artifact_files() {
            let Ok(meta) = fs::metadata(self.run_dir.join(&local)) else { continue };
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            let fingerprint = format!("{}:{}", meta.len(), mtime.map_or(0, |d| d.as_nanos()));
            if self.mark.artifacts.get(&local) == Some(&fingerprint) {
                continue;
            }
            self.upload(&local)?;
            self.mark.artifacts.insert(local, fingerprint);
            self.mark.save(&self.run_dir)?;
        }
        Ok(())
    }

    fn artifact_files(&self) -> Vec<String> {
        let mut out: Vec<String> = ["config.toml", "manifest.json", "summary.json", "metrics.jsonl"]
            .into_iter()
            .filter(|name| self.run_dir.join(name).is_file())
            .map(str::to_owned)
            .collect();
        let upload_checkpoints = read_config(&self.run_dir)
            .and_then(|c| c.get("track")?.get("mlflow")?.get("upload_checkpoints")?.as_bool())
            .unwrap_or(false);
        let mut folder = |dir: &str, keep: &dyn Fn(&str) -> bool| {
            let mut names: Vec<String> = fs::read_dir(self.run_dir.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| keep(name))
                .collect();
            names.sort();
            out.extend(names.into_iter().map(|name| format!("{dir}/{name}")));
        };
        folder("samples", &|name| name.ends_with(".png"));
        if upload_checkpoints {
            // Dot files are checkpoints still being written.
            folder("checkpoints", &|name| !name.starts_with('.'));
        }
        out
    }

    /// Uploads `local` (relative to the run folder) to the same path in the run's artifacts.
    fn upload(&mut self, local: &str) -> Result<(), Failure> {
        let artifact_uri = match &self.state.artifact_uri {
            Some(uri) => uri.clone(),
            None => {
                let run_id = self.run_id().unwrap_or_default().to_owned();
                let run = self.rest.get_run(&run_id).map_err(|e| self.fail("reading the run", e))?;
                let uri = run["info"]["artifact_uri"].as_str().unwrap_or("").to_owned();
                self.state.artifact_uri = Some(uri.clone());
                self.state.save(&self.run_dir)?;
                uri
            }
        };
        let url = match self.rest.artifact_url(&artifact_uri, local) {
            Ok(url) => url,
            Err(message) => {
                self.reject_message(format!("artifact {local}"), message);
                return Ok(());
            }
        };
        match self.rest.put_file(&url, &self.run_dir.join(local)) {
            Ok(()) => self.report.artifacts += 1,
            Err(PutError::Local(e)) => self.reject_message(format!("artifact {local}"), format!("cannot read it: {e}")),
            Err(PutError::Rest(e @ RestError::Unavailable { .. })) => return Err(Failure::Unavailable(e)),
            Err(PutError::Rest(e)) => self.reject(format!("artifact {local}"), &e),
        }
        Ok(())
    }

    /// A refusal that every later request would get too: the run was deleted.
    fn check_run_alive(&self, err: &RestError) -> Result<(), Failure> {
        match err.code() {
            Some("RESOURCE_DOES_NOT_EXIST" | "INVALID_STATE") => Err(Failure::Fatal(format!(
                "MLflow run {} of {} cannot be written to any more ({err}); if it was deleted \
                 on purpose, delete {} and {} to sync this run folder as a new run",
                self.run_id().unwrap_or_default(),
                self.rest.base(),
                self.run_dir.join(STATE_FILE).display(),
                self.run_dir.join(WATERMARK_FILE).display(),
            ))),
            _ => Ok(()),
        }
    }

    fn fail(&self, doing: &str, err: RestError) -> Failure {
        match err {
            RestError::Unavailable { .. } => Failure::Unavailable(err),
            RestError::Rejected { .. } => {
                Failure::Fatal(format!("MLflow {doing} for {} failed: {err}", self.run_dir.display()))
            }
        }
    }

    fn reject(&mut self, what: String, err: &RestError) {
        let message = match err {
            RestError::Rejected { code, message, .. } => format!("{code}: {message}"),
            other => other.to_string(),
        };
        self.reject_message(what, message);
    }

    fn reject_message(&mut self, what: String, message: String) {
        let line = format!("{what}: {message}");
        if self.report.rejected.len() < REJECTIONS_LOGGED {
            tracing::warn!("MLflow refused {line}; skipped");
        }
        self.report.rejected.push(line);
    }
}

/// The run folder's `config.toml`, if it parses.
fn read_config(run_dir: &Path) -> Option<toml::Table> {
    toml::from_str(&fs::read_to_string(run_dir.join("config.toml")).ok()?).ok()
}

/// `items` cut into runs of at most `max_count` items and (unless one item alone is larger)
/// `max_bytes` bytes, sized by `size`.
fn chunks<T>(items: &[T], max_count: usize, max_bytes: usize, size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == max_count || bytes + n > max_bytes) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// The bits of `x` as MLflow's SQL store gives it back: ±infinity becomes ±`f64::MAX`, -0
/// becomes 0, every NaN the same NaN.
pub(super) fn stored_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else if x == f64::INFINITY {
        f64::MAX.to_bits()
    } else if x == f64::NEG_INFINITY {
        f64::MIN.to_bits()
    } else if x == 0.0 {
        0.0f64.to_bits()
    } else {
        x.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_within_count_and_size() {
        let items: Vec<usize> = vec![1; 250];
        let sizes: Vec<usize> = chunks(&items, 100, usize::MAX, |n| *n).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big = [300, 300, 300, 900];
        let sizes: Vec<usize> = chunks(&big, 100, 700, |n| *n).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 1, 1]);
        assert!(chunks(&[] as &[usize], 100, 10, |n| *n).is_empty());
    }

    #[test]
    fn stored_form_of_special_values() {
        assert_eq!(stored_bits(f64::INFINITY), f64::MAX.to_bits());
        assert_eq!(stored_bits(-0.0), 0.0f64.to_bits());
        assert_eq!(stored_bits(-f64::NAN), stored_bits(f64::NAN));
        assert_eq!(stored_bits(0.1), 0.1f64.to_bits());
    }
}
