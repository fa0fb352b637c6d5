//! Unit tests of the whole architecture and loss (the rlib is linked directly), and the float64
//! cross-check against the PyTorch re-implementation in `reference/`.
use std::path::Path;

use lab_nn::gan::Generator as _;
use lab_plugin_api::tch::{self, nn, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network, PhasePlan};
use lab_plugin_testkit::loss::{create, FakeLossHost, B, FAKE, REAL, W};
use lab_plugin_testkit::network::{assert_seed_decides_weights, trainable_count};
use lab_plugin_testkit::reference;

use crate::{Generator, StyleGan2, StyleGan2Config, StyleGan2Loss};

const CLASSES: i64 = 10;

fn square(side: i64, num_classes: i64) -> DataSpec {
    DataSpec { channels: 3, height: side, width: side, num_classes }
}

fn stylegan2(config: StyleGan2Config, data: DataSpec) -> StyleGan2 {
    <StyleGan2 as ArchitecturePlugin>::create(config, BuildEnv::from_device(Device::Cpu, data)).expect("valid config")
}

fn build(arch: &StyleGan2, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

/// Narrow networks for tests that only need the structure: 16 channels at 4×4 down to 2 at 32×32.
fn narrow() -> StyleGan2Config {
    StyleGan2Config {
        z_dim: 8,
        w_dim: 16,
        channel_base: 64,
        channel_max: 16,
        mbstd_group_size: 2,
        d_mapping_layers: 2,
        ..Default::default()
    }
}

fn z(n: i64, width: i64) -> Tensor {
    Tensor::randn([n, width], (Kind::Float, Device::Cpu))
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// The counts at full width, by hand from the layer list (a fully connected layer has in·out + out
/// parameters, a convolution out·in·k² + out, a modulated one out·in·9 + out + 1 for its noise
/// strength plus its affine layer w_dim·in + in):
///
/// stylegan2-ada's cifar config, 512 channels at 4, 8, 16 and 32 px, w = 512:
///   G synthesis: b4 = const 8,192 + conv1 2,622,465 + toRGB 264,195        =  2,894,852
///                b8, b16, b32 = conv0 + conv1 2 × 2,622,465 + toRGB 264,195 = 3 × 5,509,125
///                                                                            = 19,422,227
///   G mapping, 2 layers: 2 × 262,656 = 525,312; conditional: label embedding 5,632 and a first
///   layer reading 1,024 values (524,800): 793,088
///   G: 19,947,539 unconditional, **20,215,315** conditional
///   D: b32 = fromRGB 2,048 + 2 × 2,359,808; b16, b8 = 2 × 2 × 2,359,808       = 14,160,896
///      epilogue: conv 513 → 512 2,364,416 + fc 8,192 → 512 4,194,816          =  6,559,232
///      out: 513 (unconditional) or 262,656 to the 512-wide cmap, plus the label mapping
///      (embedding 5,632 and 8 layers of 262,656 = 2,106,880)
///   D: 20,720,641 unconditional, **23,089,664** conditional
/// The conditional counts are those of StudioGAN's CIFAR-10 StyleGAN2 logs (shared/ZOO.md §14);
/// all six equal what stylegan2-ada-pytorch's own `Generator` and `Discriminator` count when
/// built with these settings (checked by hand once; the repository is not needed by the tests). DiffAugment's StyleGAN2 (512/512/256/128 channels, 8 mapping
/// layers, residual D): G 13,506,963, D 13,918,849. `reference/stylegan2.py count` builds the
/// same networks from its own layer list; `matches_the_pytorch_reference` checks that it agrees.
#[test]
fn parameter_counts_equal_the_references() {
    let _rng = crate::rng_lock();
    let counts = |config: StyleGan2Config, classes| {
        let arch = stylegan2(config, square(32, classes));
        let g = trainable_count(&*build(&arch, "generator"));
        let d = trainable_count(&*build(&arch, "discriminator"));
        println!("stylegan2 (classes {classes}): G {g}, D {d}");
        (g, d)
    };
    let conditional = StyleGan2Config { conditional: true, ..Default::default() };
    assert_eq!(counts(conditional, CLASSES), (20_215_315, 23_089_664));
    assert_eq!(counts(StyleGan2Config::default(), CLASSES), (19_947_539, 20_720_641));
    let diffaugment = StyleGan2Config {
        channel_base: 4096,
        mapping_layers: 8,
        d_architecture: "resnet".into(),
        ..Default::default()
    };
    assert_eq!(counts(diffaugment, 0), (13_506_963, 13_918_849));
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    let arch = stylegan2(StyleGan2Config { conditional: true, ..narrow() }, square(32, CLASSES));
    for name in ["generator", "discriminator"] {
        assert_seed_decides_weights(name, || build(&arch, name));
    }
}

/// The generator's outputs are the images and the broadcast w (8 copies at 32×32), D's the logits
/// and the epilogue's features; the names are stylegan2-ada's.
#[test]
fn networks_have_the_official_shapes_and_names() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = stylegan2(StyleGan2Config { conditional: true, ..narrow() }, square(32, CLASSES));
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let y = Tensor::from_slice(&[0i64, 3, 9, 1]);
    let out = g.forward(&[z(4, 8), y.shallow_clone()], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![4, 3, 32, 32], vec![4, 8, 16]));
    let scored = d.forward(&[out[0].shallow_clone(), y], true).unwrap();
    assert_eq!((scored[0].size(), scored[1].size()), (vec![4], vec![4, 16]));
    let names: Vec<String> = g.tensors().into_iter().map(|t| t.0).collect();
    for name in [
        "mapping.embed.weight",
        "mapping.fc1.bias",
        "mapping.w_avg",
        "synthesis.b4.const",
        "synthesis.b8.conv0.affine.weight",
        "synthesis.b32.conv1.noise_strength",
        "synthesis.b32.conv1.noise_const",
        "synthesis.b32.torgb.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let buffers: Vec<String> = g.tensors().into_iter().filter(|t| !t.2).map(|t| t.0).collect();
    assert!(buffers.iter().all(|n| n == "mapping.w_avg" || n.ends_with("noise_const")), "{buffers:?}");
    let d_names: Vec<String> = d.tensors().into_iter().map(|t| t.0).collect();
    for name in ["b32.fromrgb.weight", "b8.conv1.weight", "b4.conv.weight", "b4.out.weight", "mapping.fc1.weight"] {
        assert!(d_names.iter().any(|n| n == name), "{name} in {d_names:?}");
    }
    assert!(!d_names.iter().any(|n| n.contains("skip")), "cifar's D is `orig`: no residual skips");
}

/// Style mixing at probability 1: every image takes w from its own z up to a random cutoff
/// (at least layer 1) and from a second z after it; at probability 0, all 8 copies are equal. In
/// training the running mean moves by (1 − β)·mean(w) from 0, from the first latent only.
#[test]
fn style_mixing_switches_latents_at_a_cutoff_and_w_avg_tracks_the_first() {
    let _rng = crate::rng_lock();
    tch::manual_seed(1);
    let s = StyleGan2Config { style_mixing_prob: 1.0, ..narrow() }.resolve(&square(32, 0)).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &s);
    let z = z(6, 8);
    let first = tch::no_grad(|| g.ws(&z, None, false)).select(1, 0);
    let mut cutoffs = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let w_avg_before = g.mapping_mean().unwrap().copy();
        let ws = tch::no_grad(|| g.ws(&z, None, true));
        let row = |i: i64| ws.select(1, i);
        assert!(max_abs(&(row(0) - &first)) < 1e-6, "layer 0 always comes from z");
        let switch = (1..8).find(|&i| max_abs(&(row(i) - row(0))) > 1e-6).expect("probability 1: a switch");
        assert!((switch..8).all(|i| max_abs(&(row(i) - row(switch))) < 1e-6), "one second latent after the cutoff");
        assert!((0..switch).all(|i| max_abs(&(row(i) - row(0))) < 1e-6));
        cutoffs.insert(switch);
        let expected = w_avg_before.lerp(&first.mean_dim([0i64].as_slice(), false, Kind::Float), 1.0 - s.w_avg_beta);
        assert!(max_abs(&(g.mapping_mean().unwrap() - expected)) < 1e-6, "w_avg moved by the first latent");
    }
    assert!(cutoffs.len() >= 4, "the cutoff is random: {cutoffs:?}");
    let plain = Generator::new(
        vs.root() / "plain",
        &StyleGan2Config { style_mixing_prob: 0.0, ..narrow() }.resolve(&square(32, 0)).unwrap(),
    );
    let ws = tch::no_grad(|| plain.ws(&z, None, true));
    assert!(max_abs(&(&ws - ws.select(1, 0).unsqueeze(1))) == 0.0, "no mixing: one w for every layer");
}

