//! [`MlflowTracker`]: runs the uploader on a background thread while the run trains.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::rest::Rest;
use super::uploader::{Failure, Target, Uploader};
use super::{new_run_uid, now_ms, MlflowOptions, MlflowState, MlflowStatus, RunLock, STATE_FILE};
use crate::track::{GridImage, RunStatus, TrackError, Tracker};

/// How many new metric rows wake the thread before its `batch_window` is over: one full
/// log-batch request.
const ROWS_PER_WAKE: usize = 1000;

/// Tracks one run to an MLflow server (see the [`mlflow`](super) module docs).
///
/// Create it with [`start`](Self::start) once the run folder exists (with `config.toml` and
/// `manifest.json`), hand it scalars through [`Tracker`] after `metrics.jsonl` has them, and
/// call [`finish`](Tracker::finish) after `summary.json` and `manifest.json` are written: that
/// is when the run-folder files are uploaded and the final status is set. It never does
/// network I/O on the caller's thread after `start`.
pub struct MlflowTracker {
    run_dir: PathBuf,
    run_id: Option<String>,
    wake: Option<Sender<Wake>>,
    thread: Option<JoinHandle<()>>,
    options: MlflowOptions,
    rows_since_wake: usize,
    finished: bool,
}

enum Wake {
    /// Enough rows are waiting for a full request.
    Rows,
    /// The run has ended: a last pass with this status, then answer and stop.
    Finish { status: MlflowStatus, done: Sender<()> },
}

impl MlflowTracker {
    /// Starts tracking the run in `run_dir` to experiment `experiment` (created if missing) on
    /// the server at `uri`, with default [`MlflowOptions`]. See [`start_with`](Self::start_with).
    pub fn start(
        uri: &str,
        experiment: &str,
        run_name: &str,
        run_dir: &Path,
        tags: &BTreeMap<String, String>,
    ) -> Result<Self, TrackError> {
        Self::start_with(uri, experiment, run_name, run_dir, tags, &MlflowOptions::default())
    }

    /// Starts tracking: records the server, run name and `tags` in `mlflow.json`, creates the
    /// MLflow run now if the server answers (waiting at most `options.connect_timeout` when
    /// it does not), and starts the uploader thread. Params come from the run folder's
    /// `config.toml`.
    ///
    /// A run folder that already has `mlflow.json` (a resumed run) continues its MLflow run,
    /// whose status goes back to RUNNING.
    ///
    /// An unreachable server is not an error: training goes on and one warning says so.
    /// Errors are a URI that is not http(s), the server refusing the experiment (e.g. it is
    /// deleted), a resumed run folder tracked to another server, another process tracking
    /// the same folder, and run-folder I/O.
    pub fn start_with(
        uri: &str,
        experiment: &str,
        run_name: &str,
        run_dir: &Path,
        tags: &BTreeMap<String, String>,
        options: &MlflowOptions,
    ) -> Result<Self, TrackError> {
        let rest = Rest::new(uri, options.connect_timeout, options.request_timeout).map_err(TrackError::Invalid)?;
        let lock = RunLock::acquire(run_dir)?;
        let mut state = if run_dir.join(STATE_FILE).exists() {
            let mut state = MlflowState::load(run_dir)?;
            state.adopt_uri(rest.base(), run_dir)?;
            state
        } else {
            MlflowState {
                uri: rest.base().to_owned(),
                experiment: experiment.to_owned(),
                experiment_id: None,
                run_name: run_name.to_owned(),
                run_id: None,
                run_uid: new_run_uid(run_dir),
                start_time: now_ms(),
                artifact_uri: None,
                tags: BTreeMap::new(),
            }
        };
        state.tags = tags.clone();
        state.save(run_dir)?;

        let mut uploader = Uploader::new(run_dir, rest, state)?;
        let mut warning = Warning { uri: uploader.uri().to_owned(), run_dir: run_dir.to_owned(), given: false };
        let mut retry_at = Instant::now();
        match uploader.ensure_run() {
            Ok(()) => {}
            Err(failure @ Failure::Unavailable(_)) => {
                warning.give(&failure.describe());
                retry_at += options.retry_interval;
            }
            Err(Failure::Fatal(message)) => return Err(TrackError::Invalid(message)),
            Err(Failure::Local(e)) => return Err(e),
        }
        let run_id = uploader.run_id().map(str::to_owned);
        let (wake, rx) = mpsc::channel();
        let background = Background { uploader, options: options.clone(), warning, _lock: lock };
        let thread = std::thread::Builder::new()
            .name("mlflow-uploader".into())
            .spawn(move || background.run(rx, retry_at))
            .map_err(|e| TrackError::Io { path: run_dir.to_owned(), source: e })?;
        Ok(Self {
            run_dir: run_dir.to_owned(),
            run_id,
            wake: Some(wake),
            thread: Some(thread),
            options: options.clone(),
            rows_since_wake: 0,
            finished: false,
        })
    }

