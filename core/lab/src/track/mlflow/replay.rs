//! Sends spooled entries to one MLflow run, in order, advancing the sent watermark after each
//! acknowledged request. Used by the tracker's background thread and by `lab sync`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::rest::{MetricOut, PutError, Rest, RestError};
use super::{mlflow_key, MlflowState, SyncReport, RUN_UID_TAG};
use crate::track::spool::{read_spool, spool_path, write_sent, Entry, Spooled};
use crate::track::TrackError;

/// MLflow's log-batch limits (mlflow/utils/validation.py), and a margin under its 1 MB
/// request limit.
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;
const MAX_ITEMS: usize = 1000;
const MAX_BYTES: usize = 900_000;

/// How many refused entries are reported one by one before the rest are only counted.
const REJECTIONS_LOGGED: usize = 5;

/// Why sending stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server did not answer: try again later; the spool keeps everything.
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

/// Replays a run folder's spool to its MLflow run.
pub(super) struct Replayer {
    pub run_dir: PathBuf,
    pub rest: Rest,
    pub state: MlflowState,
    /// The watermark: entries with a smaller `seq` are acknowledged.
    pub sent: u64,
    /// What this replayer has sent so far.
    pub report: SyncReport,
}

impl Replayer {
    pub fn new(run_dir: &Path, rest: Rest, state: MlflowState, sent: u64) -> Self {
        Self {
            run_dir: run_dir.to_owned(),
            rest,
            state,
            sent,
            report: SyncReport { run_dir: run_dir.to_owned(), ..SyncReport::default() },
        }
    }

    /// Makes sure the run exists on the server: finds or creates the experiment, then finds
    /// the run by its `lab.run_uid` tag (a `runs/create` whose answer was lost) or creates
    /// it, and records its id in `mlflow.json`.
    pub fn ensure_run(&mut self) -> Result<(), Failure> {
        if self.state.run_id.is_some() {
            return Ok(());
        }
        let experiment_id = self.experiment_id()?;
        let found = self
            .rest
            .find_run_by_tag(&experiment_id, RUN_UID_TAG, &self.state.run_uid)
            .map_err(|e| self.fail("looking for the run", e))?;
        let info = match found {
            Some(info) => info,
            None => {
                let info = self
                    .rest
                    .create_run(
                        &experiment_id,
                        &self.state.run_name,
                        self.state.start_time,
                        &[(RUN_UID_TAG, self.state.run_uid.as_str())],
                    )
                    .map_err(|e| self.fail("creating the run", e))?;
                self.report.created_run = true;
                info
            }
        };
        self.state.experiment_id = Some(experiment_id);
        self.state.run_id = Some(info.run_id);
        self.state.artifact_uri = Some(info.artifact_uri);
        self.state.save(&self.run_dir).map_err(Failure::Local)
    }

