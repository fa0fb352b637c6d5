//! Each rule against the update written out from its paper / PyTorch's documentation, in
//! float64 on a two-element parameter.
use tch::{Kind, Tensor};

use super::*;
use crate::config::{OptimConfig, ScheduleConfig};

fn settings(kind: &str) -> OptimSettings {
    OptimConfig { kind: kind.into(), ..OptimConfig::default() }.defaults()
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::try_from(&t.detach().to_kind(Kind::Double)).unwrap()
}

/// Runs `steps` updates of `opt` on p with the fixed gradient g = [0.5, -2.0].
fn run(mut opt: Optimizer, steps: u64) -> Vec<f64> {
    let g = Tensor::from_slice(&[0.5f64, -2.0]);
    for s in 0..steps {
        opt.step(&[g.shallow_clone()], s);
    }
    values(&opt.params[0])
}

fn param() -> Tensor {
    Tensor::from_slice(&[1.0f64, -1.0])
}

#[test]
fn adam_first_step_moves_by_lr_against_the_gradient_sign() {
    let mut s = settings("adam");
    s.hyper.lr = 0.1;
    let p = run(Optimizer::new(s, vec![param()], 1.0, 10, false), 1);
    assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 0.9).abs() < 1e-6, "{p:?}");
}

#[test]
fn sgd_with_momentum_and_nesterov_match_the_written_out_updates() {
    let mut s = settings("sgd");
    s.hyper.lr = 0.1;
    s.hyper.momentum = 0.9;
    // buf1 = g, buf2 = 0.9 g + g = 1.9 g: p2 = p0 − 0.1 (g + 1.9 g) = p0 − 0.29 g.
    let p = run(Optimizer::new(s.clone(), vec![param()], 1.0, 10, false), 2);
    assert!((p[0] - (1.0 - 0.29 * 0.5)).abs() < 1e-12 && (p[1] - (-1.0 + 0.29 * 2.0)).abs() < 1e-12, "{p:?}");
    s.hyper.nesterov = true;
    // Nesterov: step direction g + 0.9 buf: (1 + 0.9) g then (1 + 0.9·1.9) g.
    let p = run(Optimizer::new(s, vec![param()], 1.0, 10, false), 2);
    let total = 0.1 * (1.9 + 1.0 + 0.9 * 1.9);
    assert!((p[0] - (1.0 - total * 0.5)).abs() < 1e-12, "{p:?}");
}

#[test]
fn rmsprop_matches_the_written_out_update() {
    let mut s = settings("rmsprop");
    s.hyper.lr = 0.01;
    let p = run(Optimizer::new(s, vec![param()], 1.0, 10, false), 1);
    // square_avg = (1 − α) g², step = lr · g / (sqrt(square_avg) + eps).
    let expect = |g: f64| 0.01 * g / ((0.01f64 * g * g).sqrt() + 1e-8);
    assert!((p[0] - (1.0 - expect(0.5))).abs() < 1e-12, "{p:?}");
    assert!((p[1] - (-1.0 - expect(-2.0))).abs() < 1e-12, "{p:?}");
}

#[test]
fn adagrad_matches_the_written_out_update() {
    let mut s = settings("adagrad");
    s.hyper.lr = 0.1;
    let p = run(Optimizer::new(s, vec![param()], 1.0, 10, false), 2);
    // sum1 = g², sum2 = 2 g²: p2 = p0 − 0.1 g (1/|g| + 1/(√2 |g|)) (eps aside).
    let moved = 0.1 * (1.0 + 1.0 / 2f64.sqrt());
    assert!((p[0] - (1.0 - moved)).abs() < 1e-6 && (p[1] - (-1.0 + moved)).abs() < 1e-6, "{p:?}");
}

#[test]
fn clipping_keeps_every_parameter_within_the_bound_after_each_step() {
    let mut s = settings("rmsprop");
    s.hyper.lr = 0.5;
    s.clip = 0.01;
    let mut opt = Optimizer::new(s, vec![Tensor::randn([64], (Kind::Double, tch::Device::Cpu))], 1.0, 10, false);
    for step in 0..5 {
        opt.step(&[Tensor::randn([64], (Kind::Double, tch::Device::Cpu))], step);
        let max = opt.params[0].abs().max().double_value(&[]);
        assert!(max <= 0.01, "step {step}: max |w| = {max}");
    }
}

