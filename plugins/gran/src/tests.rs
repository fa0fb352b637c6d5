//! Unit tests of the whole architecture (the rlib is linked directly), and the float64
//! cross-check against the PyTorch re-implementation in `reference/`.
use std::path::Path;

use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network};
use lab_plugin_testkit::network::{assert_seed_decides_weights, trainable_count};
use lab_plugin_testkit::reference;

use crate::{Generator, Gran, GranConfig};

fn fashion(channels: i64) -> DataSpec {
    square(channels, 28)
}

fn square(channels: i64, side: i64) -> DataSpec {
    DataSpec { channels, height: side, width: side, num_classes: 10 }
}

fn gran(config: GranConfig) -> Gran {
    let env = BuildEnv::from_device(Device::Cpu, fashion(1));
    <Gran as ArchitecturePlugin>::create(config, env).expect("valid config")
}

/// Narrow networks for tests that only need the structure.
fn narrow() -> GranConfig {
    GranConfig { time_steps: 3, z_dim: 6, g_channels: 8, d_channels: 6, d_hidden: 5, ..Default::default() }
}

fn build(arch: &Gran, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

/// Redraws G's convolution filters from N(0, 0.3²): the official N(0, 0.01²) start gives canvases
/// so close to 0 that sigmoid(Σ C_t) and the mean of the steps' sigmoids hardly differ, and the
/// code h_c barely moves with the canvas.
fn loud_filters(vs: &tch::nn::VarStore) {
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            if name.contains("conv") && name.ends_with("weight") {
                t.copy_(&(t.randn_like() * 0.3));
            }
        }
    });
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

fn max_abs(t: &Tensor) -> f64 {
    scalar(&t.abs().max())
}

#[test]
fn draws_images_and_per_step_images_and_scores_them_at_the_official_width() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let arch = gran(GranConfig::default());
    assert_eq!(arch.z_dim(), 500, "five steps of 100 values");
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let z = Tensor::randn([3, 500], (Kind::Float, Device::Cpu));
    let out = g.forward(&[z], true).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![3, 1, 28, 28], vec![3, 5, 1, 28, 28]));
    assert_eq!(out[2].size(), [3, 5, 1, 28, 28], "the canvases");
    assert!(max_abs(&out[0]) < 1.0, "sigmoid rescaled to (-1, 1)");
    let scored = d.forward(&[out[0].shallow_clone()], true).unwrap();
    assert_eq!((scored[0].size(), scored[1].size()), (vec![3], vec![3, 100]), "a logit and the tanh layer");
    let err = g.forward(&[Tensor::zeros([3, 100], (Kind::Float, Device::Cpu))], false).unwrap_err().to_string();
    assert!(err.contains("gran") && err.contains("500"), "{err}");
    assert_eq!(
        arch.build("encoder").err().unwrap(),
        "gran has no network `encoder`; valid names: generator, discriminator"
    );
}

/// The official widths, as the reference counts them. 28×28 gray: G 5,457,129 trainable
/// parameters, D 278,440 (by hand: G = noise 10,300 + hidden 2,546,432 + deconvs 819,328 +
/// 3,201 + encoder 3,456 + 819,712 + code 1,254,700; D = 2,160 + 80,080 + 196,100 + 100).
/// 32×32 RGB (CIFAR-10): G 37,784,683, D 16,874,184.
#[test]
fn parameter_counts_are_the_official_networks() {
    let _rng = crate::rng_lock();
    for (side, channels, expected) in [(28, 1, (5_457_129, 278_440)), (32, 3, (37_784_683, 16_874_184))] {
        let env = BuildEnv::from_device(Device::Cpu, square(channels, side));
        let arch = <Gran as ArchitecturePlugin>::create(GranConfig::default(), env).unwrap();
        let (g, d) = (trainable_count(&*build(&arch, "generator")), trainable_count(&*build(&arch, "discriminator")));
        println!("gran {side}x{side}: G {g} parameters, D {d}");
        assert_eq!((g, d), expected, "{side}x{side}");
    }
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    let arch = gran(narrow());
    for name in ["generator", "discriminator"] {
        assert_seed_decides_weights(name, || build(&arch, name));
    }
}

