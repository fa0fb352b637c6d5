//! Unit tests of the whole architecture (the rlib is linked directly), and the float64
//! cross-check against the PyTorch re-implementation in `reference/`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lab_nn::attention::attention_to_image;
use lab_nn::gan::{Discriminator as _, Generator as _};
use lab_plugin_api::tch::{self, nn, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network};
use lab_plugin_testkit::network::{assert_seed_decides_weights, inputs, tensors, top_singular_value, trainable_count};
use lab_plugin_testkit::reference;

use crate::{Discriminator, Generator, Sagan, SaganConfig, Settings};

const CLASSES: i64 = 10;

fn cifar(num_classes: i64) -> DataSpec {
    DataSpec { channels: 3, height: 32, width: 32, num_classes }
}

fn sagan(config: SaganConfig, classes: i64) -> Sagan {
    let env = BuildEnv::from_device(Device::Cpu, cifar(classes));
    <Sagan as ArchitecturePlugin>::create(config, env).expect("valid config")
}

/// Narrow networks (multiples of 8, so that attention fits) for tests that only need the
/// structure.
fn narrow() -> SaganConfig {
    SaganConfig { g_channels: 16, d_channels: 8, ..Default::default() }
}

fn settings(config: SaganConfig, classes: i64) -> Settings {
    config.resolve(&cifar(classes)).expect("valid config")
}

fn build(arch: &Sagan, name: &str) -> Box<dyn Network> {
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

/// Sets every `attention.gamma` of `net` to `value`: at 0 (the start) the attention branch
/// passes no gradient to its convolutions, so checks of those gradients need another value.
fn set_gamma(net: &dyn Network, value: f64) {
    for (name, t, _) in net.tensors() {
        if name.ends_with("attention.gamma") {
            let _ = tch::no_grad(|| t.shallow_clone().fill_(value));
        }
    }
}

#[test]
fn draws_class_conditional_images_and_scores_them_at_studiogans_width() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = sagan(SaganConfig::default(), CLASSES);
    assert_eq!((arch.z_dim(), arch.num_classes()), (128, CLASSES));
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let y = labels(2);
    let x = g.forward(&[z(2), y.shallow_clone()], true).unwrap().remove(0);
    assert_eq!(x.size(), [2, 3, 32, 32]);
    assert!(scalar(&x.abs().max()) <= 1.0, "tanh output stays in [-1, 1]");
    let out = d.forward(&[x.shallow_clone(), y], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![2], vec![2, 128]), "a logit and 128 features per image");
    let err = d.forward(&[x], false).unwrap_err().to_string();
    assert_eq!(err, "sagan discriminator is conditional: expected inputs [input, labels], got 1 tensor");
}

#[test]
fn declares_its_networks_and_default_config() {
    let d = lab_plugin_api::architecture::descriptor::<Sagan>("0");
    assert_eq!(d.name.as_str(), "sagan");
    let text = d.default_config.as_str();
    for line in ["g_channels = 256", "d_channels = 128", "conditional = true", "g_attention_after = 2"] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    let arch = sagan(narrow(), CLASSES);
    assert_eq!(
        arch.build("encoder").err().unwrap(),
        "sagan has no network `encoder`; valid names: generator, discriminator"
    );
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    let arch = sagan(narrow(), CLASSES);
    for name in ["generator", "discriminator"] {
        assert_seed_decides_weights(name, || build(&arch, name));
    }
}