#[test]
fn schedules_follow_their_formulas() {
    let linear = ScheduleConfig { kind: "linear".into(), start: 10, ..ScheduleConfig::default() };
    assert_eq!(schedule::lr(1.0, &linear, 5, 110), 1.0);
    assert_eq!(schedule::lr(1.0, &linear, 60, 110), 0.5);
    assert_eq!(schedule::lr(1.0, &linear, 110, 110), 0.0);
    let exp = ScheduleConfig { kind: "exponential".into(), factor: 0.5, floor: 0.2, ..ScheduleConfig::default() };
    assert_eq!(schedule::lr(1.0, &exp, 1, 0), 0.5);
    assert_eq!(schedule::lr(1.0, &exp, 5, 0), 0.2);
    let step = ScheduleConfig { kind: "step".into(), every: 100, ..ScheduleConfig::default() };
    assert_eq!(schedule::lr(1.0, &step, 99, 0), 1.0);
    assert_eq!(schedule::lr(1.0, &step, 250, 0), 0.25);
    let inverse = ScheduleConfig { kind: "inverse".into(), every: 50, ..ScheduleConfig::default() };
    assert_eq!(schedule::lr(1.0, &inverse, 0, 0), 1.0);
    assert_eq!(schedule::lr(1.0, &inverse, 150, 0), 0.25);
    // VAE-GAN's annealing: 0.025 → 1e-5 over 200 epochs of 250 batches, exponent 0.75, set at
    // each epoch's start (epoch 100 of 200: 0.025 − 0.5^0.75 · (0.025 − 1e-5)).
    let power = ScheduleConfig {
        kind: "power".into(),
        every: 250,
        end: 50_000,
        power: 0.75,
        floor: 1e-5,
        ..ScheduleConfig::default()
    };
    assert_eq!(schedule::lr(0.025, &power, 249, 0), 0.025);
    let halfway = 0.025 - 0.5f64.powf(0.75) * (0.025 - 1e-5);
    assert!((schedule::lr(0.025, &power, 25_000, 0) - halfway).abs() < 1e-15);
    assert!((schedule::lr(0.025, &power, 25_249, 0) - halfway).abs() < 1e-15);
    assert!((schedule::lr(0.025, &power, 60_000, 0) - 1e-5).abs() < 1e-15);
    // `end = 0` means the run's length.
    let to_the_end = ScheduleConfig { end: 0, every: 1, power: 1.0, floor: 0.0, ..power };
    assert!((schedule::lr(1.0, &to_the_end, 25, 100) - 0.75).abs() < 1e-15);
    let ramp = ScheduleConfig { momentum_to: Some(0.7), momentum_steps: 100, ..ScheduleConfig::default() };
    assert!((schedule::ramp(0.5, 0.7, &ramp, 50) - 0.6).abs() < 1e-12);
    assert_eq!(schedule::ramp(0.5, 0.7, &ramp, 500), 0.7);
}

#[test]
fn lazy_regularisation_rescales_lr_and_betas() {
    let s = settings("adam");
    let opt = Optimizer::new(s.clone(), vec![param()], 16.0 / 17.0, 10, false);
    let h = opt.hyper(0);
    assert!((h.lr - s.hyper.lr * 16.0 / 17.0).abs() < 1e-15);
    assert!((h.betas[0] - s.hyper.betas[0].powf(16.0 / 17.0)).abs() < 1e-15);
    assert!((h.betas[1] - s.hyper.betas[1].powf(16.0 / 17.0)).abs() < 1e-15);
}

/// Parameters of several shapes (a conv weight, a bias, a scalar gain) in float32.
fn network() -> Vec<Tensor> {
    [vec![8, 3, 3, 3], vec![8], vec![], vec![5, 7]]
        .into_iter()
        .map(|shape| Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu)))
        .collect()
}

#[test]
fn fused_and_per_tensor_updates_agree_step_by_step_for_every_kind() {
    tch::manual_seed(7);
    let start = network();
    let grads: Vec<Vec<Tensor>> = (0..25).map(|_| network()).collect();
    for kind in ["adam", "rmsprop", "sgd", "adagrad"] {
        let mut s = settings(kind);
        s.hyper.lr = 0.01;
        s.hyper.momentum = if kind == "adam" || kind == "adagrad" { 0.0 } else { 0.9 };
        s.hyper.weight_decay = 1e-3;
        s.clip = 0.9;
        let copy = || start.iter().map(|p| p.copy()).collect::<Vec<_>>();
        let held = copy();
        let mut fused = Optimizer::new(s.clone(), held.iter().map(Tensor::shallow_clone).collect(), 1.0, 10, true);
        let mut single = Optimizer::new(s, copy(), 1.0, 10, false);
        assert!(fused.fused() && !single.fused());
        for (step, g) in grads.iter().enumerate() {
            fused.step(g, step as u64);
            single.step(g, step as u64);
            for (i, (a, b)) in fused.params.iter().zip(&single.params).enumerate() {
                let diff = (a - b).abs().max().double_value(&[]);
                assert!(diff == 0.0, "{kind}, step {step}, parameter {i}: fused and per-tensor differ by {diff}");
                // The caller's handle to the parameter (the plugin's, in a run) sees the update.
                assert!(held[i].equal(a), "{kind}: a held handle of parameter {i} was left behind");
            }
            for ((slot, a), (_, b)) in fused.slots.iter().zip(&single.slots) {
                for (x, y) in a.iter().zip(b) {
                    assert!(x.equal(y), "{kind}, step {step}: slot `{slot}` differs");
                }
            }
        }
    }
}

