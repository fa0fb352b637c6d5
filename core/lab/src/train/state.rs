//! The training state and its one save/load protocol. Every piece implements [`Stateful`];
//! the checkpoint's layout is these implementations and nothing else:
//! - `net.<network>.<tensor>`: every parameter and buffer;
//! - `optim.<network>.<slot>.<parameter>` and `optim.<network>.t`: optimizer state (Adam's
//!   slots are `m` and `v`, as in checkpoints written before version 2, which therefore load);
//! - `ema.generator.<tensor>`;
//! - metadata `loss.state`, `augment.state`: the plugins' own state;
//! - metadata `amp.scale`, `amp.growth_tracker`, `amp.skipped`: fp16's loss scale;
//! - metadata `step`, `batches`, `best.*`, `seed`, `format`.
use std::path::Path;

use lab_plugin_api::host::{Augment, Loss};

use super::checkpoint::{Checkpoint, CheckpointError};
use super::{Ema, Net, TrainError, Trainer};
use crate::track::MetricsLog;

/// Checkpoints written by this version say so; those without the key predate it.
pub const FORMAT: &str = "2";

/// A piece of training state.
pub trait Stateful {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError>;
    fn load(&mut self, c: &Checkpoint, path: &Path) -> Result<(), TrainError>;
}

impl Stateful for Net {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        for (name, t, _) in &self.tensors {
            c.tensors.insert(format!("net.{}.{name}", self.name), t.shallow_clone());
        }
        for (slot, buffers) in &self.opt.slots {
            for (param, b) in self.trainable_names().zip(buffers) {
                c.tensors.insert(format!("optim.{}.{slot}.{param}", self.name), b.shallow_clone());
            }
        }
        c.metadata.insert(format!("optim.{}.t", self.name), self.opt.t.to_string());
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        for (name, t, _) in &self.tensors {
            c.restore_into(path, &format!("net.{}.{name}", self.name), t)?;
        }
        let names: Vec<String> = self.trainable_names().map(str::to_string).collect();
        for (slot, buffers) in &self.opt.slots {
            for (param, b) in names.iter().zip(buffers) {
                c.restore_into(path, &format!("optim.{}.{slot}.{param}", self.name), b).map_err(|e| match e {
                    CheckpointError::MissingTensor { .. } => missing(
                        path,
                        &format!("`{slot}` state for the optimizer of network `{}`", self.name),
                        "it was written with another optimizer kind for this network",
                    ),
                    other => other.into(),
                })?;
            }
        }
        self.opt.t = c.metadata.get(&format!("optim.{}.t", self.name)).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(())
    }
}

impl Stateful for Ema {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        for (name, t, _) in &self.tensors {
            c.tensors.insert(format!("ema.generator.{name}"), t.shallow_clone());
        }
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        for (name, t, _) in &self.tensors {
            c.restore_into(path, &format!("ema.generator.{name}"), t)?;
        }
        Ok(())
    }
}

/// fp16's loss scale: metadata `amp.scale` (exact: Rust's shortest round-trip form),
/// `amp.growth_tracker` and `amp.skipped`. A checkpoint without them (written without fp16)
/// leaves the scaler as configured.
impl Stateful for super::amp::Scaler {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        c.metadata.insert("amp.scale".into(), format!("{:?}", self.scale));
        c.metadata.insert("amp.growth_tracker".into(), self.growth_tracker.to_string());
        c.metadata.insert("amp.skipped".into(), self.skipped.to_string());
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint, _path: &Path) -> Result<(), TrainError> {
        if let Some(scale) = c.metadata.get("amp.scale").and_then(|s| s.parse().ok()) {
            self.scale = scale;
            self.growth_tracker = c.metadata.get("amp.growth_tracker").and_then(|s| s.parse().ok()).unwrap_or(0);
            self.skipped = c.metadata.get("amp.skipped").and_then(|s| s.parse().ok()).unwrap_or(0);
        }
        Ok(())
    }
}

