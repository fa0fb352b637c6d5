//! Unit tests through the host-side [`Loss`] handle: every call crosses the same `extern "C"`
//! tables the core uses, against a fake host with a linear "D" whose parameters live here.
use lab_plugin_api::host::{into_result, Factory, Loss, LossHost};
use lab_plugin_api::loss::descriptor;
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{BuildEnv, DataSpec, LossPlugin, Role, PHASE_D, PHASE_G};

/// The two phases of the default plan.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Discriminator,
    Generator,
}

use crate::{Hinge, LeastSquares, Minimax, NonSaturating, WganGp};

const REAL: [[f64; 4]; 3] = [[1.0, 0.0, -1.0, 0.5], [0.2, 0.4, -0.6, 1.0], [-1.0, -1.0, 0.5, 0.0]];
const FAKE: [[f64; 4]; 3] = [[0.3, -0.2, 0.1, 0.0], [-0.5, 0.5, 0.5, -0.5], [0.0, 0.0, 0.0, 1.0]];
const W: [f64; 4] = [0.5, -1.0, 0.25, 2.0];
/// A weight of norm 1: the linear D's input gradient is a unit vector everywhere.
const W_UNIT: [f64; 4] = [0.5, 0.5, 0.5, 0.5];
const B: f64 = 0.1;

/// A core stand-in: a fixed real batch, a "generator" that returns a fixed (trainable) batch, a
/// linear discriminator D(x) = w·x + b returning `[N, 1]` logits, and augmentation x ↦ scale·x.
struct FakeHost {
    phase: Phase,
    real: Tensor,
    g_out: Tensor,
    w: Tensor,
    b: Tensor,
    scale: f64,
    /// `(role, augmented)` of every discriminator call.
    calls: Vec<(Role, bool)>,
    logged: Vec<(String, f64)>,
}

fn batch(rows: &[[f64; 4]; 3]) -> Tensor {
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_slice(&flat).reshape([3, 1, 2, 2])
}

fn leaf(values: &[f64]) -> Tensor {
    let v: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_slice(&v).set_requires_grad(true)
}

impl FakeHost {
    fn new(phase: Phase, w: [f64; 4]) -> Self {
        Self {
            phase,
            real: batch(&REAL),
            g_out: batch(&FAKE).set_requires_grad(true),
            w: leaf(&w),
            b: leaf(&[B]),
            scale: 1.0,
            calls: Vec::new(),
            logged: Vec::new(),
        }
    }

