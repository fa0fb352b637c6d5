//! The quickstart, at a tiny size, end to end: run folder contents, TensorBoard read back by the
//! real `tensorboard` package, `lab plugins`.
use lab_tests::*;

#[test]
fn quickstart_runs_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = run(lab().args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(&runs).args(tiny(8)));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "quickstart");
    for f in [
        "config.toml",
        "manifest.json",
        "metrics.jsonl",
        "summary.json",
        "checkpoints/last.safetensors",
        "samples/step_000004.png",
        "samples/step_000008.png",
    ] {
        assert!(run_dir.join(f).exists(), "{f} missing in {}", run_dir.display());
    }
    let events: Vec<_> = std::fs::read_dir(&run_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("events.out.tfevents."))
        .collect();
    assert_eq!(events.len(), 1, "one TensorBoard writer per run folder");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "finished");
    assert_eq!(summary["steps"], 8);
    // Losses are checked on the device: the core reads nothing to the host inside a step.
    assert_eq!(summary["host_reads_in_steps"], 0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "finished");
    assert!(manifest["libtorch"].as_str().unwrap().starts_with("2.11.0"), "{}", manifest["libtorch"]);
    let plugins: Vec<&str> =
        manifest["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(plugins, ["dcgan", "non-saturating"]);
    assert_eq!(manifest["plugins"][0]["sha256"].as_str().unwrap().len(), 64);

    // The resolved config is exactly what ran: the plugin's defaults are filled in.
    let config_text = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    insta::assert_snapshot!("quickstart_resolved_config", config_text);
    let config: toml::Table = toml::from_str(&config_text).unwrap();
    assert_eq!(config["model"]["config"]["g_channels"].as_integer(), Some(8));
    assert!(config["model"]["config"].get("z_dim").is_some());

    let keys: std::collections::BTreeSet<String> = metrics(&run_dir).into_iter().map(|m| m.1).collect();
    for k in ["loss/d", "loss/g", "d/real_logit", "d/fake_logit", "perf/img_per_s"] {
        assert!(keys.contains(k), "{k} not logged: {keys:?}");
    }

    // TensorBoard, read back by the real tensorboard package.
    let script = root().join("core/lab/src/track/read_events.py");
    let py = root().join(".venv/bin/python3");
    let out = std::process::Command::new(&py).arg(&script).arg(&run_dir).output().expect("venv python runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let tb: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let loss_d = &tb["scalars"]["loss/d"];
    let jsonl: Vec<(u64, f64)> =
        metrics(&run_dir).into_iter().filter(|m| m.1 == "loss/d").map(|m| (m.0, m.2)).collect();
    let tb_steps: Vec<u64> = loss_d.as_array().unwrap().iter().map(|p| p[0].as_u64().unwrap()).collect();
    assert_eq!(tb_steps, jsonl.iter().map(|p| p.0).collect::<Vec<_>>());
    for (p, (_, v)) in loss_d.as_array().unwrap().iter().zip(&jsonl) {
        assert!((p[1].as_f64().unwrap() - v).abs() < 1e-5 * v.abs().max(1.0));
    }
    let images = tb["images"]["samples"].as_array().expect("sample grid images in TensorBoard");
    assert_eq!(images.len(), 2);
    // 16 images of 28x28 in a 4x4 grid with 2px padding.
    assert_eq!(images[0]["width"], 4 * 28 + 5 * 2);
    assert_eq!(images[0]["height"], 4 * 28 + 5 * 2);
}

#[test]
fn plugins_lists_the_shipped_plugins() {
    let out = run(lab().args(["plugins", "--json"]));
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}/{}", p["kind"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    for n in [
        "architecture/dcgan",
        "loss/hinge",
        "loss/non-saturating",
        "loss/wgan-gp",
        "loss/least-squares",
        "loss/minimax",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
    }
    let table = run(lab().arg("plugins"));
    assert!(table.status.success());
    let text = stdout(&table);
    assert!(text.starts_with("KIND"), "{text}");
    assert!(text.contains("liblab_plugin_dcgan.so") && text.contains("defaults: "), "{text}");
}

#[test]
fn cli_help_is_stable() {
    let out = run(lab().arg("--help"));
    assert!(out.status.success());
    insta::assert_snapshot!("help", stdout(&out));
    let out = run(lab().args(["run", "--help"]));
    insta::assert_snapshot!("run_help", stdout(&out));
}

#[test]
fn nested_keys_can_be_set_from_the_environment() {
    let runs = tempfile::tempdir().unwrap();
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"]).arg(runs.path());
    // `LAB_<SECTION>__<KEY>` sets `<section>.<key>`; other LAB_ variables are not config.
    for (k, v) in [
        ("LAB_TRAIN__STEPS", "2"),
        ("LAB_TRAIN__BATCH_SIZE", "8"),
        ("LAB_DATA__FRACTION", "0.01"),
        ("LAB_MODEL__CONFIG__G_CHANNELS", "8"),
        ("LAB_MODEL__CONFIG__D_CHANNELS", "8"),
        ("LAB_DEVICE", "cpu"),
        ("LAB_SOMETHING_ELSE", "1"),
    ] {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let config: toml::Table =
        toml::from_str(&std::fs::read_to_string(only_run(runs.path(), "quickstart").join("config.toml")).unwrap())
            .unwrap();
    assert_eq!(config["train"]["steps"].as_integer(), Some(2));
    assert_eq!(config["train"]["batch_size"].as_integer(), Some(8));
    assert_eq!(config["model"]["config"]["g_channels"].as_integer(), Some(8));
    assert_eq!(config["device"].as_str(), Some("cpu"));
}

#[test]
fn data_fetch_inception_offline_says_where_the_file_goes_and_how_to_get_it() {
    let cache = tempfile::tempdir().unwrap();
    let out = run(lab().args(["data", "fetch", "inception"]).env("XDG_CACHE_HOME", cache.path()));
    assert!(!out.status.success());
    let text = stderr(&out).replace(&cache.path().display().to_string(), "<cache>");
    insta::assert_snapshot!(text);
    assert!(!cache.path().join("lab").exists(), "nothing is created offline");
}

#[test]
fn data_make_builds_a_stand_in_once_and_names_the_ones_it_knows() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let out = run(lab().args(["data", "make", "fashion2inverted", "--root", root]));
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tmp.path().join("fashion2inverted");
    assert!(stdout(&out).starts_with(&format!("fashion2inverted: built in {} (", dir.display())), "{}", stdout(&out));
    for split in ["trainA", "trainB", "testA", "testB"] {
        assert!(dir.join(split).is_dir(), "{split}");
    }
    assert!(std::fs::read_to_string(dir.join("README.txt")).unwrap().contains("not a paper's data set"));
    let again = run(lab().args(["data", "make", "fashion2inverted", "--root", root]));
    assert!(again.status.success());
    assert_eq!(stdout(&again), format!("fashion2inverted: already in {} (--force rebuilds it)\n", dir.display()));
    let unknown = run(lab().args(["data", "make", "horse2zebra", "--root", root]));
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("invalid value 'horse2zebra'")
            && stderr(&unknown).contains("[possible values: edges2fashion, fashion2inverted]"),
        "{}",
        stderr(&unknown)
    );
}
