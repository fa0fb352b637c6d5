//! Writing plugins as a user would: `lab new-plugin` for each kind, `lab plugins build`, the
//! generated crate's own `cargo test`, and a run that uses the plugin; then the tutorial's
//! commands, exactly as `docs/writing-plugins.md` prints them.
//!
//! Build time: the generated crates share one target folder with the fixture plugins (debug
//! profile), so tch and libtorch's bindings compile at most once per test run; each crate then
//! compiles in ~20 s for the library and ~20 s for its tests on 2 cores.
use std::path::{Path, PathBuf};
use std::process::Command;

use lab_tests::{lab, root, run, stderr, stdout};

/// The target folder every plugin crate built by these tests shares (the workspace's own is
/// locked while `cargo test` runs).
fn shared_target() -> PathBuf {
    root().join("target/fixture-plugins/target")
}

/// A fresh folder under target/ for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = root().join("target/plugin-authoring").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `lab` with a private plugin folder and the shared target folder.
fn lab_in(home: &Path) -> Command {
    let mut cmd = lab();
    cmd.env("LAB_PLUGIN_HOME", home).env("CARGO_TARGET_DIR", shared_target());
    cmd
}

const TINY_DCGAN: &[&str] = &["model.config.g_channels=8", "model.config.d_channels=8"];

#[test]
fn each_kind_scaffolds_builds_passes_its_tests_and_runs() {
    let dir = scratch("kinds");
    let home = dir.join("plugins");
    // (kind, name, overrides for a tiny run, the metric key the plugin must produce)
    let kinds: [(&str, &str, &[&str], &str); 4] = [
        ("architecture", "t-mlp", &["model.config.hidden=16"], "loss/d"),
        ("loss", "t-loss", TINY_DCGAN, "loss/d_relativistic"),
        ("augment", "t-augment", TINY_DCGAN, "loss/d"),
        ("metric", "t-metric", TINY_DCGAN, "eval/swd"),
    ];
    for (kind, name, overrides, key) in kinds {
        let crate_dir = dir.join(name);
        let out = run(lab_in(&home).args(["new-plugin", kind, name, "--path"]).arg(&crate_dir));
        assert!(out.status.success(), "{}", stderr(&out));
        for file in [
            "Cargo.toml",
            "Cargo.lock",
            ".cargo/config.toml",
            "README.md",
            "src/lib.rs",
            &format!("experiments/{name}.toml"),
        ] {
            assert!(crate_dir.join(file).is_file(), "{kind}: {file} written");
        }

        let out = run(lab_in(&home).args(["plugins", "build", "--debug"]).arg(&crate_dir));
        assert!(out.status.success(), "{kind}: lab plugins build\n{}", stderr(&out));
        let lib = format!("liblab_plugin_{}.so", name.replace('-', "_"));
        assert!(stdout(&out).contains(&format!("installed {}", home.join(&lib).display())), "{}", stdout(&out));
        let listed_kind = if kind == "augment" { "augmentation" } else { kind };
        assert!(stdout(&out).contains(&format!("{listed_kind} `{name}`")), "{}", stdout(&out));

        // The crate's own tests, with nothing set by hand: `.cargo/config.toml` supplies the
        // libtorch environment, and the binary finds libtorch without LD_LIBRARY_PATH.
        let out = run(Command::new("cargo")
            .args(["test", "--quiet"])
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", shared_target())
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LIBTORCH_USE_PYTORCH"));
        assert!(out.status.success(), "{kind}: cargo test\n{}\n{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("test result: ok. 2 passed"),
            "{kind}: both generated tests ran\n{}",
            stdout(&out)
        );

        let runs = dir.join("runs");
        let mut cmd = lab_in(&home);
        cmd.arg("run")
            .arg(crate_dir.join(format!("experiments/{name}.toml")))
            .arg("--runs-dir")
            .arg(&runs)
            .arg("--quiet");
        let mut sets: Vec<&str> = vec![
            "train.steps=4",
            "train.batch_size=16",
            "data.fraction=0.01",
            "log.every=2",
            "log.samples_every=4",
            "log.samples=16",
            "device=\"cpu\"",
        ];
        sets.extend_from_slice(overrides);
        if kind == "metric" {
            sets.extend_from_slice(&[
                "eval.every=4",
                "eval.num_samples=32",
                "eval.reference_count=32",
                "eval.batch_size=16",
            ]);
        }
        for s in sets {
            cmd.args(["--set", s]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{kind}: lab run\n{}", stderr(&out));
        let run_dir = lab_tests::only_run(&runs, name);
        let metrics = lab_tests::metrics(&run_dir);
        assert!(
            metrics.iter().any(|(_, k, v)| k == key && v.is_finite()),
            "{kind}: `{key}` logged; got {:?}",
            metrics.iter().map(|(_, k, _)| k).collect::<std::collections::BTreeSet<_>>()
        );
    }

    // An experiment's `plugins.paths` is searched by `lab plugins --experiment`, as by `lab run`.
    let library = home.join("liblab_plugin_t_mlp.so");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(&library, elsewhere.join("liblab_plugin_t_mlp.so")).unwrap();
    let experiment = dir.join("paths.toml");
    std::fs::write(&experiment, format!("[plugins]\npaths = [{:?}]\n", elsewhere.display().to_string())).unwrap();
    let empty_home = dir.join("no-plugins");
    let out = run(lab_in(&empty_home).args(["plugins", "--json"]));
    assert!(!stdout(&out).contains("t-mlp"), "not on the search path without the experiment");
    let out = run(lab_in(&empty_home).args(["plugins", "--json", "--experiment"]).arg(&experiment));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"t-mlp\""), "{}", stdout(&out));

    // Everything installed is listed, from the user plugin folder.
    let out = run(lab_in(&home).args(["plugins", "--json"]));
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    for name in ["t-mlp", "t-loss", "t-augment", "t-metric"] {
        let p = listed.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} listed"));
        assert!(p["library"].as_str().unwrap().starts_with(home.to_str().unwrap()), "{p}");
    }
}

