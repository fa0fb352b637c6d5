//! Shared helpers for the end-to-end tests: run the real `lab` binary, find run folders, read
//! metrics, and build plugin crates on the fly.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `target/release/lab`, built by `./lab test` before the tests run.
pub fn lab_bin() -> PathBuf {
    let bin = root().join("target/release/lab");
    assert!(bin.exists(), "{} is missing: run the tests with `./lab test`, which builds it first", bin.display());
    bin
}

/// A `lab` command with a clean environment for config and plugins.
pub fn lab() -> Command {
    let mut cmd = Command::new(lab_bin());
    lab_environment(&mut cmd);
    cmd
}

/// The environment every test's `lab` runs in, for a command that starts `lab` itself (through
/// a shell that sets limits first, say).
pub fn lab_environment(cmd: &mut Command) {
    cmd.current_dir(root());
    // The binary must find libtorch through its rpath alone.
    cmd.env_remove("LD_LIBRARY_PATH");
    for (k, _) in std::env::vars() {
        if k.starts_with("LAB_") && k != "LAB_DATA" {
            cmd.env_remove(k);
        }
    }
    // Nothing downloads at test time: a missing dataset or feature network is an error at once.
    cmd.env("LAB_OFFLINE", "1");
    // Never the user's own plugin folder (~/.local/share/lab/plugins): an empty one.
    cmd.env("LAB_PLUGIN_HOME", root().join("target/no-user-plugins"));
}

