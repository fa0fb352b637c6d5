//! Unit tests of the whole architecture through the plugin trait (the rlib is linked directly).
use std::path::Path;
use std::time::Instant;

use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network};
use lab_plugin_testkit::network::{assert_seed_decides_weights, tensors, top_singular_value, trainable_count};
use lab_plugin_testkit::reference;

use crate::{BigGan, BigGanConfig};

const CLASSES: i64 = 10;

fn cifar(num_classes: i64) -> BuildEnv {
    BuildEnv::from_device(Device::Cpu, DataSpec { channels: 3, height: 32, width: 32, num_classes })
}

fn biggan(config: BigGanConfig) -> BigGan {
    <BigGan as ArchitecturePlugin>::create(config, cifar(CLASSES)).expect("valid config")
}

fn unconditional() -> BigGanConfig {
    BigGanConfig { conditional: false, ..Default::default() }
}

/// A narrow network (16 channels per block) for tests that only need the structure.
fn narrow(conditional: bool) -> BigGanConfig {
    BigGanConfig { g_ch: 4, d_ch: 4, conditional, ..Default::default() }
}

fn build(arch: &BigGan, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

fn labels(n: i64) -> Tensor {
    Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(CLASSES)
}

fn z(n: i64) -> Tensor {
    Tensor::randn([n, 128], (Kind::Float, Device::Cpu))
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

#[test]
fn output_shapes() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(BigGanConfig::default());
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let x = g.forward(&[z(2), labels(2)], true).unwrap().remove(0);
    assert_eq!(x.size(), [2, 3, 32, 32]);
    assert!(scalar(&x.abs().max()) <= 1.0, "tanh output stays in [-1, 1]");
    let out = d.forward(&[x, labels(2)], true).unwrap();
    assert_eq!(out[0].size(), [2], "one logit per image");
    assert_eq!(out[1].size(), [2, 256], "pooled features have 4·d_ch channels");
    // z as a 1×1 map is accepted too.
    let x = g.forward(&[z(2).reshape([2, 128, 1, 1]), labels(2)], false).unwrap().remove(0);
    assert_eq!(x.size(), [2, 3, 32, 32]);
}

#[test]
fn conditional_networks_use_the_labels() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(narrow(true));
    assert_eq!((arch.z_dim(), arch.num_classes()), (128, CLASSES));
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    // The embeddings start at N(0, 0.02): push them away from zero so the classes differ clearly.
    for (name, (t, _)) in tensors(&*g).into_iter().chain(tensors(&*d)) {
        if name.ends_with("gain.weight") || name.ends_with("bias.weight") || name == "embed.weight" {
            let _ = tch::no_grad(|| t.shallow_clone().normal_(0.0, 1.0));
        }
    }
    let z = z(4).repeat([2, 1]);
    let y = Tensor::cat(&[labels(4), labels(4) + 3], 0);
    let x = g.forward(&[z, y.shallow_clone()], false).unwrap().remove(0);
    assert!(!x.narrow(0, 0, 4).allclose(&x.narrow(0, 4, 4), 1e-5, 1e-5, false), "same z, other class");
    let real = x.narrow(0, 0, 4).repeat([2, 1, 1, 1]);
    let logits = d.forward(&[real.shallow_clone(), y], false).unwrap().remove(0);
    assert!(!logits.narrow(0, 0, 4).allclose(&logits.narrow(0, 4, 4), 1e-5, 1e-5, false), "projection term");
    let err = d.forward(&[real], false).unwrap_err().to_string();
    assert_eq!(err, "biggan discriminator is conditional: expected inputs [input, labels], got 1 tensor");
    let err = g.forward(&[z_of(2), labels(2).to_kind(Kind::Float)], false).unwrap_err().to_string();
    assert_eq!(err, "biggan generator: labels must be int64 of shape [2], got Float of shape [2]");

    fn z_of(n: i64) -> Tensor {
        Tensor::zeros([n, 128], (Kind::Float, Device::Cpu))
    }
}

