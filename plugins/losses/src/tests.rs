//! Unit tests through the host-side [`Loss`] handle: every call crosses the same `extern "C"`
//! tables the core uses, against the test kit's fake context with a linear "D" whose
//! parameters live in the test.
use lab_plugin_api::host::Loss;
use lab_plugin_api::tch::{Kind, Tensor};
use lab_plugin_api::{LossPlugin, Role, PHASE_D, PHASE_G};
use lab_plugin_testkit::loss::{create, grad_sum, FakeLossHost, B, FAKE, REAL, W};

use crate::{Hinge, LeastSquares, Minimax, NonSaturating, Wgan, WganGp};

/// A weight of norm 1: the linear D's input gradient is a unit vector everywhere.
const W_UNIT: [f64; 4] = [0.5, 0.5, 0.5, 0.5];

/// The fake context in phase `phase` with D's weight `w`.
fn fake_host(phase: &str, w: [f64; 4]) -> FakeLossHost {
    FakeLossHost::with(phase, &REAL, &FAKE, w, B)
}

fn loss<P: LossPlugin>(config: &str) -> lab_plugin_api::Result<Loss> {
    create::<P>(config)
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
    let mut host = fake_host(PHASE_D, W);
    let got = value(&host.loss(&mut loss::<P>(config).unwrap()).unwrap());
    assert_close(got, d(&r, &f), &format!("{} D loss", P::NAME));
    assert_eq!(host.calls, [(Role::Real, true), (Role::Fake, true)], "{}: D sees augmented reals and fakes", P::NAME);
    let mut host = fake_host(PHASE_G, W);
    let got = value(&host.loss(&mut loss::<P>(config).unwrap()).unwrap());
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
fn wgan_matches_its_formula_and_logs_the_critics_estimate() {
    check::<Wgan>("", |r, f| mean(f, |f| f) - mean(r, |r| r), |f| -mean(f, |f| f));
    let (r, f) = (logits(&REAL, &W, 1.0), logits(&FAKE, &W, 1.0));
    let mut host = fake_host(PHASE_D, W);
    let _ = host.loss(&mut loss::<Wgan>("").unwrap()).unwrap();
    assert_close(host.logged("wgan/estimate").unwrap(), mean(&r, |r| r) - mean(&f, |f| f), "W estimate");
}

#[test]
fn the_simultaneous_update_gives_d_and_g_their_losses_from_one_forward_pass() {
    let mut ns = loss::<NonSaturating>("simultaneous = true").unwrap();
    let plan = ns.plan().unwrap();
    assert_eq!((plan.len(), plan[0].name.as_str()), (1, "DG"));
    assert_eq!(plan[0].networks, ["discriminator", "generator"]);
    let mut host = fake_host("DG", W);
    let groups = host.groups(&mut ns).unwrap();
    let (r, f) = (logits(&REAL, &W, 1.0), logits(&FAKE, &W, 1.0));
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].0, ["discriminator"]);
    assert_close(value(groups[0].1.as_ref().unwrap()), mean(&r, |r| softplus(-r)) + mean(&f, softplus), "D's loss");
    assert_eq!(groups[1].0, ["generator"]);
    assert_close(value(groups[1].1.as_ref().unwrap()), mean(&f, |f| softplus(-f)), "G's loss");
    assert_eq!(host.calls, [(Role::Real, true), (Role::Fake, true)], "one D call per batch");
    assert!(loss::<NonSaturating>("").unwrap().plan().unwrap().is_empty(), "the default plan otherwise");
}

#[test]
fn wgan_runs_the_official_critic_schedule() {
    // 100 critic steps on generator steps 0..24 and every 500th, 5 otherwise; then one G step.
    let plan = loss::<Wgan>("").unwrap().plan().unwrap();
    assert_eq!(plan.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), [PHASE_D, PHASE_G]);
    let critic = |step: u64| plan[0].repeats_at(step, 1);
    assert_eq!([0, 24, 25, 26, 499, 500, 501, 1000].map(critic), [100, 100, 5, 5, 5, 100, 5, 100]);
    assert_eq!(plan[1].repeats_at(0, 1), 1);
    // igul222's variant: 5 critic steps throughout.
    let plan = loss::<Wgan>("warmup_first = 0\nwarmup_every = 0").unwrap().plan().unwrap();
    assert_eq!([0, 500].map(|s| plan[0].repeats_at(s, 1)), [5, 5]);
    let err = loss::<Wgan>("n_critic = 0").err().unwrap();
    assert_eq!(err.to_string(), "key `n_critic`: expected a positive integer, found 0");
}

