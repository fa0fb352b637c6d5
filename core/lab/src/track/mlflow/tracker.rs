//! [`MlflowTracker`]: spools on the training thread, sends on a background thread.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::replay::{Failure, Replayer};
use super::rest::Rest;
use super::sender::{Mode, Msg, SenderLoop, Shared};
use super::sync::adopt_uri;
use super::{
    new_run_uid, now_ms, truncate_value, MlflowOptions, MlflowState, RunLock, MAX_PARAM_VALUE, MAX_TAG_VALUE,
    RUN_DIR_TAG, STATE_FILE,
};
use crate::track::spool::{read_sent, Entry, MlflowStatus, Spool};
use crate::track::{GridImage, RunStatus, TrackError, Tracker};

/// Tracks one run to an MLflow server (see the [`mlflow`](super) module docs).
///
/// Create it with [`start`](Self::start) once the run folder exists (with `config.toml`),
/// hand it scalars through [`Tracker`] like the other trackers, and call
/// [`finish`](Tracker::finish) after `summary.json` and `manifest.json` are written: that is
/// when the run-folder files are uploaded and the MLflow status is set.
pub struct MlflowTracker {
    run_dir: PathBuf,
    spool: Mutex<Spool>,
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    options: MlflowOptions,
    run_id: Option<String>,
    finished: bool,
}

impl MlflowTracker {
    /// Starts tracking the run in `run_dir` to experiment `experiment` (created if missing) on
    /// the server at `uri`, with default [`MlflowOptions`]. See [`start_with`](Self::start_with).
    pub fn start(
        uri: &str,
        experiment: &str,
        run_name: &str,
        run_dir: &Path,
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<Self, TrackError> {
        Self::start_with(uri, experiment, run_name, run_dir, params, tags, &MlflowOptions::default())
    }

    /// Starts tracking: spools `params` (cut to 6000 characters) and `tags` (cut to 8000,
    /// plus `lab.run_dir`), creates the MLflow run now if the server answers (waiting at most
    /// `options.connect_timeout` when it does not), and starts the sender thread.
    ///
    /// A run folder that already has `mlflow.json` (a resumed run) continues its MLflow run
    /// and spool, and sets the run's status back to RUNNING.
    ///
    /// An unreachable server is not an error: the tracker spools and says so once. Errors
    /// are a URI that is not http(s), the server refusing the experiment (e.g. it is
    /// deleted), a resumed run folder tracked to another server, another process tracking
    /// the same folder, and run-folder I/O.
    pub fn start_with(
        uri: &str,
        experiment: &str,
        run_name: &str,
        run_dir: &Path,
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
        options: &MlflowOptions,
    ) -> Result<Self, TrackError> {
        let rest = Rest::new(uri, options.connect_timeout, options.request_timeout).map_err(TrackError::Invalid)?;
        let lock = RunLock::acquire(run_dir)?;
        let resumed = run_dir.join(STATE_FILE).exists();
        let state = if resumed {
            let mut state = MlflowState::load(run_dir)?;
            adopt_uri(&mut state, rest.base(), run_dir)?;
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
            }
        };
        state.save(run_dir)?;

        let mut spool = Spool::open(run_dir)?;
        let first_seq = spool.next_seq();
        let mut entries: Vec<Entry> = params
            .iter()
            .map(|(k, v)| Entry::Param { key: k.clone(), value: truncate_value(v, MAX_PARAM_VALUE) })
            .collect();
        let run_dir_tag = run_dir.canonicalize().unwrap_or_else(|_| run_dir.to_owned());
        let mut tags = tags.clone();
        tags.entry(RUN_DIR_TAG.to_owned()).or_insert_with(|| run_dir_tag.display().to_string());
        entries
            .extend(tags.iter().map(|(k, v)| Entry::Tag { key: k.clone(), value: truncate_value(v, MAX_TAG_VALUE) }));
        if resumed {
            entries.push(Entry::Status { status: MlflowStatus::Running, end_time: None });
        }
        let initial = spool.append(entries)?;

        let shared = Arc::new(Shared {
            run_dir: run_dir.to_owned(),
            uri: rest.base().to_owned(),
            warned: AtomicBool::new(false),
            lock: Mutex::new(Some(lock)),
        });
        let sent = read_sent(run_dir)?;
        let mut replayer = Replayer::new(run_dir, rest, state, sent);
        let now = Instant::now();
        let mode = match replayer.ensure_run() {
            // Entries an earlier process left unsent come first: read them from the file.
            Ok(()) if sent < first_seq => Mode::Offline { retry_at: now },
            Ok(()) => Mode::Online,
            Err(Failure::Unavailable(e)) => {
                shared.warn_spooling(&format!("server unreachable ({})", e.detail()));
                Mode::Offline { retry_at: now + options.retry_interval }
            }
            Err(Failure::Fatal(message)) => return Err(TrackError::Invalid(message)),
            Err(Failure::Local(e)) => return Err(e),
        };
        let run_id = replayer.state.run_id.clone();
        let (tx, rx) = mpsc::channel();
        let sender = SenderLoop {
            replayer,
            mode,
            pending: Vec::new(),
            next_queue: first_seq,
            deadline: None,
            retry: options.retry_interval,
            options: options.clone(),
            shared: shared.clone(),
            last_error: None,
        };
        let thread = std::thread::Builder::new()
            .name("mlflow-sender".into())
            .spawn(move || sender.run(rx))
            .map_err(|e| TrackError::Io { path: run_dir.to_owned(), source: e })?;
        let _ = tx.send(Msg::Entries(initial));
        Ok(Self {
            run_dir: run_dir.to_owned(),
            spool: Mutex::new(spool),
            tx: Some(tx),
            thread: Some(thread),
            shared,
            options: options.clone(),
            run_id,
            finished: false,
        })
    }

