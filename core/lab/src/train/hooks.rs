//! What happens on schedule around the steps: scalars to every tracker (one fan-out), sample
//! grids, checkpoints, evaluation with the best checkpoint, and the run's end.
use super::*;

impl Trainer {
    /// Averages the interval's accumulators (the only host sync), logs them, returns a summary line.
    pub(super) fn log_scalars(&mut self, step: u64) -> Result<String, TrainError> {
        let elapsed = self.interval_start.elapsed().as_secs_f64().max(1e-9);
        let mut values: Vec<(String, f64)> = std::mem::take(&mut self.sums)
            .into_iter()
            .map(|(k, (sum, n))| (k, nonfinite::read_f64(&sum) / n as f64))
            .collect();
        if let Some(a) = &self.augment {
            let scalars =
                a.scalars().map_err(|m| TrainError::Setup(format!("augmentation `{}`: {m}", self.exp.augment.name)))?;
            values.extend(scalars.into_iter().map(|(k, v)| (format!("augment/{k}"), v)));
        }
        // A scheduled rate is worth seeing next to the losses it shapes; a constant one is not.
        // `step` counts the steps done, so the interval's last update ran at index `step - 1`.
        for net in self.nets.iter().filter(|n| n.opt.settings.schedule.kind != "constant") {
            values.push((format!("optim/lr/{}", net.name), net.opt.hyper(step.saturating_sub(1)).lr));
        }
        values.push(("perf/img_per_s".into(), self.interval_images as f64 / elapsed));
        self.interval_start = Instant::now();
        self.interval_images = 0;
        self.log_values(step, &values)?;
        let line = values
            .iter()
            .filter(|(k, _)| k.starts_with("loss/") || k == "perf/img_per_s")
            .map(|(k, v)| format!("{} {}", k.trim_start_matches("loss/").trim_start_matches("perf/"), fmt_value(*v)))
            .collect::<Vec<_>>()
            .join("  ");
        self.last_scalars = values.into_iter().collect();
        Ok(line)
    }

    /// The architecture's own grid when it draws one; otherwise the fixed-z grid from the EMA
    /// generator (or G without EMA), in eval mode.
    pub fn sample_grid(&mut self) -> Result<GridImage, TrainError> {
        let nrow_default = (self.exp.log.samples as f64).sqrt().ceil() as i64;
        let (shown, shown_b) = self.shown_images();
        let mut host = GridHost {
            architecture: &self.arch_name,
            ema: self.ema.as_mut().map(|e| &mut e.handle),
            nets: &mut self.nets,
            fixed_z: &self.fixed_z,
            fixed_y: self.fixed_y.as_ref(),
            images: &shown,
            labels: self.labels.as_ref(),
            images_b: shown_b.as_ref(),
            samples: self.exp.log.samples,
            num_classes: self.num_classes,
        };
        let custom = self.arch.visualize(&mut host).map_err(|e| {
            TrainError::Setup(format!("architecture `{}` failed to draw its sample grid: {e}", self.arch_name))
        })?;
        if let Some((images, nrow)) = custom {
            return Ok(track::grid(&images, nrow.max(1), 2)?);
        }
        // The grid shows the generator as the evaluations sample it: with standing statistics
        // when `eval.standing_stats` asks for them (an architecture's own grid, above, keeps the
        // training statistics: its reconstructions are not prior samples).
        let handle = sampling_generator(&mut self.ema, &mut self.nets);
        let standing = standing_stats::standing(
            handle,
            self.exp.eval.standing_stats,
            self.exp.eval.batch_size,
            self.exp.seed,
            self.num_classes,
            self.device,
            snapshot::latents(&self.arch, self.z_dim, self.device),
        )
        .map_err(|m| TrainError::Setup(format!("eval.standing_stats: {m}")))?;
        let images = tch::no_grad(|| snapshot::images_of(handle)(&self.fixed_z, self.fixed_y.as_ref()))
            .map_err(|m| TrainError::Setup(format!("sampling from the generator failed: {m}")))?;
        drop(standing);
        Ok(track::grid(&images, nrow_default, 2)?)
    }

