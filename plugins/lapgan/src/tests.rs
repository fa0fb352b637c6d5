//! Unit tests of the pyramid, the networks and the loss, and the float64 cross-check against the
//! PyTorch re-implementation in `reference/`.
use std::path::Path;

use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Network};
use lab_plugin_testkit::network::{assert_seed_decides_weights, trainable_count};
use lab_plugin_testkit::reference;

use crate::model::{down, real_pyramid, up};
use crate::{Lapgan, LapganConfig};

fn square(channels: i64, side: i64) -> DataSpec {
    DataSpec { channels, height: side, width: side, num_classes: 10 }
}

fn lapgan(config: LapganConfig, data: DataSpec) -> Lapgan {
    <Lapgan as ArchitecturePlugin>::create(config, BuildEnv::from_device(Device::Cpu, data)).expect("valid config")
}

fn narrow() -> LapganConfig {
    LapganConfig { z_dim: 10, g0_hidden: 32, d0_hidden: 16, g_channels: 8, d_channels: 6, ..Default::default() }
}

fn build(arch: &Lapgan, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// By hand (a fully connected layer in·out + out, a convolution out·in·k² + out), Fashion-MNIST
/// (1 channel, 7 → 14 → 28):
///   G_0: 100·1200 + 1200 + 1200·1200 + 1200 + 1200·49 + 49          = 1,621,249
///   G_1, G_2: 7×7 (2 → 64) 6,336 + 7×7 (64 → 64) 200,768 + 5×5 (64 → 1) 1,601 = 208,705 each
///   generator: 2,038,659
///   D_0: 49·600 + 600 + 600·600 + 600 + 600 + 1                     =   391,201
///   D_1: 5×5 (1 → 64) 1,664 + 5×5 (64 → 64) 102,464 + 64·7·7 + 1     =   107,265
///   D_2: the same convolutions + 64·14·14 + 1                        =   116,673
/// CIFAR-10 (3 channels, 8 → 16 → 32): generator 2,229,350 (G_0 1,792,992: its last layer reads
/// 1,200 values into 8·8·3; G_1, G_2 218,179 each: 4 input channels, 3 output), D_0 477,001,
/// D_1 111,425, D_2 123,713. `reference/lapgan.py count` builds all of them from its own layer
/// list; `matches_the_pytorch_reference` compares.
#[test]
fn parameter_counts_are_the_papers_networks() {
    let _rng = crate::rng_lock();
    let arch = lapgan(LapganConfig::default(), square(1, 28));
    let names = ["generator", "discriminator_0", "discriminator_1", "discriminator_2"];
    let counts: Vec<i64> = names.iter().map(|n| trainable_count(&*build(&arch, n))).collect();
    println!("lapgan 28x28: {counts:?}");
    assert_eq!(counts, [2_038_659, 391_201, 107_265, 116_673]);
    assert_eq!(
        arch.build("discriminator").err().unwrap(),
        "lapgan has no network `discriminator`; valid names: generator, discriminator_0, discriminator_1, \
         discriminator_2"
    );
}

#[test]
fn same_seed_builds_identical_weights() {
    let _rng = crate::rng_lock();
    let arch = lapgan(narrow(), square(1, 28));
    for name in ["generator", "discriminator_0", "discriminator_2"] {
        assert_seed_decides_weights(name, || build(&arch, name));
    }
}

/// The pyramid: each level is the 2×2 mean of the next, and a constant image stays constant
/// through up- and downsampling.
#[test]
fn the_real_pyramid_halves_by_means() {
    tch::manual_seed(0);
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Double, Device::Cpu));
    let p = real_pyramid(&x, 3);
    assert_eq!(p.iter().map(|t| t.size()[2]).collect::<Vec<_>>(), [7, 14, 28]);
    let corner = x.narrow(0, 0, 1).narrow(2, 0, 2).narrow(3, 0, 2).mean(Kind::Double).double_value(&[]);
    assert!((p[1].double_value(&[0, 0, 0, 0]) - corner).abs() < 1e-12);
    assert!(max_abs(&(down(&p[1]) - &p[0])) < 1e-12);
    let ones = Tensor::ones([1, 1, 7, 7], (Kind::Double, Device::Cpu));
    assert!(max_abs(&(up(&ones) - 1.0)) < 1e-12);
}

