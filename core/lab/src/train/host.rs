//! The core's side of the contexts plugins are lent: what a loss can ask for during one run of
//! a phase ([`PhaseHost`]), and what an architecture can ask for while drawing its own sample
//! grid ([`GridHost`]) or measuring itself ([`ModelEvalHost`]).
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_REFERENCE_B, SPLIT_TRAIN, SPLIT_TRAIN_B};
use lab_plugin_api::host::{Architecture, EvalHost, LossHost, VisualHost};
use lab_plugin_api::{Error, Result, Role};
use tch::{Kind, Tensor};

use super::Net;
use crate::seeds::{key, Stream};
use lab_plugin_api::host::{Augment, NetworkHandle};

/// Borrowed view of the trainer for the length of one loss call.
pub(super) struct PhaseHost<'a> {
    pub phase: &'a str,
    /// 0 for `D`, 1 for `G`, 2 + its index in the plan for any other phase: the augmentation
    /// seed's coordinate, kept as it was for the default plan.
    pub phase_code: u64,
    /// The networks this phase steps.
    pub stepping: &'a [String],
    pub step: u64,
    pub d_index: u64,
    pub seed: u64,
    pub batch_size: i64,
    pub num_classes: i64,
    pub z_dim: i64,
    pub device: tch::Device,
    pub architecture: &'a str,
    pub arch: &'a Architecture,
    pub real: &'a Tensor,
    pub labels: Option<&'a Tensor>,
    pub real_b: Option<&'a Tensor>,
    pub nets: &'a mut [Net],
    pub augment: Option<&'a mut Augment>,
    pub augment_name: &'a str,
    /// `augment.apply = "reals"`: `discriminate` augments only what D sees as real.
    pub augment_reals_only: bool,
    pub augment_calls: u64,
    pub logs: &'a mut Vec<(String, Tensor)>,
    /// D's first output on the last batch of each role, detached.
    pub d_real: Option<Tensor>,
    pub d_fake: Option<Tensor>,
}

/// Runs network `name` of `nets`, naming it and the architecture in errors.
pub(super) fn forward(
    nets: &mut [Net],
    architecture: &str,
    name: &str,
    inputs: &[Tensor],
    train: bool,
) -> Result<Vec<Tensor>> {
    let known: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
    let Some(i) = nets.iter().position(|n| n.name == name) else {
        return Err(Error::new(format!(
            "architecture `{architecture}` has no network `{name}` (it has: {})",
            known.join(", ")
        )));
    };
    nets[i]
        .handle
        .forward(inputs, train)
        .map_err(|e| e.context(format!("network `{name}` of architecture `{architecture}`")))
}

impl PhaseHost<'_> {
    fn forward(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        forward(self.nets, self.architecture, name, inputs, train)
    }

    fn with_labels(&self, x: &Tensor, labels: Option<&Tensor>) -> Vec<Tensor> {
        let mut inputs = vec![x.shallow_clone()];
        if self.num_classes > 0 {
            if let Some(y) = labels {
                inputs.push(y.shallow_clone());
            }
        }
        inputs
    }

    fn apply_augment(&mut self, x: &Tensor) -> Result<Tensor> {
        let seed = key(self.seed, Stream::Augment, &[self.step, self.phase_code, self.d_index, self.augment_calls]);
        self.augment_calls += 1;
        let name = self.augment_name;
        match self.augment.as_deref_mut() {
            Some(a) => a.apply(x, seed).map_err(|e| e.context(format!("augmentation `{name}`"))),
            None => Ok(x.shallow_clone()),
        }
    }
}