#[test]
fn least_squares_matches_its_formula() {
    check::<LeastSquares>(
        "",
        |r, f| 0.5 * mean(r, |r| (r - 1.0).powi(2)) + 0.5 * mean(f, |f| f * f),
        |f| 0.5 * mean(f, |f| (f - 1.0).powi(2)),
    );
}

#[test]
fn gradients_cross_the_interface() {
    let mut host = fake_host(PHASE_D, W);
    host.loss(&mut loss::<Hinge>("").unwrap()).unwrap().backward();
    assert!(grad_sum(&host.w) > 0.0 && grad_sum(&host.b) > 0.0, "the D loss trains D");
    assert_eq!(grad_sum(&host.fake), 0.0, "the D loss does not reach G");
    let mut host = fake_host(PHASE_G, W);
    host.loss(&mut loss::<NonSaturating>("").unwrap()).unwrap().backward();
    assert!(grad_sum(&host.fake) > 0.0, "the G loss reaches G's output");
}

#[test]
fn gradient_penalty_vanishes_for_a_unit_gradient_critic() {
    let mut host = fake_host(PHASE_D, W_UNIT);
    let got = value(&host.loss(&mut loss::<WganGp>("").unwrap()).unwrap());
    let (r, f) = (logits(&REAL, &W_UNIT, 1.0), logits(&FAKE, &W_UNIT, 1.0));
    assert_close(got, mean(&f, |f| f) - mean(&r, |r| r), "WGAN-GP loss with a 1-Lipschitz linear critic");
    assert!(host.logged("loss/gp").unwrap().abs() < 1e-6);
    assert_eq!(host.calls[2], (Role::Other, false), "interpolates are not augmented");
}

#[test]
fn gradient_penalty_is_differentiable() {
    // A linear critic's input gradient is w everywhere: GP = λ(‖w‖ − 1)², whatever ε is.
    let lambda = 10.0;
    let mut host = fake_host(PHASE_D, W);
    let got = host.loss(&mut loss::<WganGp>("").unwrap()).unwrap();
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
    let mut host = fake_host(PHASE_D, W);
    let got = value(&host.loss(&mut loss::<NonSaturating>("r1_gamma = 2").unwrap()).unwrap());
    let r1 = gamma / 2.0 * norm(&W).powi(2);
    assert_close(host.logged("loss/r1").unwrap(), r1, "logged R1");
    let (r, f) = (logits(&REAL, &W, 1.0), logits(&FAKE, &W, 1.0));
    assert_close(got, mean(&r, |r| softplus(-r)) + mean(&f, softplus) + r1, "D loss with R1");
    assert_eq!(host.calls, [(Role::Real, true), (Role::Fake, true)], "R1 reuses the real pass");
}

#[test]
fn r1_differentiates_through_the_augmentation() {
    let mut host = fake_host(PHASE_D, W);
    host.augment_scale = 0.5;
    let _ = host.loss(&mut loss::<Hinge>("r1_gamma = 2").unwrap()).unwrap();
    assert_close(host.logged("loss/r1").unwrap(), (0.5 * norm(&W)).powi(2), "R1 of D(T(x)) w.r.t. x");
}

#[test]
fn consistency_compares_clean_and_augmented_reals() {
    let lambda = 3.0;
    let mut host = fake_host(PHASE_D, W);
    host.augment_scale = 0.5;
    let got = value(&host.loss(&mut loss::<Hinge>("cr_lambda = 3\ncr_run_augment = true").unwrap()).unwrap());
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
    assert!(
        err.starts_with("key `gp_lambda`: not a key of this plugin;")
            && err.ends_with("valid keys: cr_lambda, cr_run_augment, r1_gamma, simultaneous"),
        "{err}"
    );
}

#[test]
fn library_exports_all_six_losses() {
    let library = crate::lab_plugin_library();
    let names: Vec<&str> = library.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["non-saturating", "minimax", "hinge", "wgan-gp", "least-squares", "wgan"]);
    let wgan = &library.plugins[3];
    assert_eq!(
        wgan.default_config.as_str(),
        "gp_lambda = 10.0\nr1_gamma = 0.0\ncr_lambda = 0.0\ncr_run_augment = false\n"
    );
    assert_eq!(
        library.plugins[0].default_config.as_str(),
        "r1_gamma = 0.0\ncr_lambda = 0.0\ncr_run_augment = false\nsimultaneous = false\n"
    );
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