    fn logged(&self, name: &str) -> Option<f64> {
        self.logged.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

impl LossHost for FakeHost {
    fn phase(&mut self) -> lab_plugin_api::Result<String> {
        Ok(if self.phase == Phase::Discriminator { PHASE_D } else { PHASE_G }.to_string())
    }
    fn step(&mut self) -> lab_plugin_api::Result<u64> {
        Ok(0)
    }
    fn repeat_index(&mut self) -> lab_plugin_api::Result<u64> {
        Ok(0)
    }
    fn batch_size(&mut self) -> lab_plugin_api::Result<i64> {
        Ok(3)
    }
    fn num_classes(&mut self) -> lab_plugin_api::Result<i64> {
        Ok(0)
    }
    fn steps_network(&mut self, name: &str) -> lab_plugin_api::Result<bool> {
        Ok(match self.phase {
            Phase::Discriminator => name == "discriminator",
            Phase::Generator => name == "generator",
        })
    }
    fn real_b(&mut self) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn real(&mut self) -> lab_plugin_api::Result<Tensor> {
        Ok(self.real.shallow_clone())
    }
    fn real_labels(&mut self) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn sample_z(&mut self, n: i64) -> lab_plugin_api::Result<Tensor> {
        Ok(Tensor::zeros([n, 1], (Kind::Float, Device::Cpu)))
    }
    fn sample_labels(&mut self, _n: i64) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn generate(&mut self, _z: &Tensor, _labels: Option<&Tensor>) -> lab_plugin_api::Result<Tensor> {
        // Like the core: no autograd history for G in the D phase.
        Ok(match self.phase {
            Phase::Discriminator => self.g_out.detach(),
            Phase::Generator => self.g_out.shallow_clone(),
        })
    }
    fn discriminate(
        &mut self,
        x: &Tensor,
        _y: Option<&Tensor>,
        augment: bool,
        role: Role,
    ) -> lab_plugin_api::Result<Vec<Tensor>> {
        self.calls.push((role, augment));
        let x = if augment { self.augment(x)? } else { x.shallow_clone() };
        Ok(vec![x.flatten(1, -1).matmul(&self.w.unsqueeze(1)) + &self.b])
    }
    fn augment(&mut self, x: &Tensor) -> lab_plugin_api::Result<Tensor> {
        Ok(x * self.scale)
    }
    fn run_network(&mut self, name: &str, _inputs: &[Tensor], _train: bool) -> lab_plugin_api::Result<Vec<Tensor>> {
        Err(lab_plugin_api::Error::new(format!("no network `{name}` in the fake host")))
    }
    fn log_scalar(&mut self, name: &str, value: &Tensor) -> lab_plugin_api::Result<()> {
        self.logged.push((name.to_string(), value.double_value(&[])));
        Ok(())
    }
}

/// The one loss of the default plan's phase `phase`, through the same call the core makes.
fn single(loss: &mut Loss, phase: &str, host: &mut FakeHost) -> lab_plugin_api::Result<Tensor> {
    let mut groups = loss.loss(phase, host)?;
    assert_eq!(groups.len(), 1, "one group: every network of the phase");
    assert!(groups[0].0.is_empty(), "the group names no networks: all of the phase's");
    Ok(groups.remove(0).1.expect("a loss, not a skip"))
}

trait Phases {
    fn d_loss(&mut self, host: &mut FakeHost) -> lab_plugin_api::Result<Tensor>;
    fn g_loss(&mut self, host: &mut FakeHost) -> lab_plugin_api::Result<Tensor>;
}

impl Phases for Loss {
    fn d_loss(&mut self, host: &mut FakeHost) -> lab_plugin_api::Result<Tensor> {
        single(self, PHASE_D, host)
    }
    fn g_loss(&mut self, host: &mut FakeHost) -> lab_plugin_api::Result<Tensor> {
        single(self, PHASE_G, host)
    }
}

/// Creates loss plugin `P` exactly as the core does: descriptor → factory → handle.
fn loss<P: LossPlugin>(config: &str) -> lab_plugin_api::Result<Loss> {
    let env = BuildEnv::from_device(Device::Cpu, DataSpec { channels: 1, height: 2, width: 2, num_classes: 0 });
    let Factory::Loss(create) = descriptor::<P>("0").factory else { panic!("not a loss factory") };
    let obj = into_result(create(config.into(), env))?;
    // SAFETY: the factory comes from this very crate, linked in, so it outlives the handle.
    Ok(unsafe { Loss::from_raw(obj) })
}

fn value(t: &Tensor) -> f64 {
    assert_eq!(t.dim(), 0, "losses are scalars");
    t.double_value(&[])
}

/// D's logits on rows, computed by hand: w·(scale·x) + b.
fn logits(rows: &[[f64; 4]; 3], w: &[f64; 4], scale: f64) -> Vec<f64> {
    rows.iter().map(|x| x.iter().zip(w).map(|(x, w)| scale * x * w).sum::<f64>() + B).collect()
}

fn mean(v: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    v.iter().map(|&x| f(x)).sum::<f64>() / v.len() as f64
}

fn softplus(x: f64) -> f64 {
    x.exp().ln_1p()
}

fn norm(w: &[f64; 4]) -> f64 {
    w.iter().map(|w| w * w).sum::<f64>().sqrt()
}

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() < 1e-5, "{what}: got {got}, expected {want}");
}

/// D and G losses of plugin `P` (with `config`) against hand-computed formulas on the logits.
fn check<P: LossPlugin>(config: &str, d: impl Fn(&[f64], &[f64]) -> f64, g: impl Fn(&[f64]) -> f64) {
    let (r, f) = (logits(&REAL, &W, 1.0), logits(&FAKE, &W, 1.0));
    let mut host = FakeHost::new(Phase::Discriminator, W);
    let got = value(&loss::<P>(config).unwrap().d_loss(&mut host).unwrap());
    assert_close(got, d(&r, &f), &format!("{} D loss", P::NAME));
    assert_eq!(host.calls, [(Role::Real, true), (Role::Fake, true)], "{}: D sees augmented reals and fakes", P::NAME);
    let mut host = FakeHost::new(Phase::Generator, W);
    let got = value(&loss::<P>(config).unwrap().g_loss(&mut host).unwrap());
    assert_close(got, g(&f), &format!("{} G loss", P::NAME));
    assert!(host.logged.is_empty(), "nothing is logged when no penalty is active");
}

