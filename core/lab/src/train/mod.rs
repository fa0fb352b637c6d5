//! The trainer: d_steps × (real batch, D loss, D step) → G step → EMA, with logging, sample
//! grids and checkpoints on schedule. Same config and seed on CPU give byte-identical metrics;
//! resuming from a checkpoint at step k continues exactly as the uninterrupted run.
mod checkpoint;
mod host;
pub mod optim;
pub mod plan;
mod progress;
mod run_dir;
mod sampler;
mod snapshot;
mod state;

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
pub use snapshot::GeneratorSnapshot;
pub use run_dir::{run_label, write_json, Manifest, PluginRecord, RunDir};

use crate::config::Experiment;
use crate::data::{self, Dataset};
use crate::metrics::{EvalResult, Evaluator};
use crate::plugins::{PluginError, Registry};
use crate::track::{self, GridImage, MetricsLog, MlflowOptions, MlflowTracker, RunStatus, TensorBoard, Tracker};
use host::{GridHost, PhaseHost};
use state::{Counters, PluginState, Stateful};
use progress::Progress;
use sampler::Sampler;
use crate::seeds::{key, seed_torch, SplitMix64, Stream};

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
}

/// Options that are not part of the experiment config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub runs_dir: PathBuf,
    pub resume: Option<PathBuf>,
    /// Show progress bars (a terminal) or plain lines.
    pub progress: bool,
    pub quiet: bool,
    /// Inspect a finished run (`lab eval`): restore a checkpoint, write nothing to the run folder.
    pub read_only: bool,
    /// Which checkpoint to restore: `last` (default) or `best`.
    pub checkpoint: Option<String>,
    /// Added to a new run folder's name: what differs from the experiment file
    /// ([`run_dir::run_label`]).
    pub label: String,
}

pub struct Trainer {
    exp: Experiment,
    device: Device,
    run: RunDir,
    registry_records: Vec<PluginRecord>,
    images: Tensor,
    labels: Option<Tensor>,
    sampler: Sampler,
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
    interval_start: Instant,
    interval_images: u64,
    run_start: Instant,
    last_scalars: BTreeMap<String, f64>,
    evaluator: Option<Evaluator>,
    last_eval: Option<EvalResult>,
    /// (metric, value, step) of the best evaluation so far.
    best: Option<(String, f64, u64)>,
    read_only: bool,
    // Architecture last: its handle is dropped after the networks it built.
    arch: Architecture,
}

