//! One generator step: the plan's phases in order, each run as often as it repeats, each
//! back-propagating its loss groups into their own networks, then the EMA.
use super::*;
use lab_plugin_api::host::Group;

impl Trainer {
    pub(super) fn step_error(&self, step: u64, message: String) -> TrainError {
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

    /// "a batch of 64 images at 1×28×28", for errors about the batch size.
    pub(super) fn batch_description(&self) -> String {
        let dims: Vec<String> = self.images.size().iter().skip(1).map(|d| d.to_string()).collect();
        format!("a batch of {} images at {}", self.exp.train.batch_size, dims.join("×"))
    }

    /// Real batch `b`: images as floats in [-1, 1] (a toy mixture's points as they are), their
    /// labels, and the second domain's batch for two-domain data: the same indices and flips
    /// when paired, its own draw and flips when unpaired.
    pub(super) fn real_batch(&mut self, b: u64) -> RealBatch {
        let idx = self.sampler.batch(b);
        let idx = Tensor::from_slice(&idx).to_device(self.device);
        let n = idx.size()[0];
        let flips = self.exp.data.hflip.then(|| self.flip_mask(b, 0, n));
        let crops = self.crop.map(|side| self.crop_offsets(b, 0, n, side));
        let x = prepare(&crop(&self.images.index_select(0, &idx), crops.as_ref()), flips.as_ref());
        let y = self.labels.as_ref().map(|l| l.index_select(0, &idx));
        // The unpaired second domain draws its own batch, in its own order.
        let own_b = match self.domain_b.as_mut() {
            Some(d) if !d.paired => Some(d.sampler.batch(b)),
            _ => None,
        };
        let x_b = match self.domain_b.as_ref() {
            // A pair is cropped and flipped alike, so it stays aligned pixel for pixel.
            Some(d) if d.paired => {
                Some(prepare(&crop(&d.images.index_select(0, &idx), crops.as_ref()), flips.as_ref()))
            }
            Some(d) => {
                let own = Tensor::from_slice(&own_b.expect("drawn above")).to_device(self.device);
                let picked = d.images.index_select(0, &own);
                let n = own.size()[0];
                let flips = self.exp.data.hflip.then(|| self.flip_mask(b, 1, n));
                let crops = self.crop.map(|side| self.crop_offsets(b, 1, n, side));
                Some(prepare(&crop(&picked, crops.as_ref()), flips.as_ref()))
            }
            None => None,
        };
        if self.exp.train.channels_last {
            // One copy per batch, so D's first convolution runs its channels-last kernel.
            return RealBatch { x: layout::channels_last(&x), y, x_b: x_b.as_ref().map(layout::channels_last) };
        }
        RealBatch { x, y, x_b }
    }

    /// Where each of the `n` images of batch `b` (of `domain` 0 or 1) is cropped: its top-left
    /// corner, uniform over the positions a `side` × `side` window fits, and the side.
    fn crop_offsets(&self, b: u64, domain: u64, n: i64, side: i64) -> Crops {
        let dims = self.images.size();
        let (room_y, room_x) = ((dims[2] - side + 1) as u64, (dims[3] - side + 1) as u64);
        let mut rng = SplitMix64::new(key(self.exp.seed, Stream::Crop, &[b, domain]));
        let corners = (0..n).map(|_| ((rng.next_u64() % room_y) as i64, (rng.next_u64() % room_x) as i64)).collect();
        Crops { side, corners }
    }

    /// The training images as pictures and evaluation see them, with the second domain's:
    /// their central windows when batches are cropped at random (views, no copies).
    pub(super) fn shown_images(&self) -> (Tensor, Option<Tensor>) {
        let show = |t: &Tensor| match self.crop {
            Some(side) => crate::data::center_crop(t, side),
            None => t.shallow_clone(),
        };
        (show(&self.images), self.domain_b.as_ref().map(|d| show(&d.images)))
    }

    /// Which samples of batch `b` (of `domain` 0 or 1) are flipped horizontally.
    fn flip_mask(&self, b: u64, domain: u64, n: i64) -> Tensor {
        // Domain 0 keeps version 1's key, so its flips are unchanged.
        let k = if domain == 0 {
            key(self.exp.seed, Stream::Flip, &[b])
        } else {
            key(self.exp.seed, Stream::Flip, &[b, domain])
        };
        let mut rng = SplitMix64::new(k);
        let mask: Vec<bool> = (0..n).map(|_| rng.next_u64() >> 63 == 1).collect();
        Tensor::from_slice(&mask).to_device(self.device).view([-1, 1, 1, 1])
    }

    pub(super) fn accumulate(&mut self, name: &str, value: &Tensor) {
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
    pub(super) fn run_phase(&mut self, p: usize, step: u64, repeat: u64, batch: &RealBatch) -> Result<(), TrainError> {
        let (real, labels, real_b) = (&batch.x, batch.y.as_ref(), batch.x_b.as_ref());
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
        // The phase's forward passes, all of them inside the loss plugin's call, run under
        // autocast when `train.amp` asks; back-propagation and the steps below do not.
        let autocast = amp::Autocast::enter(self.exp.train.amp, self.device)
            .map_err(|e| self.step_error(step, format!("train.amp: {e}")))?;
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
                real_b,
                nets: &mut self.nets,
                augment: self.augment.as_mut(),
                augment_name: &self.exp.augment.name,
                augment_reals_only: self.exp.augment.reals_only(),
                augment_calls: 0,
                logs: &mut logs,
                d_real: None,
                d_fake: None,
            };
            let groups = self.loss.loss(name, &mut host);
            drop(autocast);
            (groups, host.d_real, host.d_fake)
        };
        let loss_name = self.exp.loss.name.clone();
        let groups = groups.map_err(|e| {
            self.step_error(step, format!("loss `{loss_name}` ({} phase) failed: {e}", phase_label(name)))
        })?;
        let groups = self.check_groups(step, &phase, groups)?;
        self.apply_groups(step, name, &groups)?;
        // D(x) and D(G(z)) statistics, and adaptive augmentation's feedback, come from the
        // discriminator phase only.
        if let (Some(r), 0) = (&d_real, phase.code) {
            self.accumulate("d/real_logit", r);
            self.accumulate("d/real_acc", &r.gt(0.0).to_kind(Kind::Double));
            if let Some(a) = self.augment.as_mut() {
                a.feedback(r).map_err(|m| TrainError::Step {
                    step,
                    message: format!("augmentation `{}` feedback failed: {m}", self.exp.augment.name),
                    checkpoint_note: String::new(),
                })?;
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

    /// Back-propagates each group's loss into its own networks' parameters, then steps them.
    /// A non-finite loss is noted on the device (no host sync); the next logging, sample,
    /// evaluation or checkpoint step reads the note and stops the run naming the first one.
    fn apply_groups(&mut self, step: u64, name: &str, groups: &[Group]) -> Result<(), TrainError> {
        let loss_name = self.exp.loss.name.clone();
        // Every group's gradients first, then every step: a step changes parameters in place,
        // which later groups' backward passes may still need (VAE-GAN's groups share a graph).
        let last = groups.iter().rposition(|g| g.1.is_some());
        let mut updates: Vec<(usize, Vec<Tensor>)> = Vec::new();
        // fp16: whether any gradient of the phase overflowed, on the device.
        let mut overflow: Option<Tensor> = None;
        for (i, (networks, loss)) in groups.iter().enumerate() {
            let Some(loss) = loss else { continue };
            let key_name = loss_key(name, networks, groups.len());
            self.nonfinite.watch(step, &format!("the {} loss (`{loss_name}`)", phase_label(name)), loss);
            let targets: Vec<usize> =
                self.nets.iter().enumerate().filter(|(_, n)| networks.contains(&n.name)).map(|(k, _)| k).collect();
            let params: Vec<Tensor> =
                targets.iter().flat_map(|&k| self.nets[k].opt.params.iter().map(Tensor::shallow_clone)).collect();
            // fp16: back-propagate the scaled loss, then bring the gradients back to scale.
            let scaled = self.scaler.as_ref().map(|s| s.scaled(loss));
            // Later groups may share this group's graph: keep it until the last one.
            let mut grads = Tensor::f_run_backward(&[scaled.as_ref().unwrap_or(loss)], &params, Some(i) != last, false)
                .map_err(|e| self.step_error(step, format!("back-propagating the {key_name} loss failed: {e}")))?;
            if let Some(scaler) = &self.scaler {
                if let Some(bad) = scaler.unscale(&mut grads) {
                    overflow = Some(match overflow.take() {
                        Some(o) => o.logical_or(&bad),
                        None => bad,
                    });
                }
            }
            let mut grads = grads.into_iter();
            for &k in &targets {
                let n = self.nets[k].opt.params.len();
                updates.push((k, grads.by_ref().take(n).collect()));
            }
            self.accumulate(&key_name, loss);
        }
        if let Some(scaler) = self.scaler.as_mut() {
            // The one host read fp16 costs per phase: whether to skip it.
            let overflowed = overflow.is_some_and(|o| nonfinite::read_f64(&o.to_kind(Kind::Double)) != 0.0);
            scaler.update(overflowed);
            let (scale, skipped) = (scaler.scale, if overflowed { 1.0 } else { 0.0 });
            self.accumulate("amp/scale", &Tensor::from(scale));
            self.accumulate("amp/skipped", &Tensor::from(skipped));
            if overflowed {
                // As GradScaler does: no step at all, so Adam's step count stays where it was.
                return Ok(());
            }
        }
        for (k, grads) in updates {
            self.nets[k].opt.step(&grads, step);
        }
        Ok(())
    }

    /// Resolves each group's networks (none named: every network the phase steps) and refuses
    /// a group naming a network the phase does not step, a network left without a loss, and a
    /// loss that is not a scalar.
    pub(super) fn check_groups(
        &self,
        step: u64,
        phase: &plan::Phase,
        groups: Vec<Group>,
    ) -> Result<Vec<Group>, TrainError> {
        let loss = &self.exp.loss.name;
        let mut covered: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for (networks, value) in groups {
            let networks = if networks.is_empty() { phase.networks.clone() } else { networks };
            for n in &networks {
                if !phase.networks.contains(n) {
                    return Err(self.step_error(
                        step,
                        format!(
                            "loss `{loss}` returned a loss for network `{n}` in phase `{}`, which steps only: {}",
                            phase.plan.name,
                            phase.networks.join(", ")
                        ),
                    ));
                }
            }
            if let Some(v) = &value {
                if v.numel() != 1 {
                    return Err(self.step_error(
                        step,
                        format!(
                            "loss `{loss}` returned a {} loss of shape {:?}; expected a scalar",
                            phase_label(&phase.plan.name),
                            v.size()
                        ),
                    ));
                }
            }
            out.push((networks, value));
        }
        for (networks, _) in &out {
            for n in networks {
                if covered.contains(&n.as_str()) {
                    return Err(self.step_error(
                        step,
                        format!(
                        "loss `{loss}` returned two losses for network `{n}` in phase `{}`; each network minimises one",
                        phase.plan.name
                    ),
                    ));
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
    pub(super) fn train_step(&mut self, step: u64) -> Result<(), TrainError> {
        let d_steps = self.exp.train.d_steps;
        let mut last: Option<RealBatch> = None;
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
                let batch = match (&last, reuse) {
                    (Some(batch), true) => batch.shallow_clone(),
                    _ => {
                        let b = self.batches;
                        self.batches += 1;
                        // Every real batch drawn counts once (the default plan's G phase reuses
                        // D's, so this is D's images as in version 1; a VAE's G phase draws its own).
                        images += self.exp.train.batch_size as u64;
                        self.real_batch(b)
                    }
                };
                self.run_phase(p, step, r, &batch)?;
                last = Some(batch);
            }
        }
        self.update_ema(step);
        self.interval_images += images;
        Ok(())
    }

    pub(super) fn update_ema(&mut self, step: u64) {
        let Some(ema) = &self.ema else { return };
        let g = self.nets.iter().find(|n| n.name == "generator").expect("checked at start");
        let copy = step < self.exp.ema.start;
        let w = 1.0 - self.exp.ema.beta(step, self.exp.train.batch_size);
        let fused = ema.flat.as_ref().zip(g.opt.flat_params());
        tch::no_grad(|| {
            if let Some((e, t)) = fused {
                // One kernel for every trainable tensor; the buffers (BN statistics) below.
                let mut e = e.shallow_clone();
                if copy {
                    e.copy_(t);
                } else {
                    let _ = e.lerp_(t, w);
                }
            }
            for ((_, e, trainable), (_, t, _)) in ema.tensors.iter().zip(&g.tensors) {
                let mut e = e.shallow_clone();
                if *trainable && fused.is_some() {
                    continue;
                }
                if copy || !trainable || !t.is_floating_point() {
                    e.copy_(t);
                } else {
                    let _ = e.lerp_(t, w);
                }
            }
        });
    }
}

/// `discriminator` / `generator` for the default phases, the phase's name otherwise.
pub(super) fn phase_label(phase: &str) -> String {
    match phase {
        lab_plugin_api::PHASE_D => "discriminator".into(),
        lab_plugin_api::PHASE_G => "generator".into(),
        other => format!("`{other}`"),
    }
}

/// `loss/d` and `loss/g` for the default phases' single group (as in version 1);
/// `loss/<phase>` or `loss/<phase>/<network>` otherwise.
pub(super) fn loss_key(phase: &str, networks: &[String], groups: usize) -> String {
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

/// One real batch: images, labels, and the second domain's images for two-domain data.
pub(super) struct RealBatch {
    pub x: Tensor,
    pub y: Option<Tensor>,
    pub x_b: Option<Tensor>,
}

impl RealBatch {
    fn shallow_clone(&self) -> Self {
        let copy = |t: &Option<Tensor>| t.as_ref().map(Tensor::shallow_clone);
        Self { x: self.x.shallow_clone(), y: copy(&self.y), x_b: copy(&self.x_b) }
    }
}

/// Each training image's random crop: the window's side and every image's top-left corner.
struct Crops {
    side: i64,
    corners: Vec<(i64, i64)>,
}

/// The crops of `picked` (uint8 NCHW) as one batch; `picked` itself without crops.
fn crop(picked: &Tensor, crops: Option<&Crops>) -> Tensor {
    let Some(crops) = crops else { return picked.shallow_clone() };
    let windows: Vec<Tensor> = crops
        .corners
        .iter()
        .enumerate()
        .map(|(i, &(y, x))| picked.get(i as i64).narrow(1, y, crops.side).narrow(2, x, crops.side))
        .collect();
    Tensor::stack(&windows, 0)
}

/// Images (uint8) as floats in [-1, 1], flipped where `flips` says; a toy mixture's points
/// (floats) as they are.
fn prepare(picked: &Tensor, flips: Option<&Tensor>) -> Tensor {
    let x = crate::data::to_unit_range(picked);
    match flips {
        Some(mask) => x.flip([3]).where_self(mask, &x),
        None => x,
    }
}