#[test]
fn non_saturating_matches_its_formula() {
    check::<NonSaturating>("", |r, f| mean(r, |r| softplus(-r)) + mean(f, softplus), |f| mean(f, |f| softplus(-f)));
}

#[test]
fn minimax_matches_its_formula() {
    check::<Minimax>("", |r, f| mean(r, |r| softplus(-r)) + mean(f, softplus), |f| -mean(f, softplus));
}

#[test]
fn hinge_matches_its_formula() {
    let relu = |x: f64| x.max(0.0);
    check::<Hinge>("", |r, f| mean(r, |r| relu(1.0 - r)) + mean(f, |f| relu(1.0 + f)), |f| -mean(f, |f| f));
}

#[test]
fn wasserstein_matches_its_formula_without_penalty() {
    check::<WganGp>("gp_lambda = 0", |r, f| mean(f, |f| f) - mean(r, |r| r), |f| -mean(f, |f| f));
}

#[test]
fn least_squares_matches_its_formula() {
    check::<LeastSquares>(
        "",
        |r, f| 0.5 * mean(r, |r| (r - 1.0).powi(2)) + 0.5 * mean(f, |f| f * f),
        |f| 0.5 * mean(f, |f| (f - 1.0).powi(2)),
    );
}

fn grad_sum(t: &Tensor) -> f64 {
    let g = t.grad();
    if g.defined() {
        g.abs().sum(Kind::Float).double_value(&[])
    } else {
        0.0
    }
}

#[test]
fn gradients_cross_the_interface() {
    let mut host = FakeHost::new(Phase::Discriminator, W);
    loss::<Hinge>("").unwrap().d_loss(&mut host).unwrap().backward();
    assert!(grad_sum(&host.w) > 0.0 && grad_sum(&host.b) > 0.0, "the D loss trains D");
    assert_eq!(grad_sum(&host.g_out), 0.0, "the D loss does not reach G");
    let mut host = FakeHost::new(Phase::Generator, W);
    loss::<NonSaturating>("").unwrap().g_loss(&mut host).unwrap().backward();
    assert!(grad_sum(&host.g_out) > 0.0, "the G loss reaches G's output");
}

#[test]
fn gradient_penalty_vanishes_for_a_unit_gradient_critic() {
    let mut host = FakeHost::new(Phase::Discriminator, W_UNIT);
    let got = value(&loss::<WganGp>("").unwrap().d_loss(&mut host).unwrap());
    let (r, f) = (logits(&REAL, &W_UNIT, 1.0), logits(&FAKE, &W_UNIT, 1.0));
    assert_close(got, mean(&f, |f| f) - mean(&r, |r| r), "WGAN-GP loss with a 1-Lipschitz linear critic");
    assert!(host.logged("loss/gp").unwrap().abs() < 1e-6);
    assert_eq!(host.calls[2], (Role::Other, false), "interpolates are not augmented");
}

#[test]
fn gradient_penalty_is_differentiable() {
    // A linear critic's input gradient is w everywhere: GP = λ(‖w‖ − 1)², whatever ε is.
    let lambda = 10.0;
    let mut host = FakeHost::new(Phase::Discriminator, W);
    let got = loss::<WganGp>("").unwrap().d_loss(&mut host).unwrap();
    let gp = lambda * (norm(&W) - 1.0).powi(2);
    assert_close(host.logged("loss/gp").unwrap(), gp, "logged penalty");
    got.backward();
    // ∂/∂w of mean(f) − mean(r) + λ(‖w‖ − 1)²: the second part exists only if the penalty's
    // graph (create_graph) survived the trip through the interface.
    let grad = Vec::<f32>::try_from(host.w.grad()).unwrap();
    for (j, g) in grad.iter().enumerate() {
        let wasserstein = (FAKE.iter().map(|x| x[j]).sum::<f64>() - REAL.iter().map(|x| x[j]).sum::<f64>()) / 3.0;
        let penalty = 2.0 * lambda * (norm(&W) - 1.0) * W[j] / norm(&W);
        assert_close(*g as f64, wasserstein + penalty, &format!("d loss / d w[{j}]"));
    }
}