/// The image is sigmoid(Σ_t C_t), rescaled: not a sum (or mean) of per-step sigmoids. The
/// per-step images are the partial sums' sigmoids, the last being the image.
#[test]
fn the_image_is_the_sigmoid_of_the_sum_of_the_canvases() {
    let _rng = crate::rng_lock();
    tch::manual_seed(1);
    let s = narrow().resolve(&fashion(1)).unwrap();
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &s);
    loud_filters(&vs);
    let z = Tensor::randn([4, s.latent_width()], (Kind::Double, Device::Cpu));
    vs.double();
    let canvases = g.canvases(&z, false);
    assert_eq!(canvases.len(), 3);
    let (image, steps, stacked) = g.draw(&z, false);
    assert!(max_abs(&(stacked.select(1, 1) - &canvases[1])) == 0.0, "the third output is the canvases");
    let sum: Tensor = canvases.iter().fold(canvases[0].zeros_like(), |a, c| a + c);
    let expected = sum.sigmoid() * 2.0 - 1.0;
    let diff = max_abs(&(&image - &expected));
    let sigmoids: Tensor = canvases.iter().fold(canvases[0].zeros_like(), |a, c| a + c.sigmoid());
    let mean_of_sigmoids = sigmoids / 3.0 * 2.0 - 1.0;
    let other = max_abs(&(&image - &mean_of_sigmoids));
    println!("image vs sigmoid of the sum: {diff:e}; vs the mean of sigmoids: {other:e}");
    assert!(diff < 1e-12, "{diff}");
    assert!(other > 0.1, "the canvases are large enough for the two to differ: {other}");
    assert!(max_abs(&(steps.select(1, 0) - (canvases[0].sigmoid() * 2.0 - 1.0))) < 1e-12);
    let partial = (&canvases[0] + &canvases[1]).sigmoid() * 2.0 - 1.0;
    assert!(max_abs(&(steps.select(1, 1) - partial)) < 1e-12);
    assert!(max_abs(&(steps.select(1, 2) - &image)) == 0.0);
}