impl LossHost for PhaseHost<'_> {
    fn phase(&mut self) -> Result<String> {
        Ok(self.phase.to_string())
    }
    fn step(&mut self) -> Result<u64> {
        Ok(self.step)
    }
    fn repeat_index(&mut self) -> Result<u64> {
        Ok(self.d_index)
    }
    fn batch_size(&mut self) -> Result<i64> {
        Ok(self.batch_size)
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(self.num_classes)
    }
    fn steps_network(&mut self, name: &str) -> Result<bool> {
        Ok(self.stepping.iter().any(|n| n == name))
    }
    fn real(&mut self) -> Result<Tensor> {
        Ok(self.real.shallow_clone())
    }
    fn real_labels(&mut self) -> Result<Option<Tensor>> {
        Ok(if self.num_classes > 0 { self.labels.map(Tensor::shallow_clone) } else { None })
    }
    fn real_b(&mut self) -> Result<Option<Tensor>> {
        Ok(self.real_b.map(Tensor::shallow_clone))
    }
    fn sample_z(&mut self, n: i64) -> Result<Tensor> {
        match self
            .arch
            .sample_latent(n)
            .map_err(|e| e.context(format!("architecture `{}` latent sampler", self.architecture)))?
        {
            Some(z) => Ok(z),
            None => Ok(Tensor::randn([n, self.z_dim], (Kind::Float, self.device))),
        }
    }
    fn sample_labels(&mut self, n: i64) -> Result<Option<Tensor>> {
        Ok((self.num_classes > 0).then(|| Tensor::randint(self.num_classes, [n], (Kind::Int64, self.device))))
    }
    fn generate(&mut self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let inputs = self.with_labels(z, labels);
        let out = if self.stepping.iter().any(|n| n == "generator") {
            self.forward("generator", &inputs, true)?
        } else {
            // A phase that does not step G never needs G's graph: skip building it.
            tch::no_grad(|| self.forward("generator", &inputs, true))?
        };
        out.into_iter().next().ok_or_else(|| Error::new("network `generator` returned no outputs"))
    }
    fn discriminate(&mut self, x: &Tensor, labels: Option<&Tensor>, augment: bool, role: Role) -> Result<Vec<Tensor>> {
        let augment = augment && (!self.augment_reals_only || role == Role::Real);
        let x = if augment { self.apply_augment(x)? } else { x.shallow_clone() };
        let inputs = self.with_labels(&x, labels);
        let out = self.forward("discriminator", &inputs, true)?;
        let first = out.first().ok_or_else(|| Error::new("network `discriminator` returned no outputs"))?;
        match role {
            Role::Real => self.d_real = Some(first.detach()),
            Role::Fake => self.d_fake = Some(first.detach()),
            Role::Other => {}
        }
        Ok(out)
    }
    fn augment(&mut self, x: &Tensor) -> Result<Tensor> {
        self.apply_augment(x)
    }
    fn run_network(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        self.forward(name, inputs, train)
    }
    fn log_scalar(&mut self, name: &str, value: &Tensor) -> Result<()> {
        self.logs.push((name.to_string(), value.detach().to_kind(Kind::Double).mean(Kind::Double)));
        Ok(())
    }
}

/// What an architecture's `visualize` may use: the sampling generator, the other networks,
/// the fixed latents, and a fixed real batch. Everything runs in eval mode without autograd.
pub(super) struct GridHost<'a> {
    pub architecture: &'a str,
    /// The EMA generator, when the run keeps one (else `generator` runs from `nets`).
    pub ema: Option<&'a mut NetworkHandle>,
    pub nets: &'a mut [Net],
    pub fixed_z: &'a Tensor,
    pub fixed_y: Option<&'a Tensor>,
    pub images: &'a Tensor,
    pub labels: Option<&'a Tensor>,
    pub images_b: Option<&'a Tensor>,
    pub samples: i64,
    pub num_classes: i64,
}

impl GridHost<'_> {
    fn first(&self, t: &Tensor, n: i64) -> Tensor {
        t.narrow(0, 0, n.clamp(0, t.size()[0]))
    }
}

/// Runs `name` in eval mode without autograd, the EMA generator standing in for `generator`
/// when the run keeps one: how networks run for pictures and evaluation.
fn run_for_sampling(
    ema: Option<&mut NetworkHandle>,
    nets: &mut [Net],
    architecture: &str,
    name: &str,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>> {
    tch::no_grad(|| {
        if let (Some(ema), "generator") = (ema, name) {
            ema.forward(inputs, false).map_err(|e| e.context("network `generator` (EMA)"))
        } else {
            forward(nets, architecture, name, inputs, false)
        }
    })
}

impl VisualHost for GridHost<'_> {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        run_for_sampling(self.ema.as_deref_mut(), self.nets, self.architecture, name, inputs)
    }
    fn fixed_latent(&mut self) -> Result<Tensor> {
        Ok(self.fixed_z.shallow_clone())
    }
    fn fixed_labels(&mut self) -> Result<Option<Tensor>> {
        Ok(self.fixed_y.map(Tensor::shallow_clone))
    }
    fn real(&mut self, n: i64) -> Result<Tensor> {
        Ok(crate::data::to_unit_range(&self.first(self.images, n)))
    }
    fn real_labels(&mut self, n: i64) -> Result<Option<Tensor>> {
        Ok(self.labels.map(|l| self.first(l, n)))
    }
    fn real_b(&mut self, n: i64) -> Result<Option<Tensor>> {
        Ok(self.images_b.map(|b| crate::data::to_unit_range(&self.first(b, n))))
    }
    fn samples(&mut self) -> Result<i64> {
        Ok(self.samples)
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(self.num_classes)
    }
}

/// The networks an evaluation runs: the trainer's, or those `lab eval` loaded from a checkpoint.
pub(super) enum EvalNetworks<'a> {
    Trainer(&'a mut [Net]),
    Loaded(&'a mut [(String, NetworkHandle)]),
}

impl EvalNetworks<'_> {
    /// Runs network `name` in eval mode without autograd.
    fn run(&mut self, architecture: &str, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        match self {
            EvalNetworks::Trainer(nets) => run_for_sampling(None, nets, architecture, name, inputs),
            EvalNetworks::Loaded(nets) => {
                let known: Vec<String> = nets.iter().map(|(n, _)| n.clone()).collect();
                let Some((_, handle)) = nets.iter_mut().find(|(n, _)| n == name) else {
                    return Err(Error::new(format!(
                        "architecture `{architecture}` has no network `{name}` (it has: {})",
                        known.join(", ")
                    )));
                };
                tch::no_grad(|| handle.forward(inputs, false))
                    .map_err(|e| e.context(format!("network `{name}` of architecture `{architecture}`")))
            }
        }
    }
}