#[test]
fn unconditional_networks_have_no_class_parameters() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = <BigGan as ArchitecturePlugin>::create(narrow(false), cifar(0)).expect("no labels needed");
    assert_eq!(arch.num_classes(), 0);
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let (gt, dt) = (tensors(&*g), tensors(&*d));
    assert!(gt.contains_key("blocks.0.bn1.gain") && !gt.contains_key("blocks.0.bn1.gain.weight"));
    assert!(!dt.contains_key("embed.weight"));
    let x = g.forward(&[z(3)], true).unwrap().remove(0);
    assert_eq!(x.size(), [3, 3, 32, 32]);
    // Labels, if the core passes them, are ignored.
    let a = d.forward(&[x.shallow_clone()], false).unwrap().remove(0);
    let b = d.forward(&[x, labels(3)], false).unwrap().remove(0);
    assert!(a.equal(&b));
}

#[test]
fn declares_its_networks() {
    let arch = biggan(narrow(true));
    let specs: Vec<_> = arch.networks().into_iter().map(|s| (s.name, s.phases)).collect();
    assert_eq!(
        specs,
        [("generator".to_string(), vec!["G".to_string()]), ("discriminator".into(), vec!["D".to_string()])]
    );
    let err = arch.build("encoder").err().unwrap();
    assert_eq!(err, "biggan has no network `encoder`; valid names: generator, discriminator");
}

#[test]
fn wrong_inputs_are_errors_not_panics() {
    let _rng = crate::rng_lock();
    let arch = biggan(narrow(true));
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let err =
        g.forward(&[Tensor::zeros([2, 64], (Kind::Float, Device::Cpu)), labels(2)], true).unwrap_err().to_string();
    assert_eq!(err, "biggan generator: z must have shape [N, 128], got [2, 64]");
    let err = d
        .forward(&[Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)), labels(2)], true)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "biggan discriminator: images must have shape [N, 3, 32, 32], got [2, 1, 28, 28]");
    let err = d.forward(&[], true).unwrap_err().to_string();
    assert_eq!(err, "biggan discriminator: expected inputs [input, labels], got 0 tensors");
}

#[test]
fn descriptor_carries_the_default_config() {
    let d = lab_plugin_api::architecture::descriptor::<BigGan>("0");
    assert_eq!(d.name.as_str(), "biggan");
    let text = d.default_config.as_str();
    for line in ["g_ch = 64", "d_ch = 64", "z_dim = 128", "conditional = true", "bn_eps = 0.00001", "init = \"N02\""] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    for init in ["N02", "ortho"] {
        let arch = biggan(BigGanConfig { init: init.into(), ..narrow(true) });
        for name in ["generator", "discriminator"] {
            assert_seed_decides_weights(&format!("{init} {name}"), || build(&arch, name));
        }
    }
}

#[test]
fn initialisation_follows_biggan_pytorch() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let g = tensors(&*build(&biggan(BigGanConfig::default()), "generator"));
    let get = |name: &str| g[name].0.shallow_clone();
    // N02 on every conv, linear and embedding weight.
    for name in ["blocks.0.conv1.weight", "linear.weight", "blocks.1.bn2.gain.weight"] {
        let w = get(name);
        assert!((scalar(&w.std(true)) - 0.02).abs() < 2e-3, "{name}: std {}", scalar(&w.std(true)));
        assert!(scalar(&w.mean(Kind::Float)).abs() < 2e-3, "{name}");
    }
    // Biases keep PyTorch's default U(±1/√fan_in): fan_in = 256·3·3, so |b| ≤ 1/48.
    let bias = get("blocks.0.conv1.bias");
    assert!(scalar(&bias.abs().max()) <= 1.0 / 48.0 && scalar(&bias.abs().max()) > 0.01);
    assert_eq!(scalar(&(get("output_layer.bn.gain") - 1.0).abs().sum(Kind::Float)), 0.0);
    assert_eq!(scalar(&get("output_layer.bn.bias").abs().sum(Kind::Float)), 0.0);
    assert_eq!(scalar(&(get("blocks.0.bn1.stored_var") - 1.0).abs().sum(Kind::Float)), 0.0);

    let g = tensors(&*build(&biggan(BigGanConfig { init: "ortho".into(), ..narrow(true) }), "generator"));
    // Orthogonal: the 16 rows of a 16×144 flattened conv weight are orthonormal.
    let w = g["blocks.0.conv1.weight"].0.reshape([16, -1]);
    let gram = w.matmul(&w.tr());
    assert!(gram.allclose(&Tensor::eye(16, (Kind::Float, Device::Cpu)), 1e-5, 1e-5, false));
}

