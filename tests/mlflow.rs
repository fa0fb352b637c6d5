//! `lab run` tracked by a real MLflow server, started here on 127.0.0.1 and stopped after:
//! params, metric histories and status read back; after a dead server, `lab sync` sends the run
//! folder.
use lab_test_support::mlflow_server::{MetricPoint, MlflowServer};
use lab_tests::*;

#[test]
fn lab_run_tracks_to_mlflow_and_sync_sends_after_an_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let server = MlflowServer::start(&tmp.path().join("mlflow")).expect("mlflow server starts");
    let uri = server.uri().to_string();
    let runs = tmp.path().join("runs");
    let out = run(lab()
        .args(["run", "experiments/quickstart.toml", "--runs-dir"])
        .arg(&runs)
        .args(tiny(6))
        .env("MLFLOW_TRACKING_URI", &uri));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_dir = only_run(&runs, "quickstart");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("mlflow.json")).unwrap()).unwrap();
    let run_id = state["run_id"].as_str().unwrap().to_string();
    let info = server.run(&run_id).unwrap();
    assert_eq!(info["info"]["status"], "FINISHED", "{info}");
    let history = points(server.metric_history(&run_id, "loss/d").unwrap());
    let jsonl: Vec<(u64, f64)> =
        metrics(&run_dir).into_iter().filter(|m| m.1 == "loss/d").map(|m| (m.0, m.2)).collect();
    assert_eq!(history, jsonl, "every logged step reaches MLflow");
    let params = server.run_map(&run_id, "params").unwrap();
    assert_eq!(params.get("train.batch_size").map(String::as_str), Some("16"), "{params:?}");
    assert_eq!(params.get("model.architecture").map(String::as_str), Some("dcgan"));

    // Server down for a whole run: training finishes, one warning names `lab sync`, which sends the
    // run folder once.
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    let runs2 = tmp.path().join("runs2");
    let out = run(lab()
        .args(["run", "experiments/quickstart.toml", "--runs-dir"])
        .arg(&runs2)
        .args(tiny(6))
        .env("MLFLOW_TRACKING_URI", dead));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("will send them"), "{}", stderr(&out));
    let run2 = only_run(&runs2, "quickstart");
    let out = run(lab().args(["sync"]).arg(&run2).args(["--uri", &uri]));
    assert!(out.status.success(), "{}", stderr(&out));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run2.join("mlflow.json")).unwrap()).unwrap();
    let run_id2 = state["run_id"].as_str().unwrap().to_string();
    let expected: Vec<(u64, f64)> =
        metrics(&run2).into_iter().filter(|m| m.1 == "loss/g").map(|m| (m.0, m.2)).collect();
    assert_eq!(points(server.metric_history(&run_id2, "loss/g").unwrap()), expected);
    let out = run(lab().args(["sync"]).arg(&run2).args(["--uri", &uri]));
    assert!(out.status.success());
    assert!(stdout(&out).contains("up to date"), "{}", stdout(&out));
    assert_eq!(points(server.metric_history(&run_id2, "loss/g").unwrap()), expected, "a second sync changes nothing");

    // Ctrl-C (SIGINT) mid-run: a checkpoint is written, event files are complete, MLflow says KILLED.
    let runs3 = tmp.path().join("runs3");
    let mut child = lab()
        .args(["run", "experiments/quickstart.toml", "--quiet", "--runs-dir"])
        .arg(&runs3)
        .args(tiny(100_000))
        .env("MLFLOW_TRACKING_URI", &uri)
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let run3 = loop {
        assert!(started.elapsed().as_secs() < 120, "the run never logged a metric");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let found =
            std::fs::read_dir(runs3.join("quickstart")).ok().and_then(|mut d| d.next()).map(|e| e.unwrap().path());
        if let Some(dir) = found {
            if std::fs::read_to_string(dir.join("metrics.jsonl")).map(|t| t.lines().count() > 10).unwrap_or(false) {
                break dir;
            }
        }
    };
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130), "interrupted runs exit with 130");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run3.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "killed");
    let steps = summary["steps"].as_u64().unwrap();
    assert!(steps > 0 && steps < 100_000);
    assert!(run3.join("checkpoints/last.safetensors").exists());
    let py = root().join(".venv/bin/python3");
    let out = std::process::Command::new(&py)
        .arg(root().join("core/lab/src/track/read_events.py"))
        .arg(&run3)
        .output()
        .unwrap();
    assert!(out.status.success(), "event file must be complete and valid: {}", stderr(&out));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run3.join("mlflow.json")).unwrap()).unwrap();
    let info = server.run(state["run_id"].as_str().unwrap()).unwrap();
    assert_eq!(info["info"]["status"], "KILLED", "{info}");
    // The interrupted run resumes from its checkpoint, into the same MLflow run, which ends
    // FINISHED with every step of metrics.jsonl.
    let rows_before_resume = metrics(&run3).len();
    let out = run(lab()
        .args(["run", "--quiet", "--resume"])
        .arg(&run3)
        .args(["--set", &format!("train.steps={}", steps + 2)])
        .env("MLFLOW_TRACKING_URI", &uri));
    assert!(out.status.success(), "{}", stderr(&out));
    let run_id3 = state["run_id"].as_str().unwrap();
    assert_eq!(server.run(run_id3).unwrap()["info"]["status"], "FINISHED");
    let expected: Vec<(u64, f64)> =
        metrics(&run3).into_iter().filter(|m| m.1 == "loss/d").map(|m| (m.0, m.2)).collect();
    assert!(metrics(&run3).len() > rows_before_resume, "the resumed steps are logged");
    assert_eq!(points(server.metric_history(run_id3, "loss/d").unwrap()), expected);
}

fn points(history: Vec<MetricPoint>) -> Vec<(u64, f64)> {
    history.into_iter().map(|p| (p.step, p.value)).collect()
}