/// What an architecture's `evaluate` may use: its networks (as for pictures) and two splits,
/// the evaluation's reference images and the run's training images.
pub(super) struct ModelEvalHost<'a> {
    pub architecture: &'a str,
    pub ema: Option<&'a mut NetworkHandle>,
    pub nets: EvalNetworks<'a>,
    /// uint8 NCHW, wherever they live; batches go to `device`.
    pub reference: &'a Tensor,
    pub reference_labels: Option<&'a Tensor>,
    pub train: &'a Tensor,
    pub train_labels: Option<&'a Tensor>,
    /// The second domain's reference and training images, for two-domain data.
    pub reference_b: Option<&'a Tensor>,
    pub train_b: Option<&'a Tensor>,
    pub device: tch::Device,
    pub num_classes: i64,
}

impl ModelEvalHost<'_> {
    fn split(&self, split: &str) -> Result<(&Tensor, Option<&Tensor>)> {
        let one_domain = || {
            Error::new(format!(
                "no split `{split}`: the data has one domain; `{SPLIT_REFERENCE_B}` and `{SPLIT_TRAIN_B}` \
                 exist for two-domain data (data.dataset = \"paired-folder\", \"unpaired-folders\", ...)"
            ))
        };
        match split {
            SPLIT_REFERENCE => Ok((self.reference, self.reference_labels)),
            SPLIT_TRAIN => Ok((self.train, self.train_labels)),
            SPLIT_REFERENCE_B => self.reference_b.map(|b| (b, None)).ok_or_else(one_domain),
            SPLIT_TRAIN_B => self.train_b.map(|b| (b, None)).ok_or_else(one_domain),
            other => Err(Error::new(format!(
                "no split `{other}`: expected `{SPLIT_REFERENCE}` or `{SPLIT_TRAIN}` (or, for two-domain data, \
                 `{SPLIT_REFERENCE_B}` or `{SPLIT_TRAIN_B}`)"
            ))),
        }
    }

    fn range(&self, split: &str, start: i64, n: i64) -> Result<(i64, i64)> {
        let count = self.split(split)?.0.size()[0];
        if start < 0 || n < 0 || start + n > count {
            return Err(Error::new(format!(
                "images {start}..{} of split `{split}` asked for; it has {count}",
                start + n
            )));
        }
        Ok((start, n))
    }
}

impl EvalHost for ModelEvalHost<'_> {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        match (self.ema.as_deref_mut(), name) {
            (Some(ema), "generator") => {
                tch::no_grad(|| ema.forward(inputs, false)).map_err(|e| e.context("network `generator` (EMA)"))
            }
            _ => self.nets.run(self.architecture, name, inputs),
        }
    }
    fn count(&mut self, split: &str) -> Result<i64> {
        Ok(self.split(split)?.0.size()[0])
    }
    fn images(&mut self, split: &str, start: i64, n: i64) -> Result<Tensor> {
        let (start, n) = self.range(split, start, n)?;
        let images = self.split(split)?.0.narrow(0, start, n).to_device(self.device);
        Ok(crate::data::to_unit_range(&images))
    }
    fn labels(&mut self, split: &str, start: i64, n: i64) -> Result<Option<Tensor>> {
        let (start, n) = self.range(split, start, n)?;
        Ok(self.split(split)?.1.map(|l| l.narrow(0, start, n).to_device(self.device)))
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(self.num_classes)
    }
}

/// Runs the architecture's own measures (seeded as at every evaluation, so training and
/// `lab eval` give the same values) and adds them, with their protocol, to `result`.
pub(super) fn measure_architecture(
    arch: &lab_plugin_api::host::Architecture,
    host: &mut ModelEvalHost<'_>,
    seed: u64,
    result: &mut crate::metrics::EvalResult,
) -> std::result::Result<(), String> {
    crate::seeds::seed_torch(crate::seeds::key(seed, crate::seeds::Stream::Eval, &[u64::MAX]));
    let start = std::time::Instant::now();
    let values = arch
        .evaluate(host)
        .map_err(|e| format!("architecture `{}` failed to measure itself: {e}", host.architecture))?;
    if !values.is_empty() {
        result.protocol["model"] = serde_json::json!({
            "architecture": host.architecture,
            "measures": values.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
            "seconds": start.elapsed().as_secs_f64(),
        });
        for v in values {
            result.higher_is_better.insert(v.name.clone(), v.higher_is_better);
            result.values.insert(v.name, v.value);
        }
    }
    Ok(())
}