impl Trainer {
    /// Loads data and plugins, creates (or reopens, when resuming) the run folder, and writes the
    /// resolved config and manifest before step 0.
    pub fn new(mut exp: Experiment, opts: &RunOptions) -> Result<Self, TrainError> {
        let device = prepare_device(&exp)?;
        let registry = Registry::discover(&exp.plugins.paths)?;

        let dataset: Dataset = data::load(&exp.data)?;
        let spec = data::spec(&dataset);
        let env = BuildEnv::from_device(device, spec);

        // Resolve each plugin's full config (defaults + user), so config.toml is exactly what ran.
        exp.model.config = registry.resolved_config(PluginKind::Architecture, &exp.model.architecture, &exp.model.config);
        exp.loss.config = registry.resolved_config(PluginKind::Loss, &exp.loss.name, &exp.loss.config);
        if exp.augment.enabled() {
            exp.augment.config = registry.resolved_config(PluginKind::Augmentation, &exp.augment.name, &exp.augment.config);
        }

        let loss = registry.loss(&exp.loss.name, &exp.loss.config, env)?;
        seed_torch(key(exp.seed, Stream::GPhase, &[u64::MAX]));
        let arch = registry.architecture(&exp.model.architecture, &exp.model.config, env)?;
        let info = arch.info().map_err(|m| plugin_failure(&exp, m))?;
        if info.num_classes > 0 && dataset.num_classes < info.num_classes {
            return Err(TrainError::Setup(format!(
                "architecture `{}` is conditional on {} classes, but dataset `{}` has {} labelled classes; set `model.config.conditional = false` or use a labelled dataset",
                exp.model.architecture, info.num_classes, exp.data.dataset, dataset.num_classes
            )));
        }
        if !info.networks.iter().any(|s| s.name == "generator") {
            return Err(TrainError::Setup(format!(
                "architecture `{}` declares no `generator` network (it has: {})",
                exp.model.architecture,
                info.networks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let declared: Vec<&str> = info.networks.iter().map(|s| s.name.as_str()).collect();
        for name in exp.optim.networks.keys() {
            if !declared.contains(&name.as_str()) {
                return Err(TrainError::Config {
                    key: format!("optim.networks.{name}"),
                    message: format!(
                        "architecture `{}` has no network `{name}`; expected one of: {}",
                        exp.model.architecture,
                        declared.join(", ")
                    ),
                });
            }
        }
        let (phases, plan_key) = if exp.train.phases.is_empty() {
            let own = loss.plan().map_err(|e| TrainError::Setup(format!("loss `{}`: cannot read its plan: {e}", exp.loss.name)))?;
            (own, "loss.name")
        } else {
            (exp.train.phases.clone(), "train.phases")
        };
        let plan = plan::resolve(&phases, &info.networks, &exp.model.architecture).map_err(|(i, message)| {
            let key = if plan_key == "train.phases" { format!("train.phases[{i}]") } else { plan_key.to_string() };
            let message = if key == "loss.name" { format!("the plan of loss `{}`: {message}", exp.loss.name) } else { message };
            TrainError::Config { key, message }
        })?;
        let mut nets = Vec::new();
        for s in &info.networks {
            let handle = arch.build(&s.name).map_err(|m| plugin_failure(&exp, m))?;
            let tensors = handle.tensors().map_err(|m| plugin_failure(&exp, m))?;
            let tensors = move_to(tensors, device);
            let params: Vec<Tensor> = tensors.iter().filter(|t| t.2).map(|t| t.1.shallow_clone()).collect();
            let lazy = plan::lazy_ratio(&plan, &s.name);
            let opt = Optimizer::new(exp.optim.for_network(&s.name), params, lazy, exp.train.steps);
            nets.push(Net { name: s.name.clone(), handle, tensors, opt });
        }
        let ema = if exp.ema.enabled {
            let handle = arch.build("generator").map_err(|m| plugin_failure(&exp, m))?;
            let tensors = move_to(handle.tensors().map_err(|m| plugin_failure(&exp, m))?, device);
            let g = nets.iter().find(|n| n.name == "generator").expect("checked above");
            tch::no_grad(|| {
                for ((_, e, _), (_, t, _)) in tensors.iter().zip(&g.tensors) {
                    e.shallow_clone().copy_(t);
                }
            });
            Some(Ema { handle, tensors })
        } else {
            None
        };
        let augment = if exp.augment.enabled() {
            Some(registry.augment(&exp.augment.name, &exp.augment.config, env)?)
        } else {
            None
        };

        let mut records = vec![record(&registry, PluginKind::Architecture, &exp.model.architecture)?];
        records.push(record(&registry, PluginKind::Loss, &exp.loss.name)?);
        if exp.augment.enabled() {
            records.push(record(&registry, PluginKind::Augmentation, &exp.augment.name)?);
        }

        seed_torch(key(exp.seed, Stream::FixedZ, &[]));
        let fixed_z = match arch.sample_latent(exp.log.samples).map_err(|m| plugin_failure(&exp, m))? {
            Some(z) => z,
            None => Tensor::randn([exp.log.samples, info.z_dim], (Kind::Float, device)),
        };
        let fixed_y = (info.num_classes > 0)
            .then(|| Tensor::arange(exp.log.samples, (Kind::Int64, device)).remainder(info.num_classes));

        let evaluator = if exp.eval.enabled() {
            Some(Evaluator::new(&exp.eval, &exp.data, &registry, env, device)?)
        } else {
            None
        };

        let images = dataset.images.to_device(device);
        let labels = dataset.labels.as_ref().map(|l| l.to_device(device));
        let n = images.size()[0] as usize;
        let sampler = Sampler::new(n, exp.train.batch_size as usize, exp.seed);

        let run = match &opts.resume {
            Some(dir) => RunDir::open(dir),
            None => RunDir::create(&opts.runs_dir, &exp, &opts.label).map_err(io_err(&opts.runs_dir))?,
        };
        let mut manifest = Manifest::new(&exp, device, records.clone());
        if !opts.read_only {
            std::fs::write(run.config(), exp.to_toml()).map_err(io_err(&run.config()))?;
            manifest.write(&run.manifest()).map_err(io_err(&run.manifest()))?;
        }
        // On resume, `restore` reopens it truncated to the checkpoint's step.
        let metrics = match &opts.resume {
            Some(_) => MetricsLog::append(&run.metrics(), 0.0)?,
            None => MetricsLog::create(&run.metrics())?,
        };
        let tensorboard =
            if exp.track.tensorboard && !opts.read_only { Some(TensorBoard::create(&run.path)?) } else { None };

        let mut trainer = Trainer {
            device,
            run,
            registry_records: records,
            images,
            labels,
            sampler,
            arch_name: exp.model.architecture.clone(),
            z_dim: info.z_dim,
            num_classes: info.num_classes,
            nets,
            plan,
            batches: 0,
            ema,
            loss,
            augment,
            fixed_z,
            fixed_y,
            step: 0,
            metrics,
            tensorboard,
            mlflow: None,
            manifest: Manifest::new(&exp, device, Vec::new()),
            last_checkpoint_step: None,
            sums: BTreeMap::new(),
            interval_start: Instant::now(),
            interval_images: 0,
            run_start: Instant::now(),
            last_scalars: BTreeMap::new(),
            evaluator,
            last_eval: None,
            best: None,
            read_only: opts.read_only,
            exp,
            arch,
        };
        if opts.resume.is_some() {
            let which = opts.checkpoint.as_deref().unwrap_or("last");
            trainer.restore(which)?;
            manifest.resumed_from_step = Some(trainer.step);
        }
        trainer.manifest = manifest;
        if opts.read_only {
            return Ok(trainer);
        }
        trainer.manifest.write(&trainer.run.manifest()).map_err(io_err(&trainer.run.manifest()))?;
        trainer.mlflow = trainer.start_mlflow()?;
        let hparams = hparams(&trainer.exp);
        if let Some(tb) = trainer.tensorboard.as_mut() {
            Tracker::text(tb, "config", &format!("```toml\n{}\n```", trainer.exp.to_toml()))?;
            tb.hparams(&hparams, "", track::unix_now())?;
        }
        Ok(trainer)
    }

    /// Starts MLflow tracking when `[track.mlflow]` or `MLFLOW_TRACKING_URI` asks for it. An
    /// unreachable server does not stop training: the tracker spools to the run folder.
    fn start_mlflow(&self) -> Result<Option<MlflowTracker>, TrainError> {
        let cfg = &self.exp.track.mlflow;
        let Some(uri) = cfg.resolved_uri() else { return Ok(None) };
        let experiment = if cfg.experiment.is_empty() { self.exp.name.clone() } else { cfg.experiment.clone() };
        let folder = self.run.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // A sweep member (config name `<experiment>__<member>`) logs into the sweep's experiment,
        // so its run name says which member it is.
        let run_name = match self.exp.name.strip_prefix(&format!("{experiment}__")) {
            Some(member) => format!("{member}/{folder}"),
            None => folder,
        };
        let table: toml::Table = toml::from_str(&self.exp.to_toml()).expect("our own TOML parses");
        let params = track::flatten_config(table);
        let mut tags = BTreeMap::new();
        let m = &self.manifest;
        if let Some(c) = &m.git_commit {
            tags.insert("mlflow.source.git.commit".to_string(), c.clone());
        }
        if let Some(d) = m.git_dirty {
            tags.insert("lab.git_dirty".into(), d.to_string());
        }
        tags.insert("lab.version".into(), m.lab_version.clone());
        tags.insert("lab.device".into(), m.device.clone());
        tags.insert("lab.libtorch".into(), m.libtorch.clone());
        tags.insert("lab.run_dir".into(), self.run.path.display().to_string());
        for p in &self.registry_records {
            tags.insert(format!("lab.plugin.{}.{}", p.kind, p.name), format!("{} sha256:{}", p.version, p.sha256));
        }
        let options = MlflowOptions { upload_checkpoints: cfg.upload_checkpoints, ..MlflowOptions::default() };
        let tracker = MlflowTracker::start_with(&uri, &experiment, &run_name, &self.run.path, &params, &tags, &options)?;
        Ok(Some(tracker))
    }

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
        self.interval_start = Instant::now();
        let result = self.train_loop(total, &mut progress);
        progress.finish();
        match result {
            Ok(()) => self.finish(RunStatus::Finished),
            Err(e) => {
                let status = if matches!(e, TrainError::Interrupted { .. }) { RunStatus::Killed } else { RunStatus::Failed };
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
            self.train_step(step)?;
            self.step += 1;
            let done = self.step;
            progress.set(done);
            if done % self.exp.log.every == 0 || done == total {
                let line = self.log_scalars(done)?;
                progress.message(done, total, &line);
            }
            if self.exp.log.samples_every > 0 && done % self.exp.log.samples_every == 0 && done != total {
                self.write_samples(done)?;
            }
            if self.exp.checkpoint.every > 0 && done % self.exp.checkpoint.every == 0 && done != total {
                self.save_checkpoint()?;
            }
            if self.exp.eval.every > 0 && done % self.exp.eval.every == 0 && done != total {
                progress.suspend(|| self.run_eval(done).map(|_| ()))?;
            }
        }
        Ok(())
    }

    fn step_error(&self, step: u64, message: String) -> TrainError {
        let checkpoint_note = match self.last_checkpoint_step {
            Some(s) => format!(
                "The last good checkpoint (step {s}) is intact: {}. Resume with `lab run --resume {}`.",
                self.run.last_checkpoint().display(),
                self.run.path.display()
            ),
            None => "No checkpoint had been written yet.".to_string(),
        };
        TrainError::Step { step, message, checkpoint_note }
    }

    /// The real batch for discriminator step `b`, as floats in [-1, 1].
    fn real_batch(&mut self, b: u64) -> (Tensor, Option<Tensor>) {
        let idx = self.sampler.batch(b);
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        let mut x = self.images.index_select(0, &idx).to_kind(Kind::Float) / 127.5 - 1.0;
        if self.exp.data.hflip {
            let mut rng = SplitMix64::new(key(self.exp.seed, Stream::Flip, &[b]));
            let mask: Vec<bool> = (0..idx.size()[0]).map(|_| rng.next_u64() >> 63 == 1).collect();
            let mask = Tensor::from_slice(&mask).to_device(self.device).view([-1, 1, 1, 1]);
            x = x.flip([3]).where_self(&mask, &x);
        }
        let y = self.labels.as_ref().map(|l| l.index_select(0, &idx));
        (x, y)
    }

    fn accumulate(&mut self, name: &str, value: &Tensor) {
        let v = value.detach().to_kind(Kind::Double).mean(Kind::Double);
        match self.sums.get_mut(name) {
            Some((sum, n)) => {
                *sum = &*sum + v;
                *n += 1;
            }
            None => {
                self.sums.insert(name.to_string(), (v, 1));
            }
        }
    }

    /// One run of a phase: the loss's groups, each back-propagated into its own networks'
    /// parameters only, then those networks' optimizer steps.
    fn run_phase(&mut self, p: usize, step: u64, repeat: u64, real: &Tensor, labels: Option<&Tensor>) -> Result<(), TrainError> {
        let phase = self.plan[p].clone();
        let name = phase.plan.name.as_str();
        // The default plan's seeds are those of version 1, so its runs are unchanged.
        match phase.code {
            0 => seed_torch(key(self.exp.seed, Stream::DPhase, &[step, repeat])),
            1 => seed_torch(key(self.exp.seed, Stream::GPhase, &[step, repeat])),
            code => seed_torch(key(self.exp.seed, Stream::Phase, &[step, code, repeat])),
        }
        let batch_size = if phase.plan.batch_size > 0 { phase.plan.batch_size } else { self.exp.train.batch_size };
        let mut logs = Vec::new();
        let (groups, d_real, d_fake) = {
            let mut host = PhaseHost {
                phase: name,
                phase_code: phase.code,
                stepping: &phase.networks,
                step,
                d_index: repeat,
                seed: self.exp.seed,
                batch_size,
                num_classes: self.num_classes,
                z_dim: self.z_dim,
                device: self.device,
                architecture: &self.arch_name,
                arch: &self.arch,
                real,
                labels,
                nets: &mut self.nets,
                augment: self.augment.as_mut(),
                augment_name: &self.exp.augment.name,
                augment_calls: 0,
                logs: &mut logs,
                d_real: None,
                d_fake: None,
            };
            let groups = self.loss.loss(name, &mut host);
            (groups, host.d_real, host.d_fake)
        };
        let loss_name = self.exp.loss.name.clone();
        let groups = groups.map_err(|e| self.step_error(step, format!("loss `{loss_name}` ({} phase) failed: {e}", phase_label(name))))?;
        let groups = self.check_groups(step, &phase, groups)?;
        // Every group's gradients first, then every step: a step changes parameters in place,
        // which later groups' backward passes may still need (VAE-GAN's groups share a graph).
        let last = groups.iter().rposition(|g| g.1.is_some());
        let mut updates: Vec<(usize, Vec<Tensor>)> = Vec::new();
        for (i, (networks, loss)) in groups.iter().enumerate() {
            let Some(loss) = loss else { continue };
            let key_name = loss_key(name, networks, groups.len());
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                return Err(self.step_error(step, format!(
                    "the {} loss (`{loss_name}`) is {value}; training stopped before applying it. Lower the learning rate, check the data range, or enable a gradient penalty.",
                    phase_label(name)
                )));
            }
            let targets: Vec<usize> = self.nets.iter().enumerate().filter(|(_, n)| networks.contains(&n.name)).map(|(k, _)| k).collect();
            let params: Vec<Tensor> = targets.iter().flat_map(|&k| self.nets[k].opt.params.iter().map(Tensor::shallow_clone)).collect();
            // Later groups may share this group's graph: keep it until the last one.
            let grads = Tensor::f_run_backward(&[loss], &params, Some(i) != last, false)
                .map_err(|e| self.step_error(step, format!("back-propagating the {key_name} loss failed: {e}")))?;
            let mut grads = grads.into_iter();
            for &k in &targets {
                let n = self.nets[k].opt.params.len();
                updates.push((k, grads.by_ref().take(n).collect()));
            }
            self.accumulate(&key_name, loss);
        }
        for (k, grads) in updates {
            self.nets[k].opt.step(&grads, step);
        }
        // D(x) and D(G(z)) statistics, and adaptive augmentation's feedback, come from the
        // discriminator phase only.
        if let (Some(r), 0) = (&d_real, phase.code) {
            self.accumulate("d/real_logit", r);
            self.accumulate("d/real_acc", &r.gt(0.0).to_kind(Kind::Double));
            if let Some(a) = self.augment.as_mut() {
                a.feedback(r).map_err(|m| TrainError::Step { step, message: format!("augmentation `{}` feedback failed: {m}", self.exp.augment.name), checkpoint_note: String::new() })?;
            }
        }
        if let Some(f) = &d_fake {
            if phase.code == 0 {
                self.accumulate("d/fake_logit", f);
                self.accumulate("d/fake_acc", &f.lt(0.0).to_kind(Kind::Double));
            }
        }
        for (name, v) in logs {
            self.accumulate(&name, &v);
        }
        Ok(())
    }

    /// Resolves each group's networks (none named: every network the phase steps) and refuses
    /// a group naming a network the phase does not step, a network left without a loss, and a
    /// loss that is not a scalar.
    fn check_groups(&self, step: u64, phase: &plan::Phase, groups: Vec<lab_plugin_api::host::Group>) -> Result<Vec<(Vec<String>, Option<Tensor>)>, TrainError> {
        let loss = &self.exp.loss.name;
        let mut covered: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (networks, value) in groups {
            let networks = if networks.is_empty() { phase.networks.clone() } else { networks };
            for n in &networks {
                if !phase.networks.contains(n) {
                    return Err(self.step_error(step, format!(
                        "loss `{loss}` returned a loss for network `{n}` in phase `{}`, which steps only: {}",
                        phase.plan.name,
                        phase.networks.join(", ")
                    )));
                }
            }
            if let Some(v) = &value {
                if v.numel() != 1 {
                    return Err(self.step_error(step, format!(
                        "loss `{loss}` returned a {} loss of shape {:?}; expected a scalar",
                        phase_label(&phase.plan.name),
                        v.size()
                    )));
                }
            }
            out.push((networks, value));
        }
        for (networks, _) in &out {
            for n in networks {
                if covered.contains(&n.as_str()) {
                    return Err(self.step_error(step, format!(
                        "loss `{loss}` returned two losses for network `{n}` in phase `{}`; each network minimises one",
                        phase.plan.name
                    )));
                }
                covered.push(n);
            }
        }
        if let Some(n) = phase.networks.iter().find(|n| !covered.contains(&n.as_str())) {
            return Err(self.step_error(step, format!(
                "loss `{loss}` returned no loss for network `{n}` in phase `{}`; return one, or skip it (`Losses::skip`)",
                phase.plan.name
            )));
        }
        Ok(out)
    }

    /// One generator step: every phase of the plan that runs at `step`, each as many times as
    /// it repeats, then the EMA.
    fn train_step(&mut self, step: u64) -> Result<(), TrainError> {
        let d_steps = self.exp.train.d_steps;
        let mut last: Option<(Tensor, Option<Tensor>)> = None;
        let mut images = 0u64;
        for p in 0..self.plan.len() {
            let phase = &self.plan[p].plan;
            if !phase.runs_at(step) {
                continue;
            }
            let repeats = phase.repeats_at(step, d_steps);
            // G reuses the batch of the last D step, as version 1 did.
            let reuse = self.plan[p].code == 1;
            for r in 0..repeats as u64 {
                let (x, y) = match (&last, reuse) {
                    (Some((x, y)), true) => (x.shallow_clone(), y.as_ref().map(Tensor::shallow_clone)),
                    _ => {
                        let b = self.batches;
                        self.batches += 1;
                        if self.plan[p].code == 0 {
                            images += self.exp.train.batch_size as u64;
                        }
                        self.real_batch(b)
                    }
                };
                self.run_phase(p, step, r, &x, y.as_ref())?;
                last = Some((x, y));
            }
        }
        self.update_ema(step);
        self.interval_images += images;
        Ok(())
    }

    fn update_ema(&mut self, step: u64) {
        let Some(ema) = &self.ema else { return };
        let g = self.nets.iter().find(|n| n.name == "generator").expect("checked at start");
        let copy = step < self.exp.ema.start;
        let w = 1.0 - self.exp.ema.beta(step, self.exp.train.batch_size);
        tch::no_grad(|| {
            for ((_, e, trainable), (_, t, _)) in ema.tensors.iter().zip(&g.tensors) {
                let mut e = e.shallow_clone();
                if copy || !trainable || !t.is_floating_point() {
                    e.copy_(t);
                } else {
                    let _ = e.lerp_(t, w);
                }
            }
        });
    }

    /// Averages the interval's accumulators (the only host sync), logs them, returns a summary line.
    fn log_scalars(&mut self, step: u64) -> Result<String, TrainError> {
        let elapsed = self.interval_start.elapsed().as_secs_f64().max(1e-9);
        let mut values: Vec<(String, f64)> = std::mem::take(&mut self.sums)
            .into_iter()
            .map(|(k, (sum, n))| (k, sum.double_value(&[]) / n as f64))
            .collect();
        if let Some(a) = &self.augment {
            let scalars = a.scalars().map_err(|m| TrainError::Setup(format!("augmentation `{}`: {m}", self.exp.augment.name)))?;
            values.extend(scalars.into_iter().map(|(k, v)| (format!("augment/{k}"), v)));
        }
        values.push(("perf/img_per_s".into(), self.interval_images as f64 / elapsed));
        self.interval_start = Instant::now();
        self.interval_images = 0;
        let wall = self.run_start.elapsed().as_secs_f64();
        self.metrics.scalars(step, &values)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.scalars(step, &values)?;
        }
        if let Some(m) = self.mlflow.as_mut() {
            m.scalars(step, &values)?;
        }
        let line = values
            .iter()
            .filter(|(k, _)| k.starts_with("loss/") || k == "perf/img_per_s")
            .map(|(k, v)| format!("{} {}", k.trim_start_matches("loss/").trim_start_matches("perf/"), fmt_value(*v)))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = wall;
        self.last_scalars = values.into_iter().collect();
        Ok(line)
    }

    /// The architecture's own grid when it draws one; otherwise the fixed-z grid from the EMA
    /// generator (or G without EMA), in eval mode.
    pub fn sample_grid(&mut self) -> Result<GridImage, TrainError> {
        let nrow_default = (self.exp.log.samples as f64).sqrt().ceil() as i64;
        let mut host = GridHost {
            architecture: &self.arch_name,
            ema: self.ema.as_mut().map(|e| &mut e.handle),
            nets: &mut self.nets,
            fixed_z: &self.fixed_z,
            fixed_y: self.fixed_y.as_ref(),
            images: &self.images,
            labels: self.labels.as_ref(),
            samples: self.exp.log.samples,
            num_classes: self.num_classes,
        };
        let custom = self
            .arch
            .visualize(&mut host)
            .map_err(|e| TrainError::Setup(format!("architecture `{}` failed to draw its sample grid: {e}", self.arch_name)))?;
        if let Some((images, nrow)) = custom {
            return Ok(track::grid(&images, nrow.max(1), 2)?);
        }
        let mut inputs = vec![self.fixed_z.shallow_clone()];
        if let Some(y) = &self.fixed_y {
            inputs.push(y.shallow_clone());
        }
        let handle = match self.ema.as_mut() {
            Some(e) => &mut e.handle,
            None => &mut self.nets.iter_mut().find(|n| n.name == "generator").expect("checked").handle,
        };
        let out = tch::no_grad(|| handle.forward(&inputs, false))
            .map_err(|m| TrainError::Setup(format!("sampling from the generator failed: {m}")))?;
        let images = out.into_iter().next().ok_or_else(|| TrainError::Setup("generator returned nothing".into()))?;
        Ok(track::grid(&images, nrow_default, 2)?)
    }

    fn write_samples(&mut self, step: u64) -> Result<PathBuf, TrainError> {
        let grid = self.sample_grid()?;
        let path = self.run.samples().join(format!("step_{step:06}.png"));
        grid.save_png(&path)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.image(step, "samples", &grid)?;
        }
        Ok(path)
    }

    fn counters(&self) -> Counters {
        Counters {
            step: self.step,
            batches: self.batches,
            best: self.best.clone(),
            seed: self.exp.seed,
            d_steps: self.exp.train.d_steps as u64,
        }
    }

    /// The whole training state, through the one protocol ([`state::Stateful`]).
    fn checkpoint_tensors(&mut self) -> Result<Checkpoint, TrainError> {
        let mut c = Checkpoint::default();
        for net in &self.nets {
            net.save(&mut c)?;
        }
        if let Some(ema) = &self.ema {
            ema.save(&mut c)?;
        }
        PluginState { component: "loss", name: &self.exp.loss.name, plugin: &mut self.loss }.save(&mut c)?;
        if let Some(a) = self.augment.as_mut() {
            PluginState { component: "augment", name: &self.exp.augment.name, plugin: a }.save(&mut c)?;
        }
        self.counters().save(&mut c)?;
        Ok(c)
    }

    /// Evaluates the EMA generator (or G without EMA) with every configured metric, logs the
    /// values as `eval/<name>`, and keeps `checkpoints/best.safetensors` by the primary metric.
    pub fn run_eval(&mut self, step: u64) -> Result<EvalResult, TrainError> {
        let Some(evaluator) = self.evaluator.as_mut() else {
            return Err(TrainError::Setup("no metrics configured: set `eval.metrics`, e.g. `--set eval.metrics=[\"fid\"]`".into()));
        };
        let handle = match self.ema.as_mut() {
            Some(e) => &mut e.handle,
            None => &mut self.nets.iter_mut().find(|n| n.name == "generator").expect("checked").handle,
        };
        let result = evaluator.evaluate(step, self.exp.seed, self.z_dim, self.num_classes, |z, y| {
            let mut inputs = vec![z.shallow_clone()];
            if let Some(y) = y {
                inputs.push(y.shallow_clone());
            }
            handle.forward(&inputs, false).map(|mut out| out.remove(0)).map_err(|e| e.to_string())
        });
        let primary = result.as_ref().ok().and_then(|r| evaluator.primary(r)).map(|(n, v, h)| (n.to_string(), v, h));
        let result = result.map_err(|m| self.step_error(step, format!("evaluation failed: {m}")))?;
        if !self.read_only {
            let mut values: Vec<(String, f64)> = result.values.iter().map(|(k, v)| (format!("eval/{k}"), *v)).collect();
            if let Some((name, value, higher)) = primary {
                let better = match &self.best {
                    None => true,
                    Some((_, best, _)) => if higher { value > *best } else { value < *best },
                };
                if better {
                    self.best = Some((name, value, step));
                    let path = self.run.path.join("checkpoints").join("best.safetensors");
                    self.checkpoint_tensors()?.save(&path)?;
                }
                // The best value so far, so that its last point (e.g. in TensorBoard's HParams
                // table or MLflow's run list) is the run's best.
                if let Some((name, best, _)) = &self.best {
                    values.push((format!("best/{name}"), *best));
                }
            }
            self.metrics.scalars(step, &values)?;
            if let Some(tb) = self.tensorboard.as_mut() {
                tb.scalars(step, &values)?;
            }
            if let Some(m) = self.mlflow.as_mut() {
                m.scalars(step, &values)?;
            }
        }
        self.last_eval = Some(result.clone());
        Ok(result)
    }

    /// Writes `checkpoints/last.safetensors` atomically.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        let path = self.run.last_checkpoint();
        self.checkpoint_tensors()?.save(&path)?;
        self.last_checkpoint_step = Some(self.step);
        Ok(path)
    }