/// Truncation ψ = 0 outside training draws every image from w_avg: with constant noise, one
/// image for every z. ψ = 1 and training are untouched.
#[test]
fn truncation_pulls_towards_the_mean_w_outside_training() {
    let _rng = crate::rng_lock();
    tch::manual_seed(2);
    let config = StyleGan2Config { truncation_psi: 0.0, noise_mode: "const".into(), ..narrow() };
    let s = config.resolve(&square(32, 0)).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &s);
    let _ = tch::no_grad(|| g.generate(&z(4, 8), None, true)); // moves w_avg away from 0
    let images = tch::no_grad(|| g.generate(&z(4, 8), None, false));
    assert!(max_abs(&(&images - images.get(0))) < 1e-6, "ψ = 0: all images are G(w_avg)");
    let trained = tch::no_grad(|| g.generate(&z(4, 8), None, true));
    assert!(max_abs(&(&trained - trained.get(0))) > 1e-3, "training ignores ψ");
}

/// Random noise differs from pass to pass once its strength is non-zero; `const` noise and
/// `none` are deterministic.
#[test]
fn noise_modes() {
    let _rng = crate::rng_lock();
    for (mode, varies) in [("random", true), ("const", false), ("none", false)] {
        tch::manual_seed(3);
        let s = StyleGan2Config { noise_mode: mode.into(), ..narrow() }.resolve(&square(32, 0)).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let g = Generator::new(vs.root(), &s);
        tch::no_grad(|| {
            for (name, mut t) in vs.variables() {
                if name.ends_with("noise_strength") {
                    let _ = t.fill_(0.5);
                }
            }
        });
        let z = z(2, 8);
        let (a, b) = tch::no_grad(|| (g.generate(&z, None, false), g.generate(&z, None, false)));
        assert_eq!(max_abs(&(a - b)) > 1e-4, varies, "{mode}");
    }
}

