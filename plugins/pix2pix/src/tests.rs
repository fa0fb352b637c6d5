//! Unit tests of the whole plugin (the rlib is linked directly): the networks' structure and
//! parameter counts, the test-time noise, the loss through a fake core, the measures against a
//! numpy implementation of their definitions, `evaluate` and `visualize` through the real
//! boundary, and the float64 cross-check against the PyTorch re-implementation in `reference/`.
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use lab_nn::Norm;
use lab_plugin_api::architecture::{SPLIT_REFERENCE, SPLIT_REFERENCE_B};
use lab_plugin_api::host::{into_result, Architecture, EvalHost, Factory, VisualHost};
use lab_plugin_api::tch::{self, Device, Kind, Tensor};
use lab_plugin_api::{ArchitecturePlugin, BuildEnv, DataSpec, Error, Network, Role, PHASE_D, PHASE_G};
use lab_plugin_testkit::loss::{batch, create as create_loss, FakeLossHost, FakeNetwork, FAKE, REAL};
use lab_plugin_testkit::network::trainable_count;
use lab_plugin_testkit::reference;

use crate::loss::{bce_with_logits, d_loss_from_logits, l1_distance, pair};
use crate::measure::{psnr, ssim, to_unit_range, Totals};
use crate::model::MEASURES;
use crate::{Pix2pix, Pix2pixConfig, Pix2pixLoss};

fn square(channels: i64, side: i64) -> DataSpec {
    DataSpec { channels, height: side, width: side, num_classes: 0 }
}

fn pix2pix(config: Pix2pixConfig, data: DataSpec) -> Pix2pix {
    <Pix2pix as ArchitecturePlugin>::create(config, BuildEnv::from_device(Device::Cpu, data)).expect("valid config")
}

fn build(arch: &Pix2pix, name: &str) -> Box<dyn Network> {
    arch.build(name).expect("known network")
}

/// Narrow networks for tests that only need the structure.
fn narrow() -> Pix2pixConfig {
    Pix2pixConfig { ngf: 4, ndf: 4, ..Default::default() }
}