    /// The MLflow run id, if the run existed when tracking started (`None` when the server
    /// was unreachable then; `mlflow.json` gets it once a later pass or sync creates it).
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

impl Tracker for MlflowTracker {
    /// Nothing to write: the values are in `metrics.jsonl` already. Wakes the uploader when a
    /// full request's worth of rows is waiting; no I/O here.
    fn scalars(&mut self, _step: u64, values: &[(String, f64)]) -> Result<(), TrackError> {
        self.rows_since_wake += values.len();
        if self.rows_since_wake >= ROWS_PER_WAKE {
            self.rows_since_wake = 0;
            if let Some(wake) = &self.wake {
                let _ = wake.send(Wake::Rows);
            }
        }
        Ok(())
    }

    /// Nothing: the trainer writes the grids to `samples/`, and `finish` uploads them.
    fn image(&mut self, _step: u64, _tag: &str, _grid: &GridImage) -> Result<(), TrackError> {
        Ok(())
    }

    /// Nothing: the resolved config reaches MLflow as params and as `config.toml`.
    fn text(&mut self, _tag: &str, _text: &str) -> Result<(), TrackError> {
        Ok(())
    }

    /// Asks the uploader for its last pass (metrics, artifacts, then FINISHED, FAILED or
    /// KILLED) and waits at most `finish_timeout` for it. What it does not send, `lab sync`
    /// does (the run's one warning says so). Calling it again does nothing.
    fn finish(&mut self, status: RunStatus) -> Result<(), TrackError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let status = match status {
            RunStatus::Finished => MlflowStatus::Finished,
            RunStatus::Failed => MlflowStatus::Failed,
            RunStatus::Killed => MlflowStatus::Killed,
        };
        let Some(wake) = self.wake.take() else { return Ok(()) };
        let (done, answer) = mpsc::channel();
        let _ = wake.send(Wake::Finish { status, done });
        drop(wake);
        match answer.recv_timeout(self.options.finish_timeout) {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            // The thread goes on until the process exits; the watermark records what it sends.
            Err(_) => tracing::warn!(
                "MLflow: still uploading after {:.0} s; `lab sync {}` sends the rest",
                self.options.finish_timeout.as_secs_f64(),
                self.run_dir.display()
            ),
        }
        Ok(())
    }
}

impl Drop for MlflowTracker {
    /// Without `finish`, the thread sends the rows written so far and ends (waited for up to
    /// 2 s, then left to finish on its own); the run stays RUNNING on the server until
    /// `lab sync` marks it KILLED.
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// The one warning of a run whose server cannot be reached.
struct Warning {
    uri: String,
    run_dir: PathBuf,
    given: bool,
}

impl Warning {
    fn give(&mut self, reason: &str) {
        if !std::mem::replace(&mut self.given, true) {
            tracing::warn!(
                "MLflow at {}: {reason}; training goes on, {} keeps every metric and `lab sync {}` will send them",
                self.uri,
                self.run_dir.join("metrics.jsonl").display(),
                self.run_dir.display()
            );
        }
    }
}

/// The uploader thread: a pass every `batch_window` (or when woken), backing off while the
/// server is unreachable, stopping for good when it refuses the run.
struct Background {
    uploader: Uploader,
    options: MlflowOptions,
    warning: Warning,
    /// Held until the thread ends, after `finish` or when the tracker is dropped.
    _lock: RunLock,
}

impl Background {
    fn run(mut self, rx: Receiver<Wake>, mut next_pass: Instant) {
        let mut retry = self.options.retry_interval;
        let mut last_error: Option<String> = None;
        let mut gave_up = false;
        loop {
            let message = if gave_up {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(next_pass.saturating_duration_since(Instant::now()))
            };
            match message {
                // Woken early while backing off: the server is still assumed down.
                Ok(Wake::Rows) if last_error.is_some() => continue,
                Ok(Wake::Rows) | Err(RecvTimeoutError::Timeout) => {}
                Ok(Wake::Finish { status, done }) => {
                    if !gave_up {
                        if let Err(failure) = self.uploader.pass(Target::Final { status, end_time: Some(now_ms()) }) {
                            self.warning.give(&failure.describe());
                        }
                    }
                    let _ = done.send(());
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if !gave_up {
                        let _ = self.uploader.pass(Target::Running);
                    }
                    return;
                }
            }
            match self.uploader.pass(Target::Running) {
                Ok(()) => {
                    if last_error.take().is_some() {
                        tracing::info!("MLflow at {}: reachable again, caught up", self.uploader.uri());
                    }
                    retry = self.options.retry_interval;
                    next_pass = Instant::now() + self.options.batch_window;
                }
                Err(failure) => {
                    let reason = failure.describe();
                    self.warning.give(&reason);
                    last_error = Some(reason);
                    if let Failure::Unavailable(_) = failure {
                        next_pass = Instant::now() + retry;
                        retry = (retry * 2).min(self.options.max_retry_interval);
                    } else {
                        gave_up = true;
                    }
                }
            }
        }
    }
}
