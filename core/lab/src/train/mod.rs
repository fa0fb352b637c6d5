//! The trainer: d_steps × (real batch, D loss, D step) → G step → EMA, with logging, sample
//! grids and checkpoints on schedule. Same config and seed on CPU give byte-identical metrics;
//! resuming from a checkpoint at step k continues exactly as the uninterrupted run.
pub mod amp;
mod build;
mod checkpoint;
mod hooks;
mod host;
pub mod layout;
mod nonfinite;
pub mod optim;
mod overfit;
pub mod plan;
mod progress;
mod run_dir;
mod sampler;
mod snapshot;
mod standing_stats;
mod state;
mod step;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use lab_plugin_api::host::{Architecture, Augment, Loss, NetworkHandle};
use lab_plugin_api::{BuildEnv, PluginKind};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

pub use checkpoint::{Checkpoint, CheckpointError};
pub use optim::Optimizer;
pub use run_dir::{run_label, write_json, Manifest, PluginRecord, RunDir};
pub use snapshot::GeneratorSnapshot;

use crate::config::Experiment;
use crate::data::{self, Dataset};
use crate::metrics::{EvalResult, Evaluator};
use crate::plugins::{PluginError, Registry};
use crate::seeds::{key, seed_torch, SplitMix64, Stream};
use crate::track::{self, GridImage, MetricsLog, MlflowOptions, MlflowTracker, RunStatus, TensorBoard, Tracker};
use host::{measure_architecture, EvalNetworks, GridHost, ModelEvalHost, PhaseHost};
use progress::Progress;
use sampler::Sampler;

/// Set by the Ctrl-C handler; the trainer checkpoints and stops at the next step boundary.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Track(#[from] track::TrackError),
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{0}")]
    Setup(String),
    /// A config value that only the plugins could show to be wrong (a network the
    /// architecture does not declare, ...); the CLI names the experiment file in front.
    #[error("key `{key}`: {message}")]
    Config { key: String, message: String },
    #[error("step {step}: {message}\n{checkpoint_note}")]
    Step { step: u64, message: String, checkpoint_note: String },
    #[error("interrupted at step {step}; checkpoint saved to {}. Resume with `lab run --resume {}`", checkpoint.display(), run.display())]
    Interrupted { step: u64, checkpoint: PathBuf, run: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io { path: path.to_path_buf(), message: e.to_string() }
}

/// A network the core trains: the plugin's handle plus the core's view of its tensors.
pub(crate) struct Net {
    pub name: String,
    pub handle: NetworkHandle,
    /// (name, tensor, trainable), sharing storage with the plugin's tensors.
    pub tensors: Vec<(String, Tensor, bool)>,
    pub opt: Optimizer,
}

impl Net {
    /// The names of the trainable tensors, in the optimizer's order.
    pub fn trainable_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().filter(|t| t.2).map(|t| t.0.as_str())
    }
}

struct Ema {
    handle: NetworkHandle,
    tensors: Vec<(String, Tensor, bool)>,
    /// With a fused generator optimizer: the EMA's trainable tensors in one buffer laid out as
    /// the optimizer's, so an update is one `lerp_` ([`optim`]'s flat buffers).
    flat: Option<Tensor>,
}

/// The second domain's images and, when unpaired, its own data order.
struct DomainB {
    images: Tensor,
    paired: bool,
    sampler: Sampler,
}

/// What `summary.json` holds.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub status: String,
    /// The last evaluation and the best one by the primary metric, each with its protocol.
    pub eval: Option<serde_json::Value>,
    pub steps: u64,
    pub wall_time_s: f64,
    pub images_per_s: f64,
    pub final_scalars: BTreeMap<String, f64>,
    pub samples: Option<PathBuf>,
    pub checkpoint: Option<PathBuf>,
    /// Values the core read from the device inside training steps (logging, grids, evaluations
    /// and checkpoints excluded): 0, so a GPU never waits on the host between logging steps.
    /// (A plugin's own reads, e.g. a loss that keeps host-side state, are not counted.)
    pub host_reads_in_steps: u64,
}

/// Options that are not part of the experiment config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub runs_dir: PathBuf,
    pub resume: Option<PathBuf>,
    /// Show progress bars (a terminal) or plain lines.
    pub progress: bool,
    pub quiet: bool,
    /// Added to a new run folder's name: what differs from the experiment file
    /// ([`run_dir::run_label`]).
    pub label: String,
}