#[test]
fn variable_names_read_like_biggan_pytorch() {
    let _rng = crate::rng_lock();
    let arch = biggan(narrow(true));
    let g = tensors(&*build(&arch, "generator"));
    let block0: Vec<_> = g.keys().filter(|k| k.starts_with("blocks.0.")).map(String::as_str).collect();
    assert_eq!(
        block0,
        [
            "blocks.0.bn1.bias.weight",
            "blocks.0.bn1.gain.weight",
            "blocks.0.bn1.stored_mean",
            "blocks.0.bn1.stored_var",
            "blocks.0.bn2.bias.weight",
            "blocks.0.bn2.gain.weight",
            "blocks.0.bn2.stored_mean",
            "blocks.0.bn2.stored_var",
            "blocks.0.conv1.bias",
            "blocks.0.conv1.weight",
            "blocks.0.conv1.weight_u",
            "blocks.0.conv2.bias",
            "blocks.0.conv2.weight",
            "blocks.0.conv2.weight_u",
            "blocks.0.conv_sc.bias",
            "blocks.0.conv_sc.weight",
            "blocks.0.conv_sc.weight_u",
        ]
    );
    let rest: Vec<_> = g.keys().filter(|k| !k.starts_with("blocks.")).map(String::as_str).collect();
    assert_eq!(
        rest,
        [
            "linear.bias",
            "linear.weight",
            "linear.weight_u",
            "output_layer.bn.bias",
            "output_layer.bn.gain",
            "output_layer.bn.stored_mean",
            "output_layer.bn.stored_var",
            "output_layer.conv.bias",
            "output_layer.conv.weight",
            "output_layer.conv.weight_u",
        ]
    );
    assert_eq!(g.len(), 3 * 17 + 10, "three blocks like block 0");
    // Buffers are exactly the SN vectors and the BN statistics.
    for (name, (_, trainable)) in &g {
        let buffer = name.ends_with("_u") || name.contains("stored_");
        assert_eq!(*trainable, !buffer, "{name}");
    }

    let d = tensors(&*build(&arch, "discriminator"));
    let names: Vec<_> = d.keys().map(String::as_str).filter(|k| !k.ends_with("_u")).collect();
    assert_eq!(
        names,
        [
            "blocks.0.conv1.bias",
            "blocks.0.conv1.weight",
            "blocks.0.conv2.bias",
            "blocks.0.conv2.weight",
            "blocks.0.conv_sc.bias",
            "blocks.0.conv_sc.weight",
            "blocks.1.conv1.bias",
            "blocks.1.conv1.weight",
            "blocks.1.conv2.bias",
            "blocks.1.conv2.weight",
            "blocks.1.conv_sc.bias",
            "blocks.1.conv_sc.weight",
            "blocks.2.conv1.bias",
            "blocks.2.conv1.weight",
            "blocks.2.conv2.bias",
            "blocks.2.conv2.weight",
            "blocks.3.conv1.bias",
            "blocks.3.conv1.weight",
            "blocks.3.conv2.bias",
            "blocks.3.conv2.weight",
            "embed.weight",
            "linear.bias",
            "linear.weight",
        ]
    );
    // Every D weight is spectrally normalised, the projection embedding included.
    let weights = d.keys().filter(|k| k.ends_with("weight")).count();
    assert_eq!(d.keys().filter(|k| k.ends_with("weight_u")).count(), weights);
    // ...and nothing is when SN is off.
    let plain = biggan(BigGanConfig { g_sn: false, d_sn: false, ..narrow(true) });
    for name in ["generator", "discriminator"] {
        assert!(tensors(&*build(&plain, name)).keys().all(|k| !k.ends_with("_u")), "{name}");
    }
}

