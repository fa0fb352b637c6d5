//! The zoo's systems end to end: each experiment file of `experiments/zoo/`, shrunk to a few
//! steps, leaves a complete run folder with the system's own grid and its own measures.
use std::path::{Path, PathBuf};

use lab_tests::{
    checkpoint_tensors_sha256, deterministic_metrics, lab, metrics, only_run, root, run, stderr, zoo_run,
    zoo_run_with_env,
};

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

fn values(run: &Path, key: &str) -> Vec<(u64, f64)> {
    metrics(run).into_iter().filter(|m| m.1 == key).map(|m| (m.0, m.2)).collect()
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn vae_measures_its_elbo_draws_reconstructions_and_reruns_bit_exactly() {
    let set = [
        "train.steps=6",
        "train.batch_size=16",
        "model.config.hidden=32",
        "model.config.z_dim=4",
        "model.config.eval_count=200",
        "eval.every=3",
        "log.samples_every=3",
        "log.samples=32",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = zoo_run(&tmp.path().join("a"), "vae_fashion_mnist", &set);
    // Real images over their reconstructions (2 pairs of rows of 8), then 16 prior samples:
    // 6 rows of 8 images of 28 px with 2 px of padding.
    assert_eq!(png_size(&run_dir.join("samples/step_000006.png")), (8 * 30 + 2, 6 * 30 + 2));
    let elbo = values(&run_dir, "eval/elbo");
    assert_eq!(elbo.iter().map(|v| v.0).collect::<Vec<_>>(), [3, 6]);
    // Nats per 784 grey-level pixels: between a perfect model (0) and an untrained one.
    assert!(elbo.iter().all(|v| v.1 < 0.0 && v.1 > -784.0 * 2.0), "{elbo:?}");
    assert_eq!(values(&run_dir, "eval/elbo_train").len(), 2);
    assert!(!values(&run_dir, "loss/kl").is_empty());
    let s = summary(&run_dir);
    assert_eq!(s["eval"]["best"]["metric"], "elbo", "the model's first measure picks the best checkpoint");
    assert!(run_dir.join("checkpoints/best.safetensors").exists());
    assert_eq!(s["eval"]["final"]["protocol"]["model"]["architecture"], "vae");

    let again = zoo_run(&tmp.path().join("b"), "vae_fashion_mnist", &set);
    assert_eq!(
        deterministic_metrics(&run_dir),
        deterministic_metrics(&again),
        "the same seed gives the same run, measures included"
    );
}

#[test]
fn infogan_logs_its_information_bound_draws_traversals_and_scores_its_code() {
    let set =
        ["train.steps=4", "train.batch_size=16", "model.config.eval_count=100", "eval.every=2", "log.samples_every=4"];
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = zoo_run(tmp.path(), "infogan_fashion_mnist", &set);
    // Ten rows of the category traversal, then five rows per continuous code: 20 rows of 10.
    assert_eq!(png_size(&run_dir.join("samples/step_000004.png")), (10 * 30 + 2, 20 * 30 + 2));
    for key in ["eval/mi_categorical", "eval/mi_continuous", "eval/code_accuracy", "eval/kmeans_accuracy"] {
        let v = values(&run_dir, key);
        assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "{key}");
    }
    assert!(values(&run_dir, "eval/mi_categorical").iter().all(|v| v.1 <= 10f64.ln() + 1e-6));
    assert!(values(&run_dir, "eval/code_accuracy").iter().all(|v| (0.0..=1.0).contains(&v.1)));
    let logged = values(&run_dir, "info/mi_categorical");
    assert!(!logged.is_empty() && logged.iter().all(|v| v.1.is_finite()));
    // Q steps with D: its weights are in the checkpoint.
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    let names: Vec<&String> = c.tensors.keys().collect();
    assert!(names.iter().any(|n| n.contains("q_head")), "{names:?}");
}

/// A run of `name` for 8 steps, and one stopped at 4 and resumed, agree on every logged value;
/// returns the uninterrupted run's folder (kept while the returned directory lives).
fn resumes_exactly(name: &str, set: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let with_steps = |steps: &'static str| set.iter().copied().chain([steps, "checkpoint.every=4"]).collect::<Vec<_>>();
    let full = zoo_run(&dir.path().join("full"), name, &with_steps("train.steps=8"));
    let part = zoo_run(&dir.path().join("part"), name, &with_steps("train.steps=4"));
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (deterministic_metrics(&full), deterministic_metrics(&part));
    assert!(a.iter().any(|m| m.0 > 4), "{name}: nothing logged after the resume point");
    assert_eq!(b, a, "{name}: the resumed run diverged from the uninterrupted one");
    (dir, full)
}

#[test]
fn wgan_clips_every_critic_parameter_and_resumes_exactly() {
    let set = [
        "train.batch_size=16",
        "model.config.g_channels=8",
        "model.config.d_channels=8",
        // The schedule's shape at a test's size: 6 critic steps on steps 0 and 3 (and 6), 2 otherwise.
        "loss.config.n_critic=2",
        "loss.config.warmup_critic=6",
        "loss.config.warmup_first=1",
        "loss.config.warmup_every=3",
        "eval.metrics=[]",
        "log.samples_every=0",
    ];
    let (_dir, run_dir) = resumes_exactly("wgan_fashion_mnist", &set);
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    let critic: Vec<_> = c.tensors.iter().filter(|(n, _)| n.starts_with("net.discriminator.")).collect();
    assert!(critic.len() > 4, "{:?}", c.tensors.keys().collect::<Vec<_>>());
    for (name, t) in critic {
        let trainable = !name.contains("running_") && !name.contains("num_batches");
        let max = t.abs().max().double_value(&[]);
        assert!(!trainable || max <= 0.01 + 1e-9, "{name}: max |w| = {max}");
    }
    let estimate = values(&run_dir, "wgan/estimate");
    assert_eq!(estimate.len(), 4, "logged at every second step: {estimate:?}");
}

#[test]
fn began_keeps_k_in_the_unit_interval_logs_m_global_and_resumes_exactly() {
    let set = ["train.batch_size=8", "model.config.channels=4", "loss.config.lambda_k=0.05", "log.samples_every=4"];
    let (_dir, run_dir) = resumes_exactly("began_fashion_mnist", &set);
    let k = values(&run_dir, "began/k");
    assert_eq!(k.len(), 4);
    assert!(k.iter().all(|v| (0.0..=1.0).contains(&v.1)), "{k:?}");
    assert!(k.iter().any(|v| v.1 > 0.0), "k_t moves from 0: {k:?}");
    for key in ["began/m_global", "began/balance", "began/real_loss", "began/fake_loss"] {
        assert_eq!(values(&run_dir, key).len(), 4, "{key}");
    }
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert!(c.metadata["loss.state"].starts_with("{\"k\":"), "{:?}", c.metadata.get("loss.state"));
    assert_eq!(png_size(&run_dir.join("samples/step_000008.png")).0, 8 * 30 + 2);
}

#[test]
fn bigan_probes_its_encoder_and_draws_reconstructions() {
    let set = [
        "train.steps=4",
        "train.batch_size=16",
        "model.config.hidden=32",
        "model.config.eval_count=100",
        "eval.every=2",
        "log.samples_every=4",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = zoo_run(tmp.path(), "bigan_fashion_mnist", &set);
    // 4 pairs of rows (real over G(E(x))) and 32 samples: 12 rows of 8.
    assert_eq!(png_size(&run_dir.join("samples/step_000004.png")), (8 * 30 + 2, 12 * 30 + 2));
    for key in ["eval/probe_1nn", "eval/probe_1nn_random_encoder", "eval/reconstruction_ratio"] {
        assert_eq!(values(&run_dir, key).iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "{key}");
    }
    assert!(values(&run_dir, "eval/probe_1nn").iter().all(|v| (0.0..=1.0).contains(&v.1)));
    assert_eq!(values(&run_dir, "bigan/d_real_acc").len(), 2);
    // E steps with G: its optimizer state is in the checkpoint.
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert!(c.tensors.keys().any(|n| n.starts_with("optim.encoder.")), "{:?}", c.tensors.keys().collect::<Vec<_>>());
    // `lab eval` measures the model again from its last checkpoint (the encoder included), with
    // no metric plugin, and gets exactly what training logged at that step.
    let out = run(lab().args(["eval"]).arg(&run_dir).args(["--checkpoint", "last"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = lab_tests::stdout(&out);
    for key in ["probe_1nn", "probe_1nn_random_encoder", "reconstruction_ratio"] {
        let logged = values(&run_dir, &format!("eval/{key}")).last().unwrap().1;
        assert!(printed.contains(&format!("{key}: {logged}\n")), "{key} = {logged} expected in:\n{printed}");
    }
}

#[test]
fn wgan_gp_trains_the_official_mnist_networks_and_logs_the_gradient_norm() {
    let set = [
        "train.steps=4",
        "train.batch_size=8",
        "train.d_steps=2",
        "model.config.dim=4",
        "eval.metrics=[]",
        "log.samples_every=4",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = zoo_run(tmp.path(), "wgan_gp_fashion_mnist", &set);
    let norms = values(&run_dir, "gp/grad_norm");
    assert_eq!(norms.len(), 2);
    assert!(norms.iter().all(|v| v.1.is_finite() && v.1 > 0.0), "{norms:?}");
    assert!(run_dir.join("samples/step_000004.png").exists());
}

#[test]
fn the_original_gan_steps_d_and_g_together_and_resumes_exactly() {
    let set = [
        "train.batch_size=16",
        "model.config.g_hidden=32",
        "model.config.d_units=8",
        "eval.metrics=[]",
        "log.samples_every=0",
    ];
    let (_dir, run_dir) = resumes_exactly("gan_fashion_mnist", &set);
    // One phase, `DG`: a loss per group, from one forward pass.
    for key in ["loss/DG/discriminator", "loss/DG/generator"] {
        assert_eq!(values(&run_dir, key).len(), 4, "{key}");
    }
    // The SGD momentum ramp and lr decay are in the optimizer state the resume restored.
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert!(
        c.tensors.keys().any(|n| n.starts_with("optim.discriminator.")),
        "{:?}",
        c.tensors.keys().collect::<Vec<_>>()
    );
}

#[test]
fn cgan_samples_follow_their_labels_under_a_real_data_classifier() {
    let set = [
        "train.steps=4",
        "train.batch_size=16",
        "eval.every=4",
        "eval.metrics=[\"cas\"]",
        "eval.num_samples=100",
        "eval.reference_count=100",
        "eval.config.cas.epochs=1",
        // CAS trains its own classifier: a run's feature network is not handed to it.
        "eval.features=\"/nonexistent/features.pt\"",
        "log.samples_every=4",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run_dir = zoo_run_with_env(
        &tmp.path().join("runs"),
        "cgan_fashion_mnist",
        &set,
        &[("LAB_CACHE", cache.to_str().unwrap())],
    );
    let label_acc = values(&run_dir, "eval/cas/label_acc");
    assert_eq!(label_acc.len(), 1);
    assert!((0.0..=1.0).contains(&label_acc[0].1));
    assert!(run_dir.join("samples/step_000004.png").exists());
}

#[test]
fn vaegan_steps_three_networks_on_their_own_losses_with_gating_and_resumes_exactly() {
    let set = [
        "train.batch_size=16",
        "model.config.hidden=32",
        "model.config.z_dim=8",
        "eval.metrics=[]",
        // The model's own measures run at every evaluation; at 4 the stopped run evaluates too.
        "eval.every=4",
        "log.samples_every=8",
    ];
    let (_dir, run_dir) = resumes_exactly("vaegan_fashion_mnist", &set);
    for key in
        ["loss/VG/encoder", "vaegan/kl", "vaegan/llike", "vaegan/decoder_stepped", "vaegan/discriminator_stepped"]
    {
        assert_eq!(values(&run_dir, key).len(), 4, "{key}");
    }
    assert!(values(&run_dir, "vaegan/decoder_stepped").iter().all(|v| (0.0..=1.0).contains(&v.1)));
    assert_eq!(png_size(&run_dir.join("samples/step_000008.png")), (8 * 30 + 2, 12 * 30 + 2));
}

#[test]
fn vaegan_conv_and_its_plain_vae_baseline_train_the_same_networks_end_to_end() {
    let set = ["train.batch_size=8", "model.config.width=0.125", "model.config.z_dim=8", "eval.metrics=[]"];
    let with = |steps: &'static str| set.iter().copied().chain([steps, "log.samples_every=2"]).collect::<Vec<_>>();
    let tmp = tempfile::tempdir().unwrap();
    // The code's annealing squeezed into the 4 steps: one "epoch" per step.
    let annealed = [with("train.steps=4"), vec!["optim.schedule.every=1", "optim.schedule.end=4"]].concat();
    let vaegan = zoo_run(&tmp.path().join("runs"), "vaegan_conv_fashion_mnist", &annealed);
    for key in ["vaegan/llike", "vaegan/discriminator_stepped", "loss/VG/encoder", "loss/VG/generator"] {
        assert_eq!(values(&vaegan, key).len(), 2, "{key}");
    }
    // Logged after steps 2 and 4: the rates of update indices 1 and 3, start − (t/4)^0.75·(start − stop).
    let (start, stop) = (0.025 / 64.0, 1e-5 / 64.0);
    for network in ["encoder", "generator", "discriminator"] {
        let lr = values(&vaegan, &format!("optim/lr/{network}"));
        let expected = [(2, 0.25f64), (4, 0.75)].map(|(step, t)| (step, start - t.powf(0.75) * (start - stop)));
        assert_eq!(lr.len(), 2, "{network}: {lr:?}");
        for ((step, v), (want_step, want)) in lr.iter().zip(expected) {
            assert_eq!(*step, want_step);
            assert!((v - want).abs() < 1e-12, "{network} at step {step}: {v} against {want}");
        }
    }
    // Real rows over their reconstructions, then samples: 28×28 images at 8 columns.
    assert_eq!(png_size(&vaegan.join("samples/step_000004.png")).0, 8 * 30 + 2);
    // The model's own measures at the end: pixel error and sharpness against the test images.
    for key in ["eval/recon_mse", "eval/sharpness_recon", "eval/sharpness_samples"] {
        let v = values(&vaegan, key);
        assert!(!v.is_empty() && v.iter().all(|v| v.1.is_finite() && v.1 > 0.0), "{key}: {v:?}");
    }

    // The baseline: the same encoder and decoder on KL + pixel NLL; D is built, never stepped.
    let baseline = zoo_run(&tmp.path().join("runs"), "vaegan_conv_baseline_fashion_mnist", &with("train.steps=4"));
    assert_eq!(values(&baseline, "vaegan/pixel_nll").len(), 2);
    assert!(values(&baseline, "vaegan/llike").is_empty(), "no learned similarity in the baseline");
    let first = lab::train::Checkpoint::load(&baseline.join("checkpoints/last.safetensors")).unwrap();
    let untouched = zoo_run(&tmp.path().join("again"), "vaegan_conv_baseline_fashion_mnist", &with("train.steps=2"));
    let early = lab::train::Checkpoint::load(&untouched.join("checkpoints/last.safetensors")).unwrap();
    for (name, t) in first.tensors.iter().filter(|(n, _)| n.starts_with("net.")) {
        let moved = !t.equal(&early.tensors[name]);
        assert_eq!(moved, !name.starts_with("net.discriminator."), "{name}");
    }
}

/// Runs `experiments/zoo/<name>.toml` on the CIFAR-format set under `data_root` (CPU, 8 real
/// images per D step, log and grid as the test asks) with `set` overrides; returns the run folder.
fn cifar_run(runs: &Path, data_root: &Path, name: &str, set: &[&str]) -> PathBuf {
    cifar_file_run(runs, data_root, &format!("experiments/zoo/{name}.toml"), set)
}

/// [`cifar_run`] for any experiment file (a path from the repository's root).
fn cifar_file_run(runs: &Path, data_root: &Path, file: &str, set: &[&str]) -> PathBuf {
    cifar_file_run_logged(runs, data_root, file, set, &[]).0
}

/// [`cifar_file_run`] with extra environment variables; also returns what the run wrote to
/// stderr.
fn cifar_file_run_logged(
    runs: &Path,
    data_root: &Path,
    file: &str,
    set: &[&str],
    env: &[(&str, &str)],
) -> (PathBuf, String) {
    let name = Path::new(file).file_stem().unwrap().to_str().unwrap().to_string();
    let mut cmd = lab();
    cmd.envs(env.iter().copied());
    cmd.args(["run", file, "--runs-dir"]).arg(runs);
    cmd.args(["--set", &format!("data.root={:?}", data_root.display().to_string())]);
    let fixed = ["data.download=false", "device=\"cpu\"", "train.batch_size=8", "eval.metrics=[]", "log.every=1"];
    for s in fixed.iter().chain(set) {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{name} failed:\n{}", stderr(&out));
    (only_run(runs, &name), stderr(&out))
}

/// SNGAN's two CIFAR-10 experiments and WGAN-GP's ResNet, at tiny widths, for 3 steps on a
/// CIFAR-format set the test writes: the phases of the file (G first on 128 generated images
/// where the official code does so, then the D steps), losses at every step, spectral norm's
/// `u` in the checkpoint exactly where D is normalised.
#[test]
fn sngan_and_wgan_gp_resnet_experiments_train_on_a_tiny_cifar_set() {
    let tmp = tempfile::tempdir().unwrap();
    lab_tests::write_cifar_bin(tmp.path(), 30);
    let cases = [
        // (experiment, widths, G batch, D steps, spectral norm in D)
        ("sngan_resnet_cifar10", ["model.config.g_channels=8", "model.config.d_channels=8"], 128, 5, true),
        ("sngan_cnn_cifar10", ["model.config.g_channels=16", "model.config.d_channels=8"], 0, 1, true),
        ("wgan_gp_resnet_cifar10", ["model.config.g_channels=8", "model.config.d_channels=8"], 128, 5, false),
    ];
    for (name, widths, g_batch, d_steps, sn) in cases {
        let set: Vec<&str> =
            ["train.steps=3", "log.samples=8", "log.samples_every=3"].into_iter().chain(widths).collect();
        let run_dir = cifar_run(&tmp.path().join("runs"), tmp.path(), name, &set);
        let config: toml::Table =
            toml::from_str(&std::fs::read_to_string(run_dir.join("config.toml")).unwrap()).unwrap();
        let phases = config["train"]["phases"].as_array().unwrap();
        let plan: Vec<_> = phases
            .iter()
            .map(|p| {
                (p["name"].as_str().unwrap(), p["batch_size"].as_integer().unwrap(), p["repeat"].as_integer().unwrap())
            })
            .collect();
        assert_eq!(plan, [("G", g_batch, 1), ("D", 0, d_steps)], "{name}");
        assert_eq!(config["model"]["architecture"].as_str(), Some("sngan"));
        for key in ["loss/d", "loss/g"] {
            let v = values(&run_dir, key);
            assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), [1, 2, 3], "{name}: {key}");
            assert!(v.iter().all(|v| v.1.is_finite()), "{name}: {key} {v:?}");
        }
        if name.starts_with("wgan_gp") {
            assert_eq!(values(&run_dir, "gp/grad_norm").len(), 3);
        }
        assert!(run_dir.join("samples/step_000003.png").exists(), "{name}");
        let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
        let d_weights = c.tensors.keys().filter(|n| n.starts_with("net.discriminator.") && n.ends_with(".weight"));
        for w in d_weights {
            assert_eq!(c.tensors.contains_key(&format!("{w}_u")), sn, "{name}: {w}");
        }
        assert!(c.tensors.keys().any(|n| n.starts_with("net.generator.") && n.ends_with("stored_var")), "{name}");
    }
}

/// A CIFAR-format experiment of `experiments/zoo/` run for 4 steps, and stopped at 2 and resumed
/// (checkpoints every 2 steps, no grids; `set` adds the test's overrides): both agree on every
/// logged value. Returns the two run folders, uninterrupted first, inside `tmp`.
fn cifar_resumes_exactly(tmp: &Path, name: &str, set: &[&str]) -> (PathBuf, PathBuf) {
    lab_tests::write_cifar_bin(tmp, 30);
    let with_steps = |steps: &'static str| {
        set.iter().copied().chain(["checkpoint.every=2", "log.samples_every=0", steps]).collect::<Vec<_>>()
    };
    let full = cifar_run(&tmp.join("full"), tmp, name, &with_steps("train.steps=4"));
    let part = cifar_run(&tmp.join("part"), tmp, name, &with_steps("train.steps=2"));
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=4"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let (a, b) = (deterministic_metrics(&full), deterministic_metrics(&part));
    assert!(a.iter().any(|m| m.0 > 2), "{name}: nothing logged after the resume point");
    assert_eq!(b, a, "{name}: the resumed run diverged from the uninterrupted one");
    (full, part)
}

/// The ResNet stopped at step 2 and resumed gives the run that never stopped, value for value:
/// spectral norm's `u` and batch norm's statistics come back from the checkpoint, and the lr
/// decay continues from the step.
#[test]
fn sngan_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // The decay's end is fixed, so that the run stopped at 2 decays like the one of 4 steps.
    let set = ["model.config.g_channels=8", "model.config.d_channels=8", "optim.schedule.end=4"];
    cifar_resumes_exactly(tmp.path(), "sngan_resnet_cifar10", &set);
}

/// LAPGAN at tiny widths for 4 steps of 16 images: one loss per level's D and one for the
/// generator, the coarse phases' losses, D's accuracy per level, and the stage grid (10 samples of 5 stages: 2 rows of
/// Ĩ_0, h_1, Ĩ_1, h_2, Ĩ_2 at 28 px); `lab eval` gets FID through the pyramid's sampling.
#[test]
fn lapgan_trains_every_level_and_draws_its_stages() {
    let set = [
        "train.steps=4",
        "train.batch_size=16",
        "model.config.g0_hidden=32",
        "model.config.d0_hidden=16",
        "model.config.g_channels=8",
        "model.config.d_channels=8",
        "log.samples=10",
        "log.samples_every=4",
        "eval.every=4",
        "eval.num_samples=64",
        "eval.reference_count=64",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_feature_network(tmp.path());
    let features = format!("eval.features={:?}", features.display().to_string());
    let set: Vec<&str> = set.iter().copied().chain([features.as_str()]).collect();
    let cache = tmp.path().join("cache").display().to_string();
    let run_dir = zoo_run_with_env(&tmp.path().join("runs"), "lapgan_fashion_mnist", &set, &[("LAB_CACHE", &cache)]);
    assert_eq!(png_size(&run_dir.join("samples/step_000004.png")), (5 * 30 + 2, 2 * 30 + 2));
    for k in 0..3 {
        let loss = values(&run_dir, &format!("loss/d/discriminator_{k}"));
        assert_eq!(loss.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "level {k}: {loss:?}");
        let accuracy = values(&run_dir, &format!("lapgan/d_accuracy_{k}"));
        assert!(accuracy.len() == 2 && accuracy.iter().all(|v| (0.0..=1.0).contains(&v.1)), "{accuracy:?}");
    }
    assert_eq!(values(&run_dir, "loss/g").len(), 2);
    // The file's `coarse_updates = 4`: the coarsest level's extra D_0 and G_0 updates.
    for phase in ["D_coarse", "G_coarse"] {
        let loss = values(&run_dir, &format!("loss/{phase}"));
        assert_eq!(loss.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "{phase}: {loss:?}");
    }
    let fid = values(&run_dir, "eval/fid");
    assert!(fid.len() == 1 && fid[0].1.is_finite() && fid[0].1 > 0.0, "{fid:?}");
}

/// StyleGAN2 at tiny widths (16 channels at 4×4 down to 2 at 32×32, w of 16).
const STYLEGAN2_TINY: [&str; 4] =
    ["model.config.z_dim=8", "model.config.w_dim=16", "model.config.channel_base=64", "model.config.channel_max=16"];

fn steps_of(run_dir: &Path, key: &str) -> Vec<u64> {
    values(run_dir, key).into_iter().map(|v| v.0).collect()
}

/// StyleGAN2's experiments at tiny widths on a CIFAR-format set the test writes:
/// - the cifar config (conditional): the lazy R1 phase runs on steps 0 and 16 only (logged after
///   them: 1 and 17), the lazy G_pl steps nothing (path length off; the plugin's tests check the
///   plan and the core's the rescaled optimisers); a checkpoint with the running mean of w, D's 8-layer label mapping, no
///   residual skips in D, and the EMA generator;
/// - the same with ADA, whose p is logged;
/// - DiffAugment's StyleGAN2 at 20%: no lazy phases, R1 in every D step, a residual D.
#[test]
fn stylegan2_experiments_train_with_their_lazy_phases_on_a_tiny_cifar_set() {
    let tmp = tempfile::tempdir().unwrap();
    lab_tests::write_cifar_bin(tmp.path(), 30);
    let set = |steps: &'static str| {
        STYLEGAN2_TINY.into_iter().chain([steps, "log.samples=8", "log.samples_every=0"]).collect::<Vec<_>>()
    };
    let run_dir = cifar_run(&tmp.path().join("runs"), tmp.path(), "stylegan2_cifar10", &set("train.steps=17"));
    assert_eq!(steps_of(&run_dir, "loss/D_r1"), [1, 17], "lazy R1 on steps 0 and 16");
    assert_eq!(steps_of(&run_dir, "loss/r1"), [1, 17]);
    assert!(steps_of(&run_dir, "loss/G_pl").is_empty(), "path length off: G_pl steps nothing");
    for key in ["loss/d", "loss/g"] {
        let v = values(&run_dir, key);
        assert!(v.len() == 17 && v.iter().all(|v| v.1.is_finite()), "{key}: {v:?}");
    }
    assert!(run_dir.join("samples/step_000017.png").exists());
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    let w_avg = &c.tensors["net.generator.mapping.w_avg"];
    assert!(w_avg.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0, "w_avg moved in training");
    assert!(c.tensors.contains_key("net.discriminator.mapping.fc7.weight"), "D's label mapping has 8 layers");
    assert!(c.tensors.contains_key("net.generator.mapping.embed.weight"), "conditional G");
    assert!(!c.tensors.keys().any(|k| k.starts_with("net.discriminator.") && k.contains("skip")), "`orig` D");
    assert!(c.tensors.keys().any(|k| k.starts_with("ema.")), "the EMA generator is checkpointed");

    let ada = cifar_run(&tmp.path().join("runs"), tmp.path(), "stylegan2_ada_cifar10", &set("train.steps=4"));
    assert_eq!(values(&ada, "augment/p").len(), 4, "ADA's p is logged every step");

    let diffaugment = cifar_file_run(
        &tmp.path().join("runs"),
        tmp.path(),
        "experiments/diffaugment_stylegan2_cifar10_20pct.toml",
        &set("train.steps=3"),
    );
    assert_eq!(steps_of(&diffaugment, "loss/r1"), [1, 2, 3], "R1 in every D step");
    assert!(steps_of(&diffaugment, "loss/D_r1").is_empty(), "no lazy phase");
    let c = lab::train::Checkpoint::load(&diffaugment.join("checkpoints/last.safetensors")).unwrap();
    assert!(c.tensors.contains_key("net.discriminator.b32.skip.weight"), "residual D");
    assert!(c.tensors.contains_key("net.generator.mapping.fc7.weight"), "8 mapping layers");
}

/// The other rows of DiffAugment's StyleGAN2 table (100% and 10% of CIFAR-10, with and without
/// DiffAugment; the 20% DiffAugment file is above), each for 2 steps at tiny widths on the
/// CIFAR-format set the test writes (150 training images): each loads its share of the data
/// (logged by the loader), trains with R1 in every D step and a residual D, and differs from its
/// twin only by the augmentation.
#[test]
fn diffaugment_stylegan2_rows_train_on_their_share_of_a_tiny_cifar_set() {
    let tmp = tempfile::tempdir().unwrap();
    lab_tests::write_cifar_bin(tmp.path(), 30);
    let rows = [
        // DiffAugment's run_cifar.py: `color,cutout` with all the data, translation added below.
        ("diffaugment_stylegan2_cifar10_100pct", 150, Some("color,cutout")),
        ("diffaugment_stylegan2_cifar10_10pct", 15, Some("color,translation,cutout")),
        ("stylegan2_cifar10_100pct", 150, None),
        ("stylegan2_cifar10_20pct", 30, None),
        ("stylegan2_cifar10_10pct", 15, None),
    ];
    for (name, images, policy) in rows {
        let quiet = ["train.steps=2", "log.samples=8", "log.samples_every=0"];
        let set: Vec<&str> = quiet.into_iter().chain(STYLEGAN2_TINY).collect();
        let file = format!("experiments/{name}.toml");
        let (run_dir, log) =
            cifar_file_run_logged(&tmp.path().join(name), tmp.path(), &file, &set, &[("RUST_LOG", "lab=info")]);
        assert!(log.contains(&format!("split=train images={images} of=150")), "{name}: {log}");
        assert_eq!(steps_of(&run_dir, "loss/r1"), [1, 2], "{name}: R1 in every D step");
        assert!(steps_of(&run_dir, "loss/D_r1").is_empty(), "{name}: no lazy phase");
        let config: toml::Table =
            toml::from_str(&std::fs::read_to_string(run_dir.join("config.toml")).unwrap()).unwrap();
        let augment = config.get("augment").and_then(|a| a.get("name")).and_then(|n| n.as_str());
        assert_eq!(augment == Some("diffaugment"), policy.is_some(), "{name}: augment {augment:?}");
        if policy.is_some() {
            assert_eq!(config["augment"]["config"]["policy"].as_str(), policy, "{name}");
        }
        let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
        assert!(c.tensors.contains_key("net.discriminator.b32.skip.weight"), "{name}: residual D");
    }
}

/// Path-length regularisation every 2 steps: a run stopped at step 2 and resumed gives the run
/// that never stopped, value for value, so the running mean came back from the checkpoint exactly
/// (the resumed run's step-2 penalty reads it).
#[test]
fn stylegan2_path_length_mean_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let pl = ["loss.config.pl_weight=2.0", "loss.config.pl_every=2", "loss.config.r1_every=2"];
    let set: Vec<&str> = STYLEGAN2_TINY.into_iter().chain(pl).collect();
    let (full, part) = cifar_resumes_exactly(tmp.path(), "stylegan2_cifar10", &set);
    assert_eq!(steps_of(&full, "pl/mean"), [1, 3]);
    let mean = values(&full, "pl/mean");
    assert!(mean[1].1 > mean[0].1 && mean[0].1 > 0.0, "the mean moves from 0 towards the lengths: {mean:?}");
    assert_eq!(checkpoint_tensors_sha256(&part), checkpoint_tensors_sha256(&full), "the resumed run's weights differ");
}

/// LSGAN's stability experiment and its regular-GAN baseline on the ring of 8 Gaussians: D and G
/// step together from one forward pass (the official code's update), and every sample step
/// leaves the scatter over the modes with the coverage values beside it.
#[test]
fn the_ring_experiments_step_simultaneously_and_draw_their_samples_over_the_modes() {
    for name in ["lsgan_ring", "gan_ring"] {
        let set = ["train.steps=4", "train.batch_size=64", "log.samples_every=2"];
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = zoo_run(tmp.path(), name, &set);
        assert_eq!(values(&run_dir, "loss/DG/discriminator").len(), 2, "{name}: one phase, D and G together");
        assert!(values(&run_dir, "loss/D/discriminator").is_empty(), "{name}");
        let modes = values(&run_dir, "toy/modes");
        assert_eq!(modes.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "{name}");
        assert!(modes.iter().all(|v| (0.0..=8.0).contains(&v.1) && v.1.fract() == 0.0), "{name}: {modes:?}");
        let quality = values(&run_dir, "toy/high_quality");
        assert!(quality.iter().all(|v| (0.0..=1.0).contains(&v.1)), "{name}: {quality:?}");
        for step in [2, 4] {
            assert_eq!(png_size(&run_dir.join(format!("samples/step_{step:06}.png"))), (480, 480), "{name}");
        }
    }
}

/// SAGAN's experiment at tiny widths, for 3 steps on a CIFAR-format set the test writes: one D
/// then one G update per step with TTUR's learning rates, losses at every step, a grid, and a
/// checkpoint where every weight of both networks carries spectral norm's `u`, G's norms their
/// class tables, D its projection, and both attention blocks a γ that training moved from 0.
#[test]
fn sagan_experiment_trains_both_attention_blocks_on_a_tiny_cifar_set() {
    let tmp = tempfile::tempdir().unwrap();
    lab_tests::write_cifar_bin(tmp.path(), 30);
    let name = "sagan_cifar10";
    let set = ["train.steps=3", "log.samples=8", "log.samples_every=3"]
        .into_iter()
        .chain(["model.config.g_channels=16", "model.config.d_channels=8"]);
    let run_dir = cifar_run(&tmp.path().join("runs"), tmp.path(), name, &set.collect::<Vec<_>>());
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(run_dir.join("config.toml")).unwrap()).unwrap();
    let phases: Vec<_> = config["train"]["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str()).collect();
    assert_eq!(phases, [Some("D"), Some("G")], "D first, then G, once each");
    let optim = &config["optim"]["networks"];
    assert_eq!(optim["discriminator"]["lr"].as_float(), Some(4e-4), "TTUR: D");
    assert_eq!(optim["generator"]["lr"].as_float(), Some(1e-4), "TTUR: G");
    assert_eq!(config["model"]["architecture"].as_str(), Some("sagan"));
    for key in ["loss/d", "loss/g"] {
        let v = values(&run_dir, key);
        assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), [1, 2, 3], "{key}");
        assert!(v.iter().all(|v| v.1.is_finite()), "{key} {v:?}");
    }
    assert!(run_dir.join("samples/step_000003.png").exists());

    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    for net in ["generator", "discriminator"] {
        let prefix = format!("net.{net}.");
        let weights: Vec<_> = c.tensors.keys().filter(|n| n.starts_with(&prefix) && n.ends_with(".weight")).collect();
        assert!(weights.len() > 10, "{net}: {weights:?}");
        for w in weights {
            assert!(c.tensors.contains_key(&format!("{w}_u")), "{w}: spectral norm in both networks");
        }
        let gamma = c.tensors[&format!("{prefix}attention.gamma")].double_value(&[0]);
        println!("{net}: attention γ after 3 steps = {gamma:e}");
        assert!(gamma != 0.0 && gamma.is_finite(), "{net}: γ left 0 in training: {gamma}");
    }
    assert!(c.tensors.contains_key("net.generator.blocks.0.bn1.gain.weight"), "class-conditional norms in G");
    assert!(c.tensors.contains_key("net.discriminator.embed.weight"), "projection D");
}

/// GRAN's experiment at tiny widths for 2 steps of 8 images: the paper's per-network learning
/// rates with their lr / (1 + epoch/50) decay, Adam without momentum, D's weight decay, the
/// non-saturating loss; finite losses at each logged step, a checkpoint holding G's one set of
/// recurrent weights (z_t → h_z, [h_z, h_c] → map, canvas → h_c) and D's, the canvases' balance
/// measured at the end, and the per-step grid: 10 samples of 5 steps are 2 rows of 5 cumulative
/// images.
#[test]
fn gran_experiment_trains_and_draws_its_canvases_step_by_step() {
    let set = [
        "train.steps=2",
        "train.batch_size=8",
        "model.config.z_dim=10",
        "model.config.g_channels=8",
        "model.config.d_channels=6",
        "model.config.d_hidden=5",
        "model.config.eval_count=200",
        "eval.metrics=[]",
        "log.samples=10",
        "log.samples_every=2",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = zoo_run(tmp.path(), "gran_fashion_mnist", &set);
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(run_dir.join("config.toml")).unwrap()).unwrap();
    assert_eq!(config["model"]["architecture"].as_str(), Some("gran"));
    assert_eq!(config["model"]["config"]["time_steps"].as_integer(), Some(5));
    assert_eq!(config["loss"]["name"].as_str(), Some("non-saturating"));
    let betas: Vec<_> = config["optim"]["betas"].as_array().unwrap().iter().map(|b| b.as_float()).collect();
    assert_eq!(betas, [Some(0.0), Some(0.999)], "no momentum, as the official optimiser in effect");
    let optim = &config["optim"]["networks"];
    assert_eq!(optim["discriminator"]["lr"].as_float(), Some(4e-5));
    assert_eq!(optim["discriminator"]["weight_decay"].as_float(), Some(1e-5));
    assert_eq!(optim["generator"]["lr"].as_float(), Some(1e-4));
    for net in ["discriminator", "generator"] {
        let schedule = &optim[net]["schedule"];
        assert_eq!(
            (schedule["kind"].as_str(), schedule["every"].as_integer()),
            (Some("inverse"), Some(30000)),
            "{net}"
        );
    }
    for key in ["loss/d", "loss/g"] {
        let v = values(&run_dir, key);
        assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), [2], "{key}");
        assert!(v.iter().all(|v| v.1.is_finite()), "{key} {v:?}");
    }
    // The largest step's share of the canvases' magnitude, measured at the end: between 1/T (all
    // steps alike) and 1 (one step decides).
    let share = values(&run_dir, "eval/canvas_share_max");
    assert_eq!(share.iter().map(|v| v.0).collect::<Vec<_>>(), [2], "{share:?}");
    assert!((0.2..=1.0).contains(&share[0].1), "{share:?}");
    // Rows of samples, columns of steps: 5 images of 28 + 2 pixels across, 2 rows down.
    assert_eq!(png_size(&run_dir.join("samples/step_000002.png")), (5 * 30 + 2, 2 * 30 + 2));

    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    let shape = |name: &str| c.tensors[name].size();
    assert_eq!(shape("net.generator.noise_fc.weight"), [10, 10], "z_t → h_z");
    assert_eq!(shape("net.generator.hidden_fc.weight"), [8 * 7 * 7, 20], "[h_z, h_c] → the 7×7 map");
    assert_eq!(shape("net.generator.code_fc.weight"), [10, 8 * 7 * 7], "the canvas's code h_c");
    assert_eq!(shape("net.discriminator.out.weight"), [1, 5]);
    assert!(!c.tensors.contains_key("net.discriminator.out.bias"), "the official logit has no bias");
}

