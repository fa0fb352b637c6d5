//! A generator snapshot: what `lab eval` needs from a finished run (its config, its plugins,
//! the sampling generator's weights from a checkpoint), loaded without a trainer and without
//! writing anything to the run folder.
use std::path::Path;

use lab_plugin_api::host::{Architecture, NetworkHandle};
use lab_plugin_api::{BuildEnv, PluginKind};
use tch::{Device, Kind, Tensor};

use super::build::{plugin_failure, prepare_device};
use super::host::{measure_architecture, EvalNetworks, ModelEvalHost};
use super::{checkpoint::Checkpoint, standing_stats, TrainError};
use crate::config::Experiment;
use crate::data;
use crate::metrics::{EvalResult, Evaluator};
use crate::plugins::Registry;

/// The generator the run samples from (the EMA when it kept one), ready to evaluate.
pub struct GeneratorSnapshot {
    /// Puts the running statistics back after [`use_standing_stats`](Self::use_standing_stats).
    standing: Option<standing_stats::Restore>,
    // Dropped before the architecture that built them.
    generator: NetworkHandle,
    /// Every network of the checkpoint (not the EMA), built when the architecture measures
    /// itself (an encoder's probes need the encoder).
    networks: Vec<(String, NetworkHandle)>,
    _arch: Architecture,
    architecture: String,
    checkpoint: std::path::PathBuf,
    /// The run's training images and labels (the `train` split of an architecture's measures).
    train: data::Dataset,
    registry: Registry,
    env: BuildEnv,
    device: Device,
    z_dim: i64,
    num_classes: i64,
    /// The checkpoint's generator step.
    pub step: u64,
    /// Whether the weights are the EMA generator's.
    pub ema: bool,
}

impl GeneratorSnapshot {
    /// Loads `checkpoints/<which>.safetensors` of `run` for the resolved experiment `exp`.
    pub fn load(exp: &mut Experiment, run: &Path, which: &str) -> Result<Self, TrainError> {
        let device = prepare_device(exp)?;
        let path = run.join("checkpoints").join(format!("{which}.safetensors"));
        if !path.exists() {
            return Err(TrainError::Setup(format!(
                "{}: no such checkpoint; `last` and `best` are the ones a run keeps",
                path.display()
            )));
        }
        let registry = Registry::discover(&exp.plugins.paths)?;
        let dataset = data::load(&exp.data)?;
        // The architecture is built for the crop; evaluation sees the central windows.
        let env = BuildEnv::from_device(device, data::spec(&dataset));
        let dataset = dataset.centred();
        exp.model.config =
            registry.resolved_config(PluginKind::Architecture, &exp.model.architecture, &exp.model.config);
        let arch = registry.architecture(&exp.model.architecture, &exp.model.config, env)?;
        let info = arch.info().map_err(|e| plugin_failure(exp, e))?;
        let generator = arch.build("generator").map_err(|e| plugin_failure(exp, e))?;
        let c = Checkpoint::load(&path)?;
        let ema = c.tensors.keys().any(|k| k.starts_with("ema.generator."));
        let prefix = if ema { "ema.generator" } else { "net.generator" };
        for (name, t, _) in generator.tensors().map_err(|e| plugin_failure(exp, e))? {
            c.restore_into(&path, &format!("{prefix}.{name}"), &t)?;
        }
        let step = c.metadata.get("step").and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(Self {
            standing: None,
            generator,
            networks: Vec::new(),
            _arch: arch,
            architecture: exp.model.architecture.clone(),
            checkpoint: path,
            train: dataset,
            registry,
            env,
            device,
            z_dim: info.z_dim,
            num_classes: info.num_classes,
            step,
            ema,
        })
    }