#[test]
fn bad_names_and_occupied_folders_are_refused_before_anything_is_written() {
    let dir = scratch("refusals");
    let out = run(lab_in(&dir).args(["new-plugin", "architecture", "My_GAN", "--path"]).arg(dir.join("x")));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error: plugin name `My_GAN`: use lowercase letters, digits and single dashes"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("x").exists(), "nothing written");

    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = run(lab_in(&dir).args(["new-plugin", "loss", "ok-name", "--path"]).arg(&dir));
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} already exists and is not empty; choose another folder with --path, or remove it\n",
            dir.display()
        )
    );
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");

    let out = run(lab_in(&dir).args(["plugins", "build"]).arg(dir.join("nothing-here")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("has no Cargo.toml; give the plugin crate's folder"), "{}", stderr(&out));
}

/// The `sh` blocks of `docs/writing-plugins.md`, in order.
fn tutorial_commands() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/writing-plugins.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(Vec::new()),
            (Some(lines), "```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), l) => lines.push(l),
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_tutorial_runs_as_written() {
    let blocks = tutorial_commands();
    assert!(blocks.len() >= 4, "the tutorial's runnable blocks: {blocks:?}");
    let dir = scratch("tutorial");
    let script = format!("set -euxo pipefail\n{}\n", blocks.join("\n"));
    std::fs::write(dir.join("tutorial.sh"), &script).unwrap();
    let bin_dir = root().join("target/release");
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("tutorial.sh")).current_dir(&dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("LAB_") && k != "LAB_DATA" {
            cmd.env_remove(k);
        }
    }
    let out = run(cmd
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
        .env("LAB_ROOT", root())
        .env("LAB_PLUGIN_HOME", dir.join("plugins"))
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("LD_LIBRARY_PATH")
        // The tutorial's runs, shrunk to seconds (the commands themselves are unchanged).
        .env("LAB_PLUGINS_BUILD_DEBUG", "1")
        .env("LAB_TRAIN__STEPS", "4")
        .env("LAB_TRAIN__BATCH_SIZE", "16")
        .env("LAB_DATA__FRACTION", "0.01")
        .env("LAB_LOG__SAMPLES_EVERY", "4")
        .env("LAB_LOG__SAMPLES", "16")
        .env("LAB_DEVICE", "cpu"));
    assert!(out.status.success(), "the tutorial's commands failed:\n{script}\n{}", stderr(&out));
    // Both runs of the comparison exist, and `lab plugins` listed the new architecture.
    let runs = dir.join("my-gan/runs");
    lab_tests::only_run(&runs, "my-gan");
    lab_tests::only_run(&runs, "quickstart");
    assert!(stdout(&out).contains("my-gan"), "{}", stdout(&out));
    for name in ["my-loss", "my-augment", "my-metric"] {
        assert!(dir.join(name).join("src/lib.rs").is_file(), "{name} scaffolded");
    }
}