/// A plugin's own state, saved as text under `<component>.state`.
pub struct PluginState<'a, P> {
    /// `loss` or `augment`.
    pub component: &'static str,
    pub name: &'a str,
    pub plugin: &'a mut P,
}

/// The two plugin kinds that keep state.
pub trait HasState {
    fn get(&self) -> lab_plugin_api::Result<String>;
    fn set(&mut self, state: &str) -> lab_plugin_api::Result<()>;
}

impl HasState for Loss {
    fn get(&self) -> lab_plugin_api::Result<String> {
        self.state()
    }
    fn set(&mut self, state: &str) -> lab_plugin_api::Result<()> {
        self.load_state(state)
    }
}

impl HasState for Augment {
    fn get(&self) -> lab_plugin_api::Result<String> {
        self.state()
    }
    fn set(&mut self, state: &str) -> lab_plugin_api::Result<()> {
        self.load_state(state)
    }
}

impl<P: HasState> Stateful for PluginState<'_, P> {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        let state = self.plugin.get().map_err(|e| {
            TrainError::Setup(format!("{} `{}`: cannot save its state: {e}", self.component, self.name))
        })?;
        if !state.is_empty() {
            c.metadata.insert(format!("{}.state", self.component), state);
        }
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint, path: &Path) -> Result<(), TrainError> {
        let key = format!("{}.state", self.component);
        match c.metadata.get(&key) {
            Some(state) => self.plugin.set(state).map_err(|e| {
                TrainError::Setup(format!(
                    "{} `{}`: cannot restore its state from {}: {e}",
                    self.component,
                    self.name,
                    path.display()
                ))
            }),
            None => {
                // Stateless now and then: nothing to do. Stateful now but not then: refuse
                // rather than resume from a silently reset state.
                let now = self.plugin.get().unwrap_or_default();
                if now.is_empty() {
                    Ok(())
                } else {
                    Err(missing(
                        path,
                        &format!("state for {} `{}`", self.component, self.name),
                        "it was written before that plugin kept state",
                    ))
                }
            }
        }
    }
}

fn missing(path: &Path, what: &str, why: &str) -> TrainError {
    TrainError::Setup(format!(
        "{}: the checkpoint has no {what} ({why}), which this run needs to resume exactly; resume with the run's own config.toml and plugins, or start a new run",
        path.display()
    ))
}

/// The trainer's own counters and records.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// Generator steps done.
    pub step: u64,
    /// Real batches drawn so far (the data order's position).
    pub batches: u64,
    /// (metric, value, step) of the best evaluation so far.
    pub best: Option<(String, f64, u64)>,
    pub seed: u64,
    /// `train.d_steps`, to derive `batches` for checkpoints written before it was recorded.
    pub d_steps: u64,
}

impl Stateful for Counters {
    fn save(&self, c: &mut Checkpoint) -> Result<(), TrainError> {
        c.metadata.insert("format".into(), FORMAT.into());
        c.metadata.insert("step".into(), self.step.to_string());
        c.metadata.insert("batches".into(), self.batches.to_string());
        c.metadata.insert("seed".into(), self.seed.to_string());
        c.metadata.insert("lab_version".into(), env!("CARGO_PKG_VERSION").into());
        c.metadata.insert("rng".into(), "keyed by (seed, stream, step); see lab::seeds".into());
        if let Some((name, value, step)) = &self.best {
            c.metadata.insert("best.metric".into(), name.clone());
            c.metadata.insert("best.value".into(), format!("{value:?}"));
            c.metadata.insert("best.step".into(), step.to_string());
        }
        Ok(())
    }