/// Trainable parameters only: spectral norm's `u` vectors and batch norm's running statistics
/// are buffers and are not counted (BigGAN-PyTorch's `u0`/`sv0`/`stored_*` are buffers too).
///
/// Reference architecture (BigGAN-PyTorch `arch[32]`, ch = 64 so C = 4·64 = 256 channels,
/// z = 128, 10 classes, 3-channel images; every conv and linear has a bias):
///
/// Generator
///   linear 128 → 4·4·256 = 4096:              128·4096 + 4096             =   528,384
///   GBlock (256 → 256, upsample), ×3:
///     conv1 3×3 256→256:                       256·256·9 + 256             =   590,080
///     conv2 3×3 256→256:                                                      590,080
///     conv_sc 1×1 256→256:                     256·256 + 256               =    65,792
///     bn1, bn2 (ccbn): gain and bias embeddings 10×256 each: 4·2,560       =    10,240
///     block                                                                 = 1,256,192
///   3 blocks                                                                = 3,768,576
///   output_layer: bn gain + bias 2·256 = 512; conv 3×3 256→3: 3·256·9 + 3 = 6,915  =  7,427
///   total                                    528,384 + 3,768,576 + 7,427    = 4,304,387
///   unconditional (plain bn: gain + bias 2·256 per norm, 1,024 per block instead of 10,240):
///                                            4,304,387 − 3·(10,240 − 1,024) = 4,276,739
/// Discriminator
///   block 0 (3 → 256, downsample, shortcut conv):
///     conv1 3×3 3→256:  256·3·9 + 256 = 7,168; conv2 3×3 256→256: 590,080;
///     conv_sc 1×1 3→256: 256·3 + 256 = 1,024                                =   598,272
///   block 1 (256 → 256, downsample, shortcut conv): 2·590,080 + 65,792     = 1,245,952
///   blocks 2, 3 (256 → 256, identity shortcut): 2·(2·590,080)              = 2,360,320
///   linear 256 → 1:                           256 + 1                      =       257
///   embed 10×256 (projection):                                             =     2,560
///   total                                                                   = 4,207,361
///   unconditional (no embed):                 4,207,361 − 2,560             = 4,204,801
///
/// BigGAN-PyTorch itself (the DiffAugment-biggan-cifar BigGAN.py, instantiated with the
/// script's settings) reports the same trainable totals: G 4,304,387 and D 4,207,361; and
/// `reference/biggan_cifar.py count` gives all four numbers above.
#[test]
fn parameter_counts_equal_the_reference_architecture() {
    let _rng = crate::rng_lock();
    let counts = |config: BigGanConfig, classes| {
        let arch = <BigGan as ArchitecturePlugin>::create(config, cifar(classes)).unwrap();
        let g = trainable_count(&*build(&arch, "generator"));
        let d = trainable_count(&*build(&arch, "discriminator"));
        println!("biggan (conditional: {}): G {g} parameters, D {d} parameters", classes > 0);
        (g, d)
    };
    assert_eq!(counts(BigGanConfig::default(), CLASSES), (4_304_387, 4_207_361));
    assert_eq!(counts(unconditional(), 0), (4_276_739, 4_204_801));
}