    /// The MLflow run id, if the run existed when tracking started (`None` when the server
    /// was unreachable then; `mlflow.json` gets it once a later send or sync creates it).
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Queues the upload of the file `local` into the run's artifact folder `artifact_path`
    /// (`""` for the root; the file name is kept), through the server's artifact proxy. The
    /// file is read when it is sent, not now.
    pub fn upload_artifact(&self, local: &Path, artifact_path: &str) -> Result<(), TrackError> {
        let local = local.strip_prefix(&self.run_dir).map_or_else(|_| local.to_path_buf(), Path::to_path_buf);
        self.spool_and_send([Entry::Artifact {
            local: local.to_string_lossy().into_owned(),
            path: artifact_path.trim_matches('/').to_owned(),
        }])
        .map(drop)
    }

    fn spool_and_send(&self, entries: impl IntoIterator<Item = Entry>) -> Result<u64, TrackError> {
        if self.finished && self.tx.is_none() {
            // The lock is gone: a `lab sync` may be writing this spool now.
            return Err(TrackError::Invalid(format!(
                "{}: the MLflow tracker has finished; nothing more can be logged to it",
                self.run_dir.display()
            )));
        }
        let mut spool = self.spool.lock().unwrap_or_else(|p| p.into_inner());
        let spooled = spool.append(entries)?;
        if let Some(tx) = &self.tx {
            // A gone thread is fine: the entries are in the spool for `lab sync`.
            let _ = tx.send(Msg::Entries(spooled));
        }
        Ok(spool.next_seq())
    }

    /// The run-folder files uploaded at `finish`: `config.toml`, `manifest.json`,
    /// `summary.json`, `metrics.jsonl`, `samples/*.png`, and `checkpoints/*` if asked for.
    fn final_artifacts(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        for name in ["config.toml", "manifest.json", "summary.json", "metrics.jsonl"] {
            if self.run_dir.join(name).is_file() {
                out.push(Entry::Artifact { local: name.into(), path: String::new() });
            }
        }
        let mut folder = |dir: &str, keep: &dyn Fn(&Path) -> bool| {
            let mut files: Vec<String> = fs::read_dir(self.run_dir.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && keep(p))
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            files.sort();
            out.extend(
                files.into_iter().map(|name| Entry::Artifact { local: format!("{dir}/{name}"), path: dir.into() }),
            );
        };
        folder("samples", &|p| p.extension().is_some_and(|e| e == "png"));
        if self.options.upload_checkpoints {
            folder("checkpoints", &|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')));
        }
        out
    }
}

impl Tracker for MlflowTracker {
    /// Spools the values (one timestamp for all) and queues them for the sender thread; no
    /// network I/O here.
    fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), TrackError> {
        let timestamp = now_ms();
        self.spool_and_send(values.iter().map(|(key, value)| Entry::Metric {
            key: key.clone(),
            value: *value,
            step,
            timestamp,
        }))
        .map(drop)
    }

    /// Nothing: the trainer writes the grids to `samples/`, and `finish` uploads them.
    fn image(&mut self, _step: u64, _tag: &str, _grid: &GridImage) -> Result<(), TrackError> {
        Ok(())
    }

    /// Nothing: the resolved config reaches MLflow as params and as `config.toml`.
    fn text(&mut self, _tag: &str, _text: &str) -> Result<(), TrackError> {
        Ok(())
    }

    /// Queues the final artifacts and the status (FINISHED, FAILED or KILLED, with the end
    /// time), then waits at most `finish_timeout` for everything to be sent. What is not
    /// sent by then stays in the spool (one warning says so); only run-folder I/O errors are
    /// errors. Calling it again does nothing.
    fn finish(&mut self, status: RunStatus) -> Result<(), TrackError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let status = match status {
            RunStatus::Finished => MlflowStatus::Finished,
            RunStatus::Failed => MlflowStatus::Failed,
            RunStatus::Killed => MlflowStatus::Killed,
        };
        let mut entries = self.final_artifacts();
        entries.push(Entry::Status { status, end_time: Some(now_ms()) });
        let total = self.spool_and_send(entries)?;
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let (reply, answer) = mpsc::channel();
        let _ = tx.send(Msg::Finish { total, reply });
        drop(tx);
        match answer.recv_timeout(self.options.finish_timeout) {
            Ok(outcome) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
                if outcome.unsent > 0 {
                    let reason = outcome.reason.unwrap_or_else(|| "not everything was sent".into());
                    self.shared.warn_spooling(&format!("{reason}; {} entries unsent", outcome.unsent));
                }
            }
            // The thread goes on sending until the process exits; the watermark records
            // whatever it manages.
            Err(_) => self
                .shared
                .warn_spooling(&format!("still sending after {:.0} s", self.options.finish_timeout.as_secs_f64())),
        }
        Ok(())
    }
}

impl Drop for MlflowTracker {
    /// Without `finish`, the thread sends what is queued and ends (waited for up to 2 s,
    /// then left to finish on its own); the run stays RUNNING on the server until `lab sync`
    /// marks it KILLED.
    fn drop(&mut self) {
        self.tx.take();
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
