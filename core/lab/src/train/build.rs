//! Building a trainer: plugins, data and networks into training state, the run folder and the
//! trackers, all before step 0 (or restored from a checkpoint when resuming).
use super::*;

impl Trainer {
    /// Loads data and plugins, creates (or reopens, when resuming) the run folder, and writes the
    /// resolved config and manifest before step 0.
    pub fn new(mut exp: Experiment, opts: &RunOptions) -> Result<Self, TrainError> {
        let device = prepare_device(&exp)?;
        let registry = Registry::discover(&exp.plugins.paths)?;

        let dataset: Dataset = data::load(&exp.data)?;
        // Checked before anything is allocated from it: a batch is drawn without replacement.
        if exp.train.batch_size > dataset.len() {
            let shape = dataset.images.size();
            return Err(TrainError::Config {
                key: "train.batch_size".into(),
                message: format!(
                    "a batch of {} is larger than the data: {} holds {} images of {:?} (after data.fraction = {}); lower train.batch_size to at most {} or use more of the data",
                    exp.train.batch_size,
                    exp.data.dataset,
                    dataset.len(),
                    &shape[1..],
                    exp.data.fraction,
                    dataset.len()
                ),
            });
        }
        let spec = data::spec(&dataset);
        let env = BuildEnv::from_device(device, spec);

        // Resolve each plugin's full config (defaults + user), so config.toml is exactly what ran.
        exp.model.config =
            registry.resolved_config(PluginKind::Architecture, &exp.model.architecture, &exp.model.config);
        exp.loss.config = registry.resolved_config(PluginKind::Loss, &exp.loss.name, &exp.loss.config);
        if exp.augment.enabled() {
            exp.augment.config =
                registry.resolved_config(PluginKind::Augmentation, &exp.augment.name, &exp.augment.config);
        }

        let loss = registry.loss(&exp.loss.name, &exp.loss.config, env)?;
        seed_torch(key(exp.seed, Stream::GPhase, &[u64::MAX]));
        let arch = registry.architecture(&exp.model.architecture, &exp.model.config, env)?;
        let info = arch.info().map_err(|m| plugin_failure(&exp, m))?;
        check_architecture(&exp, &info, &dataset)?;
        let plan = resolve_plan(&exp, &loss, &info)?;
        let (nets, ema) = build_networks(&exp, &arch, &info, &plan, device)?;
        check_standing_stats(&exp, &nets)?;
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
        let (fixed_z, fixed_y) = crate::failure::catch(|| {
            let z = snapshot::latents(&arch, info.z_dim, device)(exp.log.samples);
            let y = (info.num_classes > 0)
                .then(|| Tensor::arange(exp.log.samples, (Kind::Int64, device)).remainder(info.num_classes));
            (z, y)
        })
        .map_err(|failure| TrainError::Config {
            key: "log.samples".into(),
            message: failure.explain(&format!("the sample grid's {} latents", exp.log.samples), "log.samples"),
        })?;
        let fixed_z = fixed_z.map_err(TrainError::Setup)?;

        let measures = arch.measures().map_err(|m| plugin_failure(&exp, m))?;
        let evaluator = if exp.eval.enabled() || !measures.is_empty() {
            Some(Evaluator::new(&exp.eval, &exp.data, &registry, env, device)?.with_measures(measures))
        } else {
            None
        };

        let images = dataset.images.to_device(device);
        let labels = dataset.labels.as_ref().map(|l| l.to_device(device));
        let n = images.size()[0] as usize;
        let sampler = Sampler::new(n, exp.train.batch_size as usize, exp.seed);
        let domain_b = dataset.domain_b.as_ref().map(|b| DomainB {
            images: b.images.to_device(device),
            paired: b.paired,
            // The second domain's own order, from a seed of its own.
            sampler: Sampler::new(
                b.images.size()[0] as usize,
                exp.train.batch_size as usize,
                crate::seeds::mix(exp.seed ^ 0xB),
            ),
        });

        let run = match &opts.resume {
            Some(dir) => RunDir::open(dir),
            None => RunDir::create(&opts.runs_dir, &exp, &opts.label).map_err(io_err(&opts.runs_dir))?,
        };
        let mut manifest = Manifest::new(&exp, device, records.clone());
        if opts.resume.is_some() {
            warn_if_numerics_changed(&run.manifest(), &manifest);
        }
        std::fs::write(run.config(), exp.to_toml()).map_err(io_err(&run.config()))?;
        manifest.write(&run.manifest()).map_err(io_err(&run.manifest()))?;
        // On resume, `restore` reopens it truncated to the checkpoint's step.
        let metrics = match &opts.resume {
            Some(_) => MetricsLog::append(&run.metrics(), 0.0)?,
            None => MetricsLog::create(&run.metrics())?,
        };
        let tensorboard = if exp.track.tensorboard { Some(TensorBoard::create(&run.path)?) } else { None };

        let mut trainer = Trainer {
            device,
            run,
            registry_records: records,
            images,
            labels,
            crop: dataset.crop,
            sampler,
            domain_b,
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
            nonfinite: nonfinite::Watch::new(device),
            scaler: (exp.train.amp == crate::config::Precision::Fp16)
                .then(|| amp::Scaler::new(exp.train.amp_init_scale, exp.train.amp_growth_interval)),
            host_reads_in_steps: 0,
            interval_start: Instant::now(),
            interval_images: 0,
            run_start: Instant::now(),
            start_batches: 0,
            last_scalars: BTreeMap::new(),
            evaluator,
            last_eval: None,
            best: None,
            toy: exp.data.mixture(),
            exp,
            arch,
        };
        if opts.resume.is_some() {
            trainer.restore_latest()?;
            manifest.resumed_from_step = Some(trainer.step);
            // The summary described the run as it last ended (`finished` at the old length,
            // with its final values); from here it is running again, so a report or a sweep
            // made meanwhile must see a run in progress, not those stale values. The run writes
            // a new summary when it ends.
            let summary = trainer.run.summary();
            match std::fs::remove_file(&summary) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&summary)(e)),
                _ => {}
            }
        }
        trainer.manifest = manifest;
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
    /// unreachable server does not stop training: `lab sync` sends the run folder later.
    pub(super) fn start_mlflow(&self) -> Result<Option<MlflowTracker>, TrainError> {
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
        // Params and `upload_checkpoints` are read from the run folder's config.toml.
        let tracker =
            MlflowTracker::start_with(&uri, &experiment, &run_name, &self.run.path, &tags, &MlflowOptions::default())?;
        Ok(Some(tracker))
    }
}