#[test]
fn spectral_norm_keeps_every_weight_near_unit_norm() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(narrow(true));
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let (x, y) = (Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu)), labels(2));
    // One power iteration per training forward; 40 forwards let the estimates settle.
    for _ in 0..40 {
        let _ = g.forward(&[z(2), y.shallow_clone()], true).unwrap();
        let _ = d.forward(&[x.shallow_clone(), y.shallow_clone()], true).unwrap();
    }
    for net in [&g, &d] {
        let t = tensors(&**net);
        let mut checked = 0;
        for (name, (u, _)) in &t {
            let Some(weight) = name.strip_suffix("_u") else { continue };
            let w = t[weight].0.reshape([u.size()[0], -1]);
            // σ as the next forward would estimate it, then the true top singular value of W/σ.
            let v = w.tr().mv(u);
            let v = &v / v.norm();
            let sigma = u.dot(&w.mv(&v)) / u.norm();
            let normalized = top_singular_value(&(&w / sigma));
            let raw = top_singular_value(&w);
            assert!((normalized - 1.0).abs() < 0.05, "{name}: σ(W/σ̂) = {normalized} (σ(W) = {raw})");
            checked += 1;
        }
        assert!(checked > 0);
    }
}

#[test]
fn batch_norm_statistics_are_buffers_updated_only_in_training() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(narrow(true));
    let mut g = build(&arch, "generator");
    let watched = ["blocks.1.bn2.stored_mean", "output_layer.bn.stored_var", "blocks.0.conv1.weight_u"];
    let snapshot = |g: &dyn Network| {
        let t = tensors(g);
        watched.map(|n| {
            assert!(!t[n].1, "{n} is a buffer");
            t[n].0.copy()
        })
    };
    let before = snapshot(&*g);
    let (z, y) = (z(4), labels(4));
    let a = g.forward(&[z.shallow_clone(), y.shallow_clone()], false).unwrap().remove(0);
    let b = g.forward(&[z.shallow_clone(), y.shallow_clone()], false).unwrap().remove(0);
    assert!(a.equal(&b), "evaluation is deterministic");
    for (now, then) in snapshot(&*g).iter().zip(&before) {
        assert!(now.equal(then), "evaluation changes no buffer");
    }
    let _ = g.forward(&[z, y], true).unwrap();
    for ((now, then), name) in snapshot(&*g).iter().zip(&before).zip(watched) {
        assert!(!now.equal(then), "training updates {name}");
    }
}

/// A G step's forward and backward at batch 2 on the CPU: every trainable tensor of G and D
/// receives a gradient.
#[test]
fn forward_and_backward_reach_every_parameter() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(BigGanConfig::default());
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let y = labels(2);
    let fake = g.forward(&[z(2), y.shallow_clone()], true).unwrap().remove(0);
    let out = d.forward(&[fake, y], true).unwrap();
    (out[0].mean(Kind::Float) + out[1].mean(Kind::Float)).backward();
    for net in [&g, &d] {
        for (name, t, trainable) in net.tensors() {
            if trainable {
                let grad = t.grad();
                assert!(grad.defined() && scalar(&grad.abs().sum(Kind::Float)) > 0.0, "{name} has no gradient");
                assert!(scalar(&grad.isfinite().all()) == 1.0, "{name}: non-finite gradient");
            }
        }
    }
}

/// The CPU cost of one G+D forward and backward at the DiffAugment batch size (50). Ignored by
/// default because it takes seconds on a small machine: run with
/// `cargo test --release -p lab-plugin-biggan -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_forward_backward_at_batch_50() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = biggan(BigGanConfig::default());
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let step = |g: &mut Box<dyn Network>, d: &mut Box<dyn Network>| {
        let y = labels(50);
        let fake = g.forward(&[z(50), y.shallow_clone()], true).unwrap().remove(0);
        d.forward(&[fake, y], true).unwrap()[0].mean(Kind::Float).backward();
    };
    step(&mut g, &mut d); // warm-up: allocator and kernels
    let runs = 3;
    let start = Instant::now();
    for _ in 0..runs {
        step(&mut g, &mut d);
    }
    let per_step = start.elapsed().as_secs_f64() / runs as f64;
    println!(
        "biggan: G+D forward+backward at batch 50 on the CPU ({} threads): {per_step:.2} s",
        tch::get_num_threads()
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/biggan_cifar.py).

