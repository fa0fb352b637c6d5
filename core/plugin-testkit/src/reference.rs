//! Cross-checks against an independent PyTorch implementation: a plugin's test records its
//! networks' weights, inputs, outputs and gradients (float64, `.npz` files) in one folder per
//! configuration, runs the plugin's reference script (`reference/<name>.py compare DIR...`),
//! which replays them with its own networks, and checks the differences it reports.
//!
//! The Python side's shared helpers (loading, relative differences, the per-network checks and
//! the command line) are in `python/lab_reference.py` beside this crate.
use std::path::{Path, PathBuf};

use lab_plugin_api::tch::{self, Kind, Tensor};
use lab_plugin_api::Network;

/// The Python with torch: `LAB_PYTHON`, else the workspace's `.venv`; `None` when neither exists
/// (the caller's test then says that it skipped).
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("LAB_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python3"));
    path.exists().then_some(path)
}

/// [`python`] for the cross-check `test`; when there is none, says on stdout that `test` was
/// skipped and why, and returns `None` for the test to return on.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let found = python();
    if found.is_none() {
        println!("SKIPPED {test}: no Python with torch (set LAB_PYTHON)");
    }
    found
}

/// A scratch folder for one cross-check, `lab-<name>-<process id>` under the system's
/// temporary folder (not created): the process id keeps concurrent test runs apart.
pub fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lab-{name}-{}", std::process::id()))
}