// ---------------------------------------------------------------------------------------------
// The loss.

fn plan(config: &str) -> Vec<(String, u64, bool, Vec<String>)> {
    let loss = create::<StyleGan2Loss>(config).unwrap();
    loss.plan().unwrap().into_iter().map(|p: PhasePlan| (p.name, p.every, p.lazy, p.networks)).collect()
}

/// The official phases: G then G's lazy path-length phase every 4 steps, D then D's lazy R1
/// every 16; R1 at every step is no phase of its own (and then not lazy).
#[test]
fn the_plan_has_the_official_lazy_phases() {
    let s = |v: &str| v.to_string();
    assert_eq!(
        plan(""),
        [
            (s("G"), 1, false, vec![]),
            (s("G_pl"), 4, true, vec![s("generator")]),
            (s("D"), 1, false, vec![]),
            (s("D_r1"), 16, true, vec![s("discriminator")]),
        ]
    );
    assert_eq!(
        plan("r1_every = 1\npl_every = 0"),
        [(s("G"), 1, false, vec![]), (s("D"), 1, false, vec![])],
        "DiffAugment's StyleGAN2: R1 in every D step"
    );
    let err = create::<StyleGan2Loss>("pl_decay = 2.0").err().unwrap().to_string();
    assert_eq!(err, "key `pl_decay`: expected a number in [0, 1], found 2");
}

fn softplus(x: f64) -> f64 {
    x.exp().ln_1p()
}