    fn restore(&mut self, which: &str) -> Result<(), TrainError> {
        let path = self.run.path.join("checkpoints").join(format!("{which}.safetensors"));
        if !path.exists() {
            return Err(TrainError::Setup(format!(
                "{}: no checkpoint to resume from; the run stopped before its first checkpoint. Start it again without --resume.",
                path.display()
            )));
        }
        let c = Checkpoint::load(&path)?;
        for net in &mut self.nets {
            net.load(&c, &path)?;
        }
        if let Some(ema) = self.ema.as_mut() {
            ema.load(&c, &path)?;
        }
        PluginState { component: "loss", name: &self.exp.loss.name, plugin: &mut self.loss }.load(&c, &path)?;
        if let Some(a) = self.augment.as_mut() {
            PluginState { component: "augment", name: &self.exp.augment.name, plugin: a }.load(&c, &path)?;
        }
        let mut counters = self.counters();
        counters.load(&c, &path)?;
        self.step = counters.step;
        self.batches = counters.batches;
        self.best = counters.best;
        self.last_checkpoint_step = Some(self.step);
        if !self.read_only {
            // Whatever was logged after the checkpoint is about to be logged again.
            self.metrics = MetricsLog::resume(&self.run.metrics(), self.step)?;
        }
        Ok(())
    }

