//! Tests of `ada`: the controller's adjustments on constructed sequences of D outputs, its
//! clamping and checkpointed state, and the policy applied at strength p. The plugin is created
//! through its descriptor's factory and driven through the host-side handle, as the core does.
use lab_plugin_api::augment::{descriptor, Augment as Handle};
use lab_plugin_api::library::{into_result, Factory};
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::{BuildEnv, DataSpec};

use crate::{rng_lock, Ada, AdaConfig};

fn env(height: i64, width: i64) -> BuildEnv {
    BuildEnv::from_device(Device::Cpu, DataSpec { channels: 3, height, width, num_classes: 0 })
}

/// Creates the plugin exactly as the core does: config text → descriptor's factory → handle.
fn ada(config: &str) -> lab_plugin_api::Result<Handle> {
    let Factory::Augmentation(create) = descriptor::<Ada>("0").factory else { panic!("not an augmentation") };
    let obj = into_result(create(config.into(), env(32, 32)))?;
    // SAFETY: the factory comes from this very crate, linked in, so it outlives the handle.
    Ok(unsafe { Handle::from_raw(obj) })
}

fn p(handle: &Handle) -> f64 {
    scalar(handle, "p").expect("p is always logged")
}

fn scalar(handle: &Handle, name: &str) -> Option<f64> {
    handle.scalars().unwrap().into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// D's logits on a real batch of `n` images, `positive` of them above 0.
fn logits(n: i64, positive: i64) -> Tensor {
    let signs: Vec<f32> = (0..n).map(|i| if i < positive { 2.5 } else { -0.7 }).collect();
    Tensor::from_slice(&signs).view([n, 1])
}

/// The adjustment size of one interval of the default config with 64 images per D step.
const STEP_64: f64 = (64 * 4) as f64 / (500.0 * 1000.0);

#[test]
fn p_rises_by_exactly_one_step_per_interval_when_d_overfits() {
    let mut h = ada("").unwrap();
    assert_eq!(p(&h), 0.0);
    assert_eq!(scalar(&h, "rt"), None, "r_t is not logged before it is measured");
    for interval in 1..=3 {
        for call in 1..=4 {
            h.feedback(&logits(64, 64)).unwrap();
            let expected = if call < 4 { (interval - 1) as f64 * STEP_64 } else { interval as f64 * STEP_64 };
            assert!((p(&h) - expected).abs() < 1e-15, "interval {interval}, call {call}: p = {}", p(&h));
        }
        assert_eq!(scalar(&h, "rt"), Some(1.0));
    }
    eprintln!("all-positive logits: p = {:.6} after 3 intervals (step {STEP_64:.6})", p(&h));
}

#[test]
fn p_falls_when_d_does_not_overfit() {
    let mut h = ada("initial_p = 0.5").unwrap();
    for _ in 0..4 {
        h.feedback(&logits(64, 0)).unwrap();
    }
    assert_eq!(p(&h), 0.5 - STEP_64);
    assert_eq!(scalar(&h, "rt"), Some(-1.0));
    // r_t = 0.5 (48 of 64 positive) is still below the target 0.6.
    for _ in 0..4 {
        h.feedback(&logits(64, 48)).unwrap();
    }
    assert_eq!(p(&h), 0.5 - 2.0 * STEP_64);
    assert_eq!(scalar(&h, "rt"), Some(0.5));
}

#[test]
fn p_stays_when_rt_is_on_target() {
    let mut h = ada("initial_p = 0.25").unwrap();
    for _ in 0..4 {
        h.feedback(&logits(10, 8)).unwrap(); // (8 − 2) / 10 = 0.6
    }
    assert_eq!(scalar(&h, "rt"), Some(0.6));
    assert_eq!(p(&h), 0.25);
}

#[test]
fn adjustment_size_follows_batch_size_interval_and_speed() {
    // Images counted from D's outputs: [N, K] logits are N images.
    let mut h = ada("interval = 2\nadjust_kimg = 100").unwrap();
    for _ in 0..2 {
        h.feedback(&Tensor::ones([16, 3], (Kind::Float, Device::Cpu))).unwrap();
    }
    assert_eq!(p(&h), (16 * 2) as f64 / (100.0 * 1000.0));
    // A configured batch size takes precedence over the count.
    let mut h = ada("interval = 2\nadjust_kimg = 100\nbatch_size = 50").unwrap();
    for _ in 0..2 {
        h.feedback(&logits(16, 16)).unwrap();
    }
    assert_eq!(p(&h), (50 * 2) as f64 / (100.0 * 1000.0));
}

#[test]
fn p_is_clamped_to_0_1() {
    let mut h = ada("initial_p = 0.9999").unwrap();
    for _ in 0..8 {
        h.feedback(&logits(64, 64)).unwrap();
    }
    assert_eq!(p(&h), 1.0);
    let mut h = ada("initial_p = 0.0001").unwrap();
    for _ in 0..8 {
        h.feedback(&logits(64, 0)).unwrap();
    }
    assert_eq!(p(&h), 0.0);
}

#[test]
fn state_round_trip_resumes_exactly() {
    // Stop mid-interval, restore into a fresh plugin, and continue: the same p and state as an
    // uninterrupted run.
    let batches: Vec<Tensor> = (0..14).map(|i| logits(32, (i * 7) % 33)).collect();
    let mut whole = ada("initial_p = 0.3").unwrap();
    let mut first = ada("initial_p = 0.3").unwrap();
    for b in &batches[..6] {
        whole.feedback(b).unwrap();
        first.feedback(b).unwrap();
    }
    let saved = first.state().unwrap();
    let mut resumed = ada("").unwrap();
    resumed.load_state(&saved).unwrap();
    assert_eq!(resumed.state().unwrap(), saved);
    for b in &batches[6..] {
        whole.feedback(b).unwrap();
        resumed.feedback(b).unwrap();
    }
    assert_eq!(resumed.state().unwrap(), whole.state().unwrap());
    assert_eq!(resumed.scalars().unwrap(), whole.scalars().unwrap());
    eprintln!("state after 6 calls: {saved}");
}

#[test]
fn invalid_state_and_config_are_refused() {
    let mut h = ada("").unwrap();
    let err =
        h.load_state(r#"{"p":1.5,"rt":null,"sign_sum":0.0,"logits":0,"images":0,"calls":0}"#).unwrap_err().to_string();
    assert_eq!(err, "invalid ada state: `p` must be in [0, 1], found 1.5");
    assert!(h.load_state(r#"{"p":0.5}"#).unwrap_err().to_string().starts_with("invalid ada state"));
    h.load_state("{}").unwrap();
    assert_eq!(p(&h), 0.0, "an empty state keeps the current one");
    assert_eq!(
        ada("target = 2").err().unwrap(),
        "key `target`: expected a number in [-1, 1] (the paper uses 0.6), found 2"
    );
    assert_eq!(ada("interval = 0").err().unwrap(), "key `interval`: expected an integer >= 1, found 0");
    assert_eq!(
        ada(r#"policy = [{ op = "rotate", degress = 10 }]"#).err().unwrap(),
        "`policy[0].degress`: op `rotate` has no parameter `degress`; did you mean `degrees`? \
         valid keys: op, degrees, p, padding"
    );
    let Factory::Augmentation(create) = descriptor::<Ada>("0").factory else { unreachable!() };
    let err = into_result(create("".into(), env(28, 32))).err().unwrap();
    assert_eq!(err, "`policy[1]`: `rotate90` needs square images, but the data is 28×32 (H×W); remove that entry");
}

#[test]
fn default_config_round_trips() {
    let text = lab_plugin_api::config::default_toml::<AdaConfig>();
    let parsed: AdaConfig = lab_plugin_api::config::parse(&text).unwrap();
    assert_eq!(parsed, AdaConfig::default(), "{text}");
    let names: Vec<&str> = parsed.pipeline().unwrap().steps().iter().map(|s| s.op.name()).collect();
    assert_eq!(
        names,
        [
            "hflip",
            "rotate90",
            "translate",
            "scale",
            "rotate",
            "aniso",
            "subpixel_translate",
            "brightness",
            "contrast",
            "saturation"
        ]
    );
}

#[test]
fn p_settles_where_rt_meets_the_target() {
    // A toy D whose confidence on reals drops as augmentation rises: r_t = 0.9 − p, so the
    // controller should hold p near 0.3.
    let mut h = ada("adjust_kimg = 10").unwrap();
    let mut trace = Vec::new();
    for _ in 0..400 {
        let rt = 0.9 - p(&h);
        let positive = ((1.0 + rt) / 2.0 * 64.0).round() as i64;
        h.feedback(&logits(64, positive)).unwrap();
        trace.push(p(&h));
    }
    let tail = &trace[300..];
    let mean = tail.iter().sum::<f64>() / tail.len() as f64;
    eprintln!("toy D with r_t = 0.9 − p: p averages {mean:.4} over the last 100 D steps");
    assert!((mean - 0.3).abs() < 0.03, "p settled at {mean}");
}

#[test]
fn augmentation_strength_follows_p() {
    let _rng = rng_lock();
    let x = Tensor::rand([2000, 3, 8, 8], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let mut h = ada(r#"policy = [{ op = "brightness", p = 0.5 }]"#).unwrap();
    // p = 0: untouched.
    assert!(h.apply(&x, 1).unwrap().equal(&x));
    // At p = 0.6 a step with its own p = 0.5 applies to 30 % of the samples.
    let state = r#"{"p":0.6,"rt":null,"sign_sum":0.0,"logits":0,"images":0,"calls":0}"#;
    h.load_state(state).unwrap();
    let y = h.apply(&x, 1).unwrap();
    let changed = y.ne_tensor(&x).flatten(1, -1).any_dim(1, false).to_kind(Kind::Double).mean(Kind::Double);
    let rate = changed.double_value(&[]);
    eprintln!("p = 0.6, step p = 0.5: {rate:.3} of the samples augmented (expected 0.3)");
    assert!((rate - 0.3).abs() < 0.03);
    assert!(y.equal(&h.apply(&x, 1).unwrap()), "same seed, same output");
    assert!(!y.equal(&h.apply(&x, 2).unwrap()));
}

#[test]
fn default_policy_at_full_strength_is_differentiable() {
    let _rng = rng_lock();
    let mut h = ada("initial_p = 1").unwrap();
    let x = (Tensor::rand([16, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0).set_requires_grad(true);
    let y = h.apply(&x, 5).unwrap();
    assert_eq!(y.size(), x.size());
    assert!(y.isfinite().all().int64_value(&[]) == 1);
    let unchanged = y.eq_tensor(&x).flatten(1, -1).all_dim(1, false).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(unchanged, 0, "at p = 1 every sample is augmented");
    y.sum(Kind::Float).backward();
    let grad = x.grad();
    assert!(grad.isfinite().all().int64_value(&[]) == 1);
    assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}