fn logits(rows: &[[f64; 4]]) -> Vec<f64> {
    rows.iter().map(|r| r.iter().zip(W).map(|(x, w)| x * w).sum::<f64>() + B).collect()
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// On a linear D(x) = x·w + b, by hand: D's main loss is mean softplus(D(G(z))) + mean
/// softplus(−D(x)); the lazy R1 phase is 16 · γ/2 · ‖w‖² (∇ₓD = w for every image), and R1 in
/// every step adds γ/2 · ‖w‖² to the main loss; G's is mean softplus(−D(G(z))).
#[test]
fn losses_match_a_hand_computation_with_the_lazy_gain() {
    let norm2: f64 = W.iter().map(|w| w * w).sum();
    let d_main = mean(logits(&FAKE).into_iter().map(softplus)) + mean(logits(&REAL).into_iter().map(|r| softplus(-r)));
    let value = |t: &Tensor| t.double_value(&[]);

    let mut loss = create::<StyleGan2Loss>("r1_gamma = 0.5").unwrap();
    let d = FakeLossHost::new("D").loss(&mut loss).unwrap();
    assert!((value(&d) - d_main).abs() < 1e-6, "{} vs {d_main}", value(&d));
    let mut host = FakeLossHost::new("D_r1");
    let groups = host.groups(&mut loss).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].0, ["discriminator"]);
    let r1 = value(groups[0].1.as_ref().unwrap());
    assert!((r1 - 16.0 * 0.25 * norm2).abs() < 1e-4, "{r1}");
    assert!((host.logged("loss/r1").unwrap() - 0.25 * norm2).abs() < 1e-5, "the logged term has no gain");
    let g = FakeLossHost::new("G").loss(&mut loss).unwrap();
    let g_main = mean(logits(&FAKE).into_iter().map(|f| softplus(-f)));
    assert!((value(&g) - g_main).abs() < 1e-6);

    let mut every_step = create::<StyleGan2Loss>("r1_gamma = 0.5\nr1_every = 1").unwrap();
    let d = FakeLossHost::new("D").loss(&mut every_step).unwrap();
    assert!((value(&d) - d_main - 0.25 * norm2).abs() < 1e-5);
    // Path length off (cifar): the phase steps nothing, but it exists for the lazy rescaling.
    let groups = FakeLossHost::new("G_pl").groups(&mut loss).unwrap();
    assert_eq!(groups.len(), 1);
    assert!(groups[0].1.is_none() && groups[0].0 == ["generator"], "a skip");
}

/// With an augmentation x ↦ 2x, R1 through the augmentation to the clean images (stylegan2-ada)
/// is 4 · γ/2 · ‖w‖²; on the augmented images themselves (DiffAugment's TF code) γ/2 · ‖w‖².
#[test]
fn r1_on_clean_or_augmented_images() {
    let norm2: f64 = W.iter().map(|w| w * w).sum();
    for (on, factor) in [("clean", 4.0), ("augmented", 1.0)] {
        let mut loss = create::<StyleGan2Loss>(&format!("r1_gamma = 0.5\nr1_on = \"{on}\"")).unwrap();
        let mut host = FakeLossHost::new("D_r1");
        host.augment_scale = 2.0;
        let groups = host.groups(&mut loss).unwrap();
        let r1 = groups[0].1.as_ref().unwrap().double_value(&[]) / 16.0;
        assert!((r1 - factor * 0.25 * norm2).abs() < 1e-4, "{on}: {r1}");
    }
    let err = create::<StyleGan2Loss>("r1_on = \"fake\"").err().unwrap().to_string();
    assert!(err.starts_with("key `r1_on`: expected clean or augmented, found \"fake\""), "{err}");
}

