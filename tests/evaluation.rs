//! Evaluation during training and afterwards: metrics logged with their protocol, the best
//! checkpoint kept by FID, and `lab eval` reproducing the in-training value.
use lab_tests::*;

/// A tiny TorchScript feature network with the Inception call signature, made with the venv's torch.
fn tiny_features(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("tiny.pt");
    let script = root().join("plugins/metrics/src/tests/tiny_net.py");
    let status = std::process::Command::new(root().join(".venv/bin/python3")).arg(script).arg(&out).status().unwrap();
    assert!(status.success());
    out
}

/// Every file under `dir` with its bytes, in path order.
fn folder_contents(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn metrics_during_training_and_lab_eval_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_features(tmp.path());
    let runs = tmp.path().join("runs");
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"])
        .arg(&runs)
        .args(tiny(8))
        .env("LAB_CACHE", tmp.path().join("cache"));
    for s in [
        "eval.every=4".to_string(),
        "eval.metrics=[\"fid\", \"is\", \"kid\", \"pr\"]".into(),
        "eval.num_samples=48".into(),
        "eval.reference_count=64".into(),
        "eval.batch_size=16".into(),
        format!("eval.features={:?}", features.display().to_string()),
        "eval.config.kid.subset_size=16".into(),
        // The tiny network has the short signature `forward(x, return_features)`.
        "eval.config.is.probs_args=[false]".into(),
    ] {
        cmd.args(["--set", &s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "quickstart");
    let fid: Vec<(u64, f64)> =
        metrics(&run_dir).into_iter().filter(|m| m.1 == "eval/fid").map(|m| (m.0, m.2)).collect();
    assert_eq!(fid.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 8]);
    let keys: std::collections::BTreeSet<String> = metrics(&run_dir).into_iter().map(|m| m.1).collect();
    for k in ["eval/is", "eval/kid", "eval/precision", "eval/recall"] {
        assert!(keys.contains(k), "{k} missing: {keys:?}");
    }
    assert!(run_dir.join("checkpoints/best.safetensors").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    let best = &summary["eval"]["best"];
    assert_eq!(best["metric"], "fid");
    let best_fid = fid.iter().map(|f| f.1).fold(f64::INFINITY, f64::min);
    assert_eq!(best["value"].as_f64().unwrap(), best_fid, "best is the lowest FID");
    let protocol = &summary["eval"]["final"]["protocol"];
    assert_eq!(protocol["num_samples"], 48);
    assert_eq!(protocol["reference"]["split"], "test");
    assert_eq!(protocol["reference"]["count"], 64);
    assert_eq!(protocol["metrics"]["fid"]["features"]["sha256"].as_str().map(str::len), Some(64), "{protocol}");

    // TensorBoard shows the eval scalars too.
    let py = root().join(".venv/bin/python3");
    let out = std::process::Command::new(&py)
        .arg(root().join("core/lab/src/track/read_events.py"))
        .arg(&run_dir)
        .output()
        .unwrap();
    let tb: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tb["scalars"]["eval/fid"].as_array().unwrap().len(), 2);

    // `lab eval` on the final checkpoint reproduces the in-training value, and leaves the run
    // folder exactly as it was.
    let before = folder_contents(&run_dir);
    let out =
        run(lab().args(["eval"]).arg(&run_dir).args(["--metrics", "fid"]).env("LAB_CACHE", tmp.path().join("cache")));
    assert!(out.status.success(), "{}", stderr(&out));
    let after = folder_contents(&run_dir);
    let changed: Vec<_> = after.iter().filter(|f| !before.contains(f)).map(|f| &f.0).collect();
    assert!(after == before, "lab eval changed the run folder: {changed:?}");
    let line = stdout(&out).lines().find(|l| l.starts_with("fid: ")).unwrap().to_string();
    let again: f64 = line.trim_start_matches("fid: ").parse().unwrap();
    let final_fid = fid.last().unwrap().1;
    assert!((again - final_fid).abs() <= 1e-9 * final_fid.abs().max(1.0), "lab eval {again} vs training {final_fid}");
}

#[test]
fn a_missing_feature_network_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(lab()
        .args(["run", "experiments/quickstart.toml", "--runs-dir"])
        .arg(tmp.path())
        .args(tiny(2))
        .args(["--set", "eval.metrics=[\"fid\"]", "--set", "eval.features=\"/nonexistent/inception.pt\""]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/inception.pt"), "{err}");
}

/// Two variants of one experiment, each evaluated, seen through the real `tensorboard` server's
/// HParams data endpoints (what the HParams dashboard itself requests): the key
/// hyperparameters as columns, the final and best FID as metrics, one session per run, and the
/// table sorted and filtered by the server.
#[test]
fn tensorboard_hparams_dashboard_lists_both_variants() {
    use lab_test_support::tensorboard_server::TensorBoardServer;
    use serde_json::{json, Value};
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_features(tmp.path());
    let runs = tmp.path().join("runs");
    for (augment, fraction) in [("none", "0.01"), ("diffaugment", "0.02")] {
        let mut cmd = lab();
        // The variant first: a long label is cut at the end.
        cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"])
            .arg(&runs)
            .env("LAB_CACHE", tmp.path().join("cache"));
        cmd.args(["--set", &format!("augment.name={augment:?}")]).args(tiny(4));
        for s in [
            "augment.config.policy=\"translation,cutout\"".into(),
            format!("data.fraction={fraction}"),
            "eval.every=2".into(),
            "eval.metrics=[\"fid\"]".into(),
            "eval.num_samples=32".into(),
            "eval.reference_count=32".into(),
            "eval.batch_size=16".into(),
            format!("eval.features={:?}", features.display().to_string()),
        ] {
            cmd.args(["--set", &s]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let mut run_dirs: Vec<_> = std::fs::read_dir(runs.join("quickstart")).unwrap().map(|e| e.unwrap().path()).collect();
    run_dirs.sort();
    let names: Vec<String> = run_dirs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.contains("-augment.name=diffaugment__")), "run names say what differs: {names:?}");

    let server = TensorBoardServer::start(&runs, tmp.path()).expect("tensorboard starts");
    let fid = json!({"metric": {"tag": "best/fid"}, "order": "ORDER_ASC"});
    let groups = server
        .wait_for_session_groups(std::slice::from_ref(&fid), std::time::Duration::from_secs(60), |v| {
            v["sessionGroups"].as_array().is_some_and(|g| {
                g.len() == 2 && g.iter().all(|g| g["metricValues"].as_array().is_some_and(|m| !m.is_empty()))
            })
        })
        .expect("session_groups answers");
    let list = groups["sessionGroups"].as_array().unwrap_or_else(|| panic!("no session groups: {groups}"));
    assert_eq!(list.len(), 2, "one session per run: {groups}");

    let experiment = server.experiment().expect("experiment answers");
    let columns: Vec<&str> =
        experiment["hparamInfos"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    for c in
        ["architecture", "loss", "augment", "augment.policy", "data.fraction", "seed", "optim.lr", "train.batch_size"]
    {
        assert!(columns.contains(&c), "hparam column {c} missing: {columns:?}");
    }
    let metric_tags: Vec<&str> =
        experiment["metricInfos"].as_array().unwrap().iter().map(|m| m["name"]["tag"].as_str().unwrap()).collect();
    for t in ["eval/fid", "best/fid", "loss/d"] {
        assert!(metric_tags.contains(&t), "metric {t} missing: {metric_tags:?}");
    }

    // Each row against its run folder: hyperparameters, and the best and final FID.
    let metric = |g: &Value, tag: &str| -> f64 {
        g["metricValues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"]["tag"] == tag)
            .unwrap_or_else(|| panic!("{tag} not in {g}"))["value"]
            .as_f64()
            .unwrap()
    };
    let mut seen = Vec::new();
    for g in list {
        let augment = g["hparams"]["augment"].as_str().unwrap().to_string();
        let run_dir = run_dirs
            .iter()
            .find(|d| g["name"].as_str().unwrap().ends_with(d.file_name().unwrap().to_str().unwrap()))
            .expect("the group is a run folder");
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
        let best = summary["eval"]["best"]["value"].as_f64().unwrap();
        let last = summary["eval"]["final"]["values"]["fid"].as_f64().unwrap();
        assert!((metric(g, "best/fid") - best).abs() <= 1e-4 * best.abs(), "{g} vs best {best}");
        assert!((metric(g, "eval/fid") - last).abs() <= 1e-4 * last.abs(), "{g} vs final {last}");
        let policy = g["hparams"]["augment.policy"].as_str().unwrap();
        assert_eq!(policy, if augment == "none" { "" } else { "translation,cutout" });
        assert_eq!(g["hparams"]["architecture"], "dcgan");
        assert_eq!(g["hparams"]["train.batch_size"], 16.0);
        assert_eq!(g["sessions"][0]["status"], "STATUS_SUCCESS", "{g}");
        seen.push((augment, g["hparams"]["data.fraction"].as_f64().unwrap(), metric(g, "best/fid")));
    }
    assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2), "sorted by best FID, ascending: {seen:?}");
    let mut variants: Vec<(String, f64)> = seen.iter().map(|s| (s.0.clone(), s.1)).collect();
    variants.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(variants, [("diffaugment".to_string(), 0.02), ("none".to_string(), 0.01)]);

    // The dashboard's filter: only the DiffAugment variant.
    let only = server.session_groups(&[json!({"hparam": "augment", "filterDiscrete": ["diffaugment"]}), fid]).unwrap();
    let only = only["sessionGroups"].as_array().unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0]["hparams"]["augment"], "diffaugment");
}