    fn finish(&mut self, status: RunStatus) -> Result<Summary, TrainError> {
        let mut samples = None;
        let mut checkpoint = None;
        if status == RunStatus::Finished && self.evaluator.is_some() {
            self.run_eval(self.step)?;
        }
        if status != RunStatus::Failed {
            samples = Some(self.write_samples(self.step)?);
            checkpoint = Some(self.save_checkpoint()?);
        }
        let wall = self.run_start.elapsed().as_secs_f64();
        let status_name = match status {
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Killed => "killed",
        };
        let images = self.step as f64 * self.exp.train.batch_size as f64 * self.exp.train.d_steps as f64;
        let eval = self.last_eval.as_ref().map(|e| {
            serde_json::json!({
                "final": e,
                "best": self.best.as_ref().map(|(name, value, step)| serde_json::json!({
                    "metric": name, "value": value, "step": step,
                    "checkpoint": self.run.path.join("checkpoints/best.safetensors"),
                })),
            })
        });
        let summary = Summary {
            status: status_name.into(),
            eval,
            steps: self.step,
            wall_time_s: wall,
            images_per_s: images / wall.max(1e-9),
            final_scalars: self.last_scalars.clone(),
            samples,
            checkpoint,
        };
        write_json(&self.run.summary(), &summary).map_err(io_err(&self.run.summary()))?;
        self.manifest.finished = Some(run_dir::now());
        self.manifest.status = status_name.into();
        self.manifest.plugins = self.registry_records.clone();
        self.manifest.write(&self.run.manifest()).map_err(io_err(&self.run.manifest()))?;
        self.metrics.finish(status)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.finish(status)?;
        }
        // Last: MLflow uploads the summary, manifest and samples written above.
        if let Some(m) = self.mlflow.as_mut() {
            m.finish(status)?;
        }
        Ok(summary)
    }
}