/// The path-length mean is the loss's checkpointed state: a restored value comes back exactly.
#[test]
fn the_path_length_mean_round_trips_through_the_state() {
    let mut loss = create::<StyleGan2Loss>("pl_weight = 2.0").unwrap();
    assert_eq!(loss.state().unwrap(), r#"{"pl_mean":0.0}"#);
    let value = f64::from(0.123_456_79f32);
    loss.load_state(&format!(r#"{{"pl_mean":{value}}}"#)).unwrap();
    assert_eq!(loss.state().unwrap(), format!(r#"{{"pl_mean":{value}}}"#));
    let err = loss.load_state("{}").unwrap_err().to_string();
    assert!(err.starts_with("the `stylegan2` loss's state should be {\"pl_mean\": <number>}"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/stylegan2.py).

/// Builds both networks in float64 with the noise strengths, biases and w_avg moved away from
/// their zero start (so those paths are compared too), runs the testkit's passes and records
/// everything the reference needs in `dir`.
fn record_run(dir: &Path, config: StyleGan2Config, data: DataSpec) {
    std::fs::create_dir_all(dir).unwrap();
    let arch = stylegan2(config, data);
    let s = arch.settings();
    let summary = serde_json::json!({
        "resolution": s.resolution, "image_channels": s.image_channels, "z_dim": s.z_dim, "w_dim": s.w_dim,
        "mapping_layers": s.mapping_layers, "d_mapping_layers": s.d_mapping_layers,
        "mapping_lr_multiplier": s.mapping_lr_multiplier, "channel_base": s.channel_base,
        "channel_max": s.channel_max,
        "d_architecture": if s.d_architecture == crate::config::DArchitecture::Resnet { "resnet" } else { "orig" },
        "mbstd_group_size": s.mbstd_group_size, "mbstd_channels": s.mbstd_channels,
        "conv_clamp": s.conv_clamp, "w_avg_beta": s.w_avg_beta, "truncation_psi": s.truncation_psi,
        "noise_mode": "const", "classes": s.classes.unwrap_or(0),
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    reference::to_double(&*g);
    reference::to_double(&*d);
    tch::no_grad(|| {
        for (name, mut t, _) in g.tensors().into_iter().chain(d.tensors()) {
            if name.ends_with("noise_strength") || name.ends_with("bias") || name.ends_with("w_avg") {
                t.copy_(&(t.randn_like() * 0.3 + &t));
            }
        }
    });
    let y = s.classes.map(|_| Tensor::from_slice(&[0i64, 7, 3, 9]));
    reference::record_gan_passes(dir, &mut *g, &mut *d, &z(4, s.z_dim), y.as_ref(), [3, s.resolution, s.resolution]);
}

/// Same weights, same inputs: the PyTorch reference must produce the same images, logits,
/// features, input gradients (through G and D, and through D alone), w_avg after the training
/// passes and parameter gradients, and count the same parameters, within 1e-10 in float64.
/// Two configurations: the cifar shape (conditional, `orig` D, a clamp that bites) and a residual
/// D at 16×16 with two minibatch-stddev channels and truncation. Skipped, saying so, when the
/// venv's Python is not there.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("stylegan2-reference");
    let runs = [
        (
            "conditional_orig_clamped",
            StyleGan2Config {
                conditional: true,
                conv_clamp: 0.5,
                noise_mode: "const".into(),
                d_mapping_layers: 3,
                ..narrow()
            },
            square(32, CLASSES),
        ),
        (
            "resnet_truncated",
            StyleGan2Config {
                z_dim: 6,
                w_dim: 12,
                channel_base: 128,
                channel_max: 16,
                mapping_layers: 3,
                d_architecture: "resnet".into(),
                mbstd_group_size: 4,
                mbstd_channels: 2,
                conv_clamp: 0.0,
                truncation_psi: 0.7,
                noise_mode: "const".into(),
                ..Default::default()
            },
            square(16, 0),
        ),
    ];
    for (name, config, data) in runs.clone() {
        record_run(&root.join(name), config, data);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/stylegan2.py");
    let report =
        reference::compare(&python, &script, &root, &runs.iter().map(|(name, _, _)| *name).collect::<Vec<_>>());

    let counts = &report["reference_counts"];
    let expected = [
        ("cifar_conditional", 20_215_315, 23_089_664),
        ("cifar", 19_947_539, 20_720_641),
        ("diffaugment_cifar", 13_506_963, 13_918_849),
    ];
    for (name, g, d) in expected {
        assert_eq!((&counts[format!("G_{name}")], &counts[format!("D_{name}")]), (&g.into(), &d.into()), "{name}");
    }
    let ours: Vec<[i64; 2]> = runs
        .iter()
        .map(|(_, config, data)| {
            let arch = stylegan2(config.clone(), *data);
            ["generator", "discriminator"].map(|n| trainable_count(&*build(&arch, n)))
        })
        .collect();
    reference::assert_runs(&report, &runs.map(|r| r.0), &ours, 1e-10);
}