/// A tiny TorchScript feature network in `dir` (the metric tests' `tiny_net.py`: 16-d features),
/// for the translation systems' FID measures.
fn tiny_feature_network(dir: &Path) -> PathBuf {
    let path = dir.join("tiny_features.pt");
    let status = std::process::Command::new(root().join(".venv/bin/python3"))
        .arg(root().join("plugins/metrics/src/tests/tiny_net.py"))
        .arg(&path)
        .args(["16", "10"])
        .status()
        .unwrap();
    assert!(status.success(), "tiny_net.py failed");
    path
}

/// `count` grey 32×32 pairs A|B under `dir` (64×32 PNGs, A on the left): B a bright square on a
/// dark ground at a place and size that vary per image, A its outline (an edge map, the paper's
/// edges → photo task in miniature).
fn write_edge_pairs(dir: &Path, count: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let (x0, y0, side) = (2 + (i * 5) % 14, 3 + (i * 7) % 12, 8 + (i * 3) % 10);
        let inside = |x: u32, y: u32| x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
        let edge = |x: u32, y: u32| inside(x, y) && (x == x0 || y == y0 || x == x0 + side - 1 || y == y0 + side - 1);
        let mut pixels = Vec::with_capacity(64 * 32);
        for y in 0..32 {
            for x in 0..64 {
                let value = if x < 32 {
                    if edge(x, y) {
                        255
                    } else {
                        0
                    }
                } else if inside(x - 32, y) {
                    200 + (i * 3) as u8
                } else {
                    30
                };
                pixels.push(value);
            }
        }
        let png = lab::track::GridImage { width: 64, height: 32, channels: 1, pixels };
        png.save_png(&dir.join(format!("{i:02}.png"))).unwrap();
    }
}