/// Runs one G step's forward passes, a backward and an evaluation pass, and records everything
/// the reference needs to replay them in `dir`.
fn record_run(dir: &Path, config: BigGanConfig, classes: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let arch = <BigGan as ArchitecturePlugin>::create(config, cifar(classes)).unwrap();
    let s = arch.settings();
    let summary = serde_json::json!({
        "g_ch": s.g_ch, "d_ch": s.d_ch, "z_dim": s.z_dim, "classes": s.classes.unwrap_or(0),
        "g_sn": s.g_sn, "d_sn": s.d_sn, "bn_eps": s.bn_eps, "image_channels": s.image_channels,
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    reference::to_double(&*g);
    reference::to_double(&*d);
    reference::write_npz(&dir.join("g_before.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_before.npz"), &reference::weights(&*d));

    let (z, y) = (z(4).to_kind(Kind::Double), labels(4));
    let real = Tensor::rand([4, 3, 32, 32], (Kind::Double, Device::Cpu)) * 2.0 - 1.0;
    let with_labels =
        |x: &Tensor| if classes > 0 { vec![x.shallow_clone(), y.shallow_clone()] } else { vec![x.shallow_clone()] };
    let fake = g.forward(&with_labels(&z), true).unwrap().remove(0);
    let out = d.forward(&with_labels(&fake), true).unwrap();
    out[0].mean(Kind::Float).backward();
    reference::write_npz(&dir.join("g_after.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_after.npz"), &reference::weights(&*d));
    let grads = reference::gradients(&[("g", &*g), ("d", &*d)]);
    reference::write_npz(&dir.join("grads.npz"), &grads);

    let eval_fake = tch::no_grad(|| g.forward(&with_labels(&z), false).unwrap().remove(0));
    let eval = tch::no_grad(|| d.forward(&with_labels(&real), false).unwrap());
    let io = [
        ("z", z),
        ("y", y.shallow_clone()),
        ("fake", fake.detach()),
        ("logits", out[0].detach()),
        ("features", out[1].detach()),
        ("eval_fake", eval_fake),
        ("real", real),
        ("eval_logits", eval[0].shallow_clone()),
        ("eval_features", eval[1].shallow_clone()),
    ];
    reference::write_npz(&dir.join("io.npz"), &io.map(|(k, t)| (k.to_string(), t)));
}

/// Same weights, same inputs: the PyTorch reference must produce the same images, logits,
/// features, updated buffers (SN vectors, BN statistics) and gradients, and count the same
/// parameters. Both sides run in float64, so any difference beyond rounding is a real one.
/// Skipped, saying so, when the venv's Python is not there.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("biggan-reference");
    // Narrower than the default (64 and 32 channels per block) to keep the float64 replay cheap,
    // and with different widths so a G/D mix-up would show; the default-width counts are
    // compared through the reference's own `count` below.
    let config = |conditional| BigGanConfig { g_ch: 16, d_ch: 8, conditional, ..Default::default() };
    let runs = [("conditional", config(true), CLASSES), ("unconditional", config(false), 0)];
    for (name, config, classes) in runs.clone() {
        record_run(&root.join(name), config, classes);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/biggan_cifar.py");
    let report =
        reference::compare(&python, &script, &root, &runs.iter().map(|(name, _, _)| *name).collect::<Vec<_>>());

    let counts = &report["reference_counts"];
    assert_eq!(counts["G_conditional"], 4_304_387);
    assert_eq!(counts["D_conditional"], 4_207_361);
    assert_eq!(counts["G_unconditional"], 4_276_739);
    assert_eq!(counts["D_unconditional"], 4_204_801);
    for ((name, config, classes), run) in runs.iter().zip(report["runs"].as_array().unwrap()) {
        let arch = <BigGan as ArchitecturePlugin>::create(config.clone(), cifar(*classes)).unwrap();
        let ours = ["generator", "discriminator"].map(|n| trainable_count(&*build(&arch, n)));
        assert_eq!([&run["params"]["G"], &run["params"]["D"]], ours, "{name}");
        reference::assert_within(run, name, 1e-9);
    }
}