    fn load(&mut self, c: &Checkpoint, _path: &Path) -> Result<(), TrainError> {
        self.step = c.metadata.get("step").and_then(|s| s.parse().ok()).unwrap_or(0);
        // Before version 2 only D phases drew batches, d_steps a step.
        self.batches = c.metadata.get("batches").and_then(|s| s.parse().ok()).unwrap_or(self.step * self.d_steps);
        self.best = match (
            c.metadata.get("best.metric"),
            c.metadata.get("best.value").and_then(|v| v.parse().ok()),
            c.metadata.get("best.step").and_then(|v| v.parse().ok()),
        ) {
            (Some(name), Some(value), Some(step)) => Some((name.clone(), value, step)),
            _ => None,
        };
        Ok(())
    }
}

/// The trainer's side of the protocol: every piece, in one place.
impl Trainer {
    pub(super) fn counters(&self) -> Counters {
        Counters {
            step: self.step,
            batches: self.batches,
            best: self.best.clone(),
            seed: self.exp.seed,
            d_steps: self.exp.train.d_steps as u64,
        }
    }

    /// The whole training state, through the one protocol ([`state::Stateful`]).
    pub(super) fn checkpoint_tensors(&mut self) -> Result<Checkpoint, TrainError> {
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
        if let Some(scaler) = &self.scaler {
            scaler.save(&mut c)?;
        }
        self.counters().save(&mut c)?;
        Ok(c)
    }

    /// Restores `last`, or `previous` when `last` cannot be read (truncated, corrupt), saying so.
    /// `last` is read once.
    pub(super) fn restore_latest(&mut self) -> Result<(), TrainError> {
        let (last, previous) = (self.run.last_checkpoint(), self.run.previous_checkpoint());
        // A write cut short by a kill leaves its temporary file; it is never read, only in the way.
        if let Ok(entries) = std::fs::read_dir(self.run.path.join("checkpoints")) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        if !last.exists() && !previous.exists() {
            // Stopped before its first checkpoint (killed during start-up or the first steps):
            // the freshly built state *is* step 0, so the run starts over in its own folder and
            // the rows it had logged go.
            eprintln!(
                "warning: {} has no checkpoint yet (the run stopped before its first one); starting it again from step 0",
                self.run.path.display()
            );
            self.metrics = MetricsLog::resume(&self.run.metrics(), 0)?;
            return Ok(());
        }
        if !last.exists() {
            return self.restore(&previous);
        }
        match Checkpoint::load(&last) {
            Ok(c) => self.restore_from(&last, c),
            Err(e) if previous.exists() => {
                let why = e.to_string();
                self.restore(&previous).map_err(|e| {
                    TrainError::Setup(format!(
                        "{why}; and the fallback {} is unreadable too: {e}. Start the run again without --resume.",
                        previous.display()
                    ))
                })?;
                eprintln!("warning: {why}; resumed from {} (step {}) instead", previous.display(), self.step);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn restore(&mut self, path: &std::path::Path) -> Result<(), TrainError> {
        self.restore_from(path, Checkpoint::load(path)?)
    }

    fn restore_from(&mut self, path: &std::path::Path, c: Checkpoint) -> Result<(), TrainError> {
        for net in &mut self.nets {
            net.load(&c, path)?;
        }
        if let Some(ema) = self.ema.as_mut() {
            ema.load(&c, path)?;
        }
        PluginState { component: "loss", name: &self.exp.loss.name, plugin: &mut self.loss }.load(&c, path)?;
        if let Some(a) = self.augment.as_mut() {
            PluginState { component: "augment", name: &self.exp.augment.name, plugin: a }.load(&c, path)?;
        }
        if let Some(scaler) = self.scaler.as_mut() {
            scaler.load(&c, path)?;
        }
        let mut counters = self.counters();
        counters.load(&c, path)?;
        self.step = counters.step;
        self.batches = counters.batches;
        self.best = counters.best;
        self.last_checkpoint_step = Some(self.step);
        // Whatever was logged after the checkpoint is about to be logged again.
        self.metrics = MetricsLog::resume(&self.run.metrics(), self.step)?;
        Ok(())
    }
}
