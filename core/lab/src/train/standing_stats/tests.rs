//! Recalibration against the statistics computed here, batch by batch, from the same inputs.
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{recalibrate, running_statistics, Recalibrate};

/// linear → batch norm (tch's, momentum 0.1) → ReLU → linear scaled by a buffer `u` → batch norm
/// (`lab_nn`'s names `stored_mean` / `stored_var`, momentum 0.01, no affine). Every
/// training-mode pass adds 1 to `u`, as a spectral norm's power iteration moves its vector:
/// recalibration must hold it. `idle` is a batch norm no pass reaches (a layer on another
/// path): its statistics keep their value.
struct Net {
    vs: nn::VarStore,
    lin1: nn::Linear,
    bn1: nn::BatchNorm,
    lin2: nn::Linear,
    u: Tensor,
    bn2: Stored,
    idle: nn::BatchNorm,
}

/// A batch norm whose statistics carry `lab_nn`'s names.
struct Stored {
    running_mean: Tensor,
    running_var: Tensor,
}

impl Net {
    fn new() -> Self {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let lin1 = nn::linear(&root / "lin1", 4, 6, Default::default());
        let bn1 = nn::batch_norm1d(&root / "bn1", 6, nn::BatchNormConfig { momentum: 0.1, ..Default::default() });
        let lin2 = nn::linear(&root / "lin2", 6, 3, Default::default());
        let u = root.ones_no_train("u", &[1]);
        let bn2 = Stored {
            running_mean: (&root / "bn2").zeros_no_train("stored_mean", &[3]),
            running_var: (&root / "bn2").ones_no_train("stored_var", &[3]),
        };
        let idle = nn::batch_norm1d(&root / "idle", 2, Default::default());
        // Statistics far from what the batches give, so that a leftover would show.
        tch::no_grad(|| {
            let _ = bn1.running_mean.shallow_clone().fill_(5.0);
            let _ = bn2.running_var.shallow_clone().fill_(9.0);
            let _ = idle.running_mean.shallow_clone().fill_(3.0);
        });
        Self { vs, lin1, bn1, lin2, u, bn2, idle }
    }

    /// The pre-norm activations of both layers for `z`, with `u` as it is now, normalising
    /// by hand (the batch's biased variance, ε 1e-5) so that no running statistic moves.
    fn activations(&self, z: &Tensor) -> (Tensor, Tensor) {
        let a1 = self.lin1.forward(z);
        let centred = &a1 - a1.mean_dim(0, true, Kind::Float);
        let normed = &centred / (a1.var_dim(0, false, true) + 1e-5).sqrt();
        let h = (normed * self.bn1.ws.as_ref().unwrap() + self.bn1.bs.as_ref().unwrap()).relu();
        let a2 = self.lin2.forward(&h) * &self.u;
        (a1, a2)
    }
}

impl Recalibrate for Net {
    fn named_tensors(&self) -> Result<Vec<(String, Tensor, bool)>, String> {
        Ok(self.vs.variables().into_iter().map(|(n, t)| (n, t.shallow_clone(), t.requires_grad())).collect())
    }

    fn forward_train(&mut self, inputs: &[Tensor]) -> Result<(), String> {
        let h = self.bn1.forward_t(&self.lin1.forward(&inputs[0]), true).relu();
        let a2 = self.lin2.forward(&h) * &self.u;
        let (mean, var) = (&self.bn2.running_mean, &self.bn2.running_var);
        let _ = a2.batch_norm(None::<&Tensor>, None, Some(mean), Some(var), true, 0.01, 1e-5, false);
        let _ = self.u.shallow_clone().g_add_scalar_(1.0);
        Ok(())
    }
}

fn batch(k: u64) -> Tensor {
    tch::manual_seed(100 + k as i64);
    Tensor::randn([16, 4], (Kind::Float, Device::Cpu)) * 2.0 + 1.0
}

fn snapshot(net: &Net) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = net.vs.variables().into_iter().map(|(n, t)| (n, t.copy())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn the_statistics_become_the_mean_of_the_batches_statistics_whatever_the_momentum() {
    let mut net = Net::new();
    let before = snapshot(&net);
    let batches = 5;
    // By hand: each batch's mean and unbiased variance of each layer's input, then their mean.
    let (mut m1, mut v1, mut m2, mut v2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    tch::no_grad(|| {
        for k in 0..batches {
            let (a1, a2) = net.activations(&batch(k));
            m1.push(a1.mean_dim(0, false, Kind::Float));
            v1.push(a1.var_dim(0, true, false));
            m2.push(a2.mean_dim(0, false, Kind::Float));
            v2.push(a2.var_dim(0, true, false));
        }
    });
    let mean = |v: &[Tensor]| Tensor::stack(v, 0).mean_dim(0, false, Kind::Float);
    let restore = recalibrate(&mut net, batches, |k| Ok(vec![batch(k)])).unwrap();
    for (live, expected, what) in [
        (&net.bn1.running_mean, mean(&m1), "bn1 mean"),
        (&net.bn1.running_var, mean(&v1), "bn1 var"),
        (&net.bn2.running_mean, mean(&m2), "bn2 mean"),
        (&net.bn2.running_var, mean(&v2), "bn2 var"),
    ] {
        let scale = expected.abs().max().double_value(&[]).max(1.0);
        let d = max_diff(live, &expected);
        let values = |t: &Tensor| Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap();
        assert!(d < 1e-4 * scale, "{what}: {:?} against {:?} (difference {d})", values(live), values(&expected));
    }
    assert_eq!(net.u.double_value(&[0]), 1.0, "the other buffers hold their value");
    assert!(net.idle.running_mean.equal(&Tensor::full([2], 3.0, (Kind::Float, Device::Cpu))), "unreached");
    assert!(net.idle.running_var.equal(&Tensor::ones([2], (Kind::Float, Device::Cpu))), "unreached");
    drop(restore);
    for ((name, was), (_, now)) in before.iter().zip(&snapshot(&net)) {
        assert!(was.equal(now), "{name} is put back bit for bit");
    }
}

#[test]
fn a_network_without_batch_norm_is_refused_and_left_as_it_was() {
    tch::manual_seed(1);
    struct Plain(nn::VarStore, nn::Linear);
    impl Recalibrate for Plain {
        fn named_tensors(&self) -> Result<Vec<(String, Tensor, bool)>, String> {
            Ok(self.0.variables().into_iter().map(|(n, t)| (n, t.shallow_clone(), t.requires_grad())).collect())
        }
        fn forward_train(&mut self, inputs: &[Tensor]) -> Result<(), String> {
            let _ = self.1.forward(&inputs[0]);
            Ok(())
        }
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let lin = nn::linear(vs.root() / "lin", 4, 2, Default::default());
    let mut plain = Plain(vs, lin);
    assert!(running_statistics(&plain).unwrap().is_empty());
    let err = recalibrate(&mut plain, 3, |k| Ok(vec![batch(k)])).err().unwrap();
    assert_eq!(err, super::NO_STATISTICS);
    let mut net = Net::new();
    assert_eq!(
        running_statistics(&net).unwrap().len(),
        6,
        "bn1, bn2 and idle, mean and variance: {:?}",
        running_statistics(&net)
    );
    let before = snapshot(&net);
    let err = recalibrate(&mut net, 0, |k| Ok(vec![batch(k)])).err().unwrap();
    assert_eq!(err, "standing statistics need at least one batch");
    for ((name, was), (_, now)) in before.iter().zip(&snapshot(&net)) {
        assert!(was.equal(now), "{name} untouched");
    }
}
