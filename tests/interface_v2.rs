//! Interface v2 end to end, with toy plugins built in the test: every training shape the zoo
//! needs resumes bit-exactly on CPU (RMSprop with clipping and a critic schedule, SGD with
//! momentum and schedules, a stateful loss, lazy regularisation, three loss groups in one phase,
//! a G-only plan), bad loss output stops the run cleanly, an architecture draws its own grid,
//! and a plugin built for an earlier interface revision still loads.
use std::path::{Path, PathBuf};

use lab_tests::*;

/// The toy plugins, built against this checkout's interface (or a patched copy of it).
fn toys(api_name: &str, lib_rs_edit: impl Fn(&str) -> String) -> PathBuf {
    let api = patched_api(api_name, "lib.rs", lib_rs_edit);
    build_plugin(&format!("toys-{api_name}"), include_str!("fixtures/toys.rs"), &api)
}

fn current_toys() -> PathBuf {
    toys("current", |t| t.to_string())
}

const TOY: &str = "name = \"toy\"\nseed = 3\ndevice = \"cpu\"\n[data]\ndataset = \"fashion-mnist\"\nfraction = 0.01\n[model]\narchitecture = \"toy\"\n[train]\nbatch_size = 8\n[log]\nevery = 1\nsamples_every = 0\nsamples = 4\n[checkpoint]\nevery = 4\n";

/// Runs the toy experiment with `set` for `steps` steps into `runs`; returns the run folder.
fn train(so: &Path, runs: &Path, steps: u64, set: &[&str]) -> PathBuf {
    let file = runs.with_extension("toml");
    std::fs::create_dir_all(runs.parent().unwrap()).unwrap();
    std::fs::write(&file, TOY).unwrap();
    let mut cmd = lab();
    cmd.arg("run").arg(&file).arg("--quiet").arg("--runs-dir").arg(runs).env("LAB_PLUGIN_PATH", so);
    cmd.args(["--set", &format!("train.steps={steps}")]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    only_run(runs, "toy")
}

/// An uninterrupted run of 8 steps and one stopped at 4 and resumed agree on every value.
/// Returns the uninterrupted run (inside the returned folder, kept as long as it lives).
fn resumes_exactly(name: &str, set: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let so = current_toys();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let full = train(&so, &tmp.join(format!("{name}-full")), 8, set);
    let part = train(&so, &tmp.join(format!("{name}-part")), 4, set);
    let out = run(lab()
        .args(["run", "--quiet", "--resume"])
        .arg(&part)
        .args(["--set", "train.steps=8"])
        .env("LAB_PLUGIN_PATH", &so));
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (deterministic_metrics(&full), deterministic_metrics(&part));
    assert!(a.iter().any(|m| m.0 > 4), "{name}: nothing logged after the resume point");
    assert_eq!(b, a, "{name}: the resumed run diverged from the uninterrupted one");
    (dir, full)
}

fn keys_at(run: &Path, key: &str) -> Vec<u64> {
    metrics(run).into_iter().filter(|m| m.1 == key).map(|m| m.0).collect()
}

#[test]
fn rmsprop_with_clipping_and_a_critic_schedule_resumes_exactly() {
    let (_tmp, run_dir) = resumes_exactly(
        "wgan",
        &[
            "loss.name=\"toy-wgan\"",
            "optim.networks.discriminator.kind=\"rmsprop\"",
            "optim.networks.discriminator.lr=5e-3",
            "optim.networks.discriminator.clip=0.01",
        ],
    );
    // Every critic parameter is within ±c after its last step.
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    let mut checked = 0;
    for (name, t) in c.tensors.iter().filter(|(n, _)| n.starts_with("net.discriminator.")) {
        let max = t.abs().max().double_value(&[]);
        assert!(max <= 0.01, "{name}: max |w| = {max}");
        checked += 1;
    }
    assert_eq!(checked, 2, "the toy critic's weight and bias");
    assert!(c.tensors.contains_key("optim.discriminator.square_avg.fc.weight"), "RMSprop's state is checkpointed");
}

#[test]
fn sgd_with_momentum_and_schedules_resumes_exactly() {
    let _ = resumes_exactly(
        "sgd",
        &[
            "loss.name=\"toy-gan\"",
            "optim.kind=\"sgd\"",
            "optim.lr=0.05",
            "optim.momentum=0.5",
            "optim.nesterov=true",
            "optim.schedule.kind=\"linear\"",
            "optim.schedule.start=2",
            // The end of the decay is fixed: by default it is `train.steps`, which the
            // stopped run has shorter.
            "optim.schedule.end=8",
            "optim.schedule.momentum_to=0.7",
            "optim.schedule.momentum_steps=6",
        ],
    );
}

#[test]
fn a_stateful_loss_resumes_exactly_and_an_old_checkpoint_without_its_state_is_refused() {
    let (_tmp, run_dir) = resumes_exactly("began", &["loss.name=\"toy-began\""]);
    assert_eq!(keys_at(&run_dir, "began/k").len(), 8, "k_t is logged every step");

    // A checkpoint written by a stateless loss cannot resume a loss that keeps state.
    let so = current_toys();
    let tmp = tempfile::tempdir().unwrap();
    let part = train(&so, &tmp.path().join("runs"), 4, &["loss.name=\"toy-gan\""]);
    let out = run(lab()
        .args(["run", "--quiet", "--resume"])
        .arg(&part)
        .args(["--set", "train.steps=8", "--set", "loss.name=\"toy-began\""])
        .env("LAB_PLUGIN_PATH", &so));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("the checkpoint has no state for loss `toy-began` (it was written before that plugin kept state)"),
        "{err}"
    );
}