#[test]
fn the_leak_detector_runs_during_training_and_warns_once() {
    // DiffAugment on the reals only, the leak experiment's set-up. An untrained generator's
    // flat grey output counts as blank, not as an artefact, by default; `max_flat = 1` counts
    // it, so the detector fires at both evaluations: the warning must still be printed once.
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut cmd = lab();
    cmd.args(["run", "experiments/augment_leak_fashion_mnist.toml", "--runs-dir"]).arg(&runs).args(tiny(4));
    for s in ["eval.every=2", "eval.num_samples=64", "eval.reference_count=64", "eval.config.leak.max_flat=1.0"] {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .starts_with("warning: step 2: metric `leak`: the samples carry the augmentation's artefacts: 100% have"),
        "{}",
        warnings[0]
    );
    let run_dir = only_run(&runs, "augment_leak_fashion_mnist");
    let fired: Vec<(u64, f64)> =
        metrics(&run_dir).into_iter().filter(|m| m.1 == "eval/leak/fired").map(|m| (m.0, m.2)).collect();
    assert_eq!(fired, [(2, 1.0), (4, 1.0)]);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    let protocol = &summary["eval"]["final"]["protocol"]["metrics"]["leak"];
    assert_eq!(protocol["max_flat"], 1.0, "{protocol}");
    assert!(protocol.get("warning").is_none(), "the alarm is not part of the protocol: {protocol}");

    // By default the same untrained generator's grey images are blank, and nothing fires.
    let runs = tmp.path().join("runs-default");
    let mut cmd = lab();
    cmd.args(["run", "experiments/augment_leak_fashion_mnist.toml", "--runs-dir"]).arg(&runs).args(tiny(2));
    for s in ["eval.every=2", "eval.num_samples=64", "eval.reference_count=64"] {
        cmd.args(["--set", s]);
    }
    let out = run(&mut cmd);
    assert!(out.status.success() && !stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn d_overfitting_signature_is_logged_and_measuring_it_changes_nothing() {
    // A conditional DCGAN (labels reach D) on 1% of the data, evaluated twice; then the same
    // run without the measurement: the training must be bit for bit the same.
    let tmp = tempfile::tempdir().unwrap();
    let train = |runs: &std::path::Path, overfit_images: i64| {
        let mut cmd = lab();
        cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(runs).args(tiny(4));
        for s in [
            "eval.every=2".to_string(),
            "eval.metrics=[\"leak\"]".into(),
            "eval.num_samples=32".into(),
            "eval.reference_count=50".into(),
            "eval.batch_size=16".into(),
            "model.config.conditional=true".into(),
            format!("eval.overfit_images={overfit_images}"),
        ] {
            cmd.args(["--set", &s]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        only_run(runs, "quickstart")
    };
    let measured = train(&tmp.path().join("a"), 1000);
    let values = metrics(&measured);
    let at = |name: &str| -> Vec<(u64, f64)> {
        values.iter().filter(|m| m.1 == format!("eval/overfit/{name}")).map(|m| (m.0, m.2)).collect()
    };
    assert_eq!(at("d_gap").iter().map(|v| v.0).collect::<Vec<_>>(), [2, 4]);
    for ((_, gap), ((_, train_acc), (_, heldout_acc))) in
        at("d_gap").into_iter().zip(at("d_train_acc").into_iter().zip(at("d_heldout_acc")))
    {
        assert!((0.0..=1.0).contains(&train_acc) && (0.0..=1.0).contains(&heldout_acc));
        assert_eq!(gap, train_acc - heldout_acc);
        // 50 held-out images: the share is a multiple of 1/50.
        assert!((heldout_acc * 50.0 - (heldout_acc * 50.0).round()).abs() < 1e-9, "{heldout_acc}");
    }
    let plain = train(&tmp.path().join("b"), 0);
    assert!(!metrics(&plain).iter().any(|m| m.1.starts_with("eval/overfit/")), "overfit_images = 0 turns it off");
    assert_eq!(
        checkpoint_tensors_sha256(&measured),
        checkpoint_tensors_sha256(&plain),
        "measuring D's signature changed the run"
    );
    assert_eq!(
        deterministic_metrics(&measured).iter().filter(|m| m.1.starts_with("loss/")).collect::<Vec<_>>(),
        deterministic_metrics(&plain).iter().filter(|m| m.1.starts_with("loss/")).collect::<Vec<_>>()
    );
}

#[test]
fn standing_statistics_change_what_is_scored_and_nothing_that_is_trained() {
    // The same tiny DCGAN twice, its samples scored with the running batch-norm statistics and
    // with standing ones (the mean of 3 prior batches' statistics); then `lab eval` swaps the
    // protocols between the two runs' identical checkpoints.
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_features(tmp.path());
    let cache = tmp.path().join("cache");
    let train = |runs: &std::path::Path, standing: u64| {
        let mut cmd = lab();
        cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(runs).args(tiny(4)).env("LAB_CACHE", &cache);
        for s in [
            "eval.every=2".to_string(),
            "eval.metrics=[\"fid\"]".into(),
            "eval.num_samples=48".into(),
            "eval.reference_count=64".into(),
            "eval.batch_size=16".into(),
            format!("eval.features={:?}", features.display().to_string()),
            format!("eval.standing_stats={standing}"),
        ] {
            cmd.args(["--set", &s]);
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", stderr(&out));
        only_run(runs, "quickstart")
    };
    let fids = |run_dir: &std::path::Path| -> Vec<f64> {
        metrics(run_dir).into_iter().filter(|m| m.1 == "eval/fid").map(|m| m.2).collect()
    };
    let running = train(&tmp.path().join("running"), 0);
    let standing = train(&tmp.path().join("standing"), 3);
    assert_eq!(
        checkpoint_tensors_sha256(&standing),
        checkpoint_tensors_sha256(&running),
        "re-estimating the statistics for an evaluation changed the trained networks"
    );
    assert_eq!(
        deterministic_metrics(&standing).iter().filter(|m| m.1.starts_with("loss/")).collect::<Vec<_>>(),
        deterministic_metrics(&running).iter().filter(|m| m.1.starts_with("loss/")).collect::<Vec<_>>()
    );
    let grid = |run_dir: &std::path::Path| std::fs::read(run_dir.join("samples/step_000004.png")).unwrap();
    assert_ne!(grid(&standing), grid(&running), "the sample grid shows what the evaluation scores");
    let (plain, recalibrated) = (fids(&running), fids(&standing));
    assert_eq!(plain.len(), 2);
    for (a, b) in plain.iter().zip(&recalibrated) {
        assert!(a.is_finite() && b.is_finite() && a != b, "the statistics decide the samples: {a} against {b}");
    }
    let summary = |run_dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap()
    };
    let generator = summary(&standing)["eval"]["final"]["protocol"]["generator"].as_str().unwrap().to_string();
    assert!(
        generator.ends_with("standing batch-norm statistics: the mean over 3 batches of 16 prior samples"),
        "{generator}"
    );
    let generator = summary(&running)["eval"]["final"]["protocol"]["generator"].as_str().unwrap().to_string();
    assert!(!generator.contains("standing"), "{generator}");
    // `lab eval` scores each run's last checkpoint under the other protocol: the other run's value.
    let eval_under = |run_dir: &std::path::Path, standing: u64| -> f64 {
        let out = run(lab()
            .args(["eval"])
            .arg(run_dir)
            .args(["--set", &format!("eval.standing_stats={standing}")])
            .env("LAB_CACHE", &cache));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().find_map(|l| l.strip_prefix("fid: ")).unwrap().parse().unwrap()
    };
    assert_eq!(eval_under(&running, 3), *recalibrated.last().unwrap());
    assert_eq!(eval_under(&standing, 0), *plain.last().unwrap());
}