/// Every weight of both networks is spectrally normalised (a `weight_u` beside it), attention
/// sits where the config puts it, and the initialisation is StudioGAN's `ortho`.
#[test]
fn variables_read_like_the_architecture_and_start_orthogonal() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = sagan(narrow(), CLASSES);
    let (g, d) = (tensors(&*build(&arch, "generator")), tensors(&*build(&arch, "discriminator")));
    let attention = |net: &BTreeMap<String, (Tensor, bool)>| -> Vec<String> {
        net.keys().filter(|k| k.starts_with("attention.") && !k.ends_with("_u")).cloned().collect()
    };
    let expected = ["attention.gamma", "attention.key.weight", "attention.output.weight"]
        .into_iter()
        .chain(["attention.query.weight", "attention.value.weight"])
        .collect::<Vec<_>>();
    assert_eq!(attention(&g), expected, "no biases in the attention convolutions");
    assert_eq!(attention(&d), expected);
    assert_eq!(g["attention.value.weight"].0.size(), [8, 16, 1, 1], "values at C/2");
    assert_eq!(d["attention.query.weight"].0.size(), [1, 8, 1, 1], "queries at C/8");
    for (net, what) in [(&g, "G"), (&d, "D")] {
        let weights: Vec<_> = net.keys().filter(|k| k.ends_with("weight")).collect();
        for w in &weights {
            assert!(net.contains_key(&format!("{w}_u")), "{what} {w}: every weight is spectrally normalised");
        }
        let (gamma, trainable) = &net["attention.gamma"];
        assert!(*trainable && scalar(gamma) == 0.0, "{what}: γ is a parameter that starts at 0");
    }
    assert!(g.contains_key("blocks.0.bn1.gain.weight_u"), "the class tables of G's norms too");
    assert!(d.contains_key("linear.bias"), "StudioGAN's logit has a bias");
    // Orthogonal: as a `rows × rest` matrix, the shorter side is orthonormal.
    for (net, name) in [(&g, "blocks.1.conv2.weight"), (&d, "embed.weight"), (&g, "blocks.0.bn2.gain.weight")] {
        let w = net[name].0.reshape([net[name].0.size()[0], -1]).to_kind(Kind::Double);
        let (rows, cols) = (w.size()[0], w.size()[1]);
        let gram = if rows <= cols { w.matmul(&w.tr()) } else { w.tr().matmul(&w) };
        let eye = Tensor::eye(gram.size()[0], (Kind::Double, Device::Cpu));
        assert!(gram.allclose(&eye, 0.0, 1e-5, false), "{name} ({rows}×{cols}): orthonormal");
    }
}

/// Trainable parameters only (spectral norm's `u` and batch norm's statistics are buffers).
/// StudioGAN's CIFAR-10 SAGAN (G 256 channels, D 128, z 128, 10 classes, 3-channel images):
///
/// Generator
///   linear 128 → 4·4·256 = 4096, with bias:        128·4096 + 4096            =   528,384
///   block (×3): conv1, conv2 3×3 256→256:          2·(256·256·9 + 256)        = 1,180,160
///               conv_sc 1×1 256→256:               256·256 + 256              =    65,792
///               bn1, bn2 per-class gain and bias:  2·2·10·256                 =    10,240
///   3 blocks                                                                  = 3,768,576
///   attention at 256 channels: query, key 256·32 each, value 256·128, output 128·256, γ:
///                                                  2·8,192 + 2·32,768 + 1     =    81,921
///   output bn gain + bias 2·256 = 512; conv 3×3 256→3: 256·3·9 + 3 = 6,915    =     7,427
///   total                                                                     = 4,386,308
/// Discriminator
///   block 0 (optimized, 3 → 128): conv1 3·128·9 + 128 = 3,584; conv2 128·128·9 + 128 =
///     147,584; conv_sc 3·128 + 128 = 512                                      =   151,680
///   attention at 128 channels: 2·128·16 + 2·128·64 + 1                        =    20,481
///   block 1 (down, shortcut conv): 2·147,584 + (128·128 + 128 = 16,512)       =   311,680
///   blocks 2, 3 (identity shortcut): 2·(2·147,584)                            =   590,336
///   linear 128 → 1 with bias: 129; projection embedding 10·128: 1,280         =     1,409
///   total                                                                     = 1,075,586
///
/// Both are the counts of StudioGAN's SAGAN logs (shared/ZOO.md §19: 4,386,308 and 1,075,586);
/// without attention they are its conditional SNGAN's (4,304,387 and 1,055,105).
/// `reference/sagan_cifar.py count` builds the same networks from its own layer list;
/// `matches_the_pytorch_reference` checks that it gives the same numbers.
#[test]
fn parameter_counts_equal_studiogans_and_the_reference() {
    let _rng = crate::rng_lock();
    let counts = |config: SaganConfig, classes| {
        let arch = sagan(config, classes);
        let g = trainable_count(&*build(&arch, "generator"));
        let d = trainable_count(&*build(&arch, "discriminator"));
        println!("sagan (classes: {classes}): G {g} parameters, D {d} parameters");
        (g, d)
    };
    assert_eq!(counts(SaganConfig::default(), CLASSES), (4_386_308, 1_075_586));
    let unconditional = SaganConfig { conditional: false, ..Default::default() };
    assert_eq!(counts(unconditional, CLASSES), (4_358_660, 1_074_306));
    let without = SaganConfig { g_attention_after: 0, d_attention_after: 0, ..Default::default() };
    assert_eq!(counts(without, CLASSES), (4_304_387, 1_055_105));
}