/// Runs and returns the output, printing it when `verbose` tests need it.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("lab runs");
    eprintln!(
        "$ {:?}\n--- stdout\n{}\n--- stderr\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The tiny settings every training test uses: a small slice of Fashion-MNIST, narrow networks.
pub fn tiny(steps: u64) -> Vec<String> {
    [
        format!("train.steps={steps}"),
        "train.batch_size=16".into(),
        "data.fraction=0.01".into(),
        "model.config.g_channels=8".into(),
        "model.config.d_channels=8".into(),
        "log.every=2".into(),
        "log.samples_every=4".into(),
        "log.samples=16".into(),
        "device=\"cpu\"".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

/// Trains the quickstart at the tiny settings ([`tiny`]) for `steps` steps under `runs`, with
/// `extra` as `--set` overrides, and returns its run folder (the run must succeed).
pub fn train_quickstart(runs: &Path, steps: u64, extra: &[&str]) -> PathBuf {
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(runs).args(tiny(steps)).arg("--quiet");
    for e in extra {
        cmd.args(["--set", e]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    only_run(runs, "quickstart")
}

/// Runs `experiments/zoo/<name>.toml` with `set` overrides (plus CPU and a 1% data slice) and
/// returns the run folder.
pub fn zoo_run(runs: &Path, name: &str, set: &[&str]) -> PathBuf {
    zoo_run_with_env(runs, name, set, &[])
}

/// [`zoo_run`] with extra environment variables.
pub fn zoo_run_with_env(runs: &Path, name: &str, set: &[&str], env: &[(&str, &str)]) -> PathBuf {
    let mut cmd = lab();
    cmd.envs(env.iter().copied());
    cmd.args(["run", &format!("experiments/zoo/{name}.toml"), "--runs-dir"]).arg(runs);
    for s in ["device=\"cpu\"", "data.fraction=0.01", "log.every=2"].iter().chain(set) {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{name} failed:\n{}", stderr(&out));
    only_run(runs, name)
}

/// Writes a CIFAR-10 set in the binary format under `root/cifar-10-batches-bin/`: the five
/// training files and the test file, `per_batch` records each (1 label byte + 3072 bytes of CHW
/// pixels), labels cycling through the ten classes and pixels a fixed pattern of the record.
pub fn write_cifar_bin(root: &Path, per_batch: usize) {
    let dir = root.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<String> =
        (1..=5).map(|i| format!("data_batch_{i}.bin")).chain(["test_batch.bin".to_string()]).collect();
    for (f, name) in files.iter().enumerate() {
        let mut bytes = Vec::with_capacity(per_batch * 3073);
        for r in 0..per_batch {
            let label = ((f * per_batch + r) % 10) as u8;
            bytes.push(label);
            bytes.extend((0..3072).map(|p| ((p * 7 + r * 13 + f * 29 + label as usize * 31) % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The only run folder under `runs/<experiment>/`.
pub fn only_run(runs: &Path, experiment: &str) -> PathBuf {
    let dir = runs.join(experiment);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "expected one run in {}: {runs:?}", dir.display());
    runs.pop().unwrap()
}

/// `(step, key, value)` from a run's metrics.jsonl.
pub fn metrics(run: &Path) -> Vec<(u64, String, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["step"].as_u64().unwrap(), v["key"].as_str().unwrap().to_string(), v["value"].as_f64().unwrap())
        })
        .collect()
}

/// The values a run logged under `key`, in order.
pub fn series(run: &Path, key: &str) -> Vec<f64> {
    metrics(run).into_iter().filter(|m| m.1 == key).map(|m| m.2).collect()
}

/// The SHA-256 of a run's last checkpoint's tensors, as the checkpoint records it in its
/// metadata (the rest of the metadata holds the config, which may legitimately differ).
pub fn checkpoint_tensors_sha256(run: &Path) -> String {
    let bytes = std::fs::read(run.join("checkpoints/last.safetensors")).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    header["__metadata__"]["lab.tensors_sha256"].as_str().unwrap().to_string()
}

/// Metrics without the wall-clock ones, which legitimately differ between runs.
pub fn deterministic_metrics(run: &Path) -> Vec<(u64, String, f64)> {
    metrics(run).into_iter().filter(|(_, k, _)| !k.starts_with("perf/")).collect()
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds a plugin crate from `lib_rs` against `api` (a path to a lab-plugin-api crate) and
/// returns the `.so`. Uses its own target folder (the workspace's is locked while tests run)
/// and the workspace's Cargo.lock, so dependency versions are exactly the core's.
pub fn build_plugin(name: &str, lib_rs: &str, api: &Path) -> PathBuf {
    build_plugin_with(name, lib_rs, api, &[])
}

/// [`build_plugin`] with extra `cargo build` arguments (e.g. `--no-default-features`).
pub fn build_plugin_with(name: &str, lib_rs: &str, api: &Path, cargo_args: &[&str]) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Built once per test process: tests share it, and nothing rebuilds it under their feet.
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    if let Some((_, so)) = BUILT.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| n == name) {
        return so.clone();
    }
    let dir = root().join("target/fixture-plugins/src").join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        r#"[package]
name = "lab-plugin-{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
lab-plugin-api = {{ path = "{}" }}
serde = {{ version = "1", features = ["derive"] }}

[features]
default = ["export"]
export = []

[workspace]
"#,
        api.display()
    );
    // Written only when they change: a rewrite would make cargo rebuild the library while
    // another test's `lab` process may be loading it.
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    write_if_changed(&dir.join("src/lib.rs"), lib_rs);
    write_if_changed(&dir.join("Cargo.lock"), &std::fs::read_to_string(root().join("Cargo.lock")).unwrap());
    let target = root().join("target/fixture-plugins/target");
    let status = Command::new("cargo")
        // A debug build: much quicker to compile, and the C ABI does not care.
        .args(["build", "--quiet"])
        .args(cargo_args)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env("LIBTORCH_USE_PYTORCH", "1")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building fixture plugin {name} failed");
    let so = target.join("debug").join(format!("liblab_plugin_{}.so", name.replace('-', "_")));
    assert!(so.exists(), "{} missing", so.display());
    BUILT.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_string(), so.clone()));
    so
}

/// A copy of lab-plugin-api with `edit` applied to one of its files, for building plugins
/// against a different interface.
pub fn patched_api(name: &str, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let src = root().join("core/plugin-api");
    let dst = root().join("target/fixture-plugins/api").join(name);
    std::fs::create_dir_all(dst.join("src")).unwrap();
    for entry in std::fs::read_dir(src.join("src")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        let text = if p.file_name().unwrap() == file { edit(&text) } else { text };
        write_if_changed(&dst.join("src").join(p.file_name().unwrap()), &text);
    }
    write_if_changed(&dst.join("build.rs"), &std::fs::read_to_string(src.join("build.rs")).unwrap());
    let manifest = std::fs::read_to_string(src.join("Cargo.toml")).unwrap();
    let manifest = resolve_workspace_deps(&manifest);
    write_if_changed(&dst.join("Cargo.toml"), &manifest);
    dst
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// Replaces `x.workspace = true` with the workspace's own entries, so the crate builds alone.
fn resolve_workspace_deps(manifest: &str) -> String {
    let ws: toml::Table = toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let deps = ws["workspace"]["dependencies"].as_table().unwrap();
    let package = ws["workspace"]["package"].as_table().unwrap();
    let mut out = String::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if let Some(key) = trimmed.strip_suffix(".workspace = true") {
            if let Some(v) = deps.get(key) {
                out.push_str(&format!("{key} = {v}\n"));
                continue;
            }
            if let Some(v) = package.get(key) {
                out.push_str(&format!("{key} = {v}\n"));
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