    /// The device the generator runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Classes the generator is conditioned on; 0 when unconditional.
    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }

    /// `[channels, height, width]` of the images the run trained on.
    pub fn image_shape(&self) -> [i64; 3] {
        [self.env.data.channels, self.env.data.height, self.env.data.width]
    }

    /// `n` images in [-1, 1] for `labels` (int64 `[n]`, any device; required exactly when
    /// conditional), from latents drawn from libtorch's generator as the caller seeded it. With
    /// `truncation` T, every latent entry with |z| > T is redrawn until none is (the truncation
    /// trick), which needs the core's N(0, I) latents.
    pub fn generate(&mut self, n: i64, labels: Option<&Tensor>, truncation: Option<f64>) -> Result<Tensor, TrainError> {
        let own = self
            ._arch
            .sample_latent(n)
            .map_err(|e| TrainError::Setup(format!("the architecture's latent sampler failed: {e}")))?;
        let z = match (own, truncation) {
            (Some(_), Some(_)) => {
                return Err(TrainError::Setup(
                    "--truncation needs Gaussian latents, and this architecture draws its own; sample without it"
                        .into(),
                ))
            }
            (Some(z), None) => z,
            (None, truncation) => {
                let mut z = Tensor::randn([n, self.z_dim], (Kind::Float, self.device));
                if let Some(t) = truncation {
                    if !(t > 0.0 && t.is_finite()) {
                        return Err(TrainError::Setup(format!("--truncation must be a positive number, got {t}")));
                    }
                    loop {
                        let outside = z.abs().gt(t);
                        if outside.any().int64_value(&[]) == 0 {
                            break;
                        }
                        z = z.where_self(
                            &outside.logical_not(),
                            &Tensor::randn([n, self.z_dim], (Kind::Float, self.device)),
                        );
                    }
                }
                z
            }
        };
        let y = labels.map(|y| y.to_device(self.device));
        let x = tch::no_grad(|| images_of(&mut self.generator)(&z, y.as_ref()))
            .map_err(|m| TrainError::Setup(format!("the generator failed: {m}")))?;
        Ok(x)
    }

    /// From now on samples with standing batch-norm statistics: the mean of the statistics of
    /// `batches` batches of `batch_size` prior samples (see `train::standing_stats`), drawn from
    /// the stream `seed` keys. 0 goes back to the running statistics of the checkpoint.
    pub fn use_standing_stats(&mut self, batches: u64, batch_size: i64, seed: u64) -> Result<(), TrainError> {
        // The running statistics go back first: recalibration saves what it finds, and the
        // old guard, dropped after the new one is made, would overwrite its statistics.
        self.standing = None;
        self.standing = standing_stats::standing(
            &mut self.generator,
            batches,
            batch_size,
            seed,
            self.num_classes,
            self.device,
            latents(&self._arch, self.z_dim, self.device),
        )
        .map_err(|m| TrainError::Setup(format!("standing statistics: {m}")))?;
        Ok(())
    }

    /// The names of the values the architecture computes about itself (none for most).
    pub fn measures(&self) -> Result<Vec<String>, TrainError> {
        self._arch.measures().map_err(|e| TrainError::Setup(format!("architecture `{}`: {e}", self.architecture)))
    }

    /// Evaluates the snapshot with `exp`'s metrics and the architecture's own measures, exactly
    /// as training does at this step.
    pub fn evaluate(&mut self, exp: &Experiment) -> Result<EvalResult, TrainError> {
        let measures = self.measures()?;
        let mut evaluator = Evaluator::new(&exp.eval, &exp.data, &self.registry, self.env, self.device)?
            .with_measures(measures.clone());
        let standing = standing_stats::for_evaluation(
            &mut self.generator,
            &exp.eval,
            exp.seed,
            self.num_classes,
            self.device,
            latents(&self._arch, self.z_dim, self.device),
        )
        .map_err(TrainError::Setup)?;
        let latent = latents(&self._arch, self.z_dim, self.device);
        let mut result = evaluator
            .evaluate(self.step, exp.seed, self.num_classes, latent, images_of(&mut self.generator))
            .map_err(|m| TrainError::Setup(format!("evaluation failed: {m}")))?;
        drop(standing);
        if !measures.is_empty() {
            self.load_networks(exp)?;
            let (reference, reference_labels) = evaluator.reference();
            let reference_b = evaluator.reference_b();
            let mut host = ModelEvalHost {
                architecture: &self.architecture,
                ema: self.ema.then_some(&mut self.generator),
                nets: EvalNetworks::Loaded(&mut self.networks),
                reference,
                reference_labels,
                train: &self.train.images,
                train_labels: self.train.labels.as_ref(),
                reference_b,
                train_b: self.train.domain_b.as_ref().map(|b| &b.images),
                device: self.device,
                num_classes: self.num_classes,
            };
            measure_architecture(&self._arch, &mut host, exp.seed, &mut result).map_err(TrainError::Setup)?;
        }
        Ok(result)
    }

    /// The checkpoint's trained network `name` (`net.<name>.*`: for the generator its own weights,
    /// never the EMA copy), built with every other network on first use.
    pub fn trained_network(&mut self, exp: &Experiment, name: &str) -> Result<&mut NetworkHandle, TrainError> {
        self.load_networks(exp)?;
        match self.networks.iter().position(|(n, _)| n == name) {
            Some(i) => Ok(&mut self.networks[i].1),
            None => {
                let names: Vec<&str> = self.networks.iter().map(|(n, _)| n.as_str()).collect();
                Err(TrainError::Setup(format!(
                    "architecture `{}` has no network `{name}` (its networks: {})",
                    self.architecture,
                    names.join(", ")
                )))
            }
        }
    }

    /// `n` latents as training and evaluation draw them (the architecture's own sampler, else
    /// N(0, I)), from libtorch's RNG as the caller seeded it.
    pub fn latent(&self, n: i64) -> Result<Tensor, TrainError> {
        latents(&self._arch, self.z_dim, self.device)(n).map_err(TrainError::Setup)
    }

    /// Builds every network the architecture declares and restores its trained weights (`net.*`).
    fn load_networks(&mut self, exp: &Experiment) -> Result<(), TrainError> {
        if !self.networks.is_empty() {
            return Ok(());
        }
        let c = Checkpoint::load(&self.checkpoint)?;
        for spec in self._arch.info().map_err(|e| plugin_failure(exp, e))?.networks {
            let name = spec.name;
            let network = self._arch.build(&name).map_err(|e| plugin_failure(exp, e))?;
            for (tensor, t, _) in network.tensors().map_err(|e| plugin_failure(exp, e))? {
                c.restore_into(&self.checkpoint, &format!("net.{name}.{tensor}"), &t)?;
            }
            self.networks.push((name, network));
        }
        Ok(())
    }
}

/// `n` latents from the architecture's own sampler, or N(0, I) of width `z_dim`, drawn from
/// libtorch's RNG as the caller has seeded it.
pub(super) fn latents(
    arch: &Architecture,
    z_dim: i64,
    device: Device,
) -> impl FnMut(i64) -> Result<Tensor, String> + '_ {
    move |n| match arch.sample_latent(n) {
        Ok(Some(z)) => Ok(z),
        Ok(None) => Ok(Tensor::randn([n, z_dim], (Kind::Float, device))),
        Err(e) => Err(format!("the architecture's latent sampler failed: {e}")),
    }
}

/// Images from `generator` (eval mode) for latents `z` and, when conditional, labels `y`.
pub(super) fn images_of(
    generator: &mut NetworkHandle,
) -> impl FnMut(&Tensor, Option<&Tensor>) -> Result<Tensor, String> + '_ {
    move |z, y| {
        let mut inputs = vec![z.shallow_clone()];
        if let Some(y) = y {
            inputs.push(y.shallow_clone());
        }
        let out = generator.forward(&inputs, false).map_err(|e| e.to_string())?;
        out.into_iter().next().ok_or_else(|| "network `generator` returned no outputs".to_string())
    }
}