/// pix2pix's paper set-up at tiny widths for 4 steps of 4 pairs, on edge → square pairs written
/// here in pix2pix's layout (`train/`, `test/`), stored at 36 px and cropped to 32: finite cGAN
/// and L1 losses and D's statistics at each logged step, the grid of rows of inputs, outputs and
/// targets (8 columns of 32 px pairs), and the translation measures on the test pairs at each
/// evaluation.
#[test]
fn pix2pix_translates_paired_folders_draws_input_output_target_rows_and_measures_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs");
    write_edge_pairs(&pairs.join("train"), 16);
    write_edge_pairs(&pairs.join("test"), 8);
    let runs = tmp.path().join("runs");
    let mut cmd = lab();
    cmd.args(["run", "experiments/zoo/pix2pix_facades.toml", "--runs-dir"]).arg(&runs);
    let path = format!("data.path={:?}", pairs.display().to_string());
    let features = format!("model.config.features={:?}", tiny_feature_network(tmp.path()).display().to_string());
    let set = [
        "device=\"cpu\"",
        path.as_str(),
        features.as_str(),
        "data.channels=1",
        "data.image_size=32",
        "data.load_size=36",
        "data.direction=\"AtoB\"",
        "train.steps=4",
        "train.batch_size=4",
        "model.config.ngf=8",
        "model.config.ndf=8",
        "log.every=2",
        "log.samples=8",
        "log.samples_every=2",
        "eval.every=2",
    ];
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "pix2pix failed:\n{}", stderr(&out));
    let run_dir = only_run(&runs, "pix2pix_facades");
    for key in ["loss/l1", "loss/gan", "d/real_logit", "d/fake_logit"] {
        let v = values(&run_dir, key);
        assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>()[..1], [2], "{key}: {v:?}");
        assert!(v.iter().all(|v| v.1.is_finite()), "{key} {v:?}");
    }
    // Three rows (inputs, outputs, targets) of 8 pairs of 32 px with 2 px of padding.
    assert_eq!(png_size(&run_dir.join("samples/step_000002.png")), (8 * 34 + 2, 3 * 34 + 2));

    let psnr = values(&run_dir, "eval/translation/psnr");
    assert_eq!(psnr.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4], "{psnr:?}");
    assert!(psnr.iter().all(|v| v.1.is_finite() && v.1 > 0.0), "{psnr:?}");
    let identity = values(&run_dir, "eval/translation/psnr_identity");
    assert!(identity.len() == 2 && identity.iter().all(|v| v.1.is_finite() && v.1 > 0.0), "{identity:?}");
    let ssim = values(&run_dir, "eval/translation/ssim");
    assert!(ssim.len() == 2 && ssim.iter().all(|v| (-1.0..=1.0).contains(&v.1)), "{ssim:?}");
    let l1 = values(&run_dir, "eval/translation/l1");
    assert!(l1.len() == 2 && l1.iter().all(|v| (0.0..=1.0).contains(&v.1)), "{l1:?}");
    let fid = values(&run_dir, "eval/translation/fid");
    assert!(fid.len() == 2 && fid.iter().all(|v| v.1.is_finite() && v.1 >= 0.0), "{fid:?}");
    // `lab eval` measures the last checkpoint's translations of the test pairs again and gets
    // exactly what training logged at that step.
    assert_lab_eval_repeats(&run_dir, &["translation/l1", "translation/psnr", "translation/ssim", "translation/fid"]);
}