/// Sampling: every stage is the upsampled stage below plus its band-pass image, and the last
/// stage is the image. On the real pyramid, level k's image depends on the real coarse image
/// and on its own noise plane only: changing level 2's plane leaves levels 0 and 1 alone.
#[test]
fn stages_add_up_and_levels_train_independently() {
    let _rng = crate::rng_lock();
    tch::manual_seed(1);
    let arch = lapgan(narrow(), square(1, 28));
    let mut g = build(&arch, "generator");
    let width = arch.z_dim();
    let latent = Tensor::rand([3, width], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let out = g.forward(&[latent.shallow_clone()], false).unwrap();
    assert_eq!((out[0].size(), out[1].size()), (vec![3, 1, 28, 28], vec![3, 5, 1, 28, 28]));
    let stage = |i: i64| out[1].select(1, i);
    assert!(max_abs(&(stage(4) - &out[0])) == 0.0, "the last stage is the image");
    // Ĩ_2 = u(Ĩ_1) + h_2, with Ĩ_1 taken back to 14×14 from its nearest-neighbour enlargement.
    let i1 = stage(2).slice(2, 0, None, 2).slice(3, 0, None, 2);
    assert!(max_abs(&(up(&i1) + stage(3) - stage(4))) < 1e-5);

    let real = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let a = g.forward(&[latent.shallow_clone(), real.shallow_clone()], true).unwrap();
    assert_eq!(a.iter().map(|t| t.size()[2]).collect::<Vec<_>>(), [7, 14, 28]);
    let other = latent.copy();
    let _ = other.narrow(1, width - 784, 784).fill_(0.25);
    let b = g.forward(&[other, real], true).unwrap();
    assert!(max_abs(&(&a[0] - &b[0])) == 0.0 && max_abs(&(&a[1] - &b[1])) == 0.0);
    assert!(max_abs(&(&a[2] - &b[2])) > 1e-4, "level 2 reads its own plane");
    let err = g.forward(&[latent.narrow(1, 0, 10)], true).unwrap_err().to_string();
    assert!(err.contains("lapgan") && err.contains(&width.to_string()), "{err}");
}

/// The coarse phases: `coarse_updates = 3` adds two alternating `D_coarse`/`G_coarse` pairs
/// after D and G, each stepping one network; the generator given the real images at the
/// coarsest side draws level 0 alone (the same image as the full call), and a loss on it reaches
/// level 0's weights only, so a `G_coarse` step leaves the finer levels and their optimiser
/// state alone.
#[test]
fn coarse_updates_step_level_zero_alone() {
    use lab_plugin_api::{LossPlugin, PhasePlan};
    let _rng = crate::rng_lock();
    let env = || BuildEnv::from_device(Device::Cpu, square(1, 28));
    let loss = |k| <crate::LapganLoss as LossPlugin>::create(crate::LapganLossConfig { coarse_updates: k }, env());
    assert!(loss(1).unwrap().plan().is_empty(), "one update: the default plan");
    let plan: Vec<(String, Vec<String>)> =
        loss(3).unwrap().plan().into_iter().map(|p: PhasePlan| (p.name, p.networks)).collect();
    let names: Vec<&str> = plan.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["D", "G", "D_coarse", "G_coarse", "D_coarse", "G_coarse"]);
    assert_eq!(plan[2].1, ["discriminator_0"]);
    assert_eq!(plan[3].1, ["generator"]);
    assert_eq!(
        loss(0).unwrap_err().to_string(),
        "lapgan: loss.config.coarse_updates must be at least 1 (1 updates every level once a step)"
    );

    tch::manual_seed(2);
    let arch = lapgan(narrow(), square(1, 28));
    let mut g = build(&arch, "generator");
    let latent = Tensor::rand([4, arch.z_dim()], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let real = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let full = g.forward(&[latent.shallow_clone(), real.shallow_clone()], true).unwrap();
    let coarsest = real_pyramid(&real, 3).swap_remove(0);
    let alone = g.forward(&[latent.shallow_clone(), coarsest], true).unwrap();
    assert_eq!(alone.len(), 1, "the coarsest side: level 0 only");
    assert!(max_abs(&(&alone[0] - &full[0])) == 0.0);
    let mid = g.forward(&[latent.shallow_clone(), down(&real)], true).unwrap();
    assert_eq!(mid.iter().map(|t| t.size()[2]).collect::<Vec<_>>(), [7, 14]);
    assert!(max_abs(&(&mid[1] - &full[1])) == 0.0);

    let tensors = g.tensors();
    let params: Vec<&Tensor> = tensors.iter().filter(|(_, _, trainable)| *trainable).map(|(_, t, _)| t).collect();
    let grads = Tensor::run_backward(&[alone[0].square().sum(Kind::Float)], &params, false, false);
    for ((name, _, _), grad) in tensors.iter().filter(|(_, _, trainable)| *trainable).zip(&grads) {
        assert_eq!(grad.defined(), name.starts_with("level0."), "{name}");
    }
    let err = g.forward(&[latent, Tensor::zeros([4, 1, 9, 9], (Kind::Float, Device::Cpu))], true).unwrap_err();
    assert_eq!(err.to_string(), "lapgan generator: real images must have shape [N, 1, 28, 28], got [4, 1, 9, 9]");
}

// ---------------------------------------------------------------------------------------------
// Cross-check against an independent PyTorch implementation (reference/lapgan.py).

/// The whole pyramid's sampling (G) with the finest level's D, dropout off so both sides are
/// deterministic in training mode.
fn record_run(dir: &Path, config: LapganConfig, data: DataSpec) {
    std::fs::create_dir_all(dir).unwrap();
    let arch = lapgan(config, data);
    let s = arch.settings();
    let summary = serde_json::json!({
        "sides": s.sides, "z_dim": s.z_dim, "g0_hidden": s.g0_hidden, "d0_hidden": s.d0_hidden,
        "g_channels": s.g_channels, "d_channels": s.d_channels, "channels": s.channels,
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let last = format!("discriminator_{}", s.levels - 1);
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, &last));
    reference::to_double(&*g);
    reference::to_double(&*d);
    let latent = Tensor::rand([4, s.latent_width()], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    let side = *s.sides.last().unwrap();
    reference::record_gan_passes(dir, &mut *g, &mut *d, &latent, None, [s.channels, side, side]);
}

/// Same weights, same inputs: the PyTorch reference must produce the same images (every level
/// of the pyramid sampled in turn), logits, features, input gradients and parameter gradients,
/// within 1e-10 in float64, and count the same parameters. Skipped, saying so, without the
/// venv's Python.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let root = reference::scratch("lapgan-reference");
    let runs = [
        ("fashion_mnist", LapganConfig { d_dropout: 0.0, ..narrow() }, square(1, 28)),
        ("cifar_two_levels", LapganConfig { levels: 2, d_dropout: 0.0, ..narrow() }, square(3, 32)),
    ];
    for (name, config, data) in runs.clone() {
        record_run(&root.join(name), config, data);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/lapgan.py");
    let report =
        reference::compare(&python, &script, &root, &runs.iter().map(|(name, _, _)| *name).collect::<Vec<_>>());
    let counts = &report["reference_counts"];
    for (key, value) in [
        ("G_fashion_mnist", 2_038_659),
        ("D0_fashion_mnist", 391_201),
        ("D1_fashion_mnist", 107_265),
        ("D2_fashion_mnist", 116_673),
    ] {
        assert_eq!(counts[key], value, "{key}");
    }
    let cifar = lapgan(LapganConfig::default(), square(3, 32));
    for (key, name) in
        [("G_cifar10", "generator"), ("D0_cifar10", "discriminator_0"), ("D2_cifar10", "discriminator_2")]
    {
        assert_eq!(counts[key], trainable_count(&*build(&cifar, name)), "{key}");
    }
    let ours: Vec<[i64; 2]> = runs
        .iter()
        .map(|(_, config, data)| {
            let arch = lapgan(config.clone(), *data);
            let last = format!("discriminator_{}", arch.settings().levels - 1);
            [trainable_count(&*build(&arch, "generator")), trainable_count(&*build(&arch, &last))]
        })
        .collect();
    reference::assert_runs(&report, &runs.map(|r| r.0), &ours, 1e-10);
}
