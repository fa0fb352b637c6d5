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

#[test]
fn metrics_during_training_and_lab_eval_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let features = tiny_features(tmp.path());
    let runs = tmp.path().join("runs");
    let mut cmd = lab();
    cmd.args(["run", "experiments/quickstart.toml", "--runs-dir"]).arg(&runs).args(tiny(8)).env("LAB_CACHE", tmp.path().join("cache"));
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
    let fid: Vec<(u64, f64)> = metrics(&run_dir).into_iter().filter(|m| m.1 == "eval/fid").map(|m| (m.0, m.2)).collect();
    assert_eq!(fid.iter().map(|f| f.0).collect::<Vec<_>>(), [4, 8]);
    let keys: std::collections::BTreeSet<String> = metrics(&run_dir).into_iter().map(|m| m.1).collect();
    for k in ["eval/is", "eval/kid", "eval/precision", "eval/recall"] {
        assert!(keys.contains(k), "{k} missing: {keys:?}");
    }
    assert!(run_dir.join("checkpoints/best.safetensors").exists());
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
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
    let out = std::process::Command::new(&py).arg(root().join("core/lab/src/track/read_events.py")).arg(&run_dir).output().unwrap();
    let tb: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tb["scalars"]["eval/fid"].as_array().unwrap().len(), 2);

    // `lab eval` on the final checkpoint reproduces the in-training value.
    let out = run(lab().args(["eval"]).arg(&run_dir).args(["--metrics", "fid"]).env("LAB_CACHE", tmp.path().join("cache")));
    assert!(out.status.success(), "{}", stderr(&out));
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
