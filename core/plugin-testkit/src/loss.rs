//! Losses under test: a fake loss context standing in for the core, and the plugin created and
//! called through the core's handle, so every call crosses the same tables `lab run` uses.
use std::collections::BTreeMap;

use lab_plugin_api::host::{into_result, Factory, Group, Loss, LossHost};
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{DataSpec, LossPlugin, Result, Role, PHASE_D, PHASE_G};

use crate::cpu_env;

/// Creates loss `P` from `config` (the TOML of `[loss.config]`) as the core does.
pub fn create<P: LossPlugin>(config: &str) -> Result<Loss> {
    let Factory::Loss(create) = lab_plugin_api::loss::descriptor::<P>("test").factory else {
        unreachable!("a loss descriptor holds a loss factory")
    };
    let data = DataSpec { channels: 1, height: 2, width: 2, num_classes: 0 };
    let obj = into_result(create(config.into(), cpu_env(data)))?;
    // SAFETY: the factory is compiled into this test binary, so its code outlives the handle.
    Ok(unsafe { Loss::from_raw(obj) })
}

/// A network the fake context runs for `run_network` (an encoder, a Q head, ...).
pub type FakeNetwork = Box<dyn FnMut(&[Tensor]) -> Vec<Tensor>>;

/// A core stand-in for loss tests, small enough to compute every loss by hand:
/// - `real`: the real batch, `[N, C, H, W]` (3 images of 1×2×2 by default);
/// - `fake`: what the "generator" returns, a trainable leaf, so a test can read the gradient a
///   G loss sends back; in phase `D` it is returned detached, as the core does;
/// - a linear discriminator D(x) = x·w + b with trainable `w` (one weight per pixel) and `b`,
///   returning logits `[N, 1]`;
/// - augmentation x ↦ `augment_scale`·x.
///
/// Every discriminator call is recorded in `calls` as `(role, augmented)`, every logged scalar
/// in `logged`.
pub struct FakeLossHost {
    pub phase: String,
    pub step: u64,
    pub real: Tensor,
    pub real_labels: Option<Tensor>,
    pub real_b: Option<Tensor>,
    pub fake: Tensor,
    pub w: Tensor,
    pub b: Tensor,
    pub augment_scale: f64,
    pub num_classes: i64,
    /// Networks for `run_network`, by name.
    pub networks: BTreeMap<String, FakeNetwork>,
    pub calls: Vec<(Role, bool)>,
    pub logged: Vec<(String, f64)>,
}

/// Float32 `[rows, 1, 2, 2]` images from rows of four pixels.
pub fn batch(rows: &[[f64; 4]]) -> Tensor {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_slice(&flat).reshape([rows.len() as i64, 1, 2, 2])
}

fn leaf(values: &[f64]) -> Tensor {
    let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_slice(&v).set_requires_grad(true)
}

/// The default real batch: three 1×2×2 images.
pub const REAL: [[f64; 4]; 3] = [[1.0, 0.0, -1.0, 0.5], [0.2, 0.4, -0.6, 1.0], [-1.0, -1.0, 0.5, 0.0]];
/// The default generator output.
pub const FAKE: [[f64; 4]; 3] = [[0.3, -0.2, 0.1, 0.0], [-0.5, 0.5, 0.5, -0.5], [0.0, 0.0, 0.0, 1.0]];
/// The default discriminator weight and bias.
pub const W: [f64; 4] = [0.5, -1.0, 0.25, 2.0];
pub const B: f64 = 0.1;

impl FakeLossHost {
    /// Phase `phase` (`D`, `G`, or a plan's name) with the default batches and discriminator.
    pub fn new(phase: &str) -> Self {
        Self::with(phase, &REAL, &FAKE, W, B)
    }

    /// Phase `phase` with these real and fake images (1×2×2 each) and D(x) = x·w + b.
    pub fn with(phase: &str, real: &[[f64; 4]], fake: &[[f64; 4]], w: [f64; 4], b: f64) -> Self {
        Self {
            phase: phase.to_string(),
            step: 0,
            real: batch(real),
            real_labels: None,
            real_b: None,
            fake: batch(fake).set_requires_grad(true),
            w: leaf(&w),
            b: leaf(&[b]),
            augment_scale: 1.0,
            num_classes: 0,
            networks: BTreeMap::new(),
            calls: Vec::new(),
            logged: Vec::new(),
        }
    }