#[test]
fn lazy_regularisation_runs_every_4_steps_and_resumes_exactly() {
    let (_tmp, run_dir) = resumes_exactly("lazy", &["loss.name=\"toy-lazy\""]);
    // Logged at the end of steps 0, 4 (counted from 1: 1, 5).
    assert_eq!(keys_at(&run_dir, "reg/ran"), [1, 5]);
    assert_eq!(keys_at(&run_dir, "loss/D_reg"), [1, 5]);
    assert_eq!(keys_at(&run_dir, "loss/d").len(), 8);
}

#[test]
fn three_loss_groups_in_one_phase_resume_exactly_with_gating() {
    let (_tmp, run_dir) = resumes_exactly("vaegan", &["loss.name=\"toy-vaegan\"", "model.config.encoder=true"]);
    assert_eq!(keys_at(&run_dir, "loss/VG/encoder").len(), 8);
    assert_eq!(keys_at(&run_dir, "loss/VG/discriminator").len(), 8);
    // The decoder skips odd steps: its loss exists only after steps 0, 2, 4, 6.
    assert_eq!(keys_at(&run_dir, "loss/VG/generator"), [1, 3, 5, 7]);
}

#[test]
fn a_generator_only_plan_trains_without_a_discriminator() {
    let (_tmp, run_dir) = resumes_exactly(
        "vae",
        &["loss.name=\"toy-vae\"", "model.config.encoder=true", "model.config.discriminator=false"],
    );
    assert_eq!(keys_at(&run_dir, "loss/g").len(), 8);
    assert!(keys_at(&run_dir, "loss/d").is_empty());
    // Its G phase draws the real batches, and they count as images trained on.
    let rates: Vec<f64> = metrics(&run_dir).into_iter().filter(|m| m.1 == "perf/img_per_s").map(|m| m.2).collect();
    assert!(rates.len() == 8 && rates.iter().all(|r| *r > 0.0), "{rates:?}");
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert!(c.tensors.keys().all(|k| !k.contains("discriminator")));
}