/// The key hyperparameters, as columns of TensorBoard's HParams dashboard.
pub(super) fn hparams(exp: &Experiment) -> BTreeMap<String, track::HParamValue> {
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

pub(super) fn move_to(tensors: Vec<(String, Tensor, bool)>, device: Device) -> Vec<(String, Tensor, bool)> {
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

/// On `--resume`: a warning when this machine or thread count decides CPU numerics differently
/// from the one the run started on (the values after the resume may then differ from those an
/// uninterrupted run would have logged).
fn warn_if_numerics_changed(recorded: &std::path::Path, now: &Manifest) {
    let Some(then) = std::fs::read_to_string(recorded)
        .ok()
        .and_then(|text| serde_json::from_str::<Manifest>(&text).ok())
        .and_then(|m| m.cpu)
    else {
        return;
    };
    let (Some(current), true) = (&now.cpu, now.device == "Cpu") else { return };
    let changed = then.differences(current);
    if !changed.is_empty() {
        eprintln!(
            "warning: resuming with {}; CPU results depend on these, so values from here on may differ from the \
             original run's (set deterministic = \"portable\" for results that do not)",
            changed.join(", ")
        );
    }
}

/// The run's device, with CUDA's settings and the thread count applied.
pub(super) fn prepare_device(exp: &Experiment) -> Result<Device, TrainError> {
    let device = crate::config::parse_device(&exp.device).map_err(TrainError::Setup)?;
    if let Device::Cuda(_) = device {
        if !tch::Cuda::is_available() {
            return Err(TrainError::Setup(format!(
                "device `{}` was asked for, but CUDA is not available on this machine; use `--device cpu`",
                exp.device
            )));
        }
        tch::Cuda::cudnn_set_benchmark(!exp.deterministic.is_on());
    }
    // Portable numerics need a thread count that does not depend on the machine's cores.
    let threads = match (exp.threads, exp.deterministic) {
        (0, crate::config::Determinism::Portable) => 1,
        (n, _) => n,
    };
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    Ok(device)
}

pub(super) fn plugin_failure(exp: &Experiment, error: lab_plugin_api::Error) -> TrainError {
    TrainError::Plugin(PluginError::from_plugin(
        PluginKind::Architecture,
        &exp.model.architecture,
        "model.config",
        error,
    ))
}

pub(super) fn record(registry: &Registry, kind: PluginKind, name: &str) -> Result<PluginRecord, TrainError> {
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

/// The architecture's networks against the data and the config: labels for a conditional
/// model, a generator to sample from, and no `[optim.networks.*]` for a network it lacks.
fn check_architecture(
    exp: &Experiment,
    info: &lab_plugin_api::host::Info,
    dataset: &Dataset,
) -> Result<(), TrainError> {
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
    Ok(())
}

/// `eval.standing_stats` re-estimates batch-norm statistics: refused, before any training, for
/// a generator that keeps none.
fn check_standing_stats(exp: &Experiment, nets: &[Net]) -> Result<(), TrainError> {
    if exp.eval.standing_stats == 0 {
        return Ok(());
    }
    let generator = &nets.iter().find(|n| n.name == "generator").expect("checked with the architecture").handle;
    let stats = super::standing_stats::running_statistics(generator).map_err(TrainError::Setup)?;
    if stats.is_empty() {
        return Err(TrainError::Config {
            key: "eval.standing_stats".into(),
            message: format!(
                "architecture `{}`: {}, so there are none to re-estimate; remove the key or set it to 0",
                exp.model.architecture,
                super::standing_stats::NO_STATISTICS
            ),
        });
    }
    Ok(())
}

/// The step plan: `[[train.phases]]`, else the loss's own, else the default; resolved against
/// the architecture's networks.
fn resolve_plan(
    exp: &Experiment,
    loss: &Loss,
    info: &lab_plugin_api::host::Info,
) -> Result<Vec<plan::Phase>, TrainError> {
    let (phases, plan_key) = if exp.train.phases.is_empty() {
        let own = loss
            .plan()
            .map_err(|e| TrainError::Setup(format!("loss `{}`: cannot read its plan: {e}", exp.loss.name)))?;
        (own, "loss.name")
    } else {
        (exp.train.phases.clone(), "train.phases")
    };
    plan::resolve(&phases, &info.networks, &exp.model.architecture).map_err(|(i, message)| {
        let key = if plan_key == "train.phases" { format!("train.phases[{i}]") } else { plan_key.to_string() };
        let message =
            if key == "loss.name" { format!("the plan of loss `{}`: {message}", exp.loss.name) } else { message };
        TrainError::Config { key, message }
    })
}

/// Every declared network with its optimizer (lazy-rescaled where the plan says so), and the
/// EMA copy of the generator when the run keeps one.
fn build_networks(
    exp: &Experiment,
    arch: &Architecture,
    info: &lab_plugin_api::host::Info,
    plan: &[plan::Phase],
    device: Device,
) -> Result<(Vec<Net>, Option<Ema>), TrainError> {
    let mut nets = Vec::new();
    for s in &info.networks {
        let handle = arch.build(&s.name).map_err(|m| plugin_failure(exp, m))?;
        let tensors = handle.tensors().map_err(|m| plugin_failure(exp, m))?;
        let tensors = move_to(tensors, device);
        if exp.train.channels_last {
            // Before the optimizer adopts them, so its buffers hold the weights in this order.
            let moved = layout::adopt_channels_last(tensors.iter().map(|t| &t.1));
            tracing::info!("train.channels_last: {moved} 4-D tensors of `{}` in NHWC order", s.name);
        }
        let params: Vec<Tensor> = tensors.iter().filter(|t| t.2).map(|t| t.1.shallow_clone()).collect();
        let lazy = plan::lazy_ratio(plan, &s.name);
        // A tensor that an earlier network's fused buffer already holds (two networks sharing
        // parameters) must not be moved into a second buffer: that network steps per tensor.
        let shares = params.iter().any(|p| nets.iter().any(|n: &Net| n.opt.holds(p)));
        let fused = exp.optim.fused && !shares;
        let opt = Optimizer::new(exp.optim.for_network(&s.name), params, lazy, exp.train.steps, fused);
        nets.push(Net { name: s.name.clone(), handle, tensors, opt });
    }
    let ema = if exp.ema.enabled {
        let handle = arch.build("generator").map_err(|m| plugin_failure(exp, m))?;
        let tensors = move_to(handle.tensors().map_err(|m| plugin_failure(exp, m))?, device);
        if exp.train.channels_last {
            // The generator's layout, so the fused EMA buffer lists elements in its order.
            layout::adopt_channels_last(tensors.iter().map(|t| &t.1));
        }
        let g = nets.iter().find(|n| n.name == "generator").expect("checked above");
        tch::no_grad(|| {
            for ((_, e, _), (_, t, _)) in tensors.iter().zip(&g.tensors) {
                e.shallow_clone().copy_(t);
            }
        });
        // The EMA of a fused generator is fused alike: the same parameters in the same order.
        let flat = g.opt.flat_params().and_then(|_| {
            let mut trainable: Vec<Tensor> = tensors.iter().filter(|t| t.2).map(|t| t.1.shallow_clone()).collect();
            tch::no_grad(|| crate::train::optim::flat::Flat::adopt(&mut trainable, 0)).map(|(flat, _)| flat.params)
        });
        Some(Ema { handle, tensors, flat })
    } else {
        None
    };
    Ok((nets, ema))
}