    /// The discriminator's logits on `x` (after any augmentation), computed in the test.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        x.flatten(1, -1).matmul(&self.w.unsqueeze(1)) + &self.b
    }

    /// The last value logged under `name`.
    pub fn logged(&self, name: &str) -> Option<f64> {
        self.logged.iter().rev().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Runs `loss` for this host's phase and returns every group it produced.
    pub fn groups(&mut self, loss: &mut Loss) -> Result<Vec<Group>> {
        let phase = self.phase.clone();
        loss.loss(&phase, self)
    }

    /// Runs `loss` for this host's phase, expecting one loss for every network of the phase
    /// (what `Losses::all` returns), and gives it back as a scalar tensor.
    pub fn loss(&mut self, loss: &mut Loss) -> Result<Tensor> {
        let mut groups = self.groups(loss)?;
        assert_eq!(groups.len(), 1, "expected one loss for the whole phase, got {} groups", groups.len());
        assert!(groups[0].0.is_empty(), "expected a loss for all networks of the phase, got one for {:?}", groups[0].0);
        let loss = groups.remove(0).1.expect("a loss, not a skip");
        assert_eq!(loss.dim(), 0, "losses are scalars");
        Ok(loss)
    }

    fn is_d_phase(&self) -> bool {
        self.phase == PHASE_D
    }
}

/// The sum of |gradient| of `t`; 0 when nothing reached it.
pub fn grad_sum(t: &Tensor) -> f64 {
    let g = t.grad();
    if g.defined() {
        g.abs().sum(Kind::Float).double_value(&[])
    } else {
        0.0
    }
}

impl LossHost for FakeLossHost {
    fn phase(&mut self) -> Result<String> {
        Ok(self.phase.clone())
    }
    fn step(&mut self) -> Result<u64> {
        Ok(self.step)
    }
    fn repeat_index(&mut self) -> Result<u64> {
        Ok(0)
    }
    fn batch_size(&mut self) -> Result<i64> {
        Ok(self.real.size()[0])
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(self.num_classes)
    }
    fn steps_network(&mut self, name: &str) -> Result<bool> {
        Ok(if self.phase == PHASE_D { name == "discriminator" } else { self.phase == PHASE_G && name == "generator" })
    }
    fn real(&mut self) -> Result<Tensor> {
        Ok(self.real.shallow_clone())
    }
    fn real_labels(&mut self) -> Result<Option<Tensor>> {
        Ok(self.real_labels.as_ref().map(Tensor::shallow_clone))
    }
    fn real_b(&mut self) -> Result<Option<Tensor>> {
        Ok(self.real_b.as_ref().map(Tensor::shallow_clone))
    }
    fn sample_z(&mut self, n: i64) -> Result<Tensor> {
        Ok(Tensor::zeros([n, 1], (Kind::Float, Device::Cpu)))
    }
    fn sample_labels(&mut self, n: i64) -> Result<Option<Tensor>> {
        Ok((self.num_classes > 0).then(|| Tensor::zeros([n], (Kind::Int64, Device::Cpu))))
    }
    fn generate(&mut self, _z: &Tensor, _labels: Option<&Tensor>) -> Result<Tensor> {
        // Like the core: no autograd history for G in a phase that does not step it.
        Ok(if self.is_d_phase() { self.fake.detach() } else { self.fake.shallow_clone() })
    }
    fn discriminate(&mut self, x: &Tensor, _labels: Option<&Tensor>, augment: bool, role: Role) -> Result<Vec<Tensor>> {
        self.calls.push((role, augment));
        let x = if augment { self.augment(x)? } else { x.shallow_clone() };
        Ok(vec![self.logits(&x)])
    }
    fn augment(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(x * self.augment_scale)
    }
    fn run_network(&mut self, name: &str, inputs: &[Tensor], _train: bool) -> Result<Vec<Tensor>> {
        match self.networks.get_mut(name) {
            Some(net) => Ok(net(inputs)),
            None => Err(lab_plugin_api::Error::new(format!(
                "the fake loss context has no network `{name}`; add one to `networks`"
            ))),
        }
    }
    fn log_scalar(&mut self, name: &str, value: &Tensor) -> Result<()> {
        self.logged.push((name.to_string(), value.double_value(&[])));
        Ok(())
    }
}