/// Copies every tensor of `from` that `to` also has (same name) into `to`; returns how many.
fn copy_shared(from: &dyn Network, to: &dyn Network) -> usize {
    let source = tensors(from);
    let mut copied = 0;
    for (name, t, _) in to.tensors() {
        if let Some((s, _)) = source.get(&name) {
            tch::no_grad(|| t.shallow_clone().copy_(s));
            copied += 1;
        }
    }
    copied
}

/// At the start (γ = 0) a network with attention computes exactly what the same network without
/// it computes: the block is the identity, so SAGAN starts as the SNGAN ResNet. And every row of
/// G's attention map (16×16 queries over 8×8 pooled keys) is a distribution.
#[test]
fn attention_is_exactly_the_identity_at_the_start_and_its_rows_sum_to_one() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let with = sagan(narrow(), CLASSES);
    let without = sagan(SaganConfig { g_attention_after: 0, d_attention_after: 0, ..narrow() }, CLASSES);
    let y = labels(4);
    let (z, x) = (z(4), Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu)));
    for (name, input) in [("generator", &z), ("discriminator", &x)] {
        let mut a = build(&with, name);
        let mut b = build(&without, name);
        let copied = copy_shared(&*a, &*b);
        assert_eq!(copied, b.tensors().len(), "{name}: every tensor of the plain network has its twin");
        // Evaluation mode: no buffer moves, so both see identical weights.
        let out_a = a.forward(&inputs(input, Some(&y)), false).unwrap();
        let out_b = b.forward(&inputs(input, Some(&y)), false).unwrap();
        assert!(out_a[0].equal(&out_b[0]), "{name}: γ = 0 makes attention the identity");
    }

    let vs = nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &settings(narrow(), CLASSES));
    assert_eq!(scalar(g.attention_gamma().unwrap()), 0.0);
    let (_, map) = g.generate_with_attention(&z, Some(&y), true);
    let map = map.expect("G has attention");
    assert_eq!(map.size(), [4, 16 * 16, 8 * 8], "after G's second block: 16×16 queries, 8×8 keys");
    let sums = map.sum_dim_intlist([2i64].as_slice(), false, Kind::Double);
    let worst = scalar(&(sums - 1.0).abs().max());
    println!("largest |row sum − 1| of G's attention map: {worst:e}");
    assert!(worst < 1e-5, "{worst}");
}

/// σ(W / σ̂) of every weight of G and D (convolutions, linear layers, embeddings, the class
/// tables, the attention convolutions), for the σ̂ the next training pass would use, after 40
/// training passes: in [1, 1.05], the paper's band (SNGAN Appendix A).
#[test]
fn every_weight_of_both_networks_has_unit_spectral_norm_in_training() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = sagan(narrow(), CLASSES);
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let y = labels(2);
    for _ in 0..40 {
        let x = g.forward(&[z(2), y.shallow_clone()], true).unwrap().remove(0);
        let _ = d.forward(&[x, y.shallow_clone()], true).unwrap();
    }
    let normalize = |x: &Tensor| x / x.norm().clamp_min(1e-6);
    let mut worst: f64 = 1.0;
    let mut checked = 0;
    for net in [&g, &d] {
        let t = tensors(&**net);
        for (name, (u, _)) in &t {
            let Some(weight) = name.strip_suffix("_u") else { continue };
            let w = t[weight].0.reshape([u.size()[0], -1]).to_kind(Kind::Double);
            let u = u.to_kind(Kind::Double);
            let v = normalize(&w.tr().mv(&u));
            let u = normalize(&w.mv(&v));
            let sigma = top_singular_value(&(&w / u.dot(&w.mv(&v))));
            assert!((1.0 - 1e-6..=1.05).contains(&sigma), "{name}: σ(W/σ̂) = {sigma}");
            worst = worst.max(sigma);
            checked += 1;
        }
    }
    println!("{checked} spectrally normalised weights; largest σ(W/σ̂) after 40 passes: {worst:.6}");
    assert!(checked >= 40, "{checked}");
}

