//! Trackers: metrics.jsonl, TensorBoard event files, sample grids.
//!
//! Every logged scalar goes to all trackers through the [`Tracker`] trait. `metrics.jsonl`
//! ([`MetricsLog`]) is always written and is what reports read; the TensorBoard event file
//! ([`TensorBoard`]) is for looking at runs. Sample grids are built once by [`grid`] and
//! handed to every tracker as a [`GridImage`].
//!
//! `read_events.py` next to this file is a standalone checker: it reads a run folder's event
//! files with the real `tensorboard` Python package and prints what it found as JSON. The
//! tests here (and the end-to-end tests) use it.

use std::path::PathBuf;

mod grid;
mod jsonl;
pub mod mlflow;
mod scatter;
mod tensorboard;

pub use grid::{grid, GridImage};
pub use jsonl::{read_metrics, truncate_after, MetricsLog, Record};
pub use mlflow::{flatten_config, sync, MlflowOptions, MlflowTracker, SyncReport};
pub use scatter::scatter;
pub use tensorboard::{
    unix_now, HParamValue, TensorBoard, HPARAMS_EXPERIMENT_TAG, HPARAMS_SESSION_END_TAG, HPARAMS_SESSION_START_TAG,
};

/// Errors of the trackers. I/O and parse errors name the file.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// A line of `metrics.jsonl` is not a record.
    #[error("{}:{line}: not a metrics record: {message}", path.display())]
    Parse { path: PathBuf, line: usize, message: String },
    /// Arguments that cannot be tracked (a wrong tensor shape, an odd channel count).
    #[error("{0}")]
    Invalid(String),
    /// A tensor operation failed (e.g. copying samples off the device).
    #[error("sample grid: {0}")]
    Tensor(#[from] tch::TchError),
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Png(#[from] image::ImageError),
}

/// How a run ended, for trackers that record it (the TensorBoard hparams session status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Ran to its last step.
    Finished,
    /// Stopped by an error.
    Failed,
    /// Interrupted (Ctrl-C, a signal).
    Killed,
}

/// A destination for a run's scalars, sample grids and text.
pub trait Tracker {
    /// Records scalar `values` (tag, value) for `step`.
    fn scalars(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), TrackError>;
    /// Records a sample grid for `step` under `tag`.
    fn image(&mut self, step: u64, tag: &str, grid: &GridImage) -> Result<(), TrackError>;
    /// Records a piece of text (e.g. the resolved config) under `tag`.
    fn text(&mut self, tag: &str, text: &str) -> Result<(), TrackError>;
    /// Ends the run with `status`, flushing everything. Call it on every path out of a run.
    fn finish(&mut self, status: RunStatus) -> Result<(), TrackError>;
}

#[cfg(test)]
mod tests;