fn images(n: i64, data: DataSpec, kind: Kind) -> Tensor {
    Tensor::rand([n, data.channels, data.height, data.width], (kind, Device::Cpu)) * 2.0 - 1.0
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn parameter_counts_are_the_official_ones() {
    let _rng = crate::rng_lock();
    // The official unet_256 and basic PatchGAN with batch norm on RGB pairs (what the official
    // code prints as 54.414 M and 2.769 M); unet_128 at 128 px.
    let arch = pix2pix(Pix2pixConfig::default(), square(3, 256));
    assert_eq!(trainable_count(&*build(&arch, "generator")), 54_413_955);
    assert_eq!(trainable_count(&*build(&arch, "discriminator")), 2_768_705);
    let arch = pix2pix(Pix2pixConfig::default(), square(3, 128));
    assert_eq!(trainable_count(&*build(&arch, "generator")), 41_828_995);
    // The stand-in data, 32×32 grey, as the PyTorch reference counts them (`pix2pix.py count`).
    let arch = pix2pix(Pix2pixConfig::default(), square(1, 32));
    assert_eq!(trainable_count(&*build(&arch, "generator")), 16_652_929);
    assert_eq!(trainable_count(&*build(&arch, "discriminator")), 2_764_609);
}

#[test]
fn networks_translate_images_and_score_patches_and_check_their_inputs() {
    let _rng = crate::rng_lock();
    tch::manual_seed(0);
    let data = square(3, 32);
    let arch = pix2pix(narrow(), data);
    assert_eq!(arch.z_dim(), 0);
    let specs: Vec<_> = arch.networks().into_iter().map(|s| (s.name, s.phases)).collect();
    assert_eq!(specs, [("generator".into(), vec!["G".to_string()]), ("discriminator".into(), vec!["D".to_string()])]);
    let (mut g, mut d) = (build(&arch, "generator"), build(&arch, "discriminator"));
    let a = images(2, data, Kind::Float);
    let fake = g.forward(&[a.shallow_clone()], true).unwrap().remove(0);
    assert_eq!(fake.size(), [2, 3, 32, 32]);
    assert!(max_abs(&fake) <= 1.0, "tanh output");
    // 32 → 16 → 8 → 4, then 3 and 2: a 2×2 map of 70×70 patches (clipped by the border).
    let logits = d.forward(&[pair(&a, &fake)], true).unwrap().remove(0);
    assert_eq!(logits.size(), [2, 1, 2, 2]);

    let err = g.forward(&[images(2, square(1, 32), Kind::Float)], true).err().unwrap().to_string();
    assert_eq!(err, "pix2pix generator: images A must have shape [N, 3, 32, 32], got [2, 1, 32, 32]");
    let err = d.forward(&[a.shallow_clone()], true).err().unwrap().to_string();
    assert!(
        err.starts_with("pix2pix discriminator: pairs (A and B stacked on channels) must have shape [N, 6, 32, 32]")
    );
    let err = g.forward(&[a.shallow_clone(), a], true).err().unwrap().to_string();
    assert_eq!(err, "pix2pix generator: expected one input tensor, got 2");
    assert_eq!(
        arch.build("encoder").err().unwrap().to_string(),
        "pix2pix has no network `encoder`; valid names: generator, discriminator"
    );
}

#[test]
fn skips_join_each_level_and_the_variables_are_named_by_block() {
    let _rng = crate::rng_lock();
    let arch = pix2pix(narrow(), square(1, 32));
    let g = build(&arch, "generator");
    let shapes: std::collections::BTreeMap<String, Vec<i64>> =
        g.tensors().into_iter().map(|(name, t, _)| (name, t.size())).collect();
    // Down: 1 → 4 → 8 → 16 → 32 → 32 (innermost); up mirrors it, every block but the innermost
    // reading its inner output concatenated with the skip (twice its width).
    assert_eq!(shapes["down0.weight"], [4, 1, 4, 4]);
    assert_eq!(shapes["down4.weight"], [32, 32, 4, 4]);
    assert_eq!(shapes["up4.weight"], [32, 32, 4, 4], "innermost: no skip yet");
    assert_eq!(shapes["up3.weight"], [64, 16, 4, 4]);
    assert_eq!(shapes["up0.weight"], [8, 1, 4, 4]);
    assert_eq!(shapes["up0.bias"], [1], "the outermost transposed convolution has a bias");
    assert!(!shapes.contains_key("down1.bias"), "no bias before batch norm");
    assert!(!shapes.contains_key("down_norm0.gain") && !shapes.contains_key("down_norm4.gain"));
    assert!(shapes.contains_key("down_norm3.stored_mean") && shapes.contains_key("up_norm4.gain"));

    let arch = pix2pix(Pix2pixConfig { norm: Norm::Instance, ..narrow() }, square(1, 32));
    let names: Vec<String> = build(&arch, "generator").tensors().into_iter().map(|t| t.0).collect();
    assert!(names.contains(&"down1.bias".to_string()) && !names.iter().any(|n| n.contains("norm")));
}

/// Two evaluation passes of G on the same images, and whether the stored statistics moved.
fn two_eval_passes(config: Pix2pixConfig, side: i64) -> (Tensor, Tensor, bool) {
    let data = square(1, side);
    let arch = pix2pix(config, data);
    let mut g = build(&arch, "generator");
    let before = g_stats(&*g);
    let a = images(4, data, Kind::Float);
    let first = tch::no_grad(|| g.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    let second = tch::no_grad(|| g.forward(&[a], false)).unwrap().remove(0);
    let moved = before.iter().zip(g_stats(&*g)).any(|(b, a)| !b.equal(&a));
    (first, second, moved)
}

fn g_stats(g: &dyn Network) -> Vec<Tensor> {
    g.tensors().into_iter().filter(|(name, _, _)| name.contains("stored")).map(|(_, t, _)| t.copy()).collect()
}

#[test]
fn dropout_is_the_test_time_noise_only_when_asked_for() {
    let _rng = crate::rng_lock();
    tch::manual_seed(1);
    // 64 px: six levels, dropout in the one 8·ngf block above the innermost.
    let (first, second, moved) = two_eval_passes(narrow(), 64);
    assert!(!first.equal(&second), "noise_at_test: two evaluation passes differ");
    assert!(!moved, "test-batch statistics leave the stored ones alone");
    let (first, second, moved) = two_eval_passes(Pix2pixConfig { noise_at_test: false, ..narrow() }, 64);
    assert!(first.equal(&second), "without test noise evaluation is deterministic");
    assert!(!moved);
    // 32 px: five levels, where the official recursion has no dropout block.
    let (first, second, _) = two_eval_passes(narrow(), 32);
    assert!(first.equal(&second), "no dropout block at 32 px");
    let (first, second, _) = two_eval_passes(Pix2pixConfig { dropout: 0.0, ..narrow() }, 64);
    assert!(first.equal(&second), "dropout = 0 turns it off");
}

#[test]
fn test_noise_uses_batch_statistics_and_plain_evaluation_the_stored_ones() {
    let _rng = crate::rng_lock();
    tch::manual_seed(2);
    let data = square(1, 32);
    let a = images(4, data, Kind::Float);
    // At 32 px there is no dropout, so a training pass and a noisy test pass agree exactly.
    let arch = pix2pix(narrow(), data);
    let mut g = build(&arch, "generator");
    let test = tch::no_grad(|| g.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    let train = tch::no_grad(|| g.forward(&[a.shallow_clone()], true)).unwrap().remove(0);
    assert!(test.allclose(&train, 1e-6, 1e-6, false), "{}", max_abs(&(test - &train)));
    let arch = pix2pix(Pix2pixConfig { noise_at_test: false, ..narrow() }, data);
    let mut g = build(&arch, "generator");
    let eval = tch::no_grad(|| g.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    assert!(max_abs(&(eval - train)) > 1e-3, "stored statistics (0 and 1 at the start) differ from the batch's");
}

// ------------------------------------------------------------------------------------------
// The loss, through the core's handle and a fake context

/// A fake core for the pix2pix loss: A is the default real batch, B = −A, the "generator" is a
/// trainable batch (the default fake) counting its calls, and D is linear over the 8 values of
/// a stacked 1×2×2 pair.
fn pix2pix_host(phase: &str) -> (FakeLossHost, Rc<Cell<usize>>) {
    let mut host = FakeLossHost::new(phase);
    host.real_b = Some(-batch(&REAL));
    host.w = Tensor::from_slice(&[0.5f32, -1.0, 0.25, 2.0, 1.0, -0.5, 0.3, 0.7]).set_requires_grad(true);
    let calls = Rc::new(Cell::new(0));
    let (fake, counter) = (host.fake.shallow_clone(), calls.clone());
    let generator: FakeNetwork = Box::new(move |_inputs: &[Tensor]| {
        counter.set(counter.get() + 1);
        vec![fake.shallow_clone()]
    });
    host.networks.insert("generator".into(), generator);
    (host, calls)
}

#[test]
fn d_loss_is_half_the_bce_on_real_and_translated_pairs_with_statistics_logged() {
    let mut loss = create_loss::<Pix2pixLoss>("").unwrap();
    let (mut host, _) = pix2pix_host(PHASE_D);
    let value = host.loss(&mut loss).unwrap();
    let (a, b, fake) = (batch(&REAL), -batch(&REAL), batch(&FAKE));
    let real_logits = host.logits(&pair(&a, &b));
    let fake_logits = host.logits(&pair(&a, &fake));
    let expected = ((-&real_logits).softplus().mean(Kind::Float) + fake_logits.softplus().mean(Kind::Float)) * 0.5;
    assert!(value.allclose(&expected, 1e-6, 1e-6, false), "{value} vs {expected}");
    assert_eq!(host.calls, [(Role::Real, false), (Role::Fake, false)], "no augmentation; the core sees both roles");
    value.backward();
    assert_eq!(lab_plugin_testkit::loss::grad_sum(&host.fake), 0.0, "G's output is detached for D");
}

#[test]
fn g_loss_is_the_gan_term_plus_lambda_l1_and_logs_both() {
    let mut loss = create_loss::<Pix2pixLoss>("lambda_l1 = 10.0\ngan_weight = 0.5").unwrap();
    let (mut host, calls) = pix2pix_host(PHASE_G);
    let value = host.loss(&mut loss).unwrap();
    let (a, b, fake) = (batch(&REAL), -batch(&REAL), batch(&FAKE));
    let gan = (-host.logits(&pair(&a, &fake))).softplus().mean(Kind::Float);
    let l1 = (&fake - &b).abs().mean(Kind::Float);
    let expected = &gan * 0.5 + &l1 * 10.0;
    assert!(value.allclose(&expected, 1e-6, 1e-6, false), "{value} vs {expected}");
    assert!((host.logged("loss/l1").unwrap() - l1.double_value(&[])).abs() < 1e-6);
    assert!((host.logged("loss/gan").unwrap() - gan.double_value(&[])).abs() < 1e-6);
    assert_eq!((calls.get(), host.calls.as_slice()), (1, [(Role::Fake, false)].as_slice()));
    value.backward();
    assert!(lab_plugin_testkit::loss::grad_sum(&host.fake) > 0.0, "the gradient reaches G's output");
}

#[test]
fn the_l1_only_baseline_never_asks_d() {
    let mut loss = create_loss::<Pix2pixLoss>("gan_weight = 0.0").unwrap();
    let (mut host, _) = pix2pix_host(PHASE_G);
    let value = host.loss(&mut loss).unwrap();
    let l1 = (batch(&FAKE) + batch(&REAL)).abs().mean(Kind::Float) * 100.0;
    assert!(value.allclose(&l1, 1e-5, 1e-5, false));
    assert!(host.calls.is_empty() && host.logged("loss/gan").is_none());
}

#[test]
fn g_reuses_the_d_phases_translation_of_the_same_batch_only() {
    let mut loss = create_loss::<Pix2pixLoss>("").unwrap();
    let (mut host, calls) = pix2pix_host(PHASE_D);
    let _ = host.loss(&mut loss).unwrap();
    host.phase = PHASE_G.into();
    let _ = host.loss(&mut loss).unwrap();
    assert_eq!(calls.get(), 1, "one translation per step, as the official code");
    // The next step's D and G phases translate again; a G phase on another batch translates too.
    host.phase = PHASE_D.into();
    host.step = 1;
    let _ = host.loss(&mut loss).unwrap();
    host.phase = PHASE_G.into();
    host.real = batch(&REAL);
    let _ = host.loss(&mut loss).unwrap();
    assert_eq!(calls.get(), 3);
}

#[test]
fn unpaired_data_and_empty_objectives_are_refused() {
    let mut loss = create_loss::<Pix2pixLoss>("").unwrap();
    let (mut host, _) = pix2pix_host(PHASE_D);
    host.real_b = None;
    let err = host.groups(&mut loss).err().unwrap().to_string();
    assert!(err.starts_with("pix2pix needs paired two-domain data: set data.dataset = \"paired-folder\""), "{err}");
    let err = create_loss::<Pix2pixLoss>("lambda_l1 = 0.0\ngan_weight = 0.0").err().unwrap().to_string();
    assert!(err.starts_with("key `gan_weight`"), "{err}");
    let err = create_loss::<Pix2pixLoss>("lambda_l1 = -1.0").err().unwrap().to_string();
    assert!(err.starts_with("key `lambda_l1`"), "{err}");
}

// ------------------------------------------------------------------------------------------
// The measures

/// PSNR and SSIM from their definitions in numpy (no torch): the MSE over all values; SSIM's
/// Gaussian window summed over every fully contained 11×11 window (sliding views, no
/// convolution routine), per channel, averaged.
const NUMPY_MEASURES: &str = r#"
import json, sys
import numpy as np

def window(side, sigma=1.5):
    r = np.arange(side) - (side - 1) / 2.0
    g = np.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return np.outer(g, g)

def ssim_channel(x, y):
    side = min(11, x.shape[0], x.shape[1])
    side -= 1 - side % 2
    w = window(side)
    patches = lambda img: np.lib.stride_tricks.sliding_window_view(img, (side, side))
    px, py = patches(x), patches(y)
    mean = lambda p: (p * w).sum(axis=(-1, -2))
    mx, my = mean(px), mean(py)
    vx = mean(px ** 2) - mx ** 2
    vy = mean(py ** 2) - my ** 2
    cxy = mean(px * py) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()

data = np.load(sys.argv[1])
x, y = data["x"], data["y"]
out = {"psnr": [], "ssim": []}
for a, b in zip(x, y):
    mse = max(((a - b) ** 2).mean(), 1e-10)
    out["psnr"].append(10 * np.log10(1.0 / mse))
    out["ssim"].append(float(np.mean([ssim_channel(a[c], b[c]) for c in range(a.shape[0])])))
print(json.dumps(out))
"#;

fn numpy_measures(python: &Path, dir: &Path, x: &Tensor, y: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let file = dir.join("images.npz");
    reference::write_npz(&file, &[("x".into(), x.shallow_clone()), ("y".into(), y.shallow_clone())]);
    let output = std::process::Command::new(python).args(["-c", NUMPY_MEASURES]).arg(&file).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let list = |key: &str| json[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (list("psnr"), list("ssim"))
}

/// Structured pairs in [0, 1]: smooth ramps against a blurred, shifted copy with noise,
/// checkerboards against their inverse, a constant image against itself.
fn structured(channels: i64, side: i64) -> (Tensor, Tensor) {
    let opts = (Kind::Double, Device::Cpu);
    let r = Tensor::arange(side, opts) / (side - 1) as f64;
    let ramp = (r.unsqueeze(1) * 0.7 + r.unsqueeze(0) * 0.3).expand([channels, side, side], false);
    let blurred = (ramp.roll([1], [1]) * 0.8 + 0.1 + Tensor::rand([channels, side, side], opts) * 0.05).clamp(0.0, 1.0);
    let idx = Tensor::arange(side, (Kind::Int64, Device::Cpu));
    let checker =
        (idx.unsqueeze(1) + idx.unsqueeze(0)).remainder(2).to_kind(Kind::Double).expand([channels, side, side], false);
    let flat = Tensor::full([channels, side, side], 0.4, opts);
    let x = Tensor::stack(&[ramp.shallow_clone(), checker.shallow_clone(), flat.shallow_clone()], 0);
    let y = Tensor::stack(&[blurred, 1.0 - checker, flat], 0);
    (x, y)
}

#[test]
fn psnr_and_ssim_match_a_numpy_implementation_of_their_definitions() {
    let Some(python) = reference::python_or_skip("psnr_and_ssim_match_a_numpy_implementation_of_their_definitions")
    else {
        return;
    };
    let _rng = crate::rng_lock();
    tch::manual_seed(3);
    let dir = tempdir("measures");
    let opts = (Kind::Double, Device::Cpu);
    let mut cases = vec![
        ("random rgb 32", Tensor::rand([3, 3, 32, 32], opts), Tensor::rand([3, 3, 32, 32], opts)),
        ("random grey 16 (near)", Tensor::rand([2, 1, 16, 16], opts), Tensor::zeros([2, 1, 16, 16], opts)),
        ("random grey 8 (window 7)", Tensor::rand([2, 1, 8, 8], opts), Tensor::rand([2, 1, 8, 8], opts)),
    ];
    let near = &cases[1].1 + Tensor::randn([2, 1, 16, 16], opts) * 0.02;
    cases[1].2 = near.clamp(0.0, 1.0);
    let (x, y) = structured(3, 24);
    cases.push(("structured rgb 24", x, y));
    let (x, y) = structured(1, 11);
    cases.push(("structured grey 11 (one window)", x, y));
    for (what, x, y) in cases {
        let (want_psnr, want_ssim) = numpy_measures(&python, &dir, &x, &y);
        let got_psnr: Vec<f64> = Vec::try_from(psnr(&x, &y)).unwrap();
        let got_ssim: Vec<f64> = Vec::try_from(ssim(&x, &y)).unwrap();
        for (got, want, name) in [(&got_psnr, &want_psnr, "psnr"), (&got_ssim, &want_ssim, "ssim")] {
            let worst = got.iter().zip(want.iter()).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
            println!("{what}: {name} ours {got:?} numpy {want:?} max |diff| {worst:e}");
            assert!(worst < 1e-5, "{what}: {name} differs from numpy by {worst}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn identical_images_score_the_ceiling_and_the_identity_baseline_reads_the_input() {
    let _rng = crate::rng_lock();
    tch::manual_seed(4);
    let b = images(3, square(3, 16), Kind::Float);
    let a = images(3, square(3, 16), Kind::Float);
    let mut totals = Totals::default();
    totals.add(&a, &b, &b);
    let (l1, psnr_value, ssim_value, identity) = totals.means();
    assert_eq!(totals.images, 3);
    assert!(l1.abs() < 1e-12 && (psnr_value - 100.0).abs() < 1e-9 && (ssim_value - 1.0).abs() < 1e-12);
    let expected = psnr(&to_unit_range(&a), &to_unit_range(&b)).mean(Kind::Double).double_value(&[]);
    assert!((identity - expected).abs() < 1e-12 && identity < 20.0, "{identity} vs {expected}");
    // L1 on [0, 1] pixels is half the L1 on [-1, 1] ones.
    let mut totals = Totals::default();
    totals.add(&a, &a, &b);
    let half = l1_distance(&a.to_kind(Kind::Double), &b.to_kind(Kind::Double)).double_value(&[]) / 2.0;
    assert!((totals.means().0 - half).abs() < 1e-9);
}

// ------------------------------------------------------------------------------------------
// evaluate and visualize through the real boundary

fn handle(config: &str, data: DataSpec) -> Architecture {
    let Factory::Architecture(create) = lab_plugin_api::architecture::descriptor::<Pix2pix>("test").factory else {
        unreachable!("an architecture descriptor")
    };
    let obj = into_result(create(config.into(), BuildEnv::from_device(Device::Cpu, data))).unwrap();
    // SAFETY: the factory is compiled into this test binary, so its code outlives the handle.
    unsafe { Architecture::from_raw(obj) }
}

/// The core's side for `evaluate` and `visualize`: A and its aligned B.
struct PairHost {
    generator: lab_plugin_api::host::NetworkHandle,
    a: Tensor,
    b: Tensor,
    batches: Vec<i64>,
}

impl PairHost {
    fn split(&self, split: &str) -> lab_plugin_api::Result<&Tensor> {
        match split {
            SPLIT_REFERENCE => Ok(&self.a),
            SPLIT_REFERENCE_B => Ok(&self.b),
            other => Err(Error::new(format!("no split `{other}`"))),
        }
    }
}

impl EvalHost for PairHost {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> lab_plugin_api::Result<Vec<Tensor>> {
        assert_eq!(name, "generator");
        tch::no_grad(|| self.generator.forward(inputs, false))
    }
    fn count(&mut self, split: &str) -> lab_plugin_api::Result<i64> {
        Ok(self.split(split)?.size()[0])
    }
    fn images(&mut self, split: &str, start: i64, n: i64) -> lab_plugin_api::Result<Tensor> {
        if split == SPLIT_REFERENCE {
            self.batches.push(n);
        }
        Ok(self.split(split)?.narrow(0, start, n))
    }
    fn labels(&mut self, _split: &str, _start: i64, _n: i64) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn num_classes(&mut self) -> lab_plugin_api::Result<i64> {
        Ok(0)
    }
}

impl VisualHost for PairHost {
    fn run_network(&mut self, name: &str, inputs: &[Tensor]) -> lab_plugin_api::Result<Vec<Tensor>> {
        EvalHost::run_network(self, name, inputs)
    }
    fn fixed_latent(&mut self) -> lab_plugin_api::Result<Tensor> {
        Ok(Tensor::zeros([4, 0], (Kind::Float, Device::Cpu)))
    }
    fn fixed_labels(&mut self) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn real(&mut self, n: i64) -> lab_plugin_api::Result<Tensor> {
        Ok(self.a.narrow(0, 0, n.min(self.a.size()[0])))
    }
    fn real_labels(&mut self, _n: i64) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(None)
    }
    fn real_b(&mut self, n: i64) -> lab_plugin_api::Result<Option<Tensor>> {
        Ok(Some(self.b.narrow(0, 0, n.min(self.b.size()[0]))))
    }
    fn samples(&mut self) -> lab_plugin_api::Result<i64> {
        Ok(64)
    }
    fn num_classes(&mut self) -> lab_plugin_api::Result<i64> {
        Ok(0)
    }
}

#[test]
fn evaluate_measures_translations_against_the_aligned_second_domain() {
    let _rng = crate::rng_lock();
    tch::manual_seed(5);
    let data = square(1, 16);
    let config = "ngf = 4\nndf = 4\nd_layers = 2\nnoise_at_test = false\neval_images = 70";
    let arch = handle(config, data);
    assert_eq!(arch.measures().unwrap(), MEASURES);
    let a = images(100, data, Kind::Float);
    let b = images(100, data, Kind::Float);
    let mut host = PairHost {
        generator: arch.build("generator").unwrap(),
        a: a.shallow_clone(),
        b: b.shallow_clone(),
        batches: vec![],
    };
    let values = arch.evaluate(&mut host).unwrap();
    assert_eq!(host.batches, [64, 6], "eval_images caps the count");
    let names: Vec<_> = values.iter().map(|v| (v.name.as_str(), v.higher_is_better)).collect();
    assert_eq!(
        names,
        [
            ("translation/l1", false),
            ("translation/psnr", true),
            ("translation/ssim", true),
            ("translation/psnr_identity", true)
        ]
    );
    // The same numbers from the measures on the first 70 pairs.
    let (a, b) = (a.narrow(0, 0, 70), b.narrow(0, 0, 70));
    let fake = tch::no_grad(|| host.generator.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    let mut totals = Totals::default();
    totals.add(&a, &fake, &b);
    let (l1, p, s, identity) = totals.means();
    for (value, expected) in values.iter().zip([l1, p, s, identity]) {
        assert!((value.value - expected).abs() < 1e-9, "{}: {} vs {expected}", value.name, value.value);
    }
}

#[test]
fn the_grid_is_rows_of_inputs_outputs_and_targets() {
    let _rng = crate::rng_lock();
    let data = square(3, 16);
    let arch = handle("ngf = 4\nndf = 4\nd_layers = 2", data);
    let (a, b) = (images(12, data, Kind::Float), images(12, data, Kind::Float));
    let mut host = PairHost {
        generator: arch.build("generator").unwrap(),
        a: a.shallow_clone(),
        b: b.shallow_clone(),
        batches: vec![],
    };
    let (grid, columns) = arch.visualize(&mut host).unwrap().expect("its own grid");
    assert_eq!((grid.size(), columns), (vec![24, 3, 16, 16], 8));
    assert!(grid.narrow(0, 0, 8).equal(&a.narrow(0, 0, 8)), "inputs first");
    assert!(grid.narrow(0, 16, 8).equal(&b.narrow(0, 0, 8)), "targets last");
}

// ------------------------------------------------------------------------------------------
// The cross-check against the PyTorch reference

fn tempdir(what: &str) -> PathBuf {
    let dir = reference::scratch(&format!("pix2pix-{what}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration of the cross-check: the architecture's and the loss's.
struct Case {
    name: &'static str,
    config: Pix2pixConfig,
    data: DataSpec,
    lambda_l1: f64,
    gan_weight: f64,
}

/// Records, in float64: the weights; G's training pass on A; D's loss on (A, B) and (A, G(A)
/// detached) and D's gradients; G's loss through D and G's gradients; the stored statistics
/// after those passes; G's plain evaluation pass, its noisy test pass (no dropout configured,
/// so it is deterministic) and D's evaluation pass.
fn record(dir: &Path, case: &Case) {
    std::fs::create_dir_all(dir).unwrap();
    let s = pix2pix(case.config.clone(), case.data);
    let noisy = pix2pix(Pix2pixConfig { noise_at_test: true, ..case.config.clone() }, case.data);
    let settings = s.settings();
    let summary = serde_json::json!({
        "channels": settings.channels, "size": settings.size, "ngf": settings.ngf, "ndf": settings.ndf,
        "norm": settings.norm.to_string(), "dropout": settings.dropout, "d_layers": settings.d_layers,
        "lambda_l1": case.lambda_l1, "gan_weight": case.gan_weight,
    });
    std::fs::write(dir.join("config.json"), summary.to_string()).unwrap();
    let (mut g, mut d) = (build(&s, "generator"), build(&s, "discriminator"));
    reference::to_double(&*g);
    reference::to_double(&*d);
    reference::write_npz(&dir.join("g_before.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_before.npz"), &reference::weights(&*d));

    let (a, b) = (images(3, case.data, Kind::Double), images(3, case.data, Kind::Double));
    let fake = g.forward(&[a.shallow_clone()], true).unwrap().remove(0);
    let real_logits = d.forward(&[pair(&a, &b)], true).unwrap().remove(0);
    let fake_logits = d.forward(&[pair(&a, &fake.detach())], true).unwrap().remove(0);
    let d_loss = d_loss_from_logits(&real_logits, &fake_logits);
    d_loss.backward();
    let mut grads = reference::gradients(&[("d", &*d)]);

    let g_logits = d.forward(&[pair(&a, &fake)], true).unwrap().remove(0);
    let l1 = l1_distance(&fake, &b);
    let gan = bce_with_logits(&g_logits, 1.0);
    let g_loss = &gan * case.gan_weight + &l1 * case.lambda_l1;
    g_loss.backward();
    grads.extend(reference::gradients(&[("g", &*g)]));
    reference::write_npz(&dir.join("grads.npz"), &grads);
    reference::write_npz(&dir.join("g_after.npz"), &reference::weights(&*g));
    reference::write_npz(&dir.join("d_after.npz"), &reference::weights(&*d));

    let eval_fake = tch::no_grad(|| g.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    // The same weights in a generator with test noise.
    let mut g_noisy = build(&noisy, "generator");
    reference::to_double(&*g_noisy);
    tch::no_grad(|| {
        let own: std::collections::BTreeMap<String, Tensor> =
            g.tensors().into_iter().map(|(name, t, _)| (name, t)).collect();
        for (name, mut t, _) in g_noisy.tensors() {
            t.copy_(&own[&name]);
        }
    });
    let test_noise_fake = tch::no_grad(|| g_noisy.forward(&[a.shallow_clone()], false)).unwrap().remove(0);
    let eval_logits = tch::no_grad(|| d.forward(&[pair(&a, &b)], false)).unwrap().remove(0);
    let io = [
        ("a", a),
        ("b", b),
        ("fake", fake.detach()),
        ("real_logits", real_logits.detach()),
        ("fake_logits", fake_logits.detach()),
        ("g_logits", g_logits.detach()),
        ("d_loss", d_loss.detach()),
        ("g_loss", g_loss.detach()),
        ("l1", l1.detach()),
        ("gan", gan.detach()),
        ("eval_fake", eval_fake),
        ("test_noise_fake", test_noise_fake),
        ("eval_logits", eval_logits),
    ];
    reference::write_npz(&dir.join("io.npz"), &io.map(|(k, t)| (k.to_string(), t)));
}

/// Same weights, same inputs: the PyTorch reference must produce the same translations, logit
/// maps, losses, parameter gradients of both networks and batch-norm statistics, within 1e-10
/// in float64, with batch norm (32×32 grey, the 70×70 PatchGAN) and instance norm (16×16 RGB,
/// a 34×34 PatchGAN), and a 64×64 U-Net (six levels); and count the same parameters at the
/// paper's size. Skipped, saying so, when the venv's Python is not there.
#[test]
fn matches_the_pytorch_reference() {
    let Some(python) = reference::python_or_skip("matches_the_pytorch_reference") else { return };
    let _rng = crate::rng_lock();
    tch::manual_seed(6);
    let deterministic = Pix2pixConfig { ngf: 4, ndf: 4, noise_at_test: false, dropout: 0.0, ..Default::default() };
    let cases = [
        Case {
            name: "batch_grey32",
            config: deterministic.clone(),
            data: square(1, 32),
            lambda_l1: 100.0,
            gan_weight: 1.0,
        },
        Case {
            name: "instance_rgb16",
            config: Pix2pixConfig { norm: Norm::Instance, ngf: 3, ndf: 5, d_layers: 2, ..deterministic.clone() },
            data: square(3, 16),
            lambda_l1: 7.0,
            gan_weight: 0.5,
        },
        Case {
            name: "batch_grey64",
            config: Pix2pixConfig { ngf: 2, ndf: 3, ..deterministic },
            data: square(1, 64),
            lambda_l1: 0.0,
            gan_weight: 1.0,
        },
    ];
    let root = tempdir("reference");
    for case in &cases {
        record(&root.join(case.name), case);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference/pix2pix.py");
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let report = reference::compare(&python, &script, &root, &names);
    for (case, run) in cases.iter().zip(report["runs"].as_array().unwrap()) {
        reference::assert_within(run, case.name, 1e-10);
        let arch = pix2pix(case.config.clone(), case.data);
        for (net, key) in [("generator", "G"), ("discriminator", "D")] {
            assert_eq!(run["params"][key].as_i64(), Some(trainable_count(&*build(&arch, net))), "{}: {net}", case.name);
        }
    }
    let counts = &report["reference_counts"];
    assert_eq!((counts["rgb256"]["G"].as_i64(), counts["rgb256"]["D"].as_i64()), (Some(54_413_955), Some(2_768_705)));
    assert_eq!((counts["grey32"]["G"].as_i64(), counts["grey32"]["D"].as_i64()), (Some(16_652_929), Some(2_764_609)));
}
