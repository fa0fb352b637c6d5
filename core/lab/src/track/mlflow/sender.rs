//! The tracker's background thread: batches queued entries, sends them, falls back to the
//! spool when the server is unreachable and catches up from it when the server is back.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::replay::{Failure, Replayer};
use super::{MlflowOptions, RunLock};
use crate::track::spool::{spool_path, Spooled};

/// What the tracker and its sender thread share.
pub(super) struct Shared {
    pub run_dir: PathBuf,
    pub uri: String,
    pub warned: AtomicBool,
    /// Held until the sender thread ends (after `finish`, or when the tracker is dropped).
    pub lock: Mutex<Option<RunLock>>,
}

impl Shared {
    /// The one warning of a run whose tracking falls back to the spool.
    pub fn warn_spooling(&self, reason: &str) {
        if !self.warned.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "MLflow at {}: {reason}; tracking is spooling to {} and `lab sync {}` will replay it",
                self.uri,
                spool_path(&self.run_dir).display(),
                self.run_dir.display()
            );
        }
    }
}

pub(super) enum Msg {
    /// Entries already on disk in the spool, in order.
    Entries(Vec<Spooled>),
    /// Send what is left, then answer how many of the `total` spool entries are unsent.
    Finish { total: u64, reply: Sender<Outcome> },
}

pub(super) struct Outcome {
    pub unsent: u64,
    pub reason: Option<String>,
}

/// Where the sender thread stands.
#[derive(Debug, Clone, Copy)]
pub(super) enum Mode {
    /// Sending queued entries.
    Online,
    /// The server is unreachable: entries only go to the spool; at `retry_at` the thread
    /// reads the spool and sends what is unsent.
    Offline { retry_at: Instant },
    /// The server refuses the run: spool only, `lab sync` will say why.
    Dead,
}

pub(super) struct SenderLoop {
    pub replayer: Replayer,
    pub mode: Mode,
    /// Entries queued while online, contiguous from the watermark.
    pub pending: Vec<Spooled>,
    /// The `seq` the next queued entry must have.
    pub next_queue: u64,
    /// When the pending batch goes out.
    pub deadline: Option<Instant>,
    pub retry: Duration,
    pub options: MlflowOptions,
    pub shared: Arc<Shared>,
    pub last_error: Option<String>,
}

impl SenderLoop {
    /// Sends until the tracker finishes or is dropped, then lets go of the run folder's lock.
    pub fn run(mut self, rx: Receiver<Msg>) {
        self.serve(rx);
        self.shared.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn serve(&mut self, rx: Receiver<Msg>) {
        loop {
            let now = Instant::now();
            let wait = match self.mode {
                Mode::Online => self.deadline.map(|d| d.saturating_duration_since(now)),
                Mode::Offline { retry_at } => Some(retry_at.saturating_duration_since(now)),
                Mode::Dead => None,
            };
            let msg = match wait {
                Some(wait) => rx.recv_timeout(wait),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(Msg::Entries(entries)) => self.queue(entries),
                Ok(Msg::Finish { total, reply }) => {
                    match self.mode {
                        Mode::Online => self.flush(),
                        Mode::Offline { .. } => self.catch_up(),
                        Mode::Dead => {}
                    }
                    let _ = reply.send(Outcome {
                        unsent: total.saturating_sub(self.replayer.sent),
                        reason: self.last_error.clone(),
                    });
                    return;
                }
                Err(RecvTimeoutError::Timeout) => match self.mode {
                    Mode::Online => self.flush(),
                    Mode::Offline { .. } => self.catch_up(),
                    Mode::Dead => {}
                },
                Err(RecvTimeoutError::Disconnected) => {
                    if let Mode::Online = self.mode {
                        self.flush();
                    }
                    return;
                }
            }
        }
    }

    fn queue(&mut self, entries: Vec<Spooled>) {
        if !matches!(self.mode, Mode::Online) {
            return; // In the spool; a catch-up reads them from there.
        }
        for e in entries {
            if e.seq < self.next_queue {
                continue;
            }
            if e.seq > self.next_queue {
                // Lost track of the order: let the spool file say what is unsent.
                self.pending.clear();
                self.deadline = None;
                self.mode = Mode::Offline { retry_at: Instant::now() };
                return;
            }
            self.pending.push(e);
            self.next_queue += 1;
        }
        if self.pending.len() >= 1000 {
            self.flush();
        } else if self.deadline.is_none() && !self.pending.is_empty() {
            self.deadline = Some(Instant::now() + self.options.batch_window);
        }
    }

    fn flush(&mut self) {
        self.deadline = None;
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        if let Err(failure) = self.replayer.send(&batch) {
            self.fail(failure);
        }
    }

    fn catch_up(&mut self) {
        match self.replayer.catch_up() {
            Ok(count) => {
                if self.last_error.take().is_some() {
                    tracing::info!("MLflow at {}: reachable again, the spool is sent", self.shared.uri);
                }
                self.next_queue = count;
                self.retry = self.options.retry_interval;
                self.mode = Mode::Online;
            }
            Err(failure) => self.fail(failure),
        }
    }

    fn fail(&mut self, failure: Failure) {
        let reason = failure.describe();
        self.shared.warn_spooling(&reason);
        self.last_error = Some(reason);
        self.pending.clear();
        self.deadline = None;
        self.mode = match failure {
            Failure::Unavailable(_) => {
                let retry_at = Instant::now() + self.retry;
                self.retry = (self.retry * 2).min(self.options.max_retry_interval);
                Mode::Offline { retry_at }
            }
            Failure::Fatal(_) | Failure::Local(_) => Mode::Dead,
        };
    }
}
