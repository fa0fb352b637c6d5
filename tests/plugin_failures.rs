//! Plugins that misbehave: a panic inside `forward`, and a library built for another interface.
use lab_tests::*;

fn experiment_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("panicky.toml");
    std::fs::write(&path, "name = \"panicky\"\n[model]\narchitecture = \"panicky\"\n[model.config]\npanic_after = 13\n[checkpoint]\nevery = 2\n").unwrap();
    path
}

#[test]
fn a_panic_in_forward_stops_the_run_cleanly_and_the_checkpoint_survives() {
    let api = patched_api("same", "", |t| t.to_string());
    let so = build_plugin("panicky", include_str!("fixtures/panicky.rs"), &api);
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let exp = experiment_file(tmp.path());
    let tiny: Vec<String> =
        ["train.steps=10", "train.batch_size=8", "data.fraction=0.01", "log.every=1", "device=\"cpu\""]
            .iter()
            .flat_map(|s| ["--set".to_string(), s.to_string()])
            .collect();
    let out = run(lab().arg("run").arg(&exp).args(&tiny).arg("--runs-dir").arg(&runs).env("LAB_PLUGIN_PATH", &so));
    assert!(!out.status.success(), "the run must fail");
    let err = stderr(&out);
    // Each G step runs D three times (real, fake in the D phase, fake in the G phase): the 13th
    // call is in step 4's D phase, after the step-4 checkpoint.
    assert!(err.contains("step 4: loss `non-saturating` (discriminator phase) failed: network `discriminator` of architecture `panicky`: panicked:"), "{err}");
    assert!(err.contains("The last good checkpoint (step 4) is intact"), "{err}");
    assert!(!err.contains("frame #"), "the libtorch backtrace is for --verbose only: {err}");
    let run_dir = only_run(&runs, "panicky");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "failed");

    // The checkpoint loads: resume it with the panic disarmed and finish the run.
    let out = run(lab()
        .args(["run", "--resume"])
        .arg(&run_dir)
        .args(["--set", "model.config.panic_after=1000000"])
        .env("LAB_PLUGIN_PATH", &so));
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    let steps: Vec<u64> = metrics(&run_dir).iter().filter(|m| m.1 == "loss/d").map(|m| m.0).collect();
    assert_eq!(steps, (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_nan_loss_stops_the_run_naming_the_step_and_the_loss() {
    let api = patched_api("same", "", |t| t.to_string());
    let so = build_plugin("panicky", include_str!("fixtures/panicky.rs"), &api);
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let exp = experiment_file(tmp.path());
    let set: Vec<String> =
        ["train.steps=10", "train.batch_size=8", "data.fraction=0.01", "device=\"cpu\"", "model.config.nan_after=8"]
            .iter()
            .flat_map(|s| ["--set".to_string(), s.to_string()])
            .collect();
    let out = run(lab().arg("run").arg(&exp).args(&set).arg("--runs-dir").arg(&runs).env("LAB_PLUGIN_PATH", &so));
    assert!(!out.status.success());
    let err = stderr(&out);
    // Call 8 is the fake batch of step 2's D phase. The loss is tested on the device and read at
    // the next check (the checkpoint due after step 4), which names the first bad step.
    assert!(
        err.contains(
            "step 2: the discriminator loss (`non-saturating`) is NaN; the run stopped at its next check (step 4) \
             and wrote no checkpoint after it."
        ),
        "{err}"
    );
    assert!(err.contains("The last good checkpoint (step 2) is intact"), "{err}");
    let run_dir = only_run(&runs, "panicky");
    let c = lab::train::Checkpoint::load(&run_dir.join("checkpoints/last.safetensors")).unwrap();
    assert_eq!(c.metadata["step"], "2", "the checkpoint is from before the bad step");
}

#[test]
fn a_plugin_built_for_another_interface_is_refused_with_one_paragraph() {
    // Add a field to a #[repr(C)] struct: exactly the change a forgotten version bump would miss.
    let api = patched_api("changed", "library.rs", |t| {
        t.replacen("pub num_classes: i64,\n    }", "pub num_classes: i64,\n        pub extra: i64,\n    }", 1)
    });
    let so = build_plugin("stale", include_str!("fixtures/minimal_loss.rs"), &api);
    // Skipped with one warning: everything else still loads.
    let out = run(lab().arg("plugins").env("LAB_PLUGIN_PATH", &so));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("dcgan"), "{}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one paragraph: {err}");
    // A run that needs its plugin names the skipped file.
    let runs = tempfile::tempdir().unwrap();
    let needs = run(lab()
        .args(["run", "experiments/quickstart.toml", "--quiet", "--set", "loss.name=\"zero\"", "--runs-dir"])
        .arg(runs.path())
        .env("LAB_PLUGIN_PATH", &so));
    assert!(!needs.status.success());
    assert!(
        stderr(&needs).contains(&format!("(skipped, see the warnings above: {})", so.display())),
        "{}",
        stderr(&needs)
    );
    let redacted = err
        .replace(so.to_str().unwrap(), "<fixture>/liblab_plugin_stale.so")
        .split("fingerprint ")
        .enumerate()
        .map(|(i, part)| if i == 0 { part.to_string() } else { format!("<hash>{}", &part[16..]) })
        .collect::<Vec<_>>()
        .join("fingerprint ");
    insta::assert_snapshot!(redacted.trim());
}

#[test]
fn junk_and_foreign_libraries_beside_good_plugins_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libjunk.so"), b"not an ELF file").unwrap();
    // A real shared library that is not a lab plugin: skipped silently.
    let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if let Some(libm) = libm {
        std::fs::copy(libm, dir.path().join("libforeign.so")).unwrap();
    }
    let runs = tempfile::tempdir().unwrap();
    let out = run(lab()
        .args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"])
        .arg(runs.path())
        .args(tiny(2))
        .env("LAB_PLUGIN_PATH", dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1 + usize::from(libm.is_some()), "{err}");
    if libm.is_some() {
        assert_eq!(
            warnings[0],
            format!(
                "warning: {}: not a lab plugin library (no `lab_plugin_fingerprint` entry point); skipped",
                dir.path().join("libforeign.so").display()
            ),
            "{err}"
        );
    }
    assert!(
        warnings.last().unwrap().starts_with(&format!(
            "warning: {}: cannot load plugin library: ",
            dir.path().join("libjunk.so").display()
        )),
        "{err}"
    );
}

#[test]
fn a_world_writable_plugin_folder_and_a_library_of_another_user_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let good = root().join("target/release/liblab_plugin_dcgan.so");
    let copy = dir.path().join("liblab_plugin_dcgan.so");
    std::fs::copy(&good, &copy).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Another owner needs root to arrange; without it only the folder is checked.
    let chowned = std::process::Command::new("chown").arg("12345").arg(&copy).status().is_ok_and(|s| s.success());
    let out = run(lab().args(["plugins"]).env("LAB_PLUGIN_PATH", dir.path()));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out).replace(&dir.path().display().to_string(), "<dir>");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(
        warnings[0],
        "warning: plugin folder <dir> is writable by every user (mode 777); anyone could place code there that lab \
         would run. Restrict it: chmod o-w <dir>"
    );
    if chowned {
        assert_eq!(
            warnings[1],
            "warning: plugin library <dir>/liblab_plugin_dcgan.so belongs to another user (uid 12345); loading it runs \
             their code as you"
        );
    }
    assert_eq!(warnings.len(), 1 + usize::from(chowned), "{err}");
}
