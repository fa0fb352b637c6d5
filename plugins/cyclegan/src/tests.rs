//! Unit tests: the networks (parameter counts, shapes), the image pool against its definition,
//! the loss through the core's tables, the measures through a four-split context, and the
//! float64 cross-check against the PyTorch re-implementation in `reference/`.
use std::collections::BTreeMap;
use std::path::Path;

use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_REFERENCE_B, SPLIT_TRAIN, SPLIT_TRAIN_B};
use lab_plugin_api::host::{Architecture, EvalHost, Factory, Loss, LossHost, VisualHost};
use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Error, Network, Result, Role};
use lab_plugin_testkit::network::trainable_count;
use lab_plugin_testkit::reference;

use crate::model::{DISCRIMINATOR_A, DISCRIMINATOR_B, GENERATOR_AB, GENERATOR_BA};
use crate::pool::ImagePool;
use crate::{CycleGan, CycleGanConfig, CycleGanLoss};

const NETWORKS: [&str; 4] = [GENERATOR_AB, GENERATOR_BA, DISCRIMINATOR_A, DISCRIMINATOR_B];

fn square(channels: i64, side: i64) -> DataSpec {
    DataSpec { channels, height: side, width: side, num_classes: 0 }
}

fn arch(config: CycleGanConfig, channels: i64, side: i64) -> CycleGan {
    <CycleGan as ArchitecturePlugin>::create(config, BuildEnv::from_device(Device::Cpu, square(channels, side)))
        .expect("valid config")
}

fn tiny() -> CycleGanConfig {
    CycleGanConfig { ngf: 4, ndf: 6, n_blocks: 2, ..Default::default() }
}