/// The attention map of G for one query pixel, beside the images it belongs to: the paper's
/// Figure 1 view, at a tiny width and with γ set so the branch is live. Writes
/// `$LAB_ATTENTION_PNG` (default: the system temp folder) and checks the picture.
#[test]
fn writes_the_attention_map_of_a_query_pixel() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &settings(narrow(), CLASSES));
    let _ = tch::no_grad(|| g.attention_gamma().unwrap().shallow_clone().fill_(1.0));
    let (images, map) = tch::no_grad(|| g.generate_with_attention(&z(4), Some(&labels(4)), false));
    let query = (5, 10); // of the 16×16 map G attends at
    let heat = attention_to_image(&map.unwrap(), query, (16, 16)); // [4, 1, 16, 16] in [0, 1]
    let heat = lab_nn::upsample(&heat).repeat([1, 3, 1, 1]); // to the images' 32×32, grey
                                                             // Mark the query pixel (a 2×2 square at 32×32) in red on the images.
    let marked = (&images + 1.0) / 2.0;
    let (r, c) = (2 * query.0, 2 * query.1);
    let _ = marked.narrow(2, r, 2).narrow(3, c, 2).fill_(0.0);
    let _ = marked.narrow(1, 0, 1).narrow(2, r, 2).narrow(3, c, 2).fill_(1.0);
    // Images on top, their attention below: [3, 64, 128].
    let top = Tensor::cat(&marked.unbind(0), 2);
    let bottom = Tensor::cat(&heat.unbind(0), 2);
    let picture = (Tensor::cat(&[top, bottom], 1) * 255.0).clamp(0.0, 255.0).to_kind(Kind::Uint8);
    let path = std::env::var_os("LAB_ATTENTION_PNG")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("lab-sagan-attention-{}.png", std::process::id())));
    tch::vision::image::save(&picture, &path).unwrap();
    let back = tch::vision::image::load(&path).unwrap();
    println!("attention of query pixel {query:?} (of 16×16) written to {}", path.display());
    assert_eq!(back.size(), [3, 64, 128]);
    // Each heat map's brightest key position is exactly white.
    assert_eq!(scalar(&back.narrow(1, 32, 32).narrow(2, 0, 32).max()), 255.0);
    if std::env::var_os("LAB_ATTENTION_PNG").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}