#[test]
fn a_parameter_the_loss_did_not_reach_keeps_its_state_when_fused() {
    tch::manual_seed(8);
    let s = settings("adam");
    let mut fused = Optimizer::new(s.clone(), network(), 1.0, 10, true);
    let mut single = Optimizer::new(s, fused.params.iter().map(|p| p.copy()).collect(), 1.0, 10, false);
    let mut g = network();
    g[1] = Tensor::new();
    for step in 0..3 {
        fused.step(&g, step);
        single.step(&g, step);
    }
    for (a, b) in fused.params.iter().zip(&single.params) {
        assert!(a.equal(b));
    }
    assert!(fused.slots[0].1[1].abs().max().double_value(&[]) == 0.0, "the unreached bias's `m` stays zero");
}

#[test]
fn a_fused_buffer_knows_the_tensors_it_holds() {
    // The trainer steps a network per tensor when another network's buffer already holds one
    // of its parameters (shared parameters must not be moved twice).
    tch::manual_seed(9);
    let params = network();
    let held: Vec<Tensor> = params.iter().map(Tensor::shallow_clone).collect();
    let fused = Optimizer::new(settings("adam"), params, 1.0, 10, true);
    assert!(held.iter().all(|p| fused.holds(p)));
    assert!(!fused.holds(&Tensor::zeros([3], (Kind::Float, tch::Device::Cpu))));
    let single = Optimizer::new(settings("adam"), network(), 1.0, 10, false);
    assert!(!single.holds(&single.params[0]));
}

#[test]
fn channels_last_weights_stay_channels_last_in_the_fused_buffer_and_update_alike() {
    // `train.channels_last`: the conv weights enter the buffer in NHWC order. Their views must
    // keep that layout (the plugin's convolutions pick kernels by it), and the update must equal
    // the per-tensor loop's whether autograd's gradients come channels-last or contiguous.
    use crate::train::layout;
    tch::manual_seed(10);
    let start: Vec<Tensor> = network()
        .iter()
        .chain([Tensor::randn([4, 8, 1, 1], (Kind::Float, tch::Device::Cpu))].iter())
        .map(layout::channels_last)
        .collect();
    let grads: Vec<Vec<Tensor>> = (0..10)
        .map(|step| {
            let g = network().into_iter().chain([Tensor::randn([4, 8, 1, 1], (Kind::Float, tch::Device::Cpu))]);
            g.map(|g| if step % 2 == 0 { layout::channels_last(&g) } else { g }).collect()
        })
        .collect();
    let held: Vec<Tensor> = start.iter().map(|p| p.copy()).collect();
    assert!(layout::is_channels_last(&held[0]) && layout::is_channels_last(&held[4]));
    let mut fused = Optimizer::new(settings("adam"), held.iter().map(Tensor::shallow_clone).collect(), 1.0, 10, true);
    let mut single = Optimizer::new(settings("adam"), start.iter().map(|p| p.copy()).collect(), 1.0, 10, false);
    assert!(fused.fused());
    for (i, p) in held.iter().enumerate() {
        assert!(fused.holds(p), "parameter {i} is a view of the buffer");
        assert_eq!(p.stride(), start[i].stride(), "parameter {i} changed layout when adopted");
    }
    for (step, g) in grads.iter().enumerate() {
        fused.step(g, step as u64);
        single.step(g, step as u64);
        for (i, (a, b)) in held.iter().zip(&single.params).enumerate() {
            assert!(a.equal(b), "step {step}, parameter {i}: fused and per-tensor differ");
        }
    }
    // The first weight's first elements in the buffer are its (0, :, 0, 0) channels, NHWC.
    let w = &held[0];
    let first: Vec<f32> = Vec::try_from(fused.flat_params().unwrap().narrow(0, 0, 3)).unwrap();
    let expected: Vec<f32> = Vec::try_from(w.get(0).select(1, 0).select(1, 0).narrow(0, 0, 3).contiguous()).unwrap();
    assert_eq!(first, expected);
}