fn images(n: i64, channels: i64, side: i64, kind: Kind) -> Tensor {
    Tensor::rand([n, channels, side, side], (kind, Device::Cpu)) * 2.0 - 1.0
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

// ---------------------------------------------------------------------------------------------
// Networks

/// The official code's counts for `--model cycle_gan` at its defaults (resnet_9blocks G, basic D,
/// instance norm, 3 channels): 11,378,179 per generator and 2,764,737 per discriminator. By hand:
/// G = stem 3·64·49 + 64, down 64·128·9 + 128 and 128·256·9 + 256, 9 blocks of 2·(256·256·9 + 256),
/// up 256·128·9 + 128 and 128·64·9 + 64, head 64·3·49 + 3; D = 3·64·16 + 64, 64·128·16 + 128,
/// 128·256·16 + 256, 256·512·16 + 512, 512·16 + 1. Grey images change only the first and last
/// layers of G and D's first: 11,365,633 and 2,762,689.
#[test]
fn parameter_counts_are_the_official_networks() {
    let _rng = crate::rng_lock();
    for (channels, side, g_expected, d_expected) in [(3, 256, 11_378_179, 2_764_737), (1, 32, 11_365_633, 2_762_689)] {
        let a = arch(CycleGanConfig::default(), channels, side);
        let counts: Vec<i64> = NETWORKS.iter().map(|n| trainable_count(&*a.build(n).unwrap())).collect();
        println!(
            "cyclegan {channels}×{side}²: G_AB {} G_BA {} D_A {} D_B {}",
            counts[0], counts[1], counts[2], counts[3]
        );
        assert_eq!(counts, [g_expected, g_expected, d_expected, d_expected], "{channels} channels");
    }
}

#[test]
fn generators_keep_the_image_shape_and_discriminators_give_patch_maps() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let a = arch(tiny(), 3, 32);
    let mut g = a.build(GENERATOR_BA).unwrap();
    let x = images(2, 3, 32, Kind::Float);
    let y = g.forward(&[x.shallow_clone()], true).unwrap().remove(0);
    assert_eq!(y.size(), [2, 3, 32, 32]);
    assert!(max_abs(&y) < 1.0, "tanh output");
    let mut d = a.build(DISCRIMINATOR_B).unwrap();
    // 32 → 16 → 8 → 4, then two stride-1 4×4 layers with padding 1: 3, 2.
    assert_eq!(d.forward(&[y], true).unwrap()[0].size(), [2, 1, 2, 2]);
    let err = g.forward(&[Tensor::zeros([2, 1], (Kind::Float, Device::Cpu))], false).unwrap_err().to_string();
    assert!(err.contains("translates images [N, 3, H, W]") && err.contains("eval.metrics"), "{err}");
    let names: Vec<String> = g.tensors().into_iter().map(|(n, ..)| n).collect();
    for name in ["stem.weight", "down2.bias", "blocks.1.conv2.weight", "up1.weight", "head.bias"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(a.build("discriminator").is_err());
}

#[test]
fn configs_are_checked_naming_the_key() {
    let env = BuildEnv::from_device(Device::Cpu, square(1, 30));
    let err = <CycleGan as ArchitecturePlugin>::create(CycleGanConfig::default(), env).err().unwrap();
    assert!(err.to_string().contains("multiple of 4"), "{err}");
    let env = BuildEnv::from_device(Device::Cpu, square(1, 16));
    let err = <CycleGan as ArchitecturePlugin>::create(CycleGanConfig::default(), env).err().unwrap();
    assert_eq!(err.key.as_deref(), Some("d_layers"), "{err}");
    assert!(err.to_string().contains("at least 24 pixels"), "{err}");
    let parsed = lab_plugin_api::config::parse::<CycleGanConfig>("norm = \"group\"").err().unwrap().to_string();
    assert!(parsed.contains("instance"), "{parsed}");
    let loss = lab_plugin_testkit::loss::create::<CycleGanLoss>("pool_size = -1").err().unwrap();
    assert!(loss.to_string().contains("pool_size") || loss.key.as_deref() == Some("pool_size"), "{loss}");
}

// ---------------------------------------------------------------------------------------------
// The image pool

/// `n` images of 1×2×2, image i filled with `first + i`.
fn numbered(first: f64, n: i64) -> Tensor {
    (Tensor::arange(n, (Kind::Float, Device::Cpu)) + first).view([n, 1, 1, 1]).expand([n, 1, 2, 2], false).copy()
}

fn values(pool: &ImagePool) -> Vec<f64> {
    pool.images().iter().map(|t| t.double_value(&[0, 0, 0])).collect()
}

#[test]
fn the_pool_fills_first_returning_what_it_stores() {
    let _rng = crate::rng_lock();
    tch::manual_seed(1);
    let mut pool = ImagePool::new(5, Device::Cpu);
    let out = pool.query(&numbered(0.0, 3));
    assert_eq!(out.view([3, 4]).select(1, 0), numbered(0.0, 3).view([3, 4]).select(1, 0));
    assert_eq!(values(&pool), [0.0, 1.0, 2.0]);
    // Two more fill it; the sixth image of this batch meets a full pool.
    let _ = pool.query(&numbered(3.0, 2));
    assert_eq!(values(&pool), [0.0, 1.0, 2.0, 3.0, 4.0]);
}

/// Once full: each query returns an old image with probability ½ (counted over 4000 queries,
/// within 5 standard deviations of 2000), that old image is replaced by the new one in the same
/// slot and nothing else moves, and otherwise the new image comes back and the pool is as it was.
/// Slots are chosen uniformly (each of 5 within 5 sd of a fifth of the swaps).
#[test]
fn a_full_pool_swaps_half_the_time_and_replaces_what_it_returns() {
    let _rng = crate::rng_lock();
    tch::manual_seed(2);
    let mut pool = ImagePool::new(5, Device::Cpu);
    let _ = pool.query(&numbered(0.0, 5));
    let queries = 4000;
    let (mut swaps, mut per_slot) = (0, [0; 5]);
    for q in 0..queries {
        let before = values(&pool);
        let new = 100.0 + q as f64;
        let out = pool.query(&numbered(new, 1)).double_value(&[0, 0, 0, 0]);
        let after = values(&pool);
        if out == new {
            assert_eq!(after, before, "a returned new image leaves the pool as it was");
        } else {
            swaps += 1;
            let changed: Vec<usize> = (0..5).filter(|&i| after[i] != before[i]).collect();
            assert_eq!(changed.len(), 1, "one slot changes: {before:?} → {after:?}");
            assert_eq!(
                (before[changed[0]], after[changed[0]]),
                (out, new),
                "the returned image's slot takes the new one"
            );
            per_slot[changed[0]] += 1;
        }
    }
    let sd = (queries as f64 * 0.25).sqrt();
    println!(
        "image pool: {swaps} old images returned in {queries} queries (expected {}, sd {sd:.1}); per slot {per_slot:?}",
        queries / 2
    );
    assert!(((swaps as f64) - queries as f64 / 2.0).abs() < 5.0 * sd, "{swaps}");
    let slot_sd = (swaps as f64 * 0.2 * 0.8).sqrt();
    for count in per_slot {
        assert!(((count as f64) - swaps as f64 / 5.0).abs() < 5.0 * slot_sd, "{per_slot:?}");
    }
}

#[test]
fn a_pool_of_size_zero_is_the_identity() {
    let mut pool = ImagePool::new(0, Device::Cpu);
    let x = images(4, 1, 2, Kind::Float);
    for _ in 0..3 {
        assert_eq!(pool.query(&x), x);
    }
    assert!(pool.is_empty());
}

#[test]
fn the_pool_state_round_trips_bit_exactly_and_refuses_damage() {
    let _rng = crate::rng_lock();
    tch::manual_seed(3);
    for kind in [Kind::Float, Kind::Double] {
        let mut pool = ImagePool::new(6, Device::Cpu);
        // Values that need every bit: random, tiny, negative zero, subnormal-ish.
        let x = Tensor::randn([4, 3, 5, 5], (kind, Device::Cpu)) * 1e-3;
        let _ = pool.query(&x);
        let state = pool.state().unwrap();
        let json = serde_json::to_string(&state).unwrap();
        let mut restored = ImagePool::new(6, Device::Cpu);
        restored.load_state(&serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(restored.len(), 4);
        for (a, b) in pool.images().iter().zip(restored.images()) {
            assert_eq!(a.kind(), b.kind());
            assert!(a.equal(b), "bit-exact");
        }
        // The restored pool continues exactly as the original.
        let next = Tensor::randn([5, 3, 5, 5], (kind, Device::Cpu));
        tch::manual_seed(4);
        let out_a = pool.query(&next);
        tch::manual_seed(4);
        let out_b = restored.query(&next);
        assert!(out_a.equal(&out_b));
        for (a, b) in pool.images().iter().zip(restored.images()) {
            assert!(a.equal(b));
        }
    }
    let mut pool = ImagePool::new(2, Device::Cpu);
    let _ = pool.query(&images(2, 1, 2, Kind::Float));
    let good = pool.state().unwrap();
    let mut damaged = good.clone();
    damaged.data.truncate(8);
    let err = ImagePool::new(2, Device::Cpu).load_state(&damaged).unwrap_err().to_string();
    assert!(err.contains("malformed") && err.contains("bytes"), "{err}");
    let mut damaged = good.clone();
    damaged.dtype = "int8".into();
    assert!(ImagePool::new(2, Device::Cpu).load_state(&damaged).unwrap_err().to_string().contains("dtype"));
    let err = ImagePool::new(1, Device::Cpu).load_state(&good).unwrap_err();
    assert!(err.to_string().contains("pool_size"), "{err}");
    let empty = ImagePool::new(3, Device::Cpu).state().unwrap();
    let mut restored = ImagePool::new(3, Device::Cpu);
    restored.load_state(&empty).unwrap();
    assert!(restored.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The loss, through the core's tables

/// A core stand-in that runs the four networks for `run_network`.
struct Host {
    phase: String,
    step: u64,
    real: Tensor,
    real_b: Option<Tensor>,
    nets: BTreeMap<String, Box<dyn Network>>,
    logged: BTreeMap<String, f64>,
}

impl Host {
    fn new(a: &CycleGan, real: Tensor, real_b: Option<Tensor>) -> Self {
        let nets = NETWORKS.iter().map(|n| (n.to_string(), a.build(n).unwrap())).collect();
        Self { phase: "G".into(), step: 0, real, real_b, nets, logged: BTreeMap::new() }
    }

    fn run(&mut self, loss: &mut Loss, phase: &str) -> Result<Vec<(Vec<String>, Option<Tensor>)>> {
        self.phase = phase.into();
        loss.loss(phase, self)
    }

    fn net(&self, name: &str) -> &dyn Network {
        &**self.nets.get(name).unwrap()
    }
}

impl LossHost for Host {
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
        Ok(0)
    }
    fn steps_network(&mut self, name: &str) -> Result<bool> {
        Ok(name.starts_with(if self.phase == "G" { "generator" } else { "discriminator" }))
    }
    fn real(&mut self) -> Result<Tensor> {
        Ok(self.real.shallow_clone())
    }
    fn real_labels(&mut self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn real_b(&mut self) -> Result<Option<Tensor>> {
        Ok(self.real_b.as_ref().map(Tensor::shallow_clone))
    }
    fn sample_z(&mut self, _n: i64) -> Result<Tensor> {
        Err(Error::new("cyclegan draws no latents"))
    }
    fn sample_labels(&mut self, _n: i64) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn generate(&mut self, _z: &Tensor, _labels: Option<&Tensor>) -> Result<Tensor> {
        Err(Error::new("cyclegan runs its generators by name"))
    }
    fn discriminate(&mut self, _x: &Tensor, _l: Option<&Tensor>, _augment: bool, _role: Role) -> Result<Vec<Tensor>> {
        Err(Error::new("cyclegan runs its discriminators by name"))
    }
    fn augment(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(x.shallow_clone())
    }
    fn run_network(&mut self, name: &str, inputs: &[Tensor], train: bool) -> Result<Vec<Tensor>> {
        self.nets.get_mut(name).ok_or_else(|| Error::new(format!("no network `{name}`")))?.forward(inputs, train)
    }
    fn log_scalar(&mut self, name: &str, value: &Tensor) -> Result<()> {
        self.logged.insert(name.to_string(), value.double_value(&[]));
        Ok(())
    }
}

fn loss(config: &str) -> Loss {
    lab_plugin_testkit::loss::create::<CycleGanLoss>(config).expect("valid loss config")
}

#[test]
fn the_plan_is_g_then_d_and_each_phase_steps_its_pair() {
    let _rng = crate::rng_lock();
    tch::manual_seed(5);
    let a = arch(tiny(), 1, 32);
    let mut l = loss("");
    let names: Vec<String> = l.plan().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["G", "D"]);
    let mut host = Host::new(&a, images(2, 1, 32, Kind::Float), Some(images(2, 1, 32, Kind::Float)));
    host.step = 7;
    let g = host.run(&mut l, "G").unwrap();
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].0, [GENERATOR_AB, GENERATOR_BA]);
    let total = g[0].1.as_ref().unwrap().double_value(&[]);
    let logged: f64 = ["g_gan_ab", "g_gan_ba", "cycle_a", "cycle_b", "identity_a", "identity_b"]
        .iter()
        .map(|k| host.logged[&format!("loss/{k}")])
        .sum();
    assert!((total - logged).abs() < 1e-5 * total.abs(), "the logged terms add up to G's loss: {total} vs {logged}");
    let d = host.run(&mut l, "D").unwrap();
    assert_eq!(d[0].0, [DISCRIMINATOR_A, DISCRIMINATOR_B]);
    let expected = host.logged["loss/d_a"] + host.logged["loss/d_b"];
    assert!((d[0].1.as_ref().unwrap().double_value(&[]) - expected).abs() < 1e-6);
    // The pools took the batch's fakes: 2 each.
    let state: serde_json::Value = serde_json::from_str(&l.state().unwrap()).unwrap();
    assert_eq!(state["pool_a"]["shape"], serde_json::json!([2, 1, 32, 32]));
    assert_eq!(state["pool_b"]["shape"], serde_json::json!([2, 1, 32, 32]));
    // A second D phase in the same step has no fakes left; one in the next step had no G phase.
    let err = host.run(&mut l, "D").unwrap_err().to_string();
    assert!(err.contains("without a G phase") && err.contains("step 7"), "{err}");
}

#[test]
fn the_loss_refuses_one_domain_data_and_identity_across_channels() {
    let _rng = crate::rng_lock();
    let a = arch(tiny(), 1, 32);
    let mut l = loss("");
    let mut host = Host::new(&a, images(2, 1, 32, Kind::Float), None);
    let err = host.run(&mut l, "G").unwrap_err();
    assert!(err.to_string().contains("unpaired-folders") && err.to_string().contains("two-domain"), "{err}");
    // Three-channel B against one-channel networks is a setup the core never makes, but the
    // loss must still say what is wrong before any network sees it.
    let mut host = Host::new(&a, images(2, 1, 32, Kind::Float), Some(images(2, 3, 32, Kind::Float)));
    host.nets.insert(GENERATOR_AB.into(), Box::new(ChannelSwap { to: 3 }));
    host.nets.insert(GENERATOR_BA.into(), Box::new(ChannelSwap { to: 1 }));
    host.nets.insert(DISCRIMINATOR_A.into(), Box::new(ChannelSwap { to: 1 }));
    host.nets.insert(DISCRIMINATOR_B.into(), Box::new(ChannelSwap { to: 1 }));
    let err = host.run(&mut l, "G").unwrap_err();
    assert!(err.to_string().contains("lambda_identity = 0"), "{err}");
    let mut no_identity = loss("lambda_identity = 0.0");
    assert!(host.run(&mut no_identity, "G").is_ok());
}

/// A stand-in network that maps any image to one with `to` channels (the mean, repeated).
struct ChannelSwap {
    to: i64,
}

impl Network for ChannelSwap {
    fn forward(&mut self, inputs: &[Tensor], _train: bool) -> Result<Vec<Tensor>> {
        Ok(vec![inputs[0].mean_dim([1i64].as_slice(), true, Kind::Float).repeat([1, self.to, 1, 1])])
    }
    fn tensors(&self) -> Vec<(String, Tensor, bool)> {
        Vec::new()
    }
}

// ---------------------------------------------------------------------------------------------
// The measures, through a context with all four splits

struct Splits {
    nets: BTreeMap<String, Box<dyn Network>>,
    splits: BTreeMap<&'static str, Tensor>,
}

impl EvalHost for Splits {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let net = self.nets.get_mut(name).ok_or_else(|| Error::new(format!("no network `{name}`")))?;
        tch::no_grad(|| net.forward(inputs, false))
    }
    fn count(&mut self, split: &str) -> Result<i64> {
        Ok(self.splits.get(split).ok_or_else(|| Error::new(format!("no split `{split}`")))?.size()[0])
    }
    fn images(&mut self, split: &str, start: i64, n: i64) -> Result<Tensor> {
        Ok(self.splits[split].narrow(0, start, n))
    }
    fn labels(&mut self, _split: &str, _start: i64, _n: i64) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(0)
    }
}