    /// Sends `values` at `step` to every tracker: `metrics.jsonl`, TensorBoard, MLflow.
    pub(super) fn log_values(&mut self, step: u64, values: &[(String, f64)]) -> Result<(), TrainError> {
        self.metrics.scalars(step, values)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.scalars(step, values)?;
        }
        if let Some(m) = self.mlflow.as_mut() {
            m.scalars(step, values)?;
        }
        Ok(())
    }

    /// For a 2-D toy mixture: a scatter of 2,000 generated points (always the same latents)
    /// over the modes, and the modes they cover (`toy/modes`) and their share within 3σ of a
    /// mode (`toy/high_quality`), logged at `step`.
    fn toy_samples(&mut self, step: u64) -> Result<GridImage, TrainError> {
        let mixture = self.toy.clone().expect("called for toy data only");
        seed_torch(key(self.exp.seed, Stream::FixedZ, &[1]));
        let n = 2000;
        let z = snapshot::latents(&self.arch, self.z_dim, self.device)(n).map_err(TrainError::Setup)?;
        let handle = sampling_generator(&mut self.ema, &mut self.nets);
        let points = tch::no_grad(|| snapshot::images_of(handle)(&z, None))
            .map_err(|m| TrainError::Setup(format!("sampling from the generator failed: {m}")))?;
        let c = mixture.coverage(&points, 0.2);
        let values = vec![("toy/modes".to_string(), c.modes as f64), ("toy/high_quality".to_string(), c.high_quality)];
        self.log_values(step, &values)?;
        let flat: Vec<f64> =
            Vec::try_from(&points.reshape([-1]).to_kind(Kind::Double).to_device(Device::Cpu)).unwrap_or_default();
        let xy: Vec<[f64; 2]> = flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        Ok(track::scatter(&xy, &mixture.centres, 3.0 * mixture.std, 480)?)
    }

    pub(super) fn write_samples(&mut self, step: u64) -> Result<PathBuf, TrainError> {
        let grid = if self.toy.is_some() { self.toy_samples(step)? } else { self.sample_grid()? };
        let path = self.run.samples().join(format!("step_{step:06}.png"));
        grid.save_png(&path)?;
        if let Some(tb) = self.tensorboard.as_mut() {
            tb.image(step, "samples", &grid)?;
        }
        Ok(path)
    }

    /// Stops the run if a loss was non-finite since it (re)started, naming the first one.
    pub(super) fn stop_if_nonfinite(&self) -> Result<(), TrainError> {
        let Some(bad) = self.nonfinite.check() else { return Ok(()) };
        let value = if bad.value.is_nan() { "NaN".to_string() } else { bad.value.to_string() };
        Err(self.step_error(
            bad.step,
            format!(
                "{} is {value}; the run stopped at its next check (step {}) and wrote no checkpoint after it. Lower \
                 the learning rate, check the data range, or enable a gradient penalty.",
                bad.loss, self.step
            ),
        ))
    }

    /// [`run_eval`](Self::run_eval), with a libtorch failure (an evaluation batch that does not
    /// fit) reported against `eval.batch_size`.
    pub(super) fn guarded_eval(&mut self, step: u64) -> Result<EvalResult, TrainError> {
        let batch = self.exp.eval.batch_size;
        crate::failure::catch(|| self.run_eval(step)).map_err(|failure| {
            self.step_error(step, failure.explain(&format!("evaluation in batches of {batch}"), "eval.batch_size"))
        })?
    }

    /// Evaluates the EMA generator (or G without EMA) with every configured metric, logs the
    /// values as `eval/<name>`, and keeps `checkpoints/best.safetensors` by the primary metric.
    pub fn run_eval(&mut self, step: u64) -> Result<EvalResult, TrainError> {
        let (shown, shown_b) = self.shown_images();
        let Some(evaluator) = self.evaluator.as_mut() else {
            return Err(TrainError::Setup(
                "no metrics configured: set `eval.metrics`, e.g. `--set eval.metrics=[\"fid\"]`".into(),
            ));
        };
        let handle = sampling_generator(&mut self.ema, &mut self.nets);
        let mut result = standing_stats::for_evaluation(
            handle,
            &self.exp.eval,
            self.exp.seed,
            self.num_classes,
            self.device,
            snapshot::latents(&self.arch, self.z_dim, self.device),
        )
        .and_then(|standing| {
            let latent = snapshot::latents(&self.arch, self.z_dim, self.device);
            let result = evaluator.evaluate(step, self.exp.seed, self.num_classes, latent, snapshot::images_of(handle));
            // The running statistics go back before anything else sees the generator.
            drop(standing);
            result
        });
        if let Ok(r) = result.as_mut() {
            // The architecture's own measures (a VAE's test ELBO) join the metrics' values.
            let (reference, reference_labels) = evaluator.reference();
            let mut host = ModelEvalHost {
                architecture: &self.arch_name,
                ema: self.ema.as_mut().map(|e| &mut e.handle),
                nets: EvalNetworks::Trainer(&mut self.nets),
                reference,
                reference_labels,
                train: &shown,
                train_labels: self.labels.as_ref(),
                reference_b: evaluator.reference_b(),
                train_b: shown_b.as_ref(),
                device: self.device,
                num_classes: self.num_classes,
            };
            if let Err(m) = measure_architecture(&self.arch, &mut host, self.exp.seed, r) {
                result = Err(m);
            }
        }
        if let Ok(r) = result.as_mut() {
            let (reference, reference_labels) = evaluator.reference();
            let values = overfit::measure(
                &mut self.nets,
                &self.arch_name,
                self.exp.eval.overfit_images,
                (&shown, self.labels.as_ref()),
                (reference, reference_labels),
                self.num_classes > 0,
                self.exp.eval.batch_size,
                self.device,
            );
            for (name, value, higher) in values {
                r.higher_is_better.insert(name.clone(), higher);
                r.values.insert(name, value);
            }
        }
        let primary = result.as_ref().ok().and_then(|r| evaluator.primary(r)).map(|(n, v, h)| (n.to_string(), v, h));
        let result = result.map_err(|m| self.step_error(step, format!("evaluation failed: {m}")))?;
        let mut values: Vec<(String, f64)> = result.values.iter().map(|(k, v)| (format!("eval/{k}"), *v)).collect();
        if let Some((name, value, higher)) = primary {
            let better = match &self.best {
                None => true,
                Some((_, best, _)) => {
                    if higher {
                        value > *best
                    } else {
                        value < *best
                    }
                }
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
        self.log_values(step, &values)?;
        self.last_eval = Some(result.clone());
        Ok(result)
    }

    /// Writes `checkpoints/last.safetensors` atomically, keeping the one it replaces as
    /// `previous.safetensors` (a hard link made before the new file is renamed in, so there is
    /// always a `last`, and a `last` damaged later still has a fallback).
    pub fn save_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        // Never from a poisoned state: a non-finite loss since the last check stops the run here.
        self.stop_if_nonfinite()?;
        let path = self.run.last_checkpoint();
        let c = self.checkpoint_tensors()?;
        if path.exists() {
            let previous = self.run.previous_checkpoint();
            let _ = std::fs::remove_file(&previous);
            if std::fs::hard_link(&path, &previous).is_err() {
                // A file system without hard links: a copy does the same, only slower.
                let _ = std::fs::copy(&path, &previous);
            }
        }
        c.save(&path)?;
        self.last_checkpoint_step = Some(self.step);
        Ok(path)
    }

    pub(super) fn finish(&mut self, status: RunStatus) -> Result<Summary, TrainError> {
        let mut samples = None;
        let mut checkpoint = None;
        if status == RunStatus::Finished && self.evaluator.is_some() {
            self.guarded_eval(self.step)?;
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
        // Real images this process drew, over the time it ran.
        let images = (self.batches - self.start_batches) as f64 * self.exp.train.batch_size as f64;
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
            host_reads_in_steps: self.host_reads_in_steps,
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

/// The generator samples come from: the EMA when the run keeps one, else the trained one.
/// A function of the two fields, so callers can hold other fields of the trainer meanwhile.
fn sampling_generator<'a>(ema: &'a mut Option<Ema>, nets: &'a mut [Net]) -> &'a mut NetworkHandle {
    match ema {
        Some(e) => &mut e.handle,
        None => &mut nets.iter_mut().find(|n| n.name == "generator").expect("checked at start").handle,
    }
}

pub(super) fn fmt_value(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
