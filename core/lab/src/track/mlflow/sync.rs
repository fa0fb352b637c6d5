//! `lab sync RUN_DIR`: replays what a run folder's spool holds and the server has not
//! acknowledged.

use std::path::Path;

use super::replay::{Failure, Replayer};
use super::rest::Rest;
use super::{now_ms, MlflowOptions, MlflowState, RunLock, SyncReport, STATE_FILE};
use crate::track::spool::{self, read_sent, read_spool, spool_path, Entry, MlflowStatus, Spool};
use crate::track::TrackError;

/// Replays everything of `run_dir` the MLflow server has not acknowledged: params, tags,
/// metrics, artifacts and status, continuing the run recorded in `mlflow.json` (or creating
/// it if the server was never reached). `uri` overrides the recorded server, which is only
/// allowed while the run was never created anywhere.
///
/// It is idempotent: entries are sent in order, the watermark in `mlflow-sent` advances after
/// each acknowledged request, and metrics the server holds although their answer was lost
/// are found in its history and not sent again. So a second sync sends nothing.
///
/// A run whose spool has no final status (its process was killed before `finish`) gets
/// KILLED, with the time of its last spooled metric as the end time.
pub fn sync(run_dir: &Path, uri: Option<&str>) -> Result<SyncReport, TrackError> {
    sync_with(run_dir, uri, &MlflowOptions::default())
}

/// [`sync`] with explicit timeouts.
pub fn sync_with(run_dir: &Path, uri: Option<&str>, options: &MlflowOptions) -> Result<SyncReport, TrackError> {
    let _lock = RunLock::acquire(run_dir)?;
    let mut state = MlflowState::load(run_dir)?;
    let rest = Rest::new(uri.unwrap_or(&state.uri), options.connect_timeout, options.request_timeout)
        .map_err(TrackError::Invalid)?;
    if adopt_uri(&mut state, rest.base(), run_dir)? {
        state.save(run_dir)?;
    }
    close_unfinished(run_dir)?;
    let sent = read_sent(run_dir)?;
    let mut replayer = Replayer::new(run_dir, rest, state, sent);
    replayer.catch_up().map_err(|failure| {
        let unsent = |r: &Replayer| {
            read_spool(&spool_path(run_dir)).map(|all| all.len() as u64 - r.sent.min(all.len() as u64)).unwrap_or(0)
        };
        match failure {
            Failure::Unavailable(e) => TrackError::Invalid(format!(
                "cannot sync {} to MLflow at {}: {e}; {} entries are still unsent in {} (start \
                 the server and run `lab sync` again; nothing is sent twice)",
                run_dir.display(),
                replayer.rest.base(),
                unsent(&replayer),
                spool_path(run_dir).display()
            )),
            Failure::Fatal(message) => TrackError::Invalid(message),
            Failure::Local(e) => e,
        }
    })?;
    let mut report = replayer.report;
    report.uri = replayer.rest.base().to_owned();
    report.run_id = replayer.state.run_id.clone().unwrap_or_default();
    report.experiment_id = replayer.state.experiment_id.clone().unwrap_or_default();
    Ok(report)
}

/// Points `state` at `uri`. Switching servers is only possible while no run was created;
/// returns whether the state changed.
pub(super) fn adopt_uri(state: &mut MlflowState, uri: &str, run_dir: &Path) -> Result<bool, TrackError> {
    if state.uri == uri {
        return Ok(false);
    }
    if let Some(run_id) = &state.run_id {
        return Err(TrackError::Invalid(format!(
            "{} is tracked as run {run_id} on the MLflow server {}, not {uri}: sync it to {} \
             (or, to send it to {uri} as a new run, delete {STATE_FILE} and {} in the run \
             folder)",
            run_dir.display(),
            state.uri,
            state.uri,
            spool::SENT_FILE
        )));
    }
    state.uri = uri.to_owned();
    state.experiment_id = None;
    Ok(true)
}

/// Appends a KILLED status to a spool whose last status is not final: the process that
/// tracked the run ended without `finish` (we hold its lock, so it is gone).
fn close_unfinished(run_dir: &Path) -> Result<(), TrackError> {
    let path = spool_path(run_dir);
    if !path.exists() {
        return Ok(());
    }
    let entries = read_spool(&path)?;
    let last_status = entries.iter().rev().find_map(|e| match &e.entry {
        Entry::Status { status, .. } => Some(*status),
        _ => None,
    });
    if matches!(last_status, Some(s) if s != MlflowStatus::Running) {
        return Ok(());
    }
    let end_time = entries
        .iter()
        .filter_map(|e| match &e.entry {
            Entry::Metric { timestamp, .. } => Some(*timestamp),
            _ => None,
        })
        .max()
        .unwrap_or_else(now_ms);
    Spool::open(run_dir)?.append([Entry::Status { status: MlflowStatus::Killed, end_time: Some(end_time) }])?;
    Ok(())
}