/// `lab eval` on the run's last checkpoint prints each of `keys` with exactly the value
/// training logged as `eval/<key>` at that step.
fn assert_lab_eval_repeats(run_dir: &Path, keys: &[&str]) {
    let out = run(lab().args(["eval"]).arg(run_dir).args(["--checkpoint", "last"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = lab_tests::stdout(&out);
    for key in keys {
        let logged = values(run_dir, &format!("eval/{key}")).last().unwrap().1;
        assert!(printed.contains(&format!("{key}: {logged}\n")), "{key} = {logged} expected in:\n{printed}");
    }
}

/// Writes `n` 32×32 grey PNGs to `dir`: a bright 12×12 square on black at a place that moves
/// with the image's index (domain A), or the negative of the same picture (domain B).
fn write_blobs(dir: &Path, n: i64, inverted: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let x = tch::Tensor::full([1, 1, 32, 32], -1.0, (tch::Kind::Float, tch::Device::Cpu));
        let _ = x.narrow(2, (i * 7) % 20, 12).narrow(3, (i * 5) % 20, 12).fill_(1.0);
        let x = if inverted { -x } else { x };
        lab::track::grid(&x, 1, 0).unwrap().save_png(&dir.join(format!("{i:02}.png"))).unwrap();
    }
}

/// `experiments/zoo/cyclegan_horse2zebra.toml` on 16 blobs (A) and 16 inverted blobs (B) at
/// 32×32 grey in CycleGAN's layout (trainA/, trainB/, and 8 of each in testA/, testB/), loaded
/// at 36 and cropped to 32, with networks narrow enough for a CPU, plus `set`.
fn cyclegan_run(runs: &Path, data: &Path, set: &[&str]) -> PathBuf {
    if !data.join("trainA").exists() {
        write_blobs(&data.join("trainA"), 16, false);
        write_blobs(&data.join("trainB"), 16, true);
        write_blobs(&data.join("testA"), 8, false);
        write_blobs(&data.join("testB"), 8, true);
    }
    let paths = [format!("data.path={:?}", data.display().to_string())];
    let mut cmd = lab();
    cmd.args(["run", "experiments/zoo/cyclegan_horse2zebra.toml", "--quiet", "--runs-dir"]).arg(runs);
    let tiny = [
        "device=\"cpu\"",
        "data.image_size=32",
        "data.load_size=36",
        "data.channels=1",
        "model.config.ngf=4",
        "model.config.ndf=4",
        "model.config.n_blocks=1",
        "train.batch_size=4",
        "log.every=1",
        "log.samples=12",
        // The official schedule's shape over 8 steps: constant, then linear to 0 at step 8 (fixed,
        // so a run of 4 steps follows the same learning rates as one of 8).
        "optim.schedule.start=4",
        "optim.schedule.end=8",
    ];
    for s in paths.iter().map(String::as_str).chain(tiny).chain(set.iter().copied()) {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "cyclegan failed:\n{}", stderr(&out));
    only_run(runs, "cyclegan_horse2zebra")
}

const CYCLEGAN_LOSSES: [&str; 8] = [
    "loss/g_gan_ab",
    "loss/g_gan_ba",
    "loss/cycle_a",
    "loss/cycle_b",
    "loss/identity_a",
    "loss/identity_b",
    "loss/d_a",
    "loss/d_b",
];

/// CycleGAN on unpaired folders, 8 steps of 4 images with pools of 6 (full after two steps, so
/// later D phases swap pooled fakes): every loss term logged and finite at every step, the
/// A → B → A / B → A → B grid (6 rows of 2 images), the pools in the checkpoint's loss state;
/// and a run stopped at step 4 and resumed to 8 ends with the same metrics and the same weights,
/// bit for bit, as the uninterrupted run: the pools and their draws survive the checkpoint.
/// The measures are off here (`model.config.measure = false`): they need the second domain's
/// evaluation split, which the next test checks.
#[test]
fn cyclegan_trains_on_unpaired_folders_and_resumes_bit_exactly_with_full_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let set = ["model.config.measure=false", "loss.config.pool_size=6", "checkpoint.every=4", "log.samples_every=8"];
    let full = cyclegan_run(&tmp.path().join("full"), tmp.path(), &[&set[..], &["train.steps=8"]].concat());
    let config: toml::Table = toml::from_str(&std::fs::read_to_string(full.join("config.toml")).unwrap()).unwrap();
    assert_eq!(config["loss"]["name"].as_str(), Some("cyclegan"));
    for key in CYCLEGAN_LOSSES {
        let v = values(&full, key);
        assert_eq!(v.iter().map(|v| v.0).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>(), "{key}");
        assert!(v.iter().all(|v| v.1.is_finite() && v.1 >= 0.0), "{key} {v:?}");
    }
    // Two columns (log.samples / 6), six rows of 32 + 2 pixels.
    assert_eq!(png_size(&full.join("samples/step_000008.png")), (2 * 34 + 2, 6 * 34 + 2));

    let part = cyclegan_run(&tmp.path().join("part"), tmp.path(), &[&set[..], &["train.steps=4"]].concat());
    let c = lab::train::Checkpoint::load(&part.join("checkpoints/last.safetensors")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&c.metadata["loss.state"]).unwrap();
    for pool in ["pool_a", "pool_b"] {
        assert_eq!(state[pool]["shape"], serde_json::json!([6, 1, 32, 32]), "{pool} full after 4 steps of 4 fakes");
    }
    for net in ["generator", "generator_ba", "discriminator_a", "discriminator_b"] {
        assert!(c.tensors.keys().any(|k| k.starts_with(&format!("net.{net}."))), "{net} in the checkpoint");
    }
    let out = run(lab().args(["run", "--quiet", "--resume"]).arg(&part).args(["--set", "train.steps=8"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(deterministic_metrics(&part), deterministic_metrics(&full), "the resumed run diverged");
    assert_eq!(checkpoint_tensors_sha256(&part), checkpoint_tensors_sha256(&full), "the resumed run's weights differ");
}

/// The measures at the end of a short run, on both domains' evaluation images: cycle L1 per
/// direction in [0, 1], domain accuracies in [0, 1], the domain classifier near-perfect on real
/// blobs against inverted blobs, and with the Fashion-MNIST feature network (when it is there)
/// FID per direction.
#[test]
fn cyclegan_measures_its_translations_in_both_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_feature_network(tmp.path());
    let features_set = format!("model.config.features={:?}", features.display().to_string());
    let set = ["train.steps=2", "model.config.classifier_steps=60", &features_set];
    let run_dir = cyclegan_run(&tmp.path().join("runs"), tmp.path(), &set);
    let measured: Vec<_> = metrics(&run_dir).into_iter().filter(|m| m.1.starts_with("eval/")).collect();
    println!("cyclegan measures after 2 steps: {measured:?}");
    for key in ["eval/cycle/l1_aba", "eval/cycle/l1_bab"] {
        let v = values(&run_dir, key);
        assert_eq!(v.len(), 1, "{key}");
        assert!((0.0..=1.0).contains(&v[0].1), "{key} {v:?}");
    }
    for key in ["eval/translation/domain_acc_ab", "eval/translation/domain_acc_ba"] {
        let v = values(&run_dir, key);
        assert!(v.len() == 1 && (0.0..=1.0).contains(&v[0].1), "{key} {v:?}");
    }
    let classifier = values(&run_dir, "eval/translation/domain_classifier_acc");
    assert!(classifier.len() == 1 && classifier[0].1 > 0.9, "{classifier:?}");
    for key in ["eval/translation/fid_ab", "eval/translation/fid_ba"] {
        let v = values(&run_dir, key);
        assert!(v.len() == 1 && v[0].1.is_finite() && v[0].1 >= 0.0, "{key} {v:?}");
    }
    assert_lab_eval_repeats(&run_dir, &["cycle/l1_aba", "translation/domain_acc_ab", "translation/fid_ba"]);
}

/// Every logged loss of `a` and `b` (the same experiment in two memory layouts) at the same steps
/// and equal up to float32 rounding in another kernel's summation order.
fn assert_same_losses(a: &Path, b: &Path, what: &str) {
    let losses = |run: &Path| -> Vec<(u64, String, f64)> {
        metrics(run).into_iter().filter(|m| m.1.starts_with("loss/")).collect()
    };
    let (a, b) = (losses(a), losses(b));
    assert!(!a.is_empty(), "{what}: no losses logged");
    assert_eq!(a.len(), b.len(), "{what}: {a:?} against {b:?}");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, &x.1), (y.0, &y.1), "{what}");
        assert!(y.2.is_finite() && (x.2 - y.2).abs() <= 1e-3 * x.2.abs().max(1.0), "{what}: {x:?} against {y:?}");
    }
}