/// Dark images with a bright square (A) and their negatives (B), at `side`².
fn blobs(n: i64, side: i64, inverted: bool) -> Tensor {
    let x = Tensor::full([n, 1, side, side], -1.0, (Kind::Float, Device::Cpu));
    for i in 0..n {
        let (r, c) = ((i * 5) % (side / 2), (i * 3) % (side / 2));
        let _ = x.get(i).narrow(1, r, side / 2).narrow(2, c, side / 2).fill_(1.0);
    }
    if inverted {
        -x
    } else {
        x
    }
}

/// The architecture created through its descriptor and called through the core's tables.
fn handle(config: &CycleGanConfig) -> Architecture {
    let Factory::Architecture(create) = lab_plugin_api::architecture::descriptor::<CycleGan>("test").factory else {
        unreachable!("an architecture descriptor holds an architecture factory")
    };
    let text = toml_text(config);
    let env = BuildEnv::from_device(Device::Cpu, square(1, 32));
    let obj = lab_plugin_api::host::into_result(create(text.as_str().into(), env)).unwrap();
    // SAFETY: the factory is compiled into this test binary.
    unsafe { Architecture::from_raw(obj) }
}

fn measured(
    config: CycleGanConfig,
    splits: &[(&'static str, Tensor)],
) -> (Result<Vec<lab_plugin_api::Value>>, Vec<String>) {
    let handle = handle(&config);
    let direct = arch(config, 1, 32);
    let nets = NETWORKS.iter().map(|n| (n.to_string(), direct.build(n).unwrap())).collect();
    let mut host = Splits { nets, splits: splits.iter().map(|(k, v)| (*k, v.shallow_clone())).collect() };
    let names = handle.measures().unwrap();
    (handle.evaluate(&mut host), names)
}

fn toml_text(config: &CycleGanConfig) -> String {
    let value = serde_json::to_value(config).unwrap();
    value.as_object().unwrap().iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join("\n")
}

/// The measures on blobs (A) and inverted blobs (B): names as declared, cycle L1 in [0, 1]
/// pixel units, accuracies in [0, 1], the classifier near-perfect on real images of two domains
/// this different, FID per direction with the Fashion-MNIST feature network when it is there.
/// Without the second domain's splits it says which splits it needs and how to turn it off.
#[test]
fn measures_both_directions_on_four_splits() {
    let _rng = crate::rng_lock();
    tch::manual_seed(6);
    let features = lab_plugin_api::paths::default_feature_network()
        .parent()
        .map(|p| p.join("features/fashion-mnist.pt"))
        .filter(|p| p.is_file());
    let config = CycleGanConfig {
        classifier_steps: 60,
        eval_images: 12,
        features: features.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        ..tiny()
    };
    let splits = [
        (SPLIT_TRAIN, blobs(40, 32, false)),
        (SPLIT_TRAIN_B, blobs(40, 32, true)),
        (SPLIT_REFERENCE, blobs(20, 32, false)),
        (SPLIT_REFERENCE_B, blobs(20, 32, true)),
    ];
    let (values, names) = measured(config.clone(), &splits);
    let values = values.unwrap();
    assert_eq!(values.iter().map(|v| v.name.clone()).collect::<Vec<_>>(), names);
    let get = |name: &str| values.iter().find(|v| v.name == name).unwrap().value;
    println!("{:?}", values.iter().map(|v| (v.name.clone(), v.value)).collect::<Vec<_>>());
    for name in ["cycle/l1_aba", "cycle/l1_bab"] {
        assert!((0.0..=1.0).contains(&get(name)), "{name}");
    }
    for name in ["translation/domain_acc_ab", "translation/domain_acc_ba"] {
        assert!((0.0..=1.0).contains(&get(name)), "{name}");
    }
    assert!(get("translation/domain_classifier_acc") > 0.9, "{}", get("translation/domain_classifier_acc"));
    if features.is_some() {
        assert!(get("translation/fid_ab") >= 0.0 && get("translation/fid_ba") >= 0.0);
    } else {
        println!("no Fashion-MNIST feature network: FID per direction not checked");
    }

    let (err, _) = measured(config.clone(), &splits[..3]);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("reference_b") && err.contains("measure = false"), "{err}");
    let (off, names) = measured(CycleGanConfig { measure: false, ..config }, &splits[..2]);
    assert!(off.unwrap().is_empty() && names.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The grid

/// A core stand-in for `visualize`: fixed real images of both domains and the four networks.
struct Pictures {
    nets: BTreeMap<String, Box<dyn Network>>,
    a: Tensor,
    b: Option<Tensor>,
    samples: i64,
}

impl VisualHost for Pictures {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let net = self.nets.get_mut(name).ok_or_else(|| Error::new(format!("no network `{name}`")))?;
        tch::no_grad(|| net.forward(inputs, false))
    }
    fn fixed_latent(&mut self) -> Result<Tensor> {
        Ok(Tensor::zeros([self.samples, 1], (Kind::Float, Device::Cpu)))
    }
    fn fixed_labels(&mut self) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn real(&mut self, n: i64) -> Result<Tensor> {
        Ok(self.a.narrow(0, 0, n.min(self.a.size()[0])))
    }
    fn real_labels(&mut self, _n: i64) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn real_b(&mut self, n: i64) -> Result<Option<Tensor>> {
        Ok(self.b.as_ref().map(|b| b.narrow(0, 0, n.min(b.size()[0]))))
    }
    fn samples(&mut self) -> Result<i64> {
        Ok(self.samples)
    }
    fn num_classes(&mut self) -> Result<i64> {
        Ok(0)
    }
}

/// Six rows of `log.samples / 6` images (at most 8): real A, G_AB(A), G_BA(G_AB(A)), real B,
/// G_BA(B), G_AB(G_BA(B)), each row computed from the one the grid shows above it.
#[test]
fn the_grid_shows_a_to_b_to_a_over_b_to_a_to_b() {
    let _rng = crate::rng_lock();
    tch::manual_seed(8);
    let config = tiny();
    let direct = arch(config.clone(), 1, 32);
    let nets: BTreeMap<String, Box<dyn Network>> =
        NETWORKS.iter().map(|n| (n.to_string(), direct.build(n).unwrap())).collect();
    let (a, b) = (blobs(10, 32, false), blobs(10, 32, true));
    let mut host = Pictures { nets, a: a.shallow_clone(), b: Some(b.shallow_clone()), samples: 18 };
    let (grid, columns) = handle(&config).visualize(&mut host).unwrap().expect("its own grid");
    assert_eq!((grid.size(), columns), (vec![18, 1, 32, 32], 3));
    let row = |r: i64| grid.narrow(0, 3 * r, 3);
    let mut run = |name: &str, x: &Tensor| host.run_network(name, &[x.shallow_clone()]).unwrap().remove(0);
    assert!(row(0).equal(&a.narrow(0, 0, 3)) && row(3).equal(&b.narrow(0, 0, 3)));
    for (r, name, from) in [(1, GENERATOR_AB, 0), (2, GENERATOR_BA, 1), (4, GENERATOR_BA, 3), (5, GENERATOR_AB, 4)] {
        assert!(max_abs(&(row(r) - run(name, &row(from)))) < 1e-6, "row {r}");
    }
    let mut one_domain = Pictures { b: None, ..host };
    let err = handle(&config).visualize(&mut one_domain).unwrap_err().to_string();
    assert!(err.contains("two-domain data"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/cyclegan.py).

/// One G phase and one D phase of the loss through the core's tables in float64, with the pool
/// off: the four networks' weights, both phases' inputs, the generators' outputs, every logged
/// term and both phases' parameter gradients, recorded for the reference to replay.
fn record_run(dir: &Path, config: CycleGanConfig, loss_config: &str, lambdas: [f64; 3], channels: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let side = 32;
    let a = arch(config.clone(), channels, side);
    let summary = serde_json::json!({
        "channels": channels, "ngf": config.ngf, "ndf": config.ndf, "n_blocks": config.n_blocks,
        "d_layers": config.d_layers, "lambda_a": lambdas[0], "lambda_b": lambdas[1], "lambda_identity": lambdas[2],
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (real_a, real_b) = (images(2, channels, side, Kind::Double), images(2, channels, side, Kind::Double));
    let mut host = Host::new(&a, real_a.shallow_clone(), Some(real_b.shallow_clone()));
    for (short, name) in ["g_ab", "g_ba", "d_a", "d_b"].iter().zip(NETWORKS) {
        reference::to_double(host.net(name));
        reference::write_npz(&dir.join(format!("{short}.npz")), &reference::weights(host.net(name)));
    }
    let mut l = loss(&format!("{loss_config}\npool_size = 0"));
    let g = host.run(&mut l, "G").unwrap();
    let g_loss = g[0].1.as_ref().unwrap().shallow_clone();
    g_loss.backward();
    reference::write_npz(
        &dir.join("grads_g.npz"),
        &reference::gradients(&[("g_ab", host.net(GENERATOR_AB)), ("g_ba", host.net(GENERATOR_BA))]),
    );
    let (fake_b, rec_a, fake_a, rec_b) = tch::no_grad(|| {
        let mut run = |name: &str, x: &Tensor| host.run_network(name, &[x.shallow_clone()], true).unwrap().remove(0);
        let fake_b = run(GENERATOR_AB, &real_a);
        let rec_a = run(GENERATOR_BA, &fake_b);
        let fake_a = run(GENERATOR_BA, &real_b);
        let rec_b = run(GENERATOR_AB, &fake_a);
        (fake_b, rec_a, fake_a, rec_b)
    });
    for net in host.nets.values() {
        for (_, mut t, _) in net.tensors() {
            t.zero_grad();
        }
    }
    let (real_a_d, real_b_d) = (images(2, channels, side, Kind::Double), images(2, channels, side, Kind::Double));
    host.real = real_a_d.shallow_clone();
    host.real_b = Some(real_b_d.shallow_clone());
    let d = host.run(&mut l, "D").unwrap();
    d[0].1.as_ref().unwrap().backward();
    reference::write_npz(
        &dir.join("grads_d.npz"),
        &reference::gradients(&[("d_a", host.net(DISCRIMINATOR_A)), ("d_b", host.net(DISCRIMINATOR_B))]),
    );
    let (logits_a, logits_b) = tch::no_grad(|| {
        let mut run = |name: &str, x: &Tensor| host.run_network(name, &[x.shallow_clone()], true).unwrap().remove(0);
        (run(DISCRIMINATOR_A, &real_a), run(DISCRIMINATOR_B, &real_b))
    });
    let mut io: Vec<(String, Tensor)> = [
        ("real_a", real_a),
        ("real_b", real_b),
        ("real_a_d", real_a_d),
        ("real_b_d", real_b_d),
        ("fake_b", fake_b),
        ("rec_a", rec_a),
        ("fake_a", fake_a),
        ("rec_b", rec_b),
        ("logits_a", logits_a),
        ("logits_b", logits_b),
        ("g_loss", g_loss.detach()),
    ]
    .into_iter()
    .map(|(k, t)| (k.to_string(), t))
    .collect();
    for (key, value) in &host.logged {
        io.push((key.trim_start_matches("loss/").to_string(), Tensor::from(*value)));
    }
    reference::write_npz(&dir.join("io.npz"), &io);
}

/// Same weights, same inputs: the PyTorch reference must produce the same translations and
/// reconstructions, loss terms, logit maps and both phases' parameter gradients within 1e-10
/// (float64, relative to the largest value), count the same parameters, and give the official
/// counts at the official widths.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("cyclegan-reference");
    let runs = [
        (
            "grey_defaults",
            CycleGanConfig { ngf: 4, ndf: 6, n_blocks: 2, d_layers: 3, ..Default::default() },
            "",
            [10.0, 10.0, 0.5],
            1,
        ),
        (
            "rgb_other_weights",
            CycleGanConfig { ngf: 3, ndf: 4, n_blocks: 1, d_layers: 2, ..Default::default() },
            "lambda_a = 7.0\nlambda_b = 12.0\nlambda_identity = 0.3",
            [7.0, 12.0, 0.3],
            3,
        ),
    ];
    for (name, config, loss_config, lambdas, channels) in runs.clone() {
        record_run(&root.join(name), config, loss_config, lambdas, channels);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/cyclegan.py");
    let report = reference::compare(&python, &script, &root, &runs.iter().map(|(name, ..)| *name).collect::<Vec<_>>());

    let counts = &report["reference_counts"];
    assert_eq!((&counts["G_rgb"], &counts["D_rgb"]), (&11_378_179.into(), &2_764_737.into()));
    assert_eq!((&counts["G_grey"], &counts["D_grey"]), (&11_365_633.into(), &2_762_689.into()));
    for ((name, config, _, _, channels), run) in runs.iter().zip(report["runs"].as_array().unwrap()) {
        let a = arch(config.clone(), *channels, 32);
        let ours: Vec<i64> = NETWORKS.iter().map(|n| trainable_count(&*a.build(n).unwrap())).collect();
        let theirs: Vec<i64> =
            ["g_ab", "g_ba", "d_a", "d_b"].iter().map(|n| run["params"][n].as_i64().unwrap()).collect();
        assert_eq!(ours, theirs, "{name}");
        let worst = run["max_rel_diff"].as_object().unwrap().values().filter_map(|v| v.as_f64()).fold(0.0, f64::max);
        println!("{name}: largest relative difference {worst:e}");
        reference::assert_within(run, name, 1e-10);
    }
}