    fn experiment_id(&self) -> Result<String, Failure> {
        let name = &self.state.experiment;
        let lookup = |r: &Self| r.rest.experiment_by_name(name).map_err(|e| r.fail("looking up the experiment", e));
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

    /// Sends every spool entry past the watermark (reading the spool file), after skipping
    /// the metrics the server already holds although they were never acknowledged (a
    /// request whose answer was lost when the server died). Returns the number of entries
    /// in the spool, all of them acknowledged now.
    pub fn catch_up(&mut self) -> Result<u64, Failure> {
        let had_run = self.state.run_id.is_some();
        self.ensure_run()?;
        let all = read_spool(&spool_path(&self.run_dir)).map_err(Failure::Local)?;
        let sent = (self.sent as usize).min(all.len());
        let (acked, pending) = all.split_at(sent);
        if pending.is_empty() {
            return Ok(all.len() as u64);
        }
        // A run created just now holds nothing that could be in doubt.
        let pending = if had_run { self.skip_in_doubt(acked, pending)? } else { pending.to_vec() };
        self.send(&pending)?;
        // The last entries may all have been skipped as already on the server.
        if self.sent < all.len() as u64 {
            self.ack(all.len() as u64 - 1)?;
        }
        Ok(all.len() as u64)
    }

    /// Leaves out of `pending` the metrics that are on the server but not among the
    /// acknowledged ones: the server history minus the acknowledged entries, as multisets of
    /// (key, step, timestamp, value as the server stores it).
    fn skip_in_doubt(&mut self, acked: &[Spooled], pending: &[Spooled]) -> Result<Vec<Spooled>, Failure> {
        let keys: BTreeSet<String> = pending
            .iter()
            .filter_map(|e| match &e.entry {
                Entry::Metric { key, .. } => Some(mlflow_key(key)),
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Ok(pending.to_vec());
        }
        let run_id = self.run_id().to_owned();
        let mut extra: HashMap<(String, u64, i64, u64), i64> = HashMap::new();
        for key in &keys {
            let history =
                self.rest.metric_history(&run_id, key).map_err(|e| self.fail("reading the metric history", e))?;
            for point in history {
                let p = super::history_point(&point);
                *extra.entry((key.clone(), p.step, p.timestamp, stored_bits(p.value))).or_default() += 1;
            }
        }
        for e in acked {
            if let Entry::Metric { key, value, step, timestamp } = &e.entry {
                let key = mlflow_key(key);
                if keys.contains(&key) {
                    *extra.entry((key, *step, *timestamp, stored_bits(*value))).or_default() -= 1;
                }
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for e in pending {
            if let Entry::Metric { key, value, step, timestamp } = &e.entry {
                let id = (mlflow_key(key), *step, *timestamp, stored_bits(*value));
                if let Some(n) = extra.get_mut(&id).filter(|n| **n > 0) {
                    *n -= 1;
                    self.report.already_on_server += 1;
                    continue;
                }
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    /// Sends `entries` (in `seq` order; those below the watermark are skipped): runs of
    /// params, tags and metrics as log-batch requests within MLflow's limits, artifacts and
    /// status changes one by one. The watermark advances after every acknowledged request.
    pub fn send(&mut self, entries: &[Spooled]) -> Result<(), Failure> {
        let entries: Vec<&Spooled> = entries.iter().filter(|e| e.seq >= self.sent).collect();
        let mut i = 0;
        while i < entries.len() {
            let e = entries[i];
            match &e.entry {
                Entry::Artifact { local, path } => {
                    self.upload(local, path)?;
                    self.ack(e.seq)?;
                    i += 1;
                }
                Entry::Status { status, end_time } => {
                    let run_id = self.run_id().to_owned();
                    match self.rest.update_run(&run_id, status.as_str(), *end_time) {
                        Ok(()) => self.report.status = Some(*status),
                        Err(e @ RestError::Unavailable { .. }) => return Err(Failure::Unavailable(e)),
                        Err(err) => {
                            self.check_run_alive(&err)?;
                            self.reject(format!("status {}", status.as_str()), &err);
                        }
                    }
                    self.ack(e.seq)?;
                    i += 1;
                }
                _ => {
                    let end = batch_end(&entries, i);
                    self.log_batch(&entries[i..end])?;
                    i = end;
                }
            }
        }
        Ok(())
    }

    /// One log-batch request; a refused batch is retried item by item, and items the server
    /// refuses on their own are skipped (and reported).
    fn log_batch(&mut self, batch: &[&Spooled]) -> Result<(), Failure> {
        let (mut metrics, mut params, mut tags) = (Vec::new(), Vec::new(), Vec::new());
        let keys: Vec<String> = batch.iter().map(|e| entry_key(&e.entry)).collect();
        for (e, key) in batch.iter().zip(&keys) {
            match &e.entry {
                Entry::Metric { value, step, timestamp, .. } => {
                    metrics.push(MetricOut { key, value: *value, step: *step, timestamp: *timestamp })
                }
                Entry::Param { value, .. } => params.push((key.as_str(), value.as_str())),
                Entry::Tag { value, .. } => tags.push((key.as_str(), value.as_str())),
                _ => unreachable!("batch_end keeps artifacts and status changes out of batches"),
            }
        }
        let run_id = self.run_id().to_owned();
        match self.rest.log_batch(&run_id, &metrics, &params, &tags) {
            Ok(()) => {
                self.report.metrics += metrics.len();
                self.report.params += params.len();
                self.report.tags += tags.len();
                self.ack(batch[batch.len() - 1].seq)
            }
            Err(e @ RestError::Unavailable { .. }) => Err(Failure::Unavailable(e)),
            Err(err) => {
                self.check_run_alive(&err)?;
                if batch.len() > 1 {
                    for one in batch {
                        self.log_batch(std::slice::from_ref(one))?;
                    }
                    Ok(())
                } else {
                    self.reject(describe(&batch[0].entry), &err);
                    self.ack(batch[0].seq)
                }
            }
        }
    }

    fn upload(&mut self, local: &str, path: &str) -> Result<(), Failure> {
        let file = if Path::new(local).is_absolute() { PathBuf::from(local) } else { self.run_dir.join(local) };
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dest = if path.is_empty() { name } else { format!("{}/{name}", path.trim_matches('/')) };
        let artifact_uri = match &self.state.artifact_uri {
            Some(uri) => uri.clone(),
            None => {
                let run_id = self.run_id().to_owned();
                let run = self.rest.get_run(&run_id).map_err(|e| self.fail("reading the run", e))?;
                let uri = run["info"]["artifact_uri"].as_str().unwrap_or("").to_owned();
                self.state.artifact_uri = Some(uri.clone());
                self.state.save(&self.run_dir).map_err(Failure::Local)?;
                uri
            }
        };
        let url = match self.rest.artifact_url(&artifact_uri, &dest) {
            Ok(url) => url,
            Err(message) => {
                self.reject_message(format!("artifact {dest}"), message);
                return Ok(());
            }
        };
        match self.rest.put_file(&url, &file) {
            Ok(()) => self.report.artifacts += 1,
            Err(PutError::Local(e)) => {
                self.reject_message(format!("artifact {dest}"), format!("cannot read {}: {e}", file.display()))
            }
            Err(PutError::Rest(e @ RestError::Unavailable { .. })) => return Err(Failure::Unavailable(e)),
            Err(PutError::Rest(e)) => self.reject(format!("artifact {dest}"), &e),
        }
        Ok(())
    }

    /// Records that every entry up to `seq` is acknowledged.
    fn ack(&mut self, seq: u64) -> Result<(), Failure> {
        self.sent = self.sent.max(seq + 1);
        write_sent(&self.run_dir, self.sent).map_err(Failure::Local)
    }

    fn run_id(&self) -> &str {
        self.state.run_id.as_deref().unwrap_or_default()
    }

    /// A refusal that every later request would get too: the run was deleted.
    fn check_run_alive(&self, err: &RestError) -> Result<(), Failure> {
        match err.code() {
            Some("RESOURCE_DOES_NOT_EXIST" | "INVALID_STATE") => Err(Failure::Fatal(format!(
                "MLflow run {} of {} cannot be written to any more ({err}); if it was deleted \
                 on purpose, delete {} and {} to sync this run folder as a new run",
                self.run_id(),
                self.rest.base(),
                self.run_dir.join(super::STATE_FILE).display(),
                self.run_dir.join(crate::track::spool::SENT_FILE).display(),
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

/// The end of the log-batch request starting at `entries[start]`: a run of params, tags and
/// metrics within MLflow's limits, without a repeated param or tag key (MLflow refuses those).
fn batch_end(entries: &[&Spooled], start: usize) -> usize {
    let (mut metrics, mut params, mut tags, mut bytes) = (0, 0, 0, 0);
    let mut param_keys = BTreeSet::new();
    let mut tag_keys = BTreeSet::new();
    for (i, e) in entries.iter().enumerate().skip(start) {
        let fits = match &e.entry {
            Entry::Metric { key, .. } => {
                metrics += 1;
                bytes += key.len() + 96;
                metrics <= MAX_METRICS
            }
            Entry::Param { key, value } => {
                params += 1;
                bytes += key.len() + value.len() + 32;
                params <= MAX_PARAMS && param_keys.insert(key.as_str())
            }
            Entry::Tag { key, value } => {
                tags += 1;
                bytes += key.len() + value.len() + 32;
                tags <= MAX_TAGS && tag_keys.insert(key.as_str())
            }
            Entry::Artifact { .. } | Entry::Status { .. } => false,
        };
        if !fits || metrics + params + tags > MAX_ITEMS || (bytes > MAX_BYTES && i > start) {
            return i;
        }
    }
    entries.len()
}

/// The key an entry is sent under.
fn entry_key(entry: &Entry) -> String {
    match entry {
        Entry::Metric { key, .. } | Entry::Param { key, .. } | Entry::Tag { key, .. } => mlflow_key(key),
        _ => String::new(),
    }
}

fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Metric { key, step, .. } => format!("metric {key} at step {step}"),
        Entry::Param { key, .. } => format!("param {key}"),
        Entry::Tag { key, .. } => format!("tag {key}"),
        Entry::Artifact { local, .. } => format!("artifact {local}"),
        Entry::Status { status, .. } => format!("status {}", status.as_str()),
    }
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

    fn spooled(seq: u64, entry: Entry) -> Spooled {
        Spooled { seq, entry }
    }

    #[test]
    fn batches_keep_within_mlflow_limits() {
        let mut all = Vec::new();
        for i in 0..150 {
            all.push(spooled(i, Entry::Param { key: format!("p{i}"), value: "1".into() }));
        }
        for i in 150..2650 {
            all.push(spooled(i, Entry::Metric { key: "m".into(), value: 1.0, step: i, timestamp: 0 }));
        }
        all.push(spooled(2650, Entry::Status { status: crate::track::spool::MlflowStatus::Finished, end_time: None }));
        let refs: Vec<&Spooled> = all.iter().collect();
        let mut cuts = vec![0];
        while *cuts.last().unwrap() < 2650 {
            cuts.push(batch_end(&refs, *cuts.last().unwrap()));
        }
        // 100 params; 50 params + 950 metrics (1000 items); then 1000, 550 metrics.
        assert_eq!(cuts, [0, 100, 1100, 2100, 2650]);
        let dup = [
            spooled(0, Entry::Tag { key: "a".into(), value: "1".into() }),
            spooled(1, Entry::Tag { key: "a".into(), value: "2".into() }),
        ];
        let refs: Vec<&Spooled> = dup.iter().collect();
        assert_eq!(batch_end(&refs, 0), 1);
    }

    #[test]
    fn stored_form_of_special_values() {
        assert_eq!(stored_bits(f64::INFINITY), f64::MAX.to_bits());
        assert_eq!(stored_bits(-0.0), 0.0f64.to_bits());
        assert_eq!(stored_bits(-f64::NAN), stored_bits(f64::NAN));
        assert_eq!(stored_bits(0.1), 0.1f64.to_bits());
    }
}