/// `train.channels_last` on the convolutional architectures whose layers go beyond plain
/// convolutions and norms (spectral norm's weight reshapes, self-attention's flattening,
/// StyleGAN2's modulated convolutions and FIR resampling, DiffAugment's translation and cutout,
/// GRAN's canvas, LAPGAN's pyramid, InfoGAN's Q head), 2 steps at tiny widths: each trains, and its
/// losses are the default layout's.
#[test]
fn convolutional_zoo_architectures_train_alike_in_channels_last() {
    let tmp = tempfile::tempdir().unwrap();
    lab_tests::write_cifar_bin(tmp.path(), 30);
    let cifar: [(&str, &[&str]); 5] = [
        ("experiments/diffaugment_cifar10_20pct.toml", &["model.config.g_ch=4", "model.config.d_ch=4"]),
        ("experiments/zoo/sngan_resnet_cifar10.toml", &["model.config.g_channels=8", "model.config.d_channels=8"]),
        ("experiments/zoo/sagan_cifar10.toml", &["model.config.g_channels=16", "model.config.d_channels=8"]),
        ("experiments/zoo/stylegan2_cifar10.toml", &STYLEGAN2_TINY),
        ("experiments/diffaugment_stylegan2_cifar10_20pct.toml", &STYLEGAN2_TINY),
    ];
    for (i, (file, widths)) in cifar.into_iter().enumerate() {
        let set: Vec<&str> = widths.iter().copied().chain(["train.steps=2", "log.samples_every=0"]).collect();
        let layout = |name: &str, extra: &[&'static str]| {
            let set: Vec<&str> = set.iter().copied().chain(extra.iter().copied()).collect();
            cifar_file_run(&tmp.path().join(format!("{name}-{i}")), tmp.path(), file, &set)
        };
        let (nchw, nhwc) = (layout("nchw", &[]), layout("nhwc", &["train.channels_last=true"]));
        assert_same_losses(&nchw, &nhwc, file);
    }
    let fashion: [(&str, &[&str]); 3] = [
        ("gran_fashion_mnist", &["model.config.g_channels=8", "model.config.d_channels=6", "model.config.d_hidden=5"]),
        // Dropout on 4-D maps draws its mask in memory order, so NHWC drops other pixels:
        // off here, to compare the arithmetic alone.
        (
            "lapgan_fashion_mnist",
            &["model.config.g_channels=8", "model.config.d_channels=8", "model.config.d_dropout=0.0"],
        ),
        ("infogan_fashion_mnist", &[]),
    ];
    for (name, widths) in fashion {
        let fixed = ["train.steps=2", "train.batch_size=8", "eval.metrics=[]", "log.samples_every=0", "log.every=1"];
        let set: Vec<&str> = widths.iter().copied().chain(fixed).collect();
        let nhwc_set: Vec<&str> = set.iter().copied().chain(["train.channels_last=true"]).collect();
        let nchw = zoo_run(&tmp.path().join(format!("nchw-{name}")), name, &set);
        let nhwc = zoo_run(&tmp.path().join(format!("nhwc-{name}")), name, &nhwc_set);
        assert_same_losses(&nchw, &nhwc, name);
    }
}
