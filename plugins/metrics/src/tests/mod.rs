//! Tests against an independent reference (`scripts/metrics_reference.py`, numpy/scipy) and
//! against a tiny TorchScript feature network that `tiny_net.py` writes with the venv's torch
//! into `target/test-features/` (nothing is downloaded). Plugins are created through their
//! descriptors and `extern "C"` tables, exactly as the core does.
//!
//! No test touches libtorch's global RNG: data come from the crate's own [`SplitMix64`], so the
//! tests need no lock.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lab_plugin_api::library::{into_result, BuildEnv, DataSpec, Factory};
use lab_plugin_api::metric::{descriptor, Metric};
use lab_plugin_api::tch::{Device, Kind, Tensor};
use lab_plugin_api::MetricPlugin;
use serde_json::Value as Json;

use crate::rng::SplitMix64;

mod config;
mod fid;
mod inception_score;
mod kid;
mod pipeline;
mod precision_recall;

/// The workspace root.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The venv's Python, which has torch, numpy and scipy (`scripts/requirements.txt`).
fn python() -> PathBuf {
    match std::env::var_os("LAB_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => workspace().join(".venv/bin/python3"),
    }
}

/// A fresh folder under `target/test-features/` for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = workspace().join("target/test-features/scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Runs a Python script with arguments and returns its stdout, failing loudly with its stderr.
fn run_python(script: &Path, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (set LAB_PYTHON?): {e}", python().display()));
    assert!(out.status.success(), "{} {args:?} failed:\n{}", script.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// `scripts/metrics_reference.py <args>`, parsed.
fn reference(args: &[&str]) -> Json {
    let text = run_python(&workspace().join("scripts/metrics_reference.py"), args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("reference printed {text:?}: {e}"))
}

/// The tiny feature network (64-d features, 10 classes), written once per test run.
fn tiny_net() -> &'static Path {
    static NET: OnceLock<PathBuf> = OnceLock::new();
    NET.get_or_init(|| {
        let dir = workspace().join("target/test-features");
        std::fs::create_dir_all(&dir).expect("target/test-features");
        let (tmp, path) = (dir.join(format!("tiny.pt.{}", std::process::id())), dir.join("tiny.pt"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/tiny_net.py");
        run_python(&script, &[tmp.to_str().unwrap(), "64", "10"]);
        std::fs::rename(&tmp, &path).expect("rename tiny.pt");
        path
    })
}

/// Creates metric plugin `P` as the core does: descriptor → factory → handle.
fn metric<P: MetricPlugin>(config: &str) -> lab_plugin_api::Result<Metric> {
    let env = BuildEnv::from_device(Device::Cpu, DataSpec { channels: 3, height: 16, width: 16, num_classes: 0 });
    let Factory::Metric(create) = descriptor::<P>("0").factory else { panic!("not a metric factory") };
    let obj = into_result(create(config.into(), env))?;
    // SAFETY: the factory comes from this very crate, linked in, so it outlives the handle.
    Ok(unsafe { Metric::from_raw(obj) })
}

/// The error creating `P` from `config` gives; panics if creation succeeds.
fn metric_err<P: MetricPlugin>(config: &str) -> String {
    match metric::<P>(config) {
        Ok(_) => panic!("expected `{config}` to be refused"),
        Err(e) => e.to_string(),
    }
}

/// A config naming the tiny network, plus `extra` TOML lines.
fn tiny_config(extra: &str) -> String {
    format!("features = '{}'\n{extra}", tiny_net().display())
}

/// `[n, d]` float64 standard normals (Box–Muller) times `scale`, plus `shift`.
fn normal(rng: &mut SplitMix64, n: i64, d: i64, shift: f64, scale: f64) -> Tensor {
    let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let values: Vec<f64> = (0..n * d)
        .map(|_| {
            let (u, v) = (1.0 - uniform(), uniform());
            shift + scale * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect();
    Tensor::from_slice(&values).reshape([n, d])
}

/// `[n, c, h, w]` uint8 images, uniform in `lo..=hi`.
fn images(rng: &mut SplitMix64, n: i64, c: i64, side: i64, lo: u8, hi: u8) -> Tensor {
    let span = (hi - lo) as u64 + 1;
    let values: Vec<u8> = (0..n * c * side * side).map(|_| lo + rng.below(span) as u8).collect();
    Tensor::from_slice(&values).reshape([n, c, side, side])
}

/// `[n, 3, side, side]` uint8 images that differ from each other the way photos do, so network
/// features spread out: each image has its own colour (channel means in `lo..=hi`) and its own
/// noise amplitude (0–63) around it.
fn varied_images(rng: &mut SplitMix64, n: i64, side: i64, lo: u8, hi: u8) -> Tensor {
    let mut values = Vec::with_capacity((n * 3 * side * side) as usize);
    for _ in 0..n {
        let amplitude = rng.below(64) as i64;
        for _ in 0..3 {
            let base = (lo as u64 + rng.below((hi - lo) as u64 + 1)) as i64;
            for _ in 0..side * side {
                let noise = rng.below(2 * amplitude as u64 + 1) as i64 - amplitude;
                values.push((base + noise).clamp(0, 255) as u8);
            }
        }
    }
    Tensor::from_slice(&values).reshape([n, 3, side, side])
}

/// Writes a tensor for the reference script and returns the path as text.
fn npy(dir: &Path, name: &str, t: &Tensor) -> String {
    let path = dir.join(name);
    t.to_device(Device::Cpu).contiguous().write_npy(&path).expect("write npy");
    path.to_str().unwrap().to_string()
}

/// |a − b| / |b|.
fn rel_err(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// Asserts a relative agreement and prints it, so `--nocapture` shows the measured errors.
fn assert_close(what: &str, ours: f64, theirs: f64, tol: f64) {
    let err = rel_err(ours, theirs);
    println!("{what}: lab {ours:.12e}, reference {theirs:.12e}, relative error {err:.2e}");
    assert!(err <= tol, "{what}: lab {ours}, reference {theirs}, relative error {err:.3e} > {tol:e}");
}

/// The named value of a computed metric.
fn value(values: &[lab_plugin_api::Value], name: &str) -> f64 {
    values.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no value `{name}` in {values:?}")).value
}

/// A float from a reference result.
fn field(json: &Json, name: &str) -> f64 {
    json[name].as_f64().unwrap_or_else(|| panic!("no `{name}` in {json}"))
}

/// Feeds `images` to `metric` in batches of `batch`.
fn feed(metric: &mut Metric, images: &Tensor, fake: bool, batch: i64) {
    for chunk in images.split(batch, 0) {
        metric.update(&chunk, fake).expect("update");
    }
}

/// Float features as float64 CPU tensors (the reference reads what lab computes on).
fn f64_cpu(t: &Tensor) -> Tensor {
    t.to_kind(Kind::Double).to_device(Device::Cpu)
}