/// Writes `tensors` to the `.npz` file at `path`.
pub fn write_npz(path: &Path, tensors: &[(String, Tensor)]) {
    Tensor::write_npz(tensors, path).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A copy of every tensor of `net` (parameters and buffers), by name.
pub fn weights(net: &dyn Network) -> Vec<(String, Tensor)> {
    net.tensors().into_iter().map(|(name, t, _)| (name, t.detach().copy())).collect()
}

/// Converts every tensor of `net` to float64 in place; the network keeps using the same tensors.
pub fn to_double(net: &dyn Network) {
    for (_, mut t, _) in net.tensors() {
        tch::no_grad(|| t.set_data(&t.to_kind(Kind::Double)));
    }
}

/// The gradients of every trainable tensor of the named networks, as `<prefix>.<tensor name>`.
pub fn gradients(nets: &[(&str, &dyn Network)]) -> Vec<(String, Tensor)> {
    nets.iter()
        .flat_map(|(prefix, net)| {
            net.tensors()
                .into_iter()
                .filter(|(_, _, trainable)| *trainable)
                .map(move |(n, t, _)| (format!("{prefix}.{n}"), t.grad().copy()))
        })
        .collect()
}

/// Records in `dir` what `compare_gan_passes` (`lab_reference.py`) replays for a G/D pair whose
/// tensors are already float64 ([`to_double`]) and set as the test wants them:
/// - the tensors before anything ran (`g_before.npz`, `d_before.npz`);
/// - a G step's training-mode forward D(G(z, y), y), loss = mean logit, with the parameter
///   gradients (`grads.npz`) and z's gradient;
/// - a training-mode D pass on uniform "real" images of `image` shape (`[C, H, W]`) with their
///   gradient, after which the tensors are recorded again (`g_after.npz`, `d_after.npz`: batch
///   norm's statistics and spectral norm's vectors have moved);
/// - evaluation-mode passes of G on the same z and of D on the real images;
/// - the inputs and outputs of every pass (`io.npz`).
///
/// `y` are the labels of a class-conditional pair (`None`: the networks take one input).
pub fn record_gan_passes(
    dir: &Path,
    g: &mut dyn Network,
    d: &mut dyn Network,
    z: &Tensor,
    y: Option<&Tensor>,
    image: [i64; 3],
) {
    let inputs = |x: &Tensor| match y {
        Some(y) => vec![x.shallow_clone(), y.shallow_clone()],
        None => vec![x.shallow_clone()],
    };
    let forward = |net: &mut dyn Network, x: &Tensor, train: bool| {
        net.forward(&inputs(x), train).unwrap_or_else(|e| panic!("forward pass: {e}"))
    };
    write_npz(&dir.join("g_before.npz"), &weights(g));
    write_npz(&dir.join("d_before.npz"), &weights(d));

    let n = z.size()[0];
    let z = z.to_kind(Kind::Double).detach().set_requires_grad(true);
    let fake = forward(g, &z, true).remove(0);
    let out = forward(d, &fake, true);
    out[0].mean(Kind::Double).backward();
    write_npz(&dir.join("grads.npz"), &gradients(&[("g", &*g), ("d", &*d)]));

    let [c, h, w] = image;
    let real = (Tensor::rand([n, c, h, w], (Kind::Double, tch::Device::Cpu)) * 2.0 - 1.0).set_requires_grad(true);
    let real_logits = forward(d, &real, true).remove(0);
    real_logits.sum(Kind::Double).backward();
    write_npz(&dir.join("g_after.npz"), &weights(g));
    write_npz(&dir.join("d_after.npz"), &weights(d));

    let real_grad = real.grad();
    let real = real.detach();
    let eval_fake = tch::no_grad(|| forward(g, &z.detach(), false).remove(0));
    let eval = tch::no_grad(|| forward(d, &real, false));
    let labels = y.map_or_else(|| Tensor::zeros([n], (Kind::Int64, tch::Device::Cpu)), Tensor::shallow_clone);
    let io = [
        ("z", z.detach()),
        ("z_grad", z.grad()),
        ("y", labels),
        ("fake", fake.detach()),
        ("logits", out[0].detach()),
        ("features", out[1].detach()),
        ("real", real.shallow_clone()),
        ("real_logits", real_logits.detach()),
        ("real_grad", real_grad),
        ("eval_fake", eval_fake),
        ("eval_logits", eval[0].shallow_clone()),
        ("eval_features", eval[1].shallow_clone()),
    ];
    write_npz(&dir.join("io.npz"), &io.map(|(k, t)| (k.to_string(), t)));
}

/// Runs `python script compare <root>/<run>...` and returns its JSON report. The recorded
/// folders under `root` are removed afterwards unless `LAB_KEEP_REFERENCE_RUN` is set (to look
/// at them by hand). Panics with the script's stderr when it fails.
pub fn compare(python: &Path, script: &Path, root: &Path, runs: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(python)
        .arg(script)
        .arg("compare")
        .args(runs.iter().map(|name| root.join(name)))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    if std::env::var_os("LAB_KEEP_REFERENCE_RUN").is_some() {
        println!("kept the recorded runs in {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(root);
    }
    assert!(output.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let report = serde_json::from_slice(&output.stdout).expect("JSON from the reference");
    println!("reference: {report}");
    report
}

/// Checks that every difference in one run's `max_rel_diff` (the reference's largest absolute
/// difference relative to its largest value, per quantity) is at most `tolerance`.
pub fn assert_within(run: &serde_json::Value, name: &str, tolerance: f64) {
    let diffs = run["max_rel_diff"].as_object().unwrap_or_else(|| panic!("{name}: no `max_rel_diff` in {run}"));
    for (what, diff) in diffs {
        let diff = diff.as_f64().unwrap_or(f64::INFINITY);
        assert!(
            diff <= tolerance,
            "{name}: {what} differs from the reference by {diff:e} (relative to its largest value; worst tensor: {})",
            run["worst_tensor"][what]
        );
    }
}

/// Checks every run of a `compare` report against its configuration: the reference counted the
/// same trainable parameters as ours (`counts[i]` = `[G, D]` of the i-th run), and every
/// difference is within `tolerance` ([`assert_within`]). Prints each run's largest difference.
pub fn assert_runs(report: &serde_json::Value, names: &[&str], counts: &[[i64; 2]], tolerance: f64) {
    let runs = report["runs"].as_array().unwrap_or_else(|| panic!("no `runs` in {report}"));
    assert_eq!(
        runs.len(),
        names.len(),
        "the reference replayed {} runs, the test recorded {}",
        runs.len(),
        names.len()
    );
    for ((name, [g, d]), run) in names.iter().zip(counts).zip(runs) {
        assert_eq!([&run["params"]["G"], &run["params"]["D"]], [g, d], "{name}: parameter counts");
        let diffs = run["max_rel_diff"].as_object().unwrap_or_else(|| panic!("{name}: no `max_rel_diff` in {run}"));
        let worst = diffs.values().filter_map(|v| v.as_f64()).fold(0.0, f64::max);
        println!("{name}: largest relative difference {worst:e}");
        assert_within(run, name, tolerance);
    }
}
