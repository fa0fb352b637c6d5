//! The core's side of the loss context: what a loss plugin can ask for during one phase.
use lab_plugin_api::loss::LossHost;
use lab_plugin_api::{Phase, Role};
use tch::{Kind, Tensor};

use crate::seeds::{key, Stream};
use super::Net;
use lab_plugin_api::augment::Augment;

/// Borrowed view of the trainer for the length of one loss call.
pub(super) struct PhaseHost<'a> {
    pub phase: Phase,
    pub step: u64,
    pub d_index: u64,
    pub seed: u64,
    pub batch_size: i64,
    pub num_classes: i64,
    pub z_dim: i64,
    pub device: tch::Device,
    pub architecture: &'a str,
    pub real: &'a Tensor,
    pub labels: Option<&'a Tensor>,
    pub nets: &'a mut [Net],
    pub augment: Option<&'a mut Augment>,
    pub augment_name: &'a str,
    pub augment_calls: u64,
    pub logs: &'a mut Vec<(String, Tensor)>,
    /// D's first output on the last batch of each role, detached.
    pub d_real: Option<Tensor>,
    pub d_fake: Option<Tensor>,
}

impl PhaseHost<'_> {
    fn net(&mut self, name: &str) -> Result<&mut Net, String> {
        let architecture = self.architecture;
        let known: Vec<String> = self.nets.iter().map(|n| n.name.clone()).collect();
        self.nets.iter_mut().find(|n| n.name == name).ok_or_else(|| {
            format!("architecture `{architecture}` has no network `{name}` (it has: {})", known.join(", "))
        })
    }

    fn forward(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>, String> {
        let architecture = self.architecture;
        let net = self.net(name)?;
        net.handle
            .forward(inputs, train)
            .map_err(|e| format!("network `{name}` of architecture `{architecture}`: {e}"))
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

    fn apply_augment(&mut self, x: &Tensor) -> Result<Tensor, String> {
        let phase = self.phase as u64;
        let seed = key(self.seed, Stream::Augment, &[self.step, phase, self.d_index, self.augment_calls]);
        self.augment_calls += 1;
        let name = self.augment_name;
        match self.augment.as_deref_mut() {
            Some(a) => a.apply(x, seed).map_err(|e| format!("augmentation `{name}`: {e}")),
            None => Ok(x.shallow_clone()),
        }
    }
}

impl LossHost for PhaseHost<'_> {
    fn phase(&self) -> Phase {
        self.phase
    }
    fn step(&self) -> u64 {
        self.step
    }
    fn batch_size(&self) -> i64 {
        self.batch_size
    }
    fn num_classes(&self) -> i64 {
        self.num_classes
    }
    fn real(&mut self) -> Result<Tensor, String> {
        Ok(self.real.shallow_clone())
    }
    fn real_labels(&mut self) -> Result<Option<Tensor>, String> {
        Ok(if self.num_classes > 0 { self.labels.map(Tensor::shallow_clone) } else { None })
    }
    fn sample_z(&mut self, n: i64) -> Result<Tensor, String> {
        Ok(Tensor::randn([n, self.z_dim], (Kind::Float, self.device)))
    }
    fn sample_labels(&mut self, n: i64) -> Result<Option<Tensor>, String> {
        Ok((self.num_classes > 0).then(|| Tensor::randint(self.num_classes, [n], (Kind::Int64, self.device))))
    }
    fn generate(&mut self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor, String> {
        let inputs = self.with_labels(z, labels);
        let out = if self.phase == Phase::Discriminator {
            // D's update never needs G's graph: skip building it.
            tch::no_grad(|| self.forward("generator", &inputs, true))?
        } else {
            self.forward("generator", &inputs, true)?
        };
        out.into_iter().next().ok_or_else(|| "network `generator` returned no outputs".to_string())
    }
    fn discriminate(
        &mut self,
        x: &Tensor,
        labels: Option<&Tensor>,
        augment: bool,
        role: Role,
    ) -> Result<Vec<Tensor>, String> {
        let x = if augment { self.apply_augment(x)? } else { x.shallow_clone() };
        let inputs = self.with_labels(&x, labels);
        let out = self.forward("discriminator", &inputs, true)?;
        let first = out.first().ok_or_else(|| "network `discriminator` returned no outputs".to_string())?;
        match role {
            Role::Real => self.d_real = Some(first.detach()),
            Role::Fake => self.d_fake = Some(first.detach()),
            Role::Other => {}
        }
        Ok(out)
    }
    fn augment(&mut self, x: &Tensor) -> Result<Tensor, String> {
        self.apply_augment(x)
    }
    fn run_network(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>, String> {
        self.forward(name, inputs, train)
    }
    fn log_scalar(&mut self, name: &str, value: &Tensor) {
        self.logs.push((name.to_string(), value.detach().to_kind(Kind::Double).mean(Kind::Double)));
    }
}