#[test]
fn r1_is_half_gamma_times_squared_gradient_norm() {
    let gamma = 2.0;
    let mut host = FakeHost::new(Phase::Discriminator, W);
    let got = value(&loss::<NonSaturating>("r1_gamma = 2").unwrap().d_loss(&mut host).unwrap());
    let r1 = gamma / 2.0 * norm(&W).powi(2);
    assert_close(host.logged("loss/r1").unwrap(), r1, "logged R1");
    let (r, f) = (logits(&REAL, &W, 1.0), logits(&FAKE, &W, 1.0));
    assert_close(got, mean(&r, |r| softplus(-r)) + mean(&f, softplus) + r1, "D loss with R1");
    assert_eq!(host.calls, [(Role::Real, true), (Role::Fake, true)], "R1 reuses the real pass");
}

#[test]
fn r1_differentiates_through_the_augmentation() {
    let mut host = FakeHost::new(Phase::Discriminator, W);
    host.scale = 0.5;
    let _ = loss::<Hinge>("r1_gamma = 2").unwrap().d_loss(&mut host).unwrap();
    assert_close(host.logged("loss/r1").unwrap(), (0.5 * norm(&W)).powi(2), "R1 of D(T(x)) w.r.t. x");
}

#[test]
fn consistency_compares_clean_and_augmented_reals() {
    let lambda = 3.0;
    let mut host = FakeHost::new(Phase::Discriminator, W);
    host.scale = 0.5;
    let got = value(&loss::<Hinge>("cr_lambda = 3\ncr_run_augment = true").unwrap().d_loss(&mut host).unwrap());
    let (clean, augmented) = (logits(&REAL, &W, 1.0), logits(&REAL, &W, 0.5));
    let diffs: Vec<f64> = clean.iter().zip(&augmented).map(|(c, a)| a - c).collect();
    let cr = lambda * mean(&diffs, |d| d * d);
    assert_close(host.logged("loss/cr").unwrap(), cr, "logged CR");
    let (r, f) = (augmented, logits(&FAKE, &W, 0.5));
    let hinge = mean(&r, |r| (1.0 - r).max(0.0)) + mean(&f, |f| (1.0 + f).max(0.0));
    assert_close(got, hinge + cr, "hinge D loss with CR");
    let expected_calls = [(Role::Real, true), (Role::Fake, true), (Role::Other, false), (Role::Other, false)];
    assert_eq!(host.calls, expected_calls);
}

#[test]
fn negative_weights_are_refused() {
    let err = loss::<Hinge>("r1_gamma = -1").err().unwrap();
    assert_eq!(err, "key `r1_gamma`: expected a finite number >= 0 (0 turns it off), found -1");
    let err = loss::<WganGp>("gp_lambda = -0.5").err().unwrap();
    assert_eq!(err, "key `gp_lambda`: expected a finite number >= 0 (0 turns it off), found -0.5");
}

#[test]
fn gp_lambda_belongs_to_wgan_gp_only() {
    let err = loss::<Hinge>("gp_lambda = 10").err().unwrap().to_string();
    assert!(err.starts_with("key `gp_lambda`: not a key of this plugin;") && err.ends_with("valid keys: cr_lambda, cr_run_augment, r1_gamma"), "{err}");
}

#[test]
fn library_exports_all_five_losses() {
    let library = crate::lab_plugin_library();
    let names: Vec<&str> = library.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["non-saturating", "minimax", "hinge", "wgan-gp", "least-squares"]);
    let wgan = &library.plugins[3];
    assert_eq!(wgan.default_config.as_str(), "gp_lambda = 10.0\nr1_gamma = 0.0\ncr_lambda = 0.0\ncr_run_augment = false\n");
    assert_eq!(library.plugins[0].default_config.as_str(), "r1_gamma = 0.0\ncr_lambda = 0.0\ncr_run_augment = false\n");
}

#[test]
fn cr_flip_and_shift_moves_pixels_by_at_most_the_padding() {
    lab_plugin_api::tch::manual_seed(3);
    let x = Tensor::arange(2 * 3 * 8 * 8, (Kind::Float, lab_plugin_api::tch::Device::Cpu)).view([2, 3, 8, 8]);
    let y = crate::penalty::flip_and_shift(&x, 2);
    assert_eq!(y.size(), x.size());
    // Every output pixel of a sample comes from that sample (values never cross samples).
    let max0 = y.get(0).max().double_value(&[]);
    assert!(max0 < 192.0, "{max0}");
    assert!(y.get(1).min().double_value(&[]) >= 192.0);
}