pub struct Trainer {
    exp: Experiment,
    device: Device,
    run: RunDir,
    registry_records: Vec<PluginRecord>,
    /// The training images as stored: at `data.load_size` when batches are cropped at random.
    images: Tensor,
    labels: Option<Tensor>,
    /// The side of each training image's random crop (`data.load_size` > `data.image_size`).
    crop: Option<i64>,
    sampler: Sampler,
    /// The second domain of two-domain data, on the device.
    domain_b: Option<DomainB>,
    arch_name: String,
    z_dim: i64,
    num_classes: i64,
    nets: Vec<Net>,
    /// The phases of a step, resolved against the architecture.
    plan: Vec<plan::Phase>,
    /// Real batches drawn so far.
    batches: u64,
    ema: Option<Ema>,
    loss: Loss,
    augment: Option<Augment>,
    fixed_z: Tensor,
    fixed_y: Option<Tensor>,
    step: u64,
    metrics: MetricsLog,
    tensorboard: Option<TensorBoard>,
    mlflow: Option<MlflowTracker>,
    manifest: Manifest,
    last_checkpoint_step: Option<u64>,
    // Interval accumulators, kept on the device so the hot loop never syncs.
    sums: BTreeMap<String, (Tensor, u64)>,
    /// Values the core read to the host during training steps (logging excluded): zero by design.
    host_reads_in_steps: u64,
    /// The first non-finite loss since the run (re)started, kept on the device and read only at
    /// logging, sample, evaluation and checkpoint steps (see [`nonfinite::Watch`]).
    nonfinite: nonfinite::Watch,
    /// fp16's dynamic loss scale (`train.amp = "fp16"`), checkpointed.
    scaler: Option<amp::Scaler>,
    interval_start: Instant,
    interval_images: u64,
    run_start: Instant,
    /// Real batches drawn when this process started training (after a resume, the checkpoint's).
    start_batches: u64,
    last_scalars: BTreeMap<String, f64>,
    evaluator: Option<Evaluator>,
    last_eval: Option<EvalResult>,
    /// (metric, value, step) of the best evaluation so far.
    best: Option<(String, f64, u64)>,
    /// The mixture of a 2-D toy dataset, whose samples are drawn as scatter plots.
    toy: Option<crate::data::toy::Mixture>,
    // Architecture last: its handle is dropped after the networks it built.
    arch: Architecture,
}

impl Trainer {
    pub fn run_dir(&self) -> &Path {
        &self.run.path
    }

    /// Generator steps done (after a restore: the checkpoint's step).
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn experiment(&self) -> &Experiment {
        &self.exp
    }

    /// Trains to `train.steps`, then writes the final samples, checkpoint and summary.
    pub fn train(&mut self, opts: &RunOptions) -> Result<Summary, TrainError> {
        let total = self.exp.train.steps;
        let mut progress = Progress::new(self.step, total, opts.progress, opts.quiet);
        self.run_start = Instant::now();
        self.start_batches = self.batches;
        self.interval_start = Instant::now();
        let result = self.train_loop(total, &mut progress);
        progress.finish();
        match result {
            Ok(()) => self.finish(RunStatus::Finished),
            Err(e) => {
                let status =
                    if matches!(e, TrainError::Interrupted { .. }) { RunStatus::Killed } else { RunStatus::Failed };
                let _ = self.finish(status);
                Err(e)
            }
        }
    }

    fn train_loop(&mut self, total: u64, progress: &mut Progress) -> Result<(), TrainError> {
        while self.step < total {
            if INTERRUPTED.load(Ordering::SeqCst) {
                let checkpoint = self.save_checkpoint()?;
                return Err(TrainError::Interrupted { step: self.step, checkpoint, run: self.run.path.clone() });
            }
            let step = self.step;
            let reads_before = nonfinite::HOST_READS.load(Ordering::Relaxed);
            // Config sizes meet libtorch here: an allocation that fails is an input error.
            let stepped = crate::failure::catch(|| self.train_step(step));
            self.host_reads_in_steps += nonfinite::HOST_READS.load(Ordering::Relaxed) - reads_before;
            match stepped {
                Ok(result) => result?,
                Err(failure) => {
                    let what = self.batch_description();
                    return Err(self.step_error(step, failure.explain(&what, "train.batch_size")));
                }
            }
            self.step += 1;
            let done = self.step;
            progress.set(done);
            // The last step's grid, checkpoint and evaluation are `finish`'s.
            let due = |every: u64| every > 0 && done.is_multiple_of(every) && done != total;
            let logging = done.is_multiple_of(self.exp.log.every) || done == total;
            let (sampling, checkpointing, evaluating) =
                (due(self.exp.log.samples_every), due(self.exp.checkpoint.every), due(self.exp.eval.every));
            // Losses are checked where the device is read anyway (`save_checkpoint` checks itself).
            if logging || sampling || evaluating {
                self.stop_if_nonfinite()?;
            }
            if logging {
                let line = self.log_scalars(done)?;
                progress.message(done, total, &line);
            }
            if sampling {
                let samples = self.exp.log.samples;
                crate::failure::catch(|| self.write_samples(done)).map_err(|failure| {
                    self.step_error(done, failure.explain(&format!("a sample grid of {samples} images"), "log.samples"))
                })??;
            }
            if checkpointing {
                self.save_checkpoint()?;
            }
            if evaluating {
                progress.suspend(|| self.guarded_eval(done).map(|_| ()))?;
            }
        }
        Ok(())
    }
}