fn failing_run(set: &[&str]) -> (String, PathBuf, tempfile::TempDir) {
    let so = current_toys();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_path_buf();
    let runs = tmp.join("runs");
    let file = tmp.join("toy.toml");
    std::fs::write(&file, TOY).unwrap();
    let mut cmd = lab();
    cmd.arg("run").arg(&file).arg("--quiet").arg("--runs-dir").arg(&runs).env("LAB_PLUGIN_PATH", &so);
    cmd.args(["--set", "train.steps=8", "--set", "loss.name=\"toy-bad\""]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(!out.status.success(), "the run must fail");
    let run_dir = std::fs::read_dir(runs.join("toy")).ok().and_then(|mut d| d.next()).map(|e| e.unwrap().path());
    (stderr(&out), run_dir.unwrap_or_default(), dir)
}

#[test]
fn a_loss_for_a_network_the_phase_does_not_step_stops_the_run_and_keeps_the_checkpoint() {
    let (err, run_dir, _tmp) = failing_run(&["loss.config.at=5"]);
    assert!(
        err.contains("step 5: loss `toy-bad` returned a loss for network `generator` in phase `D`, which steps only: discriminator"),
        "{err}"
    );
    assert!(err.contains("The last good checkpoint (step 4) is intact"), "{err}");
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!(c.metadata["step"], "4");
}

#[test]
fn a_non_scalar_loss_stops_the_run() {
    let (err, _, _tmp) = failing_run(&["loss.config.at=2", "loss.config.mode=\"shape\""]);
    assert!(
        err.contains("step 2: loss `toy-bad` returned a discriminator loss of shape [3]; expected a scalar"),
        "{err}"
    );
}

#[test]
fn a_plugin_error_with_a_key_names_the_plugin_and_the_full_key() {
    let (err, _, _tmp) = failing_run(&["loss.config.mode=\"bogus\""]);
    assert!(
        err.contains(
            "loss plugin `toy-bad`: key `loss.config.mode`: expected \"network\" or \"shape\", found \"bogus\""
        ),
        "{err}"
    );
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn an_architecture_draws_its_own_sample_grid() {
    let so = current_toys();
    let tmp = tempfile::tempdir().unwrap();
    let default = train(&so, &tmp.path().join("default"), 2, &["loss.name=\"toy-gan\""]);
    let own = train(&so, &tmp.path().join("own"), 2, &["loss.name=\"toy-gan\"", "model.config.own_grid=true"]);
    let last = |run: &Path| run.join("samples/step_000002.png");
    // The core's grid: 4 samples as 2 × 2 tiles of 28 px with 2 px padding.
    assert_eq!(png_size(&last(&default)), (2 + 2 * 30, 2 + 2 * 30));
    // The toy's own: a row of 4 fakes above a row of 4 reals.
    assert_eq!(png_size(&last(&own)), (2 + 4 * 30, 2 + 2 * 30));
}

#[test]
fn a_plugin_built_for_revision_0_still_loads_and_its_later_methods_are_not_called() {
    // Interface revision 0 had no loss state: a library built for it hands over a loss table
    // that ends before the state methods, and reports only revision 0's fingerprint.
    let so = toys("revision0", |t| {
        let edited = t.replacen("pub const REVISION: u32 = 4;", "pub const REVISION: u32 = 0;", 1);
        assert_ne!(edited, t, "lib.rs declares the revision");
        edited
    });
    let out = run(lab().args(["plugins", "--json"]).env("LAB_PLUGIN_PATH", &so));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("toy-began"));
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = train(&so, &tmp.path().join("runs"), 4, &["loss.name=\"toy-began\""]);
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert!(!c.metadata.contains_key("loss.state"), "a revision-0 loss has no state methods to call");
    assert_eq!(c.metadata["step"], "4");
}

#[test]
fn a_two_d_mixture_trains_and_is_drawn_as_a_scatter_with_its_mode_coverage() {
    let so = current_toys();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = train(
        &so,
        &tmp.path().join("runs"),
        4,
        &[
            "loss.name=\"toy-gan\"",
            "data.dataset=\"ring\"",
            "data.fraction=1.0",
            "data.synthetic_count=512",
            "log.samples_every=2",
        ],
    );
    for step in [2, 4] {
        assert_eq!(png_size(&run_dir.join(format!("samples/step_{step:06}.png"))), (480, 480));
    }
    let modes: Vec<(u64, f64)> =
        metrics(&run_dir).into_iter().filter(|m| m.1 == "toy/modes").map(|m| (m.0, m.2)).collect();
    assert_eq!(modes.iter().map(|m| m.0).collect::<Vec<_>>(), [2, 4]);
    assert!(modes.iter().all(|m| (0.0..=8.0).contains(&m.1)), "{modes:?}");
    assert_eq!(keys_at(&run_dir, "toy/high_quality"), [2, 4]);
}

/// Writes `n` PNGs of `w` × `h` into `dir` with `pixel(i, x)` as every channel's value.
fn write_pngs(dir: &Path, n: u32, w: u32, h: u32, pixel: impl Fn(u32, u32) -> u8) {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new(root().join(".venv/bin/python3"))
        .arg("-c")
        .arg(format!(
            "import numpy as np, PIL.Image as I, sys\nv = [{values}]\nfor i in range({n}):\n    a = np.array([[[v[i * {w} + x]] * 3 for x in range({w})] for _ in range({h})], dtype=np.uint8)\n    I.fromarray(a).save(sys.argv[1] + f'/{{i}}.png')",
            values = (0..n).flat_map(|i| (0..w).map(move |x| (i, x))).map(|(i, x)| pixel(i, x).to_string()).collect::<Vec<_>>().join(","),
        ))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_domain_batches_arrive_aligned_when_paired_and_on_their_own_when_unpaired() {
    let so = current_toys();
    let tmp = tempfile::tempdir().unwrap();
    // pix2pix's layout: A on the left half, B = 255 − A on the right, a horizontal gradient so
    // that a flip applied to only one side would show.
    let paired = tmp.path().join("paired");
    write_pngs(
        &paired,
        12,
        16,
        8,
        |i, x| if x < 8 { (i * 10 + x * 20) as u8 } else { 255 - (i * 10 + (x - 8) * 20) as u8 },
    );
    let set = |dataset: &str, extra: &[&str]| -> Vec<String> {
        let mut s = vec![
            "loss.name=\"toy-pair\"".to_string(),
            format!("data.dataset=\"{dataset}\""),
            "data.fraction=1.0".into(),
            "data.image_size=8".into(),
            "data.channels=1".into(),
            "data.hflip=true".into(),
        ];
        s.extend(extra.iter().map(|e| e.to_string()));
        s
    };
    let args = set("paired-folder", &[&format!("data.path={:?}", paired.display().to_string())]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run_dir = train(&so, &tmp.path().join("p"), 3, &refs);
    assert_eq!(keys_at(&run_dir, "pair/gap").len(), 3);

    // Stored at 12×12 (`data.load_size`), each pair cut to one random 8×8 window shared by A
    // and B: a window drawn for A alone would break b = −a.
    let stored = tmp.path().join("stored");
    write_pngs(
        &stored,
        12,
        24,
        12,
        |i, x| if x < 12 { (i * 5 + x * 15) as u8 } else { 255 - (i * 5 + (x - 12) * 15) as u8 },
    );
    let args = set("paired-folder", &[&format!("data.path={:?}", stored.display().to_string()), "data.load_size=12"]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run_dir = train(&so, &tmp.path().join("c"), 3, &refs);
    assert_eq!(keys_at(&run_dir, "pair/gap").len(), 3);

    // Unpaired: two folders of different sizes; B's batches are drawn on their own.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_pngs(&a, 10, 8, 8, |i, _| (i * 20) as u8);
    write_pngs(&b, 7, 8, 8, |_, _| 255);
    let args = set(
        "unpaired-folders",
        &[
            &format!("data.path={:?}", a.display().to_string()),
            &format!("data.path_b={:?}", b.display().to_string()),
            "loss.config.paired=false",
            "data.load_size=10",
        ],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run_dir = train(&so, &tmp.path().join("u"), 3, &refs);
    assert_eq!(keys_at(&run_dir, "pair/gap").len(), 3);
}

#[test]
fn without_its_export_feature_a_plugin_crate_exports_no_entry_points() {
    // What lets one plugin crate link another as a library without clashing symbols.
    let api = patched_api("current", "lib.rs", |t| t.to_string());
    let so = build_plugin_with("toys-noexport", include_str!("fixtures/toys.rs"), &api, &["--no-default-features"]);
    let out = run(lab().args(["plugins", "--json"]).env("LAB_PLUGIN_PATH", &so));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("toy-began"), "a library built without `export` must register nothing");
    let with = current_toys();
    let out = run(lab().args(["plugins", "--json"]).env("LAB_PLUGIN_PATH", &with));
    assert!(stdout(&out).contains("toy-began"));
}