/// The key hyperparameters, as columns of TensorBoard's HParams dashboard.
fn hparams(exp: &Experiment) -> BTreeMap<String, track::HParamValue> {
    let mut h: BTreeMap<String, track::HParamValue> = BTreeMap::new();
    h.insert("experiment".into(), exp.name.as_str().into());
    h.insert("architecture".into(), exp.model.architecture.as_str().into());
    h.insert("loss".into(), exp.loss.name.as_str().into());
    h.insert("augment".into(), exp.augment.name.as_str().into());
    // A policy only means something when an augmentation runs.
    let policy = exp.augment.config.get("policy").and_then(|p| p.as_str()).filter(|_| exp.augment.name != "none");
    h.insert("augment.policy".into(), policy.unwrap_or("").into());
    h.insert("data.dataset".into(), exp.data.dataset.as_str().into());
    h.insert("data.fraction".into(), exp.data.fraction.into());
    h.insert("seed".into(), (exp.seed as f64).into());
    h.insert("optim.lr".into(), exp.optim.lr.into());
    h.insert("train.batch_size".into(), (exp.train.batch_size as f64).into());
    h.insert("train.d_steps".into(), (exp.train.d_steps as f64).into());
    h.insert("train.steps".into(), (exp.train.steps as f64).into());
    h
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn move_to(tensors: Vec<(String, Tensor, bool)>, device: Device) -> Vec<(String, Tensor, bool)> {
    // Plugins build on the device they are given; this only guards against one that did not.
    tensors
        .into_iter()
        .map(|(n, t, tr)| {
            if t.device() != device {
                tracing::warn!("tensor `{n}` was created on {:?}, moving it to {device:?}", t.device());
            }
            (n, t, tr)
        })
        .collect()
}

/// The run's device, with CUDA's settings and the thread count applied.
fn prepare_device(exp: &Experiment) -> Result<Device, TrainError> {
    let device = crate::config::parse_device(&exp.device).map_err(TrainError::Setup)?;
    if let Device::Cuda(_) = device {
        if !tch::Cuda::is_available() {
            return Err(TrainError::Setup(format!(
                "device `{}` was asked for, but CUDA is not available on this machine; use `--device cpu`",
                exp.device
            )));
        }
        tch::Cuda::cudnn_set_benchmark(!exp.deterministic);
    }
    if exp.threads > 0 {
        tch::set_num_threads(exp.threads as i32);
    }
    Ok(device)
}

fn plugin_failure(exp: &Experiment, error: lab_plugin_api::Error) -> TrainError {
    TrainError::Plugin(PluginError::from_plugin(PluginKind::Architecture, &exp.model.architecture, "model.config", error))
}

/// `discriminator` / `generator` for the default phases, the phase's name otherwise.
fn phase_label(phase: &str) -> String {
    match phase {
        lab_plugin_api::PHASE_D => "discriminator".into(),
        lab_plugin_api::PHASE_G => "generator".into(),
        other => format!("`{other}`"),
    }
}

/// `loss/d` and `loss/g` for the default phases' single group (as in version 1);
/// `loss/<phase>` or `loss/<phase>/<network>` otherwise.
fn loss_key(phase: &str, networks: &[String], groups: usize) -> String {
    let base = match phase {
        lab_plugin_api::PHASE_D => "loss/d".to_string(),
        lab_plugin_api::PHASE_G => "loss/g".to_string(),
        other => format!("loss/{other}"),
    };
    if groups > 1 {
        format!("{base}/{}", networks.join("+"))
    } else {
        base
    }
}

fn record(registry: &Registry, kind: PluginKind, name: &str) -> Result<PluginRecord, TrainError> {
    let key = match kind {
        PluginKind::Architecture => "model.architecture",
        PluginKind::Loss => "loss.name",
        PluginKind::Augmentation => "augment.name",
        PluginKind::Metric => "eval.metrics",
    };
    let info = registry.find(kind, name, key)?;
    Ok(PluginRecord {
        kind: kind.to_string(),
        name: info.name.clone(),
        version: info.version.clone(),
        library: info.library.clone(),
        sha256: info.sha256.clone(),
    })
}