/// The CPU cost of SAGAN's training step at StudioGAN's widths and batch 64: one D step (a G
/// forward without gradient, D on real and fake, hinge loss, backward) and one G step (G and D
/// forward, backward). Ignored by default because it takes seconds:
/// `cargo test --release -p lab-plugin-sagan -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_a_d_step_and_a_g_step_at_batch_64() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = sagan(SaganConfig::default(), CLASSES);
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let real = Tensor::rand([64, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let y = labels(64);
    let mut d_step = || {
        let fake = tch::no_grad(|| g.forward(&[z(64), y.shallow_clone()], true).unwrap().remove(0));
        let r = d.forward(&[real.shallow_clone(), y.shallow_clone()], true).unwrap().remove(0);
        let f = d.forward(&[fake, y.shallow_clone()], true).unwrap().remove(0);
        ((-r + 1.0).relu().mean(Kind::Float) + (f + 1.0).relu().mean(Kind::Float)).backward();
    };
    d_step(); // warm-up: allocator and kernels
    let start = Instant::now();
    d_step();
    d_step();
    let d_time = start.elapsed().as_secs_f64() / 2.0;
    let mut g_step = || {
        let fake = g.forward(&[z(64), y.shallow_clone()], true).unwrap().remove(0);
        (-d.forward(&[fake, y.shallow_clone()], true).unwrap()[0].mean(Kind::Float)).backward();
    };
    g_step();
    let start = Instant::now();
    g_step();
    g_step();
    let g_time = start.elapsed().as_secs_f64() / 2.0;
    println!(
        "sagan: D step {d_time:.3} s, G step {g_time:.3} s at batch 64 on the CPU ({} threads)",
        tch::get_num_threads()
    );
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/sagan_cifar.py).

/// Runs a G step's forward passes and backward (with z's gradient), a training-mode D pass on
/// real images (with their gradient) and evaluation passes, and records everything the
/// reference needs to replay them in `dir`.
fn record_run(dir: &Path, config: SaganConfig, classes: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let arch = sagan(config, classes);
    let s = arch.settings();
    let summary = serde_json::json!({
        "g_channels": s.g_channels, "d_channels": s.d_channels, "z_dim": s.z_dim,
        "classes": s.classes.unwrap_or(0), "image_channels": s.image_channels,
        "g_attention_after": s.g_attention_after.unwrap_or(0),
        "d_attention_after": s.d_attention_after.unwrap_or(0),
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    reference::to_double(&*g);
    reference::to_double(&*d);
    // A live attention branch, so its convolutions' gradients are compared too.
    set_gamma(&*g, 0.8);
    set_gamma(&*d, -0.6);
    let y = (classes > 0).then(|| labels(4));
    reference::record_gan_passes(dir, &mut *g, &mut *d, &z(4), y.as_ref(), [3, 32, 32]);
}

/// Same weights, same inputs: the PyTorch reference must produce the same images, logits,
/// features, input gradients (d logits / d z through G and D, d logits / d x through D), updated
/// buffers (spectral norm's `u` in both networks, batch-norm statistics) and parameter
/// gradients (attention's included, with γ ≠ 0), and count the same parameters, within 1e-10
/// in float64. Skipped, saying so, when the venv's Python is not there.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("sagan-reference");
    // Narrower than StudioGAN's (G and D of different widths, so a mix-up would show); the
    // full-width counts are compared through the reference's own `count` below.
    let runs = [
        ("conditional", SaganConfig { g_channels: 32, d_channels: 16, ..Default::default() }, CLASSES),
        (
            "unconditional_late_attention",
            SaganConfig {
                g_channels: 16,
                d_channels: 24,
                conditional: false,
                g_attention_after: 3,
                d_attention_after: 4,
                ..Default::default()
            },
            0,
        ),
    ];
    for (name, config, classes) in runs.clone() {
        record_run(&root.join(name), config, classes);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/sagan_cifar.py");
    let report =
        reference::compare(&python, &script, &root, &runs.iter().map(|(name, _, _)| *name).collect::<Vec<_>>());

    let counts = &report["reference_counts"];
    let expected = [
        ("sagan", 4_386_308, 1_075_586),
        ("sagan_unconditional", 4_358_660, 1_074_306),
        ("no_attention", 4_304_387, 1_055_105),
    ];
    for (name, g, d) in expected {
        assert_eq!((&counts[format!("G_{name}")], &counts[format!("D_{name}")]), (&g.into(), &d.into()), "{name}");
    }
    let ours: Vec<[i64; 2]> = runs
        .iter()
        .map(|(_, config, classes)| {
            let arch = sagan(config.clone(), *classes);
            ["generator", "discriminator"].map(|n| trainable_count(&*build(&arch, n)))
        })
        .collect();
    reference::assert_runs(&report, &runs.map(|r| r.0), &ours, 1e-10);
}

/// A few Adam steps with the hinge loss and SAGAN's learning rates move both γ away from 0:
/// attention receives gradient and is trained, as the paper's Figure reports γ growing.
#[test]
fn gamma_moves_away_from_zero_in_training() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let s = settings(narrow(), CLASSES);
    let (g_vs, d_vs) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
    let (g, d) = (Generator::new(g_vs.root(), &s), Discriminator::new(d_vs.root(), &s));
    let adam = nn::Adam { beta1: 0.0, beta2: 0.9, wd: 0.0, eps: 1e-8, amsgrad: false };
    let mut g_opt = nn::OptimizerConfig::build(adam, &g_vs, 1e-4).unwrap();
    let mut d_opt = nn::OptimizerConfig::build(adam, &d_vs, 4e-4).unwrap();
    let real = Tensor::rand([8, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let y = labels(8);
    for _ in 0..3 {
        let fake = tch::no_grad(|| g.generate(&z(8), Some(&y), true));
        let (r, _) = d.discriminate(&real, Some(&y), true);
        let (f, _) = d.discriminate(&fake, Some(&y), true);
        d_opt.backward_step(&((-r + 1.0).relu().mean(Kind::Float) + (f + 1.0).relu().mean(Kind::Float)));
        let (f, _) = d.discriminate(&g.generate(&z(8), Some(&y), true), Some(&y), true);
        g_opt.backward_step(&-f.mean(Kind::Float));
    }
    let (g_gamma, d_gamma) = (scalar(g.attention_gamma().unwrap()), scalar(d.attention_gamma().unwrap()));
    println!("γ after 3 steps: G {g_gamma:e}, D {d_gamma:e}");
    assert!(g_gamma != 0.0 && d_gamma != 0.0, "G {g_gamma}, D {d_gamma}");
}