/// Changing z_k alone (evaluation mode, so the batch does not couple images) leaves the canvases
/// before step k exactly as they were, changes C_k, and changes C_{k+1} through the code h_c.
#[test]
fn each_steps_canvas_depends_on_its_own_z() {
    let _rng = crate::rng_lock();
    tch::manual_seed(2);
    let s = narrow().resolve(&fashion(1)).unwrap();
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let g = Generator::new(vs.root(), &s);
    loud_filters(&vs);
    let z = Tensor::randn([2, s.latent_width()], (Kind::Float, Device::Cpu));
    let before = g.canvases(&z, false);
    for k in 0..s.time_steps {
        let moved = z.copy();
        let _ = moved.narrow(1, k * s.z_dim, s.z_dim).g_add_(&Tensor::ones([2, s.z_dim], (Kind::Float, Device::Cpu)));
        let after = g.canvases(&moved, false);
        for t in 0..s.time_steps {
            let change = max_abs(&(&after[t as usize] - &before[t as usize]));
            if t < k {
                assert_eq!(change, 0.0, "C_{t} moved with z_{k}");
            } else {
                assert!(change > 1e-3, "C_{t} did not move with z_{k}: {change}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/gran.py).

/// Runs a G step's forward passes and backward (with z's gradient), a training-mode D pass on
/// real images (with their gradient) and evaluation passes, and records everything the
/// reference needs to replay them in `dir`.
fn record_run(dir: &Path, config: GranConfig, channels: i64, side: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let env = BuildEnv::from_device(Device::Cpu, square(channels, side));
    let arch = <Gran as ArchitecturePlugin>::create(config, env).unwrap();
    let s = arch.settings();
    let summary = serde_json::json!({
        "time_steps": s.time_steps, "z_dim": s.z_dim, "g_channels": s.g_channels,
        "d_channels": s.d_channels, "d_hidden": s.d_hidden, "image_channels": s.image_channels,
        "resolution": s.resolution,
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    reference::to_double(&*g);
    reference::to_double(&*d);
    reference::write_npz(&dir.join("g_before.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_before.npz"), &reference::weights(&*d));

    let n = 4;
    let z = Tensor::randn([n, s.latent_width()], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let fake = g.forward(&[z.shallow_clone()], true).unwrap().remove(0);
    let out = d.forward(&[fake.shallow_clone()], true).unwrap();
    out[0].mean(Kind::Double).backward();
    let grads = reference::gradients(&[("g", &*g), ("d", &*d)]);
    reference::write_npz(&dir.join("grads.npz"), &grads);

    let real =
        (Tensor::rand([n, channels, side, side], (Kind::Double, Device::Cpu)) * 2.0 - 1.0).set_requires_grad(true);
    let real_logits = d.forward(&[real.shallow_clone()], true).unwrap().remove(0);
    real_logits.sum(Kind::Double).backward();
    reference::write_npz(&dir.join("g_after.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_after.npz"), &reference::weights(&*d));

    let real_grad = real.grad();
    let real = real.detach();
    let eval_g = tch::no_grad(|| g.forward(&[z.detach()], false).unwrap());
    let eval = tch::no_grad(|| d.forward(&[real.shallow_clone()], false).unwrap());
    let io = [
        ("z", z.detach()),
        ("z_grad", z.grad()),
        ("fake", fake.detach()),
        ("logits", out[0].detach()),
        ("features", out[1].detach()),
        ("real", real),
        ("real_logits", real_logits.detach()),
        ("real_grad", real_grad),
        ("eval_fake", eval_g[0].shallow_clone()),
        ("eval_steps", eval_g[1].shallow_clone()),
        ("eval_logits", eval[0].shallow_clone()),
        ("eval_features", eval[1].shallow_clone()),
    ];
    reference::write_npz(&dir.join("io.npz"), &io.map(|(k, t)| (k.to_string(), t)));
}

/// Same weights, same inputs: the PyTorch reference must produce the same images, per-step
/// images, logits, features, input gradients (d logits / d z through the T steps of G and D,
/// d logits / d x through D), batch-norm statistics after the passes and parameter gradients,
/// and count the same parameters, within 1e-10 in float64. Skipped, saying so, when the venv's
/// Python is not there.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("gran-reference");
    // Narrower than the official widths (G and D of different widths, so a mix-up would show);
    // the full-width counts are compared through the reference's own `count` below.
    let runs = [
        (
            "five_steps_gray_28",
            GranConfig { z_dim: 12, g_channels: 16, d_channels: 10, d_hidden: 7, ..Default::default() },
            1,
            28,
        ),
        (
            "two_steps_rgb_28",
            GranConfig { time_steps: 2, z_dim: 9, g_channels: 8, d_channels: 12, d_hidden: 5, ..Default::default() },
            3,
            28,
        ),
        (
            "three_steps_rgb_32",
            GranConfig { time_steps: 3, z_dim: 8, g_channels: 16, d_channels: 12, d_hidden: 6, ..Default::default() },
            3,
            32,
        ),
    ];
    for (name, config, channels, side) in runs.clone() {
        record_run(&root.join(name), config, channels, side);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/gran.py");
    let report = reference::compare(&python, &script, &root, &runs.iter().map(|(name, ..)| *name).collect::<Vec<_>>());

    let counts = &report["reference_counts"];
    for (name, g, d) in [("gran28", 5_457_129, 278_440), ("gran32", 37_784_683, 16_874_184)] {
        assert_eq!((&counts[format!("G_{name}")], &counts[format!("D_{name}")]), (&g.into(), &d.into()), "{name}");
    }
    for ((name, config, channels, side), run) in runs.iter().zip(report["runs"].as_array().unwrap()) {
        let env = BuildEnv::from_device(Device::Cpu, square(*channels, *side));
        let arch = <Gran as ArchitecturePlugin>::create(config.clone(), env).unwrap();
        let ours = ["generator", "discriminator"].map(|n| trainable_count(&*build(&arch, n)));
        assert_eq!([&run["params"]["G"], &run["params"]["D"]], ours, "{name}");
        let worst = run["max_rel_diff"].as_object().unwrap().values().filter_map(|v| v.as_f64()).fold(0.0, f64::max);
        println!("{name}: largest relative difference {worst:e}");
        reference::assert_within(run, name, 1e-10);
    }
}
